//! Feeds: RSS 0.9x/1.0/2.0, Atom and JSON Feed read into posts, with links resolved against the
//! feed's address, stable ids for items that have none, entities decoded, and broken feeds
//! repaired where Python's feedparser recovers (bare `&`, HTML entities, junk after the root,
//! a wrong declared encoding) and refused with a named error where it cannot.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use lector_core::{ErrorKind, StepError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::document::{Document, html_text};

mod json;
mod xml;

/// A feed and its posts, in the order the feed lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    /// `rss0`, `rss1`, `rss2`, `atom` or `json`.
    pub format: String,
    pub title: Option<String>,
    /// The site the feed belongs to.
    pub link: Option<Url>,
    pub description: Option<String>,
    pub language: Option<String>,
    pub posts: Vec<Post>,
    /// What had to be repaired for the feed to read (empty for a well-formed feed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<String>,
}

/// One post of a feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The feed's own id (guid, Atom id), else the post's address, else a hash of its title,
    /// date and text: the same post gets the same id on every read.
    pub id: String,
    pub title: Option<String>,
    /// The post's page, absolute.
    pub url: Option<Url>,
    pub published: Option<DateTime<Utc>>,
    pub author: Option<String>,
    /// Words of the full text when the feed carries it, else of the summary.
    pub words: usize,
    /// Whether the feed carries the whole post, so the page need not be fetched.
    pub full_text: bool,
    /// The post's HTML as the feed carries it, when `full_text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_html: Option<String>,
    /// The summary as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Post {
    /// The post's content as a document, when the feed carries the whole post.
    pub fn document(&self) -> Option<Document> {
        self.content_html.as_deref().filter(|_| self.full_text).map(Document::from_html)
    }
}

/// Why a feed cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The document is not a feed at all (an HTML page, an image, empty).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The feed is broken beyond what can be repaired safely (truncated, unbalanced).
    #[error("malformed feed: {0}")]
    Malformed(String),
}

impl FeedError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }
}

