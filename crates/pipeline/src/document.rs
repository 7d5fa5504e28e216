//! The block model of a readable text: headings, paragraphs, list items, quotes and code kept
//! apart, so that narration knows what each line is; with a plain-text form that round-trips.

use dom_query::{Document as Dom, NodeRef};
use serde::{Deserialize, Serialize};

/// One block of a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Block {
    /// A heading, level 1 to 6.
    Heading {
        level: u8,
        text: String,
    },
    Paragraph {
        text: String,
    },
    /// An item of a list; `ordered` for numbered lists.
    ListItem {
        ordered: bool,
        text: String,
    },
    Quote {
        text: String,
    },
    /// Preformatted code, line breaks kept. Never read aloud.
    Code {
        text: String,
    },
}

impl Block {
    /// The block's text.
    pub fn text(&self) -> &str {
        match self {
            Block::Heading { text, .. }
            | Block::Paragraph { text }
            | Block::ListItem { text, .. }
            | Block::Quote { text }
            | Block::Code { text } => text,
        }
    }

    /// Whether the block is meant to be read (code is not).
    pub fn is_prose(&self) -> bool {
        !matches!(self, Block::Code { .. })
    }
}

/// A readable text as blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub blocks: Vec<Block>,
}

/// Words in `text`: runs of characters between whitespace that hold a letter or a digit.
pub fn count_words(text: &str) -> usize {
    words(text)
        .filter(|w| w.bytes().any(|b| b.is_ascii_alphanumeric()) || w.chars().any(char::is_alphanumeric))
        .count()
}

/// The length of the whitespace character (Unicode `White_Space`, as `char::is_whitespace`)
/// starting at `i`, or 0: ASCII is decided from the byte, and only the lead bytes of the few
/// non-ASCII spaces (U+0085, U+00A0, U+1680, U+2000–U+205F, U+3000) decode a character.
#[inline]
fn space_at(bytes: &[u8], text: &str, i: usize) -> usize {
    match bytes[i] {
        b'\t'..=b'\r' | b' ' => 1,
        0xC2 | 0xE1 | 0xE2 | 0xE3 => {
            text[i..].chars().next().filter(|c| c.is_whitespace()).map_or(0, char::len_utf8)
        }
        _ => 0,
    }
}

/// The words of a text: what `str::split_whitespace` yields, scanning bytes instead of
/// decoding every character (feed fields and page text are mostly ASCII).
fn words(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let n = space_at(bytes, text, i);
            if n == 0 {
                break;
            }
            i += n;
        }
        if i >= bytes.len() {
            return None;
        }
        let start = i;
        while i < bytes.len() && space_at(bytes, text, i) == 0 {
            i += 1;
        }
        Some(&text[start..i])
    })
}

