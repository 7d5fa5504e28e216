//! The block model of a readable text: headings, paragraphs, list items, quotes and code kept
//! apart, so that narration knows what each line is; with a plain-text form that round-trips.
//! HTML is read within [`HtmlLimits`] (nesting depth, elements, time), so that no page, however
//! it is built, holds the step that reads it.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use dom_query::{Document as Dom, NodeId, NodeRef};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeBuilderOpts, TreeSink};
use html5ever::{Attribute, ParseOpts, QualName};
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
    ///
    /// Read within the default [`HtmlLimits`]: a document beyond them gives the text read up to
    /// the limit (use [`Document::try_from_html`] to refuse it instead).
    pub fn from_html(html: &str) -> Self {
        let limits = HtmlLimits::default();
        let (dom, _) = parse_html_partial(html, &limits);
        Self::from_dom(&dom, &limits)
    }

    /// [`Document::from_html`], refusing by name a document beyond the default [`HtmlLimits`].
    pub fn try_from_html(html: &str) -> Result<Self, HtmlError> {
        let limits = HtmlLimits::default();
        let dom = parse_html(html, &limits)?;
        Ok(Self::from_dom(&dom, &limits))
    }

    /// The blocks of a parsed document; elements nested deeper than the limit are not read.
    pub(crate) fn from_dom(dom: &Dom, limits: &HtmlLimits) -> Self {
        let mut walker = Walker { max_depth: limits.max_depth, ..Walker::default() };
        let root = dom.body().unwrap_or_else(|| dom.root());
        walker.walk(&root, 0);
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

/// Bounds on one HTML document. Real pages nest a few dozen elements deep and hold a few
/// thousand; a page past these bounds is built to exhaust its reader (the HTML tree builder's
/// scope checks walk the stack of open elements, so deep nesting costs quadratic time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HtmlLimits {
    /// How deep elements may nest (browsers stop nesting at 512 too).
    pub max_depth: usize,
    /// How many elements a document may hold.
    pub max_elements: usize,
    /// How long parsing a document may take.
    pub max_time: Duration,
}

impl Default for HtmlLimits {
    fn default() -> Self {
        Self { max_depth: 512, max_elements: 200_000, max_time: Duration::from_secs(5) }
    }
}

/// Why an HTML document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HtmlError {
    /// Elements nest deeper than the limit.
    #[error("its elements nest more than {limit} deep")]
    TooDeep { limit: usize },
    /// More elements than the limit.
    #[error("it holds more than {limit} elements")]
    TooManyElements { limit: usize },
    /// Parsing took longer than the limit.
    #[error("reading it took more than {} s", .limit.as_secs_f64())]
    TooSlow { limit: Duration },
}

/// Parses an HTML document within `limits`, refusing it by name beyond them.
pub fn parse_html(html: &str, limits: &HtmlLimits) -> Result<Dom, HtmlError> {
    match parse_html_partial(html, limits) {
        (dom, None) => Ok(dom),
        (_, Some(e)) => Err(e),
    }
}

/// How much HTML the parser takes between two checks of the limits: small enough that a chunk
/// of the worst markup costs milliseconds, large enough that the checks cost nothing.
const CHUNK_BYTES: usize = 16 * 1024;

/// Parses as much of `html` as the limits allow: the document read so far (never nested
/// deeper than the limit), and why the parse stopped early, if it did.
fn parse_html_partial(html: &str, limits: &HtmlLimits) -> (Dom, Option<HtmlError>) {
    let started = Instant::now();
    let opts = ParseOpts {
        tree_builder: TreeBuilderOpts { scripting_enabled: false, ..TreeBuilderOpts::default() },
        ..ParseOpts::default()
    };
    let sink = BoundedSink::new(*limits);
    let mut parser = html5ever::parse_document(sink, opts);
    let mut rest = html;
    while !rest.is_empty() {
        let cut = if rest.len() <= CHUNK_BYTES { rest.len() } else { rest.floor_char_boundary(CHUNK_BYTES) };
        // A chunk always advances: the first character is at most four bytes.
        let cut = if cut == 0 { rest.ceil_char_boundary(1) } else { cut };
        parser.process(StrTendril::from_slice(&rest[..cut]));
        rest = &rest[cut..];
        let sink = &parser.tokenizer.sink.sink;
        if sink.exceeded.get().is_none() && started.elapsed() > limits.max_time {
            sink.exceeded.set(Some(HtmlError::TooSlow { limit: limits.max_time }));
        }
        if let Some(e) = sink.exceeded.get() {
            return (parser.finish(), Some(e));
        }
    }
    let exceeded = parser.tokenizer.sink.sink.exceeded.get();
    (parser.finish(), exceeded)
}

/// The DOM builder of `dom_query` with the limits kept: it counts elements, knows each node's
/// depth, and attaches nothing deeper than the limit (the tree builder still gets a node for
/// each element it asks for, so it carries on to the end of the chunk).
struct BoundedSink {
    dom: Dom,
    limits: HtmlLimits,
    elements: Cell<usize>,
    depth: RefCell<HashMap<NodeId, u32>>,
    exceeded: Cell<Option<HtmlError>>,
}

impl BoundedSink {
    fn new(limits: HtmlLimits) -> Self {
        Self {
            dom: Dom::default(),
            limits,
            elements: Cell::new(0),
            depth: RefCell::new(HashMap::new()),
            exceeded: Cell::new(None),
        }
    }

