//! The pre-passes that make a broken XML feed readable by feed-rs, each one a text-to-text
//! rewrite that says what it did: decoding to UTF-8 whatever the feed declared, and, when the
//! strict read fails, what Python's feedparser forgives (bare `&`, HTML entities, control
//! characters, junk after the root, an `rss` root of an unknown version) and a file cut short
//! (kept up to its last complete item).

use std::borrow::Cow;

use quick_xml::events::Event;

/// Decodes an XML feed to UTF-8 text. The order is feedparser's: a byte-order mark, the
/// declared encoding (HTTP, then the XML declaration), then UTF-8, then Windows-1252. A
/// single-byte declaration on a body that is valid multi-byte UTF-8 is taken as wrong: such
/// bytes are all but never real Latin-1 text. The XML declaration is made to say UTF-8, since
/// feed-rs decodes by what it says.
pub(super) fn decode_xml(bytes: &[u8], charset: Option<&str>, repairs: &mut Vec<String>) -> String {
    use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
    let text: Cow<'_, str> = if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        enc.decode_without_bom_handling(&bytes[bom..]).0
    } else {
        let declared = charset
            .and_then(|c| Encoding::for_label(c.as_bytes()))
            .or_else(|| xml_declared_encoding(bytes).and_then(|c| Encoding::for_label(c.as_bytes())));
        let utf8 = std::str::from_utf8(bytes).ok();
        match (declared, utf8) {
            (Some(enc), Some(s)) if enc != UTF_8 && enc.is_single_byte() && !s.is_ascii() => {
                repairs.push(format!("declared {} but is UTF-8", enc.name()));
                Cow::Borrowed(s)
            }
            (Some(enc), _) if enc != UTF_8 => {
                let (text, _, had_errors) = enc.decode(bytes);
                if had_errors {
                    repairs.push(format!("invalid {} bytes replaced", enc.name()));
                }
                text
            }
            (_, Some(s)) => Cow::Borrowed(s),
            (_, None) => {
                repairs.push("not valid UTF-8: read as Windows-1252".into());
                WINDOWS_1252.decode_without_bom_handling(bytes).0
            }
        }
    };
    declare_utf8(&text)
}

fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(512)];
    let head = String::from_utf8_lossy(head);
    let decl_end = head.find("?>")?;
    let decl = &head[..decl_end];
    let at = decl.find("encoding")? + "encoding".len();
    let rest = decl[at..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_string())
}

/// The text, from its first markup on, with its XML declaration (if any) saying UTF-8.
fn declare_utf8(text: &str) -> String {
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if let Some(rest) = trimmed.strip_prefix("<?xml")
        && let Some(end) = rest.find("?>")
        && let Some(at) = rest[..end].find("encoding")
    {
        let decl = &rest[..end];
        let mut out = String::with_capacity(text.len());
        out.push_str("<?xml");
        out.push_str(&decl[..at]);
        out.push_str("encoding=\"UTF-8\"");
        let after = &decl[at + "encoding".len()..];
        let after = after.trim_start().strip_prefix('=').unwrap_or(after).trim_start();
        let quote = after.chars().next().unwrap_or('"');
        let after = after.get(1..).unwrap_or("");
        out.push_str(after.find(quote).map_or("", |q| &after[q + 1..]));
        out.push_str(&rest[end..]);
        return out;
    }
    trimmed.to_string()
}