impl Document {
    pub fn new(blocks: Vec<Block>) -> Self {
        Self { blocks }
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Words of the prose blocks (code is not counted: it is not read).
    pub fn words(&self) -> usize {
        self.blocks.iter().filter(|b| b.is_prose()).map(|b| count_words(b.text())).sum()
    }

    /// Characters of all blocks' text.
    pub fn characters(&self) -> usize {
        self.blocks.iter().map(|b| b.text().chars().count()).sum()
    }

    /// The visible text of an HTML fragment or document as blocks. Scripts, styles, forms,
    /// images and footnote marks are dropped; whitespace is collapsed outside `<pre>`.
    pub fn from_html(html: &str) -> Self {
        let dom = Dom::from(html);
        let mut walker = Walker::default();
        let root = dom.body().unwrap_or_else(|| dom.root());
        walker.walk(&root);
        walker.flush();
        Self { blocks: walker.blocks }
    }

    /// A hash of the text as read: the blocks' kinds and words, whitespace and markup aside. An
    /// edited post gets another hash; the same post re-served, the same one.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for block in &self.blocks {
            let kind: &[u8] = match block {
                Block::Heading { .. } => b"h",
                Block::Paragraph { .. } => b"p",
                Block::ListItem { .. } => b"l",
                Block::Quote { .. } => b"q",
                Block::Code { .. } => b"c",
            };
            h.update(kind);
            for word in block.text().split_whitespace() {
                h.update(word.as_bytes());
                h.update(b" ");
            }
            h.update([0]);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The plain-text form: blocks apart by a blank line; `#` headings, `- ` and `1. ` list
    /// items, `> ` quotes, fenced code. A paragraph that would read as one of those starts
    /// with a backslash. [`Document::from_text`] reads it back to the same blocks.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut number = 0u32;
        for block in &self.blocks {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            match block {
                Block::ListItem { ordered: true, .. } => number += 1,
                _ => number = 0,
            }
            match block {
                Block::Heading { level, text } => {
                    out.extend(std::iter::repeat_n('#', usize::from((*level).clamp(1, 6))));
                    out.push(' ');
                    out.push_str(text);
                }
                Block::Paragraph { text } => {
                    if looks_like_markup(text) {
                        out.push('\\');
                    }
                    out.push_str(text);
                }
                Block::ListItem { ordered, text } => {
                    if *ordered {
                        out.push_str(&format!("{number}. "));
                    } else {
                        out.push_str("- ");
                    }
                    out.push_str(text);
                }
                Block::Quote { text } => {
                    out.push_str("> ");
                    out.push_str(text);
                }
                Block::Code { text } => {
                    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
                    out.push_str(&fence);
                    out.push('\n');
                    out.push_str(text);
                    out.push('\n');
                    out.push_str(&fence);
                }
            }
        }
        out
    }

    /// Reads the plain-text form back. Any text reads: lines that are not markup are
    /// paragraphs, and lines of one paragraph (no blank line between) are joined.
    pub fn from_text(text: &str) -> Self {
        let mut blocks = Vec::new();
        let mut para: Vec<&str> = Vec::new();
        let mut lines = text.lines();
        let flush = |para: &mut Vec<&str>, blocks: &mut Vec<Block>| {
            if !para.is_empty() {
                let joined = collapse_ws(&para.join(" "));
                if !joined.is_empty() {
                    blocks.push(Block::Paragraph { text: joined });
                }
                para.clear();
            }
        };
        while let Some(line) = lines.next() {
            let trimmed = line.trim_end();
            if trimmed.trim().is_empty() {
                flush(&mut para, &mut blocks);
                continue;
            }
            if let Some(fence_len) = fence_len(trimmed) {
                flush(&mut para, &mut blocks);
                let mut code = Vec::new();
                for inner in lines.by_ref() {
                    if fence_len_exact(inner.trim_end()) == Some(fence_len) {
                        break;
                    }
                    code.push(inner);
                }
                blocks.push(Block::Code { text: code.join("\n") });
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('\\') {
                para.push(rest);
                continue;
            }
            if let Some((level, rest)) = heading(trimmed) {
                flush(&mut para, &mut blocks);
                blocks.push(Block::Heading { level, text: collapse_ws(rest) });
            } else if let Some(rest) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
                flush(&mut para, &mut blocks);
                blocks.push(Block::ListItem { ordered: false, text: collapse_ws(rest) });
            } else if let Some(rest) = ordered_item(trimmed) {
                flush(&mut para, &mut blocks);
                blocks.push(Block::ListItem { ordered: true, text: collapse_ws(rest) });
            } else if let Some(rest) = trimmed.strip_prefix("> ") {
                flush(&mut para, &mut blocks);
                blocks.push(Block::Quote { text: collapse_ws(rest) });
            } else {
                para.push(trimmed);
            }
        }
        flush(&mut para, &mut blocks);
        Self { blocks }
    }
}

fn looks_like_markup(text: &str) -> bool {
    text.starts_with('\\')
        || heading(text).is_some()
        || text.starts_with("- ")
        || text.starts_with("* ")
        || text.starts_with("> ")
        || ordered_item(text).is_some()
        || fence_len(text).is_some()
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) {
        line[hashes..].strip_prefix(' ').map(|rest| (hashes as u8, rest))
    } else {
        None
    }
}