impl From<FeedError> for StepError {
    fn from(e: FeedError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

/// Fetches a feed with the guards of `fetcher` and reads it; links resolve against the
/// address it was finally fetched from.
pub async fn fetch_feed(fetcher: &crate::fetch::Fetcher, url: &str) -> Result<Feed, StepError> {
    let got = fetcher.fetch(url, crate::fetch::Resource::Feed).await?;
    Ok(parse_feed(&got.body, Some(&got.url), got.charset.as_deref())?)
}

/// Reads a feed. `base` is the feed's own address (relative links resolve against it);
/// `charset` is what the server declared, if anything.
///
/// XML is read strictly first; when that fails, the repairs feedparser's lenient reading
/// amounts to are made and the feed read once more, and what was repaired is listed in
/// [`Feed::repairs`]. Entities a DOCTYPE declares are never expanded.
pub fn parse_feed(bytes: &[u8], base: Option<&Url>, charset: Option<&str>) -> Result<Feed, FeedError> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if start == bytes.len() {
        return Err(FeedError::NotAFeed("the document is empty".into()));
    }
    let mut repairs = Vec::new();
    if bytes[start] == b'{' {
        let text = String::from_utf8_lossy(&bytes[start..]);
        let parts = json::read(&text).map_err(FeedError::Malformed)?;
        return Ok(feed_from_parts(parts, base, repairs));
    }
    let text = decode_xml(bytes, charset, &mut repairs);
    let first = match xml::read(&text, base) {
        Ok(parts) => return Ok(feed_from_parts(parts, base, repairs)),
        Err(e) => e.0,
    };
    let (fixed, fixes) = repair_xml(&text);
    if fixes.is_empty() {
        return Err(classify_failure(&text, first));
    }
    match xml::read(&fixed, base) {
        Ok(parts) => {
            tracing::debug!(?fixes, "feed repaired");
            repairs.extend(fixes);
            Ok(feed_from_parts(parts, base, repairs))
        }
        Err(_) => Err(classify_failure(&text, first)),
    }
}

fn classify_failure(text: &str, error: String) -> FeedError {
    let head: String = text.trim_start().chars().take(512).collect::<String>().to_ascii_lowercase();
    if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<head")
        || head.contains("<body")
    {
        FeedError::NotAFeed("the document is an HTML page, not a feed".into())
    } else if error.contains("no root element") {
        FeedError::NotAFeed("no RSS, Atom or JSON feed root element".into())
    } else {
        FeedError::Malformed(error)
    }
}

/// A feed date. RFC 3339 and RFC 2822 (with the obsolete zone names, `PST`, `GMT`) are tried
/// as they are, which is nearly every date, before the lenient forms: a missing or long
/// weekday, `Z`/`UTC` for the zone, a missing time or zone. feed-rs's own lenient parser
/// rewrites each date with a dozen regular expressions first, which was a third of the time
/// spent on a podcast feed.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime};
    let s = raw.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.with_timezone(&Utc));
    }
    // Drop a weekday ("Tue, ", "Tuesday, "), whatever its language.
    let s = match s.split_once(", ") {
        Some((day, rest)) if day.chars().all(char::is_alphabetic) => rest,
        _ => s,
    };
    let mut s = s.to_string();
    for (from, to) in [(" Z", " +0000"), (" UTC", " +0000"), (" UT", " +0000"), (" GMT", " +0000")] {
        if s.ends_with(from) {
            s.truncate(s.len() - from.len());
            s.push_str(to);
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc2822(&s) {
        return Some(d.with_timezone(&Utc));
    }
    const ZONED: &[&str] = &[
        "%d %b %Y %H:%M:%S %z",
        "%d %B %Y %H:%M:%S %z",
        "%d %b %Y %H:%M %z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S %z",
    ];
    for f in ZONED {
        if let Ok(d) = DateTime::parse_from_str(&s, f) {
            return Some(d.with_timezone(&Utc));
        }
    }
    const NAIVE: &[&str] =
        &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d %b %Y %H:%M:%S"];
    for f in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(&s, f) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// Decodes an XML feed to UTF-8 text, borrowing the bytes when they are UTF-8 already. The
/// order is feedparser's: a byte-order mark, the declared encoding (HTTP, then the XML
/// declaration), then UTF-8, then Windows-1252. A single-byte declaration on a body that is
/// valid multi-byte UTF-8 is taken as wrong: such bytes are all but never real Latin-1 text.
/// The XML declaration is left as it is: the reader takes its input as UTF-8 whatever it says.
fn decode_xml<'b>(bytes: &'b [u8], charset: Option<&str>, repairs: &mut Vec<String>) -> Cow<'b, str> {
    use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
    if let Some((enc, bom)) = Encoding::for_bom(bytes) {
        return enc.decode_without_bom_handling(&bytes[bom..]).0;
    }
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

/// Repairs what feedparser's lenient reading forgives: bare `&`, HTML-only entities, control
/// characters (inside CDATA sections too, where XML forbids them as well), and anything after
/// the root element. CDATA sections and comments are otherwise left alone. Returns the text
/// and what was done.
fn repair_xml(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len() + 64);
    let mut bare_amps = 0usize;
    let mut html_entities = 0usize;
    let mut controls = 0usize;
    let mut rest = text;
    while !rest.is_empty() {
        // Copy CDATA sections and comments verbatim.
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
    (out, fixes)
}

/// Control characters a feed should not carry (C0 and C1 but tab, CR and LF).
fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
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

/// The byte just after the root element's end tag, if it can be found.
fn root_end(text: &str) -> Option<usize> {
    // The root is the first element that is not a declaration, instruction or comment.
    let mut pos = 0;
    let name = loop {
        let lt = pos + text[pos..].find('<')?;
        let after = &text[lt + 1..];
        if after.starts_with('?') || after.starts_with('!') {
            pos = lt + 1;
            continue;
        }
        let len = after.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        break &after[..len];
    };
    let close = format!("</{name}>");
    text.rfind(&close).map(|i| i + close.len())
}

/// What a feed reader found in a feed, before it becomes a [`Feed`]: the raw fields, borrowed
/// from the document where possible. Public only so tests can build it from another reader.
#[doc(hidden)]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FeedParts<'a> {
    pub format: &'static str,
    pub title: Option<Cow<'a, str>>,
    pub links: Vec<LinkPart<'a>>,
    pub description: Option<Cow<'a, str>>,
    pub language: Option<String>,
    pub entries: Vec<EntryParts<'a>>,
}

/// A link as written, with the `xml:base` in force where it was written, if any.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq)]
pub struct LinkPart<'a> {
    pub href: Cow<'a, str>,
    /// `None` for RSS links; Atom links without `rel` are `alternate`.
    pub rel: Option<Cow<'a, str>>,
    pub base: Option<Url>,
}