/// Control characters a feed should not carry (C0 and C1 but tab, CR and LF). XML forbids
/// the C0 ones, and feed-rs would keep them in titles.
pub(super) fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// Repairs what feedparser's lenient reading forgives: bare `&`, HTML-only entities, control
/// characters (inside CDATA sections too), anything after the root element, and an `rss` root
/// whose version feed-rs does not know. CDATA sections and comments are otherwise left alone.
/// Returns the text and what was done.
pub(super) fn repair_xml(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut bare_amps = 0usize;
    let mut html_entities = 0usize;
    let mut controls = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").map_or(after.len(), |i| i + 3);
            out.push_str("<![CDATA[");
            for c in after[..end].chars() {
                if is_forbidden_control(c) {
                    controls += 1;
                } else {
                    out.push(c);
                }
            }
            rest = &after[end..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").map_or(after.len(), |i| i + 3);
            out.push_str("<!--");
            out.push_str(&after[..end]);
            rest = &after[end..];
            continue;
        }
        let mut chars = rest.chars();
        let Some(c) = chars.next() else { break };
        if c == '&' {
            match entity_at(rest) {
                Entity::Xml(len) => {
                    out.push_str(&rest[..len]);
                    rest = &rest[len..];
                }
                Entity::Html(len, decoded) => {
                    for ch in decoded.chars() {
                        out.push_str(&format!("&#{};", u32::from(ch)));
                    }
                    html_entities += 1;
                    rest = &rest[len..];
                }
                Entity::Bare => {
                    out.push_str("&amp;");
                    bare_amps += 1;
                    rest = &rest[1..];
                }
            }
            continue;
        }
        if is_forbidden_control(c) {
            controls += 1;
        } else {
            out.push(c);
        }
        rest = chars.as_str();
    }
    let mut fixes = Vec::new();
    if bare_amps > 0 {
        fixes.push(format!("{bare_amps} bare '&' escaped"));
    }
    if html_entities > 0 {
        fixes.push(format!("{html_entities} HTML entities turned into character references"));
    }
    if controls > 0 {
        fixes.push(format!("{controls} control characters removed"));
    }
    if let Some(end) = root_end(&out)
        && !out[end..].trim().is_empty()
    {
        out.truncate(end);
        fixes.push("junk after the root element dropped".into());
    }
    if let Some((fixed, fix)) = rss_version(&out) {
        out = fixed;
        fixes.push(fix);
    }
    (out, fixes)
}

enum Entity {
    /// A reference XML knows, `len` bytes long.
    Xml(usize),
    /// An HTML named entity XML does not know, and what it stands for.
    Html(usize, String),
    /// An `&` that starts no reference.
    Bare,
}

fn entity_at(s: &str) -> Entity {
    let body = &s[1..];
    let end =
        body.char_indices().take(40).find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '#')).map(|(i, _)| i);
    let Some(end) = end.filter(|&i| body[i..].starts_with(';') && i > 0) else { return Entity::Bare };
    let name = &body[..end];
    let len = end + 2;
    if let Some(num) = name.strip_prefix('#') {
        let ok = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        }
        .and_then(char::from_u32)
        .is_some_and(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
        return if ok { Entity::Xml(len) } else { Entity::Bare };
    }
    if matches!(name, "amp" | "lt" | "gt" | "quot" | "apos") {
        return Entity::Xml(len);
    }
    let reference = &s[..len];
    let decoded = html_escape::decode_html_entities(reference);
    if decoded != reference { Entity::Html(len, decoded.into_owned()) } else { Entity::Bare }
}

/// The root element's start tag: its byte range and its name.
fn root_tag(text: &str) -> Option<(usize, usize, &str)> {
    // The root is the first element that is not a declaration, instruction or comment.
    let mut pos = 0;
    loop {
        let lt = pos + text[pos..].find('<')?;
        let after = &text[lt + 1..];
        if after.starts_with('?') || after.starts_with('!') {
            pos = lt + 1;
            continue;
        }
        let len = after.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let end = lt + 1 + after.find('>')? + 1;
        return Some((lt, end, &after[..len]));
    }
}

/// The byte just after the root element's end tag, if it can be found.
fn root_end(text: &str) -> Option<usize> {
    let (_, _, name) = root_tag(text)?;
    let close = format!("</{name}>");
    text.rfind(&close).map(|i| i + close.len())
}