fn ordered_item(line: &str) -> Option<&str> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    line[digits..].strip_prefix(". ")
}

fn fence_len(line: &str) -> Option<usize> {
    let n = line.bytes().take_while(|&b| b == b'`').count();
    (n >= 3).then_some(n)
}

fn fence_len_exact(line: &str) -> Option<usize> {
    fence_len(line).filter(|&n| n == line.len())
}

fn longest_backtick_run(text: &str) -> usize {
    let mut best = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Whitespace runs to one space, trimmed.
pub(crate) fn collapse_ws(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in words(text) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The visible text of an HTML snippet, fast: inline tags dropped, other tags read as a space
/// (so block boundaries never glue words), script and style skipped, entities decoded,
/// whitespace collapsed. For feed fields, where a full HTML parse
/// per item would cost more than the whole feed's XML.
pub(crate) fn html_text(html: &str) -> String {
    if !html.contains(['<', '&']) {
        return collapse_ws(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt + 1..];
        let starts_tag = after.starts_with(|c: char| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        if !starts_tag {
            out.push('<');
            rest = after;
            continue;
        }
        if let Some(comment) = after.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |i| &comment[i + 3..]);
            continue;
        }
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let name = &after[..after.bytes().take_while(u8::is_ascii_alphanumeric).count()];
        rest = &after[gt + 1..];
        const INLINE: &[&str] = &[
            "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i", "kbd", "mark",
            "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time", "u", "var",
        ];
        if INLINE.iter().any(|tag| name.eq_ignore_ascii_case(tag)) {
            continue;
        }
        if name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style") {
            let close = format!("</{}", name.to_ascii_lowercase());
            let lower = rest.to_ascii_lowercase();
            rest = lower.find(&close).map_or("", |i| rest[i..].find('>').map_or("", |g| &rest[i + g + 1..]));
        }
        out.push(' ');
    }
    out.push_str(rest);
    collapse_ws(&html_escape::decode_html_entities(&out))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Paragraph,
    Heading(u8),
    ListItem(bool),
    Quote,
}

/// Walks a DOM, gathering inline text into the block that contains it.
#[derive(Default)]
struct Walker {
    blocks: Vec<Block>,
    buf: String,
    /// The kind of the innermost open block (paragraph at the top).
    stack: Vec<Kind>,
    /// Whether the innermost list is ordered.
    lists: Vec<bool>,
}

const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "math", "button", "select", "option", "textarea",
    "input", "form", "iframe", "object", "embed", "canvas", "audio", "video", "img", "picture", "head",
    "title", "meta", "link",
];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "figure",
    "figcaption",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "dl",
    "dt",
    "dd",
    "details",
    "summary",
    "address",
    "hr",
    "center",
    "body",
    "html",
    "ul",
    "ol",
    "caption",
];

impl Walker {
    fn current(&self) -> Kind {
        self.stack.last().copied().unwrap_or(Kind::Paragraph)
    }

    fn flush(&mut self) {
        let text = collapse_ws(&self.buf);
        self.buf.clear();
        if text.is_empty() || !text.chars().any(|c| c.is_alphanumeric()) {
            return;
        }
        let block = match self.current() {
            Kind::Paragraph => Block::Paragraph { text },
            Kind::Heading(level) => Block::Heading { level, text },
            Kind::ListItem(ordered) => Block::ListItem { ordered, text },
            Kind::Quote => Block::Quote { text },
        };
        self.blocks.push(block);
    }