/// One item or entry as found. Comment links are not links of the post.
#[doc(hidden)]
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EntryParts<'a> {
    pub id: Option<Cow<'a, str>>,
    pub title: Option<Cow<'a, str>>,
    pub links: Vec<LinkPart<'a>>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Author names, in order.
    pub authors: Vec<Cow<'a, str>>,
    /// The post's HTML when the feed carries it.
    pub content: Option<Cow<'a, str>>,
    pub summary: Option<Cow<'a, str>>,
}

/// Turns what a reader found into a feed: text fields to plain text, links resolved, ids made
/// stable, words counted and teasers told from full posts.
#[doc(hidden)]
pub fn feed_from_parts(parts: FeedParts<'_>, base: Option<&Url>, repairs: Vec<String>) -> Feed {
    let link = pick_link(&parts.links, base);
    let posts = parts.entries.iter().map(|e| post_from_parts(e, base)).collect();
    Feed {
        format: parts.format.to_string(),
        title: parts.title.as_deref().map(html_text).filter(|t| !t.is_empty()),
        link,
        description: parts.description.as_deref().map(html_text).filter(|t| !t.is_empty()),
        language: parts.language,
        posts,
        repairs,
    }
}

/// The post's or site's page: the first link with no `rel` or `alternate`, else the first
/// that is not the feed itself, an enclosure, replies or a hub.
fn pick_link(links: &[LinkPart<'_>], base: Option<&Url>) -> Option<Url> {
    let preferred = links.iter().find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate")).or_else(|| {
        links.iter().find(|l| !matches!(l.rel.as_deref(), Some("self" | "enclosure" | "replies" | "hub")))
    });
    preferred.and_then(|l| absolute(&l.href, l.base.as_ref().or(base)))
}

fn absolute(href: &str, base: Option<&Url>) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    match Url::parse(href) {
        Ok(u) => Some(u),
        Err(url::ParseError::RelativeUrlWithoutBase) => base.and_then(|b| b.join(href).ok()),
        Err(_) => None,
    }
}

/// Text that ends like this is a teaser, not the whole post.
const TEASER_ENDINGS: &[&str] = &[
    "…",
    "...",
    "[…]",
    "[...]",
    "read more",
    "continue reading",
    "(more…)",
    "read the full article",
    "keep reading",
    "weiterlesen",
    "mehr lesen",
    "lire la suite",
    "leer más",
];

/// Below this many words, content that links to its own post is a teaser (a picture, a line
/// and a link), as many news feeds send.
const TEASER_MAX_WORDS: usize = 150;

fn is_teaser(text: &str, words: usize, html: &str, post_url: Option<&Url>) -> bool {
    let tail: String = text.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    let tail = tail.trim().to_lowercase();
    if TEASER_ENDINGS.iter().any(|t| tail.ends_with(t)) {
        return true;
    }
    let links_to_post = post_url.is_some_and(|u| {
        let bare = u.as_str().split(['?', '#']).next().unwrap_or(u.as_str());
        html.contains(bare)
    });
    words < TEASER_MAX_WORDS && links_to_post
}

/// Words of a text `html_text` returned, whose only whitespace is single spaces: what
/// `count_words` counts, without testing every byte for the other kinds of whitespace.
fn words_in_collapsed(text: &str) -> usize {
    // One pass over the bytes; only a word with no ASCII letter or digit but some non-ASCII
    // character is decoded, to ask whether that character is a letter or digit.
    let is_word = |word: &str, alnum: bool, non_ascii: bool| {
        alnum || (non_ascii && word.chars().any(char::is_alphanumeric))
    };
    let (mut count, mut start, mut alnum, mut non_ascii) = (0, 0, false, false);
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if b == b' ' {
            count += usize::from(is_word(&text[start..i], alnum, non_ascii));
            (start, alnum, non_ascii) = (i + 1, false, false);
        } else {
            alnum |= b.is_ascii_alphanumeric();
            non_ascii |= b >= 0x80;
        }
    }
    count + usize::from(is_word(&text[start..], alnum, non_ascii))
}