/// An `rss` root whose `version` feed-rs does not take (it reads 2.0, 0.91 and 0.92 and calls
/// anything else "no root element"; feedparser reads them all) made to say 2.0.
fn rss_version(text: &str) -> Option<(String, String)> {
    let (start, end, name) = root_tag(text)?;
    if name != "rss" {
        return None;
    }
    let tag = &text[start..end];
    let version = attribute(tag, "version");
    if matches!(version, Some("2.0" | "0.91" | "0.92" | "")) {
        return None;
    }
    let fixed_tag = match version {
        Some(v) => tag.replacen(&format!("version=\"{v}\""), "version=\"2.0\"", 1).replacen(
            &format!("version='{v}'"),
            "version=\"2.0\"",
            1,
        ),
        None => tag.replacen("<rss", "<rss version=\"2.0\"", 1),
    };
    let what = match version {
        Some(v) => format!("rss version {v:?} read as 2.0"),
        None => "rss without a version read as 2.0".to_string(),
    };
    Some((format!("{}{}{}", &text[..start], fixed_tag, &text[end..]), what))
}

/// The value of attribute `name` in a start tag, as written.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let mut search = 0;
    while let Some(i) = tag[search..].find(name) {
        let at = search + i;
        search = at + name.len();
        if !tag[..at].ends_with(char::is_whitespace) {
            continue;
        }
        let rest = tag[at + name.len()..].trim_start().strip_prefix('=')?.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value = &rest[1..];
        return Some(&value[..value.find(quote)?]);
    }
    None
}

/// feed-rs (3.0) reads a person (`author`, `managingEditor`, `itunes:owner`, ...) by finding an
/// e-mail address in it and slicing one byte before and after the address, which panics when
/// that character is not ASCII (`“ann@example.com”`, `©ann@example.com`): a hostile or merely
/// typographic feed would stop the step that reads it. A space is put between an address and
/// such a character, everywhere in the document, before feed-rs reads it. `None` when no address
/// needs one.
pub(super) fn space_emails(text: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let local = |b: u8| b.is_ascii_alphanumeric() || b"._%+-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b".-".contains(&b);
    let mut spaces = Vec::new();
    for (at, _) in text.match_indices('@') {
        let mut start = at;
        while start > 0 && local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && domain(bytes[end]) {
            end += 1;
        }
        if start == at || end == at + 1 {
            continue;
        }
        if text[..start].ends_with("mailto:") {
            start -= "mailto:".len();
        }
        if start > 0 && !bytes[start - 1].is_ascii() {
            spaces.push(start);
        }
        if end < bytes.len() && !bytes[end].is_ascii() {
            spaces.push(end);
        }
    }
    if spaces.is_empty() {
        return None;
    }
    spaces.sort_unstable();
    spaces.dedup();
    let mut out = String::with_capacity(text.len() + spaces.len());
    let mut from = 0;
    for &at in &spaces {
        out.push_str(&text[from..at]);
        out.push(' ');
        from = at;
    }
    out.push_str(&text[from..]);
    Some((
        out,
        format!("{} e-mail address(es) set apart from the non-ASCII characters beside them", spaces.len()),
    ))
}

/// The Atom 0.3 namespace, which feed-rs does not know: it reads such a feed as empty.
const ATOM_03: &str = "http://purl.org/atom/ns#";
const ATOM_10: &str = "http://www.w3.org/2005/Atom";

/// An Atom 0.3 feed rewritten as Atom 1.0: its namespace, and the three elements 1.0 renamed
/// (`tagline`, `issued`, `modified`). Done before the strict read, since feed-rs does not
/// fail on such a feed but finds nothing in it.
pub(super) fn atom_03(text: &str) -> Option<(String, String)> {
    let (start, end, name) = root_tag(text)?;
    if !matches!(name, "feed" | "entry") || !text[start..end].contains(ATOM_03) {
        return None;
    }
    let mut out = text.replace(ATOM_03, ATOM_10);
    for (old, new) in [("tagline", "subtitle"), ("issued", "published"), ("modified", "updated")] {
        for (from, to) in [("<", "<"), ("</", "</")] {
            for end in ['>', ' ', '/'] {
                out = out.replace(&format!("{from}{old}{end}"), &format!("{to}{new}{end}"));
            }
        }
    }
    Some((out, "Atom 0.3 read as Atom 1.0".to_string()))
}