    fn exceed(&self, e: HtmlError) {
        if self.exceeded.get().is_none() {
            self.exceeded.set(Some(e));
        }
    }

    /// Whether a node may be attached under `parent`; records its depth when it may.
    fn admit(&self, parent: &NodeId, child: &NodeOrText<NodeId>) -> bool {
        let NodeOrText::AppendNode(child) = child else { return true };
        let mut depth = self.depth.borrow_mut();
        let below = depth.get(parent).copied().unwrap_or(0) + 1;
        if below as usize > self.limits.max_depth {
            drop(depth);
            self.exceed(HtmlError::TooDeep { limit: self.limits.max_depth });
            return false;
        }
        depth.insert(*child, below);
        true
    }

    /// The parent a node inserted before `sibling` gets.
    fn parent_of(&self, sibling: &NodeId) -> Option<NodeId> {
        self.dom.tree.parent_of(sibling).map(|p| p.id)
    }
}

impl TreeSink for BoundedSink {
    type Handle = NodeId;
    type Output = Dom;
    type ElemName<'a> = <Dom as TreeSink>::ElemName<'a>;

    fn finish(self) -> Dom {
        self.dom
    }

    fn parse_error(&self, msg: Cow<'static, str>) {
        self.dom.parse_error(msg)
    }

    fn get_document(&self) -> NodeId {
        self.dom.get_document()
    }

    fn elem_name<'a>(&'a self, target: &'a NodeId) -> Self::ElemName<'a> {
        self.dom.elem_name(target)
    }

    fn create_element(&self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> NodeId {
        let n = self.elements.get() + 1;
        self.elements.set(n);
        if n > self.limits.max_elements {
            self.exceed(HtmlError::TooManyElements { limit: self.limits.max_elements });
        }
        self.dom.create_element(name, attrs, flags)
    }

    fn create_comment(&self, text: StrTendril) -> NodeId {
        self.dom.create_comment(text)
    }

    fn create_pi(&self, target: StrTendril, data: StrTendril) -> NodeId {
        self.dom.create_pi(target, data)
    }

    fn append(&self, parent: &NodeId, child: NodeOrText<NodeId>) {
        if self.admit(parent, &child) {
            self.dom.append(parent, child)
        }
    }

    fn append_based_on_parent_node(
        &self,
        element: &NodeId,
        prev_element: &NodeId,
        child: NodeOrText<NodeId>,
    ) {
        match self.parent_of(element) {
            Some(parent) => {
                if self.admit(&parent, &child) {
                    self.dom.append_before_sibling(element, child)
                }
            }
            None => self.append(prev_element, child),
        }
    }

    fn append_doctype_to_document(&self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        self.dom.append_doctype_to_document(name, public_id, system_id)
    }

    fn get_template_contents(&self, target: &NodeId) -> NodeId {
        self.dom.get_template_contents(target)
    }

    fn same_node(&self, x: &NodeId, y: &NodeId) -> bool {
        self.dom.same_node(x, y)
    }

    fn set_quirks_mode(&self, mode: QuirksMode) {
        self.dom.set_quirks_mode(mode)
    }

    fn append_before_sibling(&self, sibling: &NodeId, child: NodeOrText<NodeId>) {
        let admitted = match self.parent_of(sibling) {
            Some(parent) => self.admit(&parent, &child),
            None => true,
        };
        if admitted {
            self.dom.append_before_sibling(sibling, child)
        }
    }

    fn add_attrs_if_missing(&self, target: &NodeId, attrs: Vec<Attribute>) {
        self.dom.add_attrs_if_missing(target, attrs)
    }

    fn remove_from_parent(&self, target: &NodeId) {
        self.dom.remove_from_parent(target)
    }

    fn reparent_children(&self, node: &NodeId, new_parent: &NodeId) {
        // The children move up or sideways (the adoption agency, misnested formatting tags):
        // their recorded depth stays an upper bound of the new one for all but a few levels.
        self.dom.reparent_children(node, new_parent)
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &NodeId) -> bool {
        self.dom.is_mathml_annotation_xml_integration_point(handle)
    }
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
    /// Elements nested deeper than this are not read (the walk recurses once per level).
    max_depth: usize,
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

    fn walk(&mut self, node: &NodeRef, depth: usize) {
        if depth >= self.max_depth {
            return;
        }
        let depth = depth + 1;
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
                    self.walk(&child, depth);
                    self.flush();
                    self.stack.pop();
                }
                "li" => {
                    self.flush();
                    let ordered = self.lists.last().copied().unwrap_or(false);
                    self.stack.push(Kind::ListItem(ordered));
                    self.walk(&child, depth);
                    self.flush();
                    self.stack.pop();
                }
                "ul" | "ol" => {
                    self.flush();
                    self.lists.push(name == "ol");
                    self.walk(&child, depth);
                    self.flush();
                    self.lists.pop();
                }
                "blockquote" => {
                    self.flush();
                    self.stack.push(Kind::Quote);
                    self.walk(&child, depth);
                    self.flush();
                    self.stack.pop();
                }
                "td" | "th" => {
                    self.buf.push(' ');
                    self.walk(&child, depth);
                    self.buf.push(' ');
                }
                _ if BLOCK.contains(&name) => {
                    self.flush();
                    // A paragraph inside a list item or quote stays part of it.
                    self.walk(&child, depth);
                    self.flush();
                }
                _ => self.walk(&child, depth),
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