    fn walk(&mut self, node: &NodeRef) {
        for child in node.children_it(false) {
            if child.is_text() {
                self.buf.push_str(&child.text());
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let Some(name) = child.node_name() else { continue };
            let name = name.to_ascii_lowercase();
            let name = name.as_str();
            if SKIP.contains(&name)
                || child.has_attr("hidden")
                || is_marked_skip(&child)
                || is_footnote_mark(&child, name)
            {
                continue;
            }
            match name {
                // Readability already turns runs of <br> into paragraphs; a single one breaks
                // a line inside a sentence or an item far more often than it ends a block.
                "br" => self.buf.push(' '),
                "pre" => {
                    self.flush();
                    let code = child.text().trim_matches('\n').to_string();
                    if !code.trim().is_empty() {
                        self.blocks.push(Block::Code { text: code });
                    }
                }
                "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                    self.flush();
                    let level = name.as_bytes()[1] - b'0';
                    self.stack.push(Kind::Heading(level));
                    self.walk(&child);
                    self.flush();
                    self.stack.pop();
                }
                "li" => {
                    self.flush();
                    let ordered = self.lists.last().copied().unwrap_or(false);
                    self.stack.push(Kind::ListItem(ordered));
                    self.walk(&child);
                    self.flush();
                    self.stack.pop();
                }
                "ul" | "ol" => {
                    self.flush();
                    self.lists.push(name == "ol");
                    self.walk(&child);
                    self.flush();
                    self.lists.pop();
                }
                "blockquote" => {
                    self.flush();
                    self.stack.push(Kind::Quote);
                    self.walk(&child);
                    self.flush();
                    self.stack.pop();
                }
                "td" | "th" => {
                    self.buf.push(' ');
                    self.walk(&child);
                    self.buf.push(' ');
                }
                _ if BLOCK.contains(&name) => {
                    self.flush();
                    // A paragraph inside a list item or quote stays part of it.
                    self.walk(&child);
                    self.flush();
                }
                _ => self.walk(&child),
            }
        }
    }
}

/// The class that marks a part of a post not to be read.
pub const SKIP_CLASS: &str = "lector-skip";
/// The parts of a post not to be read, as a CSS selector.
pub const SKIP_SELECTOR: &str = "[data-lector-skip], .lector-skip";

/// An element the author marked not to be read: `data-lector-skip`, or the class
/// [`SKIP_CLASS`].
fn is_marked_skip(node: &NodeRef) -> bool {
    node.has_attr("data-lector-skip")
        || node.attr("class").is_some_and(|c| c.split_whitespace().any(|class| class == SKIP_CLASS))
}