/// A document cut short (its root never closed) kept up to the end of its last complete item
/// or entry, with the elements still open there closed. `None` when the document is not cut
/// short or holds no complete item: a feed with its items missing is not a repair.
pub(super) fn close_truncated(text: &str) -> Option<(String, String)> {
    let (_, _, root) = root_tag(text)?;
    if text.contains(&format!("</{root}>")) {
        return None;
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = false;
    let mut open: Vec<String> = Vec::new();
    // Where the last complete item ended, the elements open there, and how many items ended.
    let mut cut: Option<(usize, Vec<String>)> = None;
    let mut items = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => open.push(String::from_utf8_lossy(e.name().as_ref()).into_owned()),
            Ok(Event::End(e)) => {
                open.pop();
                if matches!(e.local_name().as_ref(), b"item" | b"entry") {
                    items += 1;
                    let at = usize::try_from(reader.buffer_position()).ok()?;
                    cut = Some((at, open.clone()));
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let (at, still_open) = cut?;
    let mut out = String::with_capacity(at + 64);
    out.push_str(text.get(..at)?);
    for name in still_open.iter().rev() {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
    Some((out, format!("cut short: the {items} complete items kept")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_beside_non_ascii_characters_get_a_space_and_others_are_left_alone() {
        let (fixed, what) = space_emails("<author>“ann@example.com” Ann</author>").unwrap();
        assert_eq!(fixed, "<author>“ ann@example.com ” Ann</author>");
        assert!(what.starts_with("2 e-mail"), "{what}");
        let (fixed, _) = space_emails("©mailto:bob@example.org").unwrap();
        assert_eq!(fixed, "© mailto:bob@example.org");
        assert_eq!(space_emails("<author>ann@example.com (Ann)</author> café @ noon, x@y"), None);
    }

    #[test]
    fn a_cut_feed_is_closed_after_its_last_complete_item() {
        let text = "<rss version=\"2.0\"><channel><title>T</title><item><title>A</title></item>\
                    <item><title>B</title></item><item><title>C is cut";
        let (fixed, what) = close_truncated(text).unwrap();
        assert_eq!(
            fixed,
            "<rss version=\"2.0\"><channel><title>T</title><item><title>A</title></item>\
             <item><title>B</title></item></channel></rss>"
        );
        assert_eq!(what, "cut short: the 2 complete items kept");
        // Nothing to keep, or nothing cut: no repair.
        assert_eq!(close_truncated("<rss><channel><title>T</title><item><title>A"), None);
        assert_eq!(close_truncated("<rss><channel><item></item></channel></rss>"), None);
    }

    #[test]
    fn rss_versions_feed_rs_refuses_are_made_2_0() {
        let (fixed, what) =
            rss_version("<?xml version=\"1.0\"?><rss version='2.01'><channel/></rss>").unwrap();
        assert_eq!(fixed, "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel/></rss>");
        assert!(what.contains("2.01"), "{what}");
        assert_eq!(rss_version("<rss><channel/></rss>").unwrap().0, "<rss version=\"2.0\"><channel/></rss>");
        assert_eq!(rss_version("<rss version=\"0.91\"><channel/></rss>"), None);
        assert_eq!(rss_version("<feed><title/></feed>"), None);
    }

    #[test]
    fn a_declared_encoding_becomes_utf_8_once_decoded() {
        let mut repairs = Vec::new();
        let latin = b"<?xml version=\"1.0\" encoding='ISO-8859-1' standalone=\"yes\"?><rss>caf\xe9</rss>";
        assert_eq!(
            decode_xml(latin, None, &mut repairs),
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><rss>café</rss>"
        );
        assert!(repairs.is_empty(), "{repairs:?}");
    }
}