fn post_from_parts(e: &EntryParts<'_>, base: Option<&Url>) -> Post {
    // Text fields are read as HTML whatever their declared type, since fields escaped twice
    // (`&amp;#x24;`, `&lt;sup&gt;`) reach here as `&#x24;` and `<sup>`.
    let title = e.title.as_deref().map(html_text).filter(|t| !t.is_empty());
    let url = pick_link(&e.links, base);
    let content_html = e.content.as_deref().filter(|b| !b.trim().is_empty());
    let summary_text = e.summary.as_deref().map(html_text).filter(|s| !s.is_empty());
    let content_text = content_html.map(html_text);
    let content_words = content_text.as_deref().map_or(0, words_in_collapsed);
    let full_text = match (&content_text, content_html) {
        (Some(text), Some(html)) => content_words > 0 && !is_teaser(text, content_words, html, url.as_ref()),
        _ => false,
    };
    let words =
        if content_words > 0 { content_words } else { summary_text.as_deref().map_or(0, words_in_collapsed) };
    let published = e.published.or(e.updated);
    let id = match e.id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => id.to_string(),
        None => match &url {
            Some(u) => u.to_string(),
            None => {
                let mut h = Sha256::new();
                for part in [
                    title.as_deref().unwrap_or(""),
                    &published.map(|d| d.to_rfc3339()).unwrap_or_default(),
                    content_html.unwrap_or(""),
                    summary_text.as_deref().unwrap_or(""),
                ] {
                    h.update(part.as_bytes());
                    h.update([0]);
                }
                format!("sha256:{}", hex::encode(&h.finalize()[..16]))
            }
        },
    };
    let author = e.authors.iter().map(|n| n.trim()).find(|n| !n.is_empty()).map(html_text);
    Post {
        id,
        title,
        url,
        published,
        author,
        words,
        full_text,
        content_html: if full_text { content_html.map(str::to_string) } else { None },
        summary: summary_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::count_words;

    fn rss(items: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title><link>https://blog.test/</link>{items}</channel></rss>"
        )
    }

    fn base() -> Url {
        Url::parse("https://blog.test/feed.xml").unwrap()
    }

    #[test]
    fn relative_links_resolve_and_ids_are_stable_without_guid_or_link() {
        let xml = rss(
            "<item><title>A</title><link>/posts/a</link></item><item><title>No link</title><description>d</description></item>",
        );
        let one = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        let two = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(one.posts[0].url.as_ref().unwrap().as_str(), "https://blog.test/posts/a");
        assert_eq!(one.posts[0].id, "https://blog.test/posts/a");
        assert!(one.posts[1].id.starts_with("sha256:"));
        assert_eq!(one.posts[1].id, two.posts[1].id);
        assert!(one.repairs.is_empty());
    }

    #[test]
    fn content_encoded_is_full_text_and_a_teaser_is_not() {
        let xml = rss(
            "<item xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><title>Full</title><link>https://blog.test/1</link>\
             <content:encoded><![CDATA[<h2>Head</h2><p>All of the words are here.</p>]]></content:encoded></item>\
             <item xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><title>Teaser</title><link>https://blog.test/2</link>\
             <content:encoded><![CDATA[<p>Only the start of it [&#8230;]</p>]]></content:encoded></item>",
        );
        let feed = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        assert!(feed.posts[0].full_text);
        assert_eq!(feed.posts[0].words, 7);
        assert_eq!(feed.posts[0].document().unwrap().blocks.len(), 2);
        assert!(!feed.posts[1].full_text);
        assert!(feed.posts[1].content_html.is_none());
        // A picture, a line and a link back to the post is a teaser too.
        let xml = rss("<item xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><title>News</title>\
             <link>https://blog.test/n?src=rss</link><content:encoded><![CDATA[<a href=\"https://blog.test/n\">\
             <img src=\"x.jpg\"></a><p>Something happened today.</p>]]></content:encoded></item>");
        assert!(!parse_feed(xml.as_bytes(), Some(&base()), None).unwrap().posts[0].full_text);
    }

    #[test]
    fn bare_ampersands_html_entities_and_trailing_junk_are_repaired() {
        let xml = rss(
            "<item><title>Fish &amp; chips & peas&nbsp;&eacute;t&#233;</title><link>https://blog.test/f?a=1&b=2</link></item>",
        ) + "\n<p>trailing junk</p>";
        let feed = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(feed.posts[0].title.as_deref(), Some("Fish & chips & peas été"));
        assert_eq!(feed.posts[0].url.as_ref().unwrap().as_str(), "https://blog.test/f?a=1&b=2");
        assert!(!feed.repairs.is_empty());
    }

    #[test]
    fn a_wrong_declared_encoding_is_overruled() {
        let xml = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_string()
            + &rss("<item><title>Café crème</title><link>https://blog.test/c</link></item>")[21..];
        let feed = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(feed.posts[0].title.as_deref(), Some("Café crème"));
        // And real Latin-1 declared as such reads right.
        let mut latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><rss version=\"2.0\"><channel><title>T</title><item><title>Caf".to_vec();
        latin.push(0xE9);
        latin.extend(b"</title></item></channel></rss>");
        assert_eq!(parse_feed(&latin, None, None).unwrap().posts[0].title.as_deref(), Some("Café"));
        // Windows-1252 bytes in a feed that says nothing are read as such.
        let mut cp = b"<rss version=\"2.0\"><channel><title>T</title><item><title>it".to_vec();
        cp.push(0x92);
        cp.extend(b"s</title></item></channel></rss>");
        assert_eq!(parse_feed(&cp, None, None).unwrap().posts[0].title.as_deref(), Some("it\u{2019}s"));
    }

    #[test]
    fn pages_truncated_feeds_and_empty_input_are_named_errors() {
        assert!(matches!(
            parse_feed(b"<!DOCTYPE html><html><body>hi</body></html>", None, None),
            Err(FeedError::NotAFeed(_))
        ));
        let truncated = rss("<item><title>A</title>");
        let cut = &truncated[..truncated.len() - 30];
        assert!(matches!(parse_feed(cut.as_bytes(), None, None), Err(FeedError::Malformed(_))));
        assert!(matches!(parse_feed(b"  \n", None, None), Err(FeedError::NotAFeed(_))));
        assert!(matches!(parse_feed(b"{\"version\": 1", None, None), Err(FeedError::Malformed(_))));
    }

    #[test]
    fn billion_laughs_is_not_expanded() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<rss version="2.0"><channel><title>&lol9;</title><item><title>&lol9;</title></item></channel></rss>"#;
        let started = std::time::Instant::now();
        if let Ok(feed) = parse_feed(xml.as_bytes(), None, None) {
            assert!(feed.posts.iter().all(|p| p.title.as_deref().map_or(0, str::len) < 100));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn an_external_entity_is_never_resolved() {
        let xml = r#"<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>T</title><item><title>Leak: &xxe;</title></item></channel></rss>"#;
        let feed = parse_feed(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.posts[0].title.as_deref(), Some("Leak: &xxe;"));
    }

    #[test]
    fn dates_read_strict_and_lenient_forms() {
        let want = "2019-10-01T22:30:00+00:00";
        for raw in [
            "Tue, 01 Oct 2019 14:30:00 PST",
            "Tuesday, 01 Oct 2019 22:30:00 GMT",
            "01 Oct 2019 22:30:00 Z",
            "2019-10-01T22:30:00Z",
            "2019-10-01T15:30:00-07:00",
            "2019-10-01 22:30:00 +0000",
            "2019-10-01T22:30:00",
        ] {
            assert_eq!(parse_date(raw).map(|d| d.to_rfc3339()).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(
            parse_date("2019-10-01").map(|d| d.to_rfc3339()).as_deref(),
            Some("2019-10-01T00:00:00+00:00")
        );
        assert_eq!(parse_date("last Tuesday"), None);
    }

    /// Runs `f` on a thread with a small stack: a reader that recursed per element would
    /// overflow it long before 10,000 levels.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap()
    }

    #[test]
    fn ten_thousand_nested_elements_are_a_named_error_not_a_stack_overflow() {
        let deep = |open: &str, close: &str| format!("{}x{}", open.repeat(10_000), close.repeat(10_000));
        let docs = [
            // Inside a field that is read, in Atom markup that is written out, and where
            // nothing is read at all.
            rss(&format!("<item><title>A</title><description>{}</description></item>", deep("<b>", "</b>"))),
            format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><content type=\"xhtml\">{}</content></entry></feed>",
                deep("<div>", "</div>")
            ),
            rss(&deep("<x>", "</x>")),
        ];
        for doc in docs {
            let got = on_small_stack(move || parse_feed(doc.as_bytes(), None, None));
            assert!(
                matches!(&got, Err(FeedError::Malformed(why)) if why.contains("nested deeper")),
                "{got:?}"
            );
        }
        // Nesting a little under the limit still reads.
        let fine = rss(&format!("<item><title>A</title><description>{}</description></item>", {
            let n = xml::MAX_DEPTH - 10;
            format!("{}x{}", "<b>".repeat(n), "</b>".repeat(n))
        }));
        let feed = on_small_stack(move || parse_feed(fine.as_bytes(), None, None)).unwrap();
        assert_eq!(feed.posts[0].title.as_deref(), Some("A"));
    }

    #[test]
    fn an_unclosed_cdata_section_is_malformed() {
        let xml = rss("<item><title><![CDATA[never closed</title></item>");
        assert!(matches!(parse_feed(xml.as_bytes(), None, None), Err(FeedError::Malformed(_))));
    }

    #[test]
    fn nul_and_other_control_bytes_are_removed_and_reported() {
        let xml =
            rss("<item><title>A\u{0}B\u{1b}C</title><description><![CDATA[x\u{0}y]]></description></item>");
        let feed = parse_feed(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.posts[0].title.as_deref(), Some("ABC"));
        assert_eq!(feed.posts[0].summary.as_deref(), Some("xy"));
        assert!(
            feed.repairs.iter().any(|r| r.contains("3 control characters removed")),
            "{:?}",
            feed.repairs
        );
    }

    #[test]
    fn a_ten_megabyte_title_is_read_whole_in_one_pass() {
        let title = "word ".repeat(2 * 1024 * 1024);
        let xml = rss(&format!("<item><title>{title}</title><link>https://blog.test/big</link></item>"));
        let feed = parse_feed(xml.as_bytes(), None, None).unwrap();
        assert_eq!(feed.posts[0].title.as_deref().map(str::len), Some(title.trim_end().len()));
        assert_eq!(feed.posts[0].url.as_ref().map(Url::as_str), Some("https://blog.test/big"));
    }

    #[test]
    fn atom_0_3_a_lone_entry_and_an_rss_root_without_version_read() {
        let atom03 = r#"<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Old</title>
            <tagline>Still here</tagline><link rel="alternate" type="text/html" href="https://old.test/"/>
            <entry><title>E</title><link rel="alternate" href="https://old.test/e"/><id>e1</id>
            <issued>2004-01-02T03:04:05Z</issued><modified>2004-01-03T00:00:00Z</modified></entry></feed>"#;
        let feed = parse_feed(atom03.as_bytes(), None, None).unwrap();
        assert_eq!((feed.format.as_str(), feed.title.as_deref()), ("atom", Some("Old")));
        assert_eq!(feed.description.as_deref(), Some("Still here"));
        assert_eq!(feed.posts[0].id, "e1");
        assert_eq!(
            feed.posts[0].published.map(|d| d.to_rfc3339()).as_deref(),
            Some("2004-01-02T03:04:05+00:00")
        );

        let entry =
            r#"<entry xmlns="http://www.w3.org/2005/Atom"><title>Alone</title><link href="/a"/></entry>"#;
        let feed = parse_feed(entry.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(feed.posts[0].url.as_ref().map(Url::as_str), Some("https://blog.test/a"));

        let bare = "<rss><channel><title>T</title><item><title>I</title></item></channel></rss>";
        assert_eq!(parse_feed(bare.as_bytes(), None, None).unwrap().posts[0].title.as_deref(), Some("I"));
    }

    #[test]
    fn namespaces_are_told_by_uri_not_prefix() {
        // `content:` bound to another URI is not content; `x:` bound to the content URI is.
        let xml = rss("<item xmlns:content=\"http://example.test/not-content\" \
             xmlns:x=\"http://purl.org/rss/1.0/modules/content/\"><title>N</title>\
             <content:encoded>not this</content:encoded><x:encoded>but this one</x:encoded></item>");
        let feed = parse_feed(xml.as_bytes(), None, None).unwrap();
        assert!(feed.posts[0].full_text);
        assert_eq!(feed.posts[0].content_html.as_deref(), Some("but this one"));
    }

    #[test]
    fn words_of_collapsed_text_are_counted_as_count_words_counts_them() {
        for html in [
            "",
            "  ",
            "<p>One two</p><p>three — 4 ...</p>",
            "a\u{a0}b\u{2003}c\u{3000}d\te\r\nf",
            "<h2>Ünïcödé</h2> wörds \u{85} here &amp; &nbsp; there - -- !",
        ] {
            let text = html_text(html);
            assert_eq!(words_in_collapsed(&text), count_words(&text), "{html:?}");
        }
    }

    #[test]
    fn json_feed_reads() {
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","home_page_url":"https://j.test/",
          "items":[{"id":"1","url":"/p/1","title":"One","content_html":"<p>Hello there world</p>"}]}"#;
        let feed = parse_feed(json.as_bytes(), Some(&Url::parse("https://j.test/feed.json").unwrap()), None)
            .unwrap();
        assert_eq!(feed.format, "json");
        assert_eq!(feed.posts[0].id, "1");
        assert_eq!(feed.posts[0].url.as_ref().unwrap().as_str(), "https://j.test/p/1");
        assert!(feed.posts[0].full_text);
        assert_eq!(feed.posts[0].words, 3);
    }
}