/// `<sup>` footnote marks (`1`, `[2]`, `*`) and links to footnotes are not part of the prose.
fn is_footnote_mark(node: &NodeRef, name: &str) -> bool {
    let link_to_note = |n: &NodeRef| {
        n.attr("href").is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            h.starts_with("#fn")
                || h.starts_with("#footnote")
                || h.starts_with("#cite_note")
                || h.starts_with("#ref")
        }) || n.attr("role").is_some_and(|r| r.as_ref() == "doc-noteref")
    };
    match name {
        "sup" => {
            // A bare `<sup>2</sup>` is an exponent (ft², x²); a mark is bracketed or links to
            // its note.
            let text = node.text();
            let t = text.trim();
            let bracketed = t.starts_with('[') && t.ends_with(']');
            t.is_empty()
                || (bracketed && t.len() <= 6)
                || matches!(t, "*" | "†" | "‡")
                || node.descendants_it().any(|d| link_to_note(&d))
        }
        "a" => {
            link_to_note(node) && {
                let text = node.text();
                let t = text.trim().trim_start_matches('[').trim_end_matches(']');
                t.len() <= 4
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_split_whitespace_does_on_every_unicode_space() {
        let spaces: Vec<char> =
            (0..=0x3000u32).filter_map(char::from_u32).filter(|c| c.is_whitespace()).collect();
        assert!(spaces.len() >= 25, "{} spaces", spaces.len());
        let mut samples = vec![
            String::new(),
            " ".into(),
            "one".into(),
            "  leading and trailing  ".into(),
            "é café naïve — «guillemets» 日本語 text".into(),
            "\u{c2a0}?".chars().collect(),
            "x\u{00c2}y \u{00e2}\u{0080}z".into(),
        ];
        for (i, space) in spaces.iter().enumerate() {
            samples.push(format!("a{space}b{space}{space}ü{}é\u{2000}€", spaces[(i + 1) % spaces.len()]));
        }
        for text in &samples {
            let ours: Vec<&str> = words(text).collect();
            let std: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(ours, std, "{text:?}");
            assert_eq!(collapse_ws(text), std.join(" "));
            let expected = std.iter().filter(|w| w.chars().any(char::is_alphanumeric)).count();
            assert_eq!(count_words(text), expected, "{text:?}");
        }
    }

    #[test]
    fn parts_marked_for_skipping_are_not_read() {
        let doc = Document::from_html(
            "<p>Read this.</p><div data-lector-skip><p>Not this.</p></div>\
             <p>And <span class=\"note lector-skip\">not this either,</span> this.</p>\
             <aside class=\"lector-skipped\">But this.</aside>",
        );
        let texts: Vec<&str> = doc.blocks.iter().map(Block::text).collect();
        assert_eq!(texts, ["Read this.", "And this.", "But this."]);
    }

    #[test]
    fn html_becomes_blocks_with_structure() {
        let doc = Document::from_html(
            "<h2>Intro</h2><p>One <b>bold</b>\n word.<sup>[1]</sup><sup><a href=\"#fn2\">2</a></sup></p><ul><li>a</li><li>b <ul><li>c</li></ul></li></ul>\
             <ol><li>first</li></ol><pre>let x = 1;\n\nlet y;</pre><blockquote><p>quoted</p></blockquote>\
             <script>alert(1)</script>",
        );
        assert_eq!(
            doc.blocks,
            vec![
                Block::Heading { level: 2, text: "Intro".into() },
                Block::Paragraph { text: "One bold word.".into() },
                Block::ListItem { ordered: false, text: "a".into() },
                Block::ListItem { ordered: false, text: "b".into() },
                Block::ListItem { ordered: false, text: "c".into() },
                Block::ListItem { ordered: true, text: "first".into() },
                Block::Code { text: "let x = 1;\n\nlet y;".into() },
                Block::Quote { text: "quoted".into() },
            ]
        );
        assert_eq!(doc.words(), 9);
    }

    #[test]
    fn text_form_round_trips_even_for_paragraphs_that_look_like_markup() {
        let doc = Document::new(vec![
            Block::Heading { level: 3, text: "Title".into() },
            Block::Paragraph { text: "# not a heading".into() },
            Block::Paragraph { text: "- not an item".into() },
            Block::Paragraph { text: "12. not numbered".into() },
            Block::Paragraph { text: "\\ backslash".into() },
            Block::ListItem { ordered: true, text: "one".into() },
            Block::ListItem { ordered: true, text: "two".into() },
            Block::ListItem { ordered: false, text: "dot".into() },
            Block::Quote { text: "q".into() },
            Block::Code { text: "```\nfenced inside\n\n```".into() },
            Block::Paragraph { text: "end".into() },
        ]);
        let text = doc.to_text();
        assert!(text.contains("1. one\n\n2. two"), "{text}");
        assert_eq!(Document::from_text(&text), doc);
    }

    #[test]
    fn fast_html_text_drops_markup_and_decodes_entities() {
        assert_eq!(
            html_text(
                "<p>Fish &amp; chips</p><script>var x = '<p>';</script><!-- c --><p>a &lt; b, 1 < 2 ft<sup>2</sup></p>"
            ),
            "Fish & chips a < b, 1 < 2 ft2"
        );
        assert_eq!(html_text("plain  text"), "plain text");
    }

    #[test]
    fn plain_text_reads_as_paragraphs() {
        let doc = Document::from_text("line one\nline two\n\n\nnext");
        assert_eq!(
            doc.blocks,
            vec![
                Block::Paragraph { text: "line one line two".into() },
                Block::Paragraph { text: "next".into() }
            ]
        );
    }
}
