//! Feeds: RSS 0.9x/1.0/2.0, Atom and JSON Feed read with feed-rs into posts, with links
//! resolved against the feed's address, a stable key and a content hash for every post (so a
//! subscription knows a post again across polls, and knows when it was edited), what polling
//! needs from the feed (its `ttl`, syndication period, hub and own address), and broken feeds
//! repaired where Python's feedparser recovers (bare `&`, HTML entities, junk after the root, a
//! wrong declared encoding, a file cut short) and refused with a named error where it cannot.
//!
//! feed-rs does the reading; around it are thin layers: [`repair`]'s text-to-text pre-passes,
//! tried only when the strict read fails, [`extras`]' shallow pass for the few fields feed-rs
//! does not read, and the conversion below, which turns its model into Lector's.

use std::time::Duration;

use chrono::{DateTime, Utc};
use feed_rs::model::{self, Entry, FeedType};
use lector_core::schedule::{FailureKind, Hints};
use lector_core::{ErrorKind, StepError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::document::{Block, Document, html_text};
use crate::fetch::{Conditional, Fetcher, Resource, ResponseMeta, Validators};

mod extras;
mod repair;

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
    /// RSS `<ttl>`: minutes the feed may be cached before it is fetched again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<u32>,
    /// The syndication module's `sy:updatePeriod` divided by `sy:updateFrequency`, in seconds:
    /// how often the feed says it changes (`hourly` and `2` is 1800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_period_secs: Option<u64>,
    /// The WebSub hub the feed names (`atom:link rel="hub"`, in Atom or in RSS through the
    /// Atom namespace; a JSON Feed's first `hubs` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<Url>,
    /// The feed's own canonical address (`atom:link rel="self"`; a JSON Feed's `feed_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_url: Option<Url>,
    /// The feed's picture: RSS `<image>`, else `itunes:image`, Atom `logo`, JSON `icon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<FeedImage>,
    /// The feed's author (Atom `author`, `itunes:author`, JSON `authors`), as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The feed's categories (RSS `category`, `itunes:category`, Atom `category`), each once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// `itunes:explicit`, when the feed says either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit: Option<bool>,
    pub posts: Vec<Post>,
    /// What had to be repaired for the feed to read (empty for a well-formed feed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<String>,
}

impl Feed {
    /// RSS `<ttl>` as a duration.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_minutes.map(|m| Duration::from_secs(u64::from(m) * 60))
    }

    /// The syndication module's period as a duration.
    pub fn update_period(&self) -> Option<Duration> {
        self.update_period_secs.map(Duration::from_secs)
    }
}

/// A feed's picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedImage {
    pub url: Url,
    /// Pixels, when the feed says (RSS allows at most 144 × 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// One post of a feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Post {
    /// The post's stable key: the feed's own id (RSS `guid`, Atom `id`, JSON `id`), else the
    /// post's address, else a hash of its title and date. Never random and never the post's
    /// position, so the same post has the same key on every poll, however the feed is ordered
    /// or re-dated.
    pub id: String,
    pub title: Option<String>,
    /// The post's page, absolute.
    pub url: Option<Url>,
    /// When it was published (its update time when it gives no other).
    pub published: Option<DateTime<Utc>>,
    /// When it was last updated, when the feed says so and it differs from `published`: Atom
    /// `updated`, RSS `atom:updated`, JSON `date_modified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
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
    /// A hash of what would be narrated: the title and the full text when the feed carries
    /// it, else the title and the summary. It is taken over the readable blocks, so it changes
    /// when the words or their structure change and not when the markup is written anew
    /// (whitespace, attributes, entities): an edited post gets a new hash, an unchanged one
    /// keeps it.
    pub content_hash: String,
    /// The media the post carries (RSS `enclosure`, Atom `link rel="enclosure"`, JSON
    /// `attachments`, Media RSS), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enclosure: Option<Enclosure>,
}

impl Post {
    /// The post's content as a document, when the feed carries the whole post.
    pub fn document(&self) -> Option<Document> {
        self.content_html.as_deref().filter(|_| self.full_text).map(Document::from_html)
    }
}

/// A media file attached to a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    pub url: Url,
    /// The media type the feed declares (`audio/mpeg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Bytes, when the feed says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
}

/// Why a feed cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The document is not a feed at all (an HTML page, an image, empty).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The feed is broken beyond what can be repaired safely.
    #[error("malformed feed: {0}")]
    Malformed(String),
}

impl FeedError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidInput
    }

    /// What this means for a subscription's schedule: either way, a document that is not a
    /// readable feed (a site can serve an error page for a while).
    pub fn failure_kind(&self) -> FailureKind {
        FailureKind::NotAFeed
    }
}

impl From<FeedError> for StepError {
    fn from(e: FeedError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

/// Fetches a feed with the guards of `fetcher` and reads it; links resolve against the
/// address it was finally fetched from.
pub async fn fetch_feed(fetcher: &Fetcher, url: &str) -> Result<Feed, StepError> {
    let got = fetcher.fetch(url, Resource::Feed).await?;
    Ok(parse_feed(&got.body, Some(&got.url), got.charset.as_deref())?)
}

/// What a conditional poll of a feed found.
#[derive(Debug, Clone)]
pub enum Polled {
    /// 304: the feed has not changed since the validators; nothing was parsed.
    NotModified(ResponseMeta),
    /// The feed, read, with what the headers said.
    Feed(Box<Feed>, ResponseMeta),
}

impl Polled {
    pub fn meta(&self) -> &ResponseMeta {
        match self {
            Polled::NotModified(meta) | Polled::Feed(_, meta) => meta,
        }
    }
}

/// Polls a feed: a conditional GET with the validators of the last answer, and the body read
/// only when there is one. Errors are [`crate::fetch::FetchError`] or [`FeedError`] as
/// [`StepError`]s; use [`poll_feed_typed`] to keep them apart.
pub async fn poll_feed(fetcher: &Fetcher, url: &str, validators: &Validators) -> Result<Polled, StepError> {
    poll_feed_typed(fetcher, url, validators).await.map_err(|e| match e {
        PollError::Fetch(e) => StepError::from(e),
        PollError::Feed(e) => StepError::from(e),
    })
}

/// Why a poll failed: the fetch or the feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    Feed(#[from] FeedError),
}

impl PollError {
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            PollError::Fetch(e) => e.failure_kind(),
            PollError::Feed(e) => e.failure_kind(),
        }
    }
}

/// [`poll_feed`] with its errors kept typed, for a caller that schedules by them.
pub async fn poll_feed_typed(
    fetcher: &Fetcher,
    url: &str,
    validators: &Validators,
) -> Result<Polled, PollError> {
    match fetcher.fetch_conditional(url, Resource::Feed, validators).await? {
        Conditional::NotModified(meta) => Ok(Polled::NotModified(meta)),
        Conditional::Modified { fetched, meta } => {
            let feed = parse_feed(&fetched.body, Some(&fetched.url), fetched.charset.as_deref())?;
            Ok(Polled::Feed(Box::new(feed), meta))
        }
    }
}

/// The scheduling hints of a poll: the feed's `ttl` and syndication period (when a feed was
/// read), and the answer's `max-age`, `Expires` (on the local clock) and `Retry-After`, for
/// an answer received at `received`.
pub fn poll_hints(feed: Option<&Feed>, meta: &ResponseMeta, received: DateTime<Utc>) -> Hints {
    Hints {
        ttl: feed.and_then(Feed::ttl),
        syndication_period: feed.and_then(Feed::update_period),
        max_age: meta.max_age,
        expires: meta.expires_at(received),
        retry_after: meta.retry_after.map(|r| r.at(received)),
    }
}

/// Marks entries that came without an id, so they get a stable key instead of feed-rs's
/// random one.
const NO_ID: &str = "\u{0}lector:no-id";

fn parser(base: Option<&Url>) -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .base_uri(base.map(Url::as_str))
        .id_generator(|_, _, _| NO_ID.to_string())
        .timestamp_parser(parse_date)
        .build()
}

/// Reads a feed. `base` is the feed's own address (relative links resolve against it);
/// `charset` is what the server declared, if anything.
///
/// XML is read strictly first; when that fails, the repairs feedparser's lenient reading
/// amounts to are made and the feed read once more, then, for a file cut short, what it holds
/// up to its last complete item; what was repaired is listed in [`Feed::repairs`]. Entities a
/// DOCTYPE declares are never expanded.
pub fn parse_feed(bytes: &[u8], base: Option<&Url>, charset: Option<&str>) -> Result<Feed, FeedError> {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if start == bytes.len() {
        return Err(FeedError::NotAFeed("the document is empty".into()));
    }
    if bytes[start] == b'{' {
        let mut text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        let mut repairs = Vec::new();
        if let Some((fixed, what)) = repair::space_emails(&text) {
            text = fixed;
            repairs.push(what);
        }
        let parsed = parser(base).parse(text.as_bytes()).map_err(|e| FeedError::Malformed(e.to_string()))?;
        return Ok(convert(parsed, extras::scan_json(&text), base, repairs));
    }
    let mut repairs = Vec::new();
    let mut text = repair::decode_xml(bytes, charset, &mut repairs);
    for repair in [repair::atom_03, repair::space_emails] {
        if let Some((fixed, what)) = repair(&text) {
            text = fixed;
            repairs.push(what);
        }
    }
    let read = |text: &str| -> Result<(model::Feed, extras::Extras), Failure> {
        let extras = extras::scan_xml(text).map_err(|_| Failure::TooDeep)?;
        let feed = parser(base).parse(text.as_bytes()).map_err(|e| Failure::Parse(e.to_string()))?;
        Ok((feed, extras))
    };
    // feed-rs keeps characters XML forbids; they go through the repairs instead.
    let first = if text.contains(repair::is_forbidden_control) {
        "control characters XML does not allow".to_string()
    } else {
        match read(&text) {
            Ok((feed, extras)) => return Ok(convert(feed, extras, base, repairs)),
            Err(Failure::TooDeep) => return Err(too_deep()),
            Err(Failure::Parse(e)) => e,
        }
    };
    let (fixed, fixes) = repair::repair_xml(&text);
    if !fixes.is_empty() {
        match read(&fixed) {
            Ok((feed, extras)) => {
                tracing::debug!(?fixes, "feed repaired");
                repairs.extend(fixes);
                return Ok(convert(feed, extras, base, repairs));
            }
            Err(Failure::TooDeep) => return Err(too_deep()),
            Err(Failure::Parse(_)) => {}
        }
    }
    if let Some((closed, what)) = repair::close_truncated(&fixed)
        && let Ok((feed, extras)) = read(&closed)
    {
        tracing::debug!(?fixes, what, "feed cut short, read up to its last complete item");
        repairs.extend(fixes);
        repairs.push(what);
        return Ok(convert(feed, extras, base, repairs));
    }
    Err(classify_failure(&text, first))
}

/// Why a read of XML text failed.
enum Failure {
    TooDeep,
    Parse(String),
}

fn too_deep() -> FeedError {
    FeedError::Malformed(format!("elements nested deeper than {}", extras::MAX_DEPTH))
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

fn convert(feed: model::Feed, extras: extras::Extras, base: Option<&Url>, repairs: Vec<String>) -> Feed {
    let format = match feed.feed_type {
        FeedType::Atom => "atom",
        FeedType::JSON => "json",
        FeedType::RSS0 => "rss0",
        FeedType::RSS1 => "rss1",
        FeedType::RSS2 => "rss2",
    };
    let json = feed.feed_type == FeedType::JSON;
    let rel_link = |rel: &str| {
        feed.links.iter().find(|l| l.rel.as_deref() == Some(rel)).and_then(|l| absolute(&l.href, base))
    };
    let posts = feed.entries.iter().map(|e| convert_entry(e, json, base)).collect();
    let mut categories: Vec<String> = Vec::new();
    for c in &feed.categories {
        let name = html_text(c.label.as_deref().unwrap_or(&c.term));
        if !name.is_empty() && !categories.contains(&name) {
            categories.push(name);
        }
    }
    Feed {
        format: format.to_string(),
        title: feed.title.as_ref().map(|t| html_text(&t.content)).filter(|t| !t.is_empty()),
        link: pick_link(&feed.links, json, base),
        description: feed.description.as_ref().map(|t| html_text(&t.content)).filter(|t| !t.is_empty()),
        language: feed.language.clone(),
        ttl_minutes: feed.ttl,
        update_period_secs: extras.update_period.map(|d| d.as_secs()),
        hub: rel_link("hub").or_else(|| extras.hub.as_deref().and_then(|h| absolute(h, base))),
        self_url: rel_link("self").or_else(|| extras.self_url.as_deref().and_then(|h| absolute(h, base))),
        image: feed
            .logo
            .as_ref()
            .and_then(|i| Some(FeedImage { url: absolute(&i.uri, base)?, width: i.width, height: i.height })),
        author: first_name(&feed.authors),
        categories,
        explicit: extras.explicit,
        posts,
        repairs,
    }
}

fn first_name(people: &[model::Person]) -> Option<String> {
    people
        .iter()
        .filter_map(|p| p.name.as_deref().map(str::trim).filter(|n| !n.is_empty()))
        .map(html_text)
        .find(|n| !n.is_empty())
}

/// The post's or site's page: the first link with no `rel` or `alternate`, else the first
/// that is not the feed itself, an enclosure, replies or a hub. A comments page is never the
/// post's (feed-rs lists it among the links), nor is a JSON Feed's attachment.
fn pick_link(links: &[model::Link], json: bool, base: Option<&Url>) -> Option<Url> {
    let candidates = || links.iter().filter(|l| l.target.is_none() && !(json && l.media_type.is_some()));
    let preferred = candidates().find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate")).or_else(|| {
        candidates().find(|l| !matches!(l.rel.as_deref(), Some("self" | "enclosure" | "replies" | "hub")))
    });
    preferred.and_then(|l| absolute(&l.href, base))
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

fn convert_entry(e: &Entry, json: bool, base: Option<&Url>) -> Post {
    // Text fields are read as HTML whatever their declared type, since fields escaped twice
    // (`&amp;#x24;`, `&lt;sup&gt;`) reach here as `&#x24;` and `<sup>`.
    let title = e.title.as_ref().map(|t| html_text(&t.content)).filter(|t| !t.is_empty());
    let url = pick_link(&e.links, json, base);
    let content_html = e.content.as_ref().and_then(|c| c.body.as_deref()).filter(|b| !b.trim().is_empty());
    let summary_text = e.summary.as_ref().map(|t| html_text(&t.content)).filter(|s| !s.is_empty());
    let content_text = content_html.map(html_text);
    let content_words = content_text.as_deref().map_or(0, words_in_collapsed);
    let full_text = match (&content_text, content_html) {
        (Some(text), Some(html)) => content_words > 0 && !is_teaser(text, content_words, html, url.as_ref()),
        _ => false,
    };
    let words =
        if content_words > 0 { content_words } else { summary_text.as_deref().map_or(0, words_in_collapsed) };
    let published = e.published.or(e.updated);
    // feed-rs copies an RSS item's `pubDate` into `updated` when it has no update time of its
    // own: an update time equal to the publication time says nothing.
    let updated = e.updated.filter(|u| e.published != Some(*u));
    let id = match e.id.trim() {
        id if !id.is_empty() && e.id != NO_ID => id.to_string(),
        _ => match &url {
            Some(u) => u.to_string(),
            None => {
                let date = published.map(|d| d.to_rfc3339()).unwrap_or_default();
                format!("sha256:{}", digest([title.as_deref().unwrap_or(""), date.as_str()]))
            }
        },
    };
    // What would be narrated: the whole post when the feed carries it, else the summary (or,
    // with no summary, the teaser the feed gives).
    let narrated: Vec<Block> = match (full_text, content_html) {
        (true, Some(html)) => Document::from_html(html).blocks,
        _ => summary_text
            .clone()
            .or(content_text)
            .map(|text| vec![Block::Paragraph { text }])
            .unwrap_or_default(),
    };
    Post {
        id,
        content_hash: content_hash(title.as_deref(), &narrated),
        title,
        url,
        published,
        updated,
        author: first_name(&e.authors),
        words,
        full_text,
        content_html: if full_text { content_html.map(str::to_string) } else { None },
        summary: summary_text,
        enclosure: enclosure(e, json, base),
    }
}

/// The first 16 bytes of the SHA-256 of `parts`, each ended by a NUL, in hex.
fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The hash of a title and the blocks that would be read: each block's kind and its text with
/// whitespace collapsed. Code is never read aloud, so it does not count.
fn content_hash(title: Option<&str>, blocks: &[Block]) -> String {
    let mut parts: Vec<String> = vec![collapse(title.unwrap_or(""))];
    for block in blocks.iter().filter(|b| b.is_prose()) {
        let kind = match block {
            Block::Heading { level, .. } => format!("h{level}"),
            Block::Paragraph { .. } => "p".to_string(),
            Block::ListItem { ordered: true, .. } => "ol".to_string(),
            Block::ListItem { ordered: false, .. } => "ul".to_string(),
            Block::Quote { .. } => "q".to_string(),
            Block::Code { .. } => continue,
        };
        let text = collapse(block.text());
        if !text.is_empty() {
            parts.push(kind);
            parts.push(text);
        }
    }
    format!("sha256:{}", digest(parts.iter().map(String::as_str)))
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The post's media file: an enclosure link (Atom) or attachment (JSON Feed), else the first
/// Media RSS or RSS `enclosure` content that is audio or video, else the first of any kind.
fn enclosure(e: &Entry, json: bool, base: Option<&Url>) -> Option<Enclosure> {
    let linked =
        e.links.iter().find(|l| l.rel.as_deref() == Some("enclosure") || (json && l.media_type.is_some()));
    if let Some(l) = linked
        && let Some(url) = absolute(&l.href, base)
    {
        return Some(Enclosure { url, mime_type: l.media_type.clone(), length: l.length });
    }
    let contents = || e.media.iter().flat_map(|m| &m.content).filter(|c| c.url.is_some());
    let playable = |c: &&model::MediaContent| {
        c.content_type.as_ref().is_some_and(|t| matches!(t.ty().as_str(), "audio" | "video"))
    };
    let c = contents().find(playable).or_else(|| contents().next())?;
    Some(Enclosure {
        url: c.url.clone()?,
        mime_type: c.content_type.as_ref().map(ToString::to_string),
        length: c.size,
    })
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
            let n = extras::MAX_DEPTH - 10;
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

    /// A post as a feed might carry it, with a guid or not.
    fn item(guid: Option<&str>, link: Option<&str>, title: &str, date: &str, body: &str) -> String {
        format!(
            "<item>{}{}<title>{title}</title><pubDate>{date}</pubDate>\
             <content:encoded><![CDATA[{body}]]></content:encoded></item>",
            guid.map(|g| format!("<guid isPermaLink=\"false\">{g}</guid>")).unwrap_or_default(),
            link.map(|l| format!("<link>{l}</link>")).unwrap_or_default(),
        )
    }

    fn rss_with_content(items: &[String]) -> String {
        format!(
            "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
             <title>T</title>{}</channel></rss>",
            items.concat()
        )
    }

    const BODY: &str = "<h2>Why</h2><p>The first paragraph says a thing.</p><p>The second one, another.</p>";

    fn keys(feed: &Feed) -> Vec<(String, String)> {
        let mut keys: Vec<_> = feed.posts.iter().map(|p| (p.id.clone(), p.content_hash.clone())).collect();
        keys.sort();
        keys
    }

    #[test]
    fn keys_survive_reordering_and_re_dating() {
        let a = item(Some("urn:a"), Some("/a"), "A", "Tue, 01 Oct 2019 10:00:00 GMT", BODY);
        let b = item(None, Some("/b"), "B", "Tue, 01 Oct 2019 11:00:00 GMT", BODY);
        let c = item(None, None, "C", "Tue, 01 Oct 2019 12:00:00 GMT", BODY);
        let first =
            parse_feed(rss_with_content(&[a.clone(), b.clone(), c.clone()]).as_bytes(), Some(&base()), None)
                .unwrap();
        assert_eq!(first.posts[0].id, "urn:a");
        assert_eq!(first.posts[1].id, "https://blog.test/b");
        assert!(first.posts[2].id.starts_with("sha256:"), "{}", first.posts[2].id);
        // The same posts in another order: the same keys and hashes.
        let reordered =
            parse_feed(rss_with_content(&[c.clone(), a, b]).as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(keys(&reordered), keys(&first));
        assert_eq!(
            reordered.posts[0].id, first.posts[2].id,
            "a post without guid or link is not keyed by its place"
        );
        // Re-dated posts with a guid or a link keep their keys, and their hashes.
        let redated = parse_feed(
            rss_with_content(&[
                item(Some("urn:a"), Some("/a"), "A", "Wed, 02 Oct 2019 10:00:00 GMT", BODY),
                item(None, Some("/b"), "B", "Thu, 03 Oct 2019 11:00:00 GMT", BODY),
            ])
            .as_bytes(),
            Some(&base()),
            None,
        )
        .unwrap();
        let kept: Vec<_> = keys(&first).into_iter().filter(|(id, _)| !id.starts_with("sha256:")).collect();
        assert_eq!(keys(&redated), kept);
        assert!(redated.posts.iter().all(|p| p.updated.is_none()), "a new pubDate is no update");
    }

    #[test]
    fn an_edited_body_or_title_changes_the_hash_and_rewriting_the_markup_does_not() {
        let hash = |title: &str, body: &str| {
            let xml =
                rss_with_content(&[item(Some("urn:a"), None, title, "Tue, 01 Oct 2019 10:00:00 GMT", body)]);
            let feed = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
            assert!(feed.posts[0].full_text);
            feed.posts[0].content_hash.clone()
        };
        let original = hash("A", BODY);
        assert!(original.starts_with("sha256:"));
        // Whitespace, attributes, entities, and tags that change nothing read aloud.
        for same in [
            "\n  <h2>Why</h2>\n\n<p>The first   paragraph\n says a thing.</p>\n\t<p>The second one, another.</p>\n",
            "<h2 class=\"title\" id=\"why\">Why</h2><p style=\"color: red\">The first paragraph says a thing.</p><p data-x=\"1\">The second one, another.</p>",
            "<h2>Why</h2><p>The first paragraph says a&#32;thing.</p><p>The second one,&#x20;another.</p>",
            "<h2>Why</h2><p>The <em>first</em> paragraph says a <a href=\"https://x.test/?utm=rss\">thing</a>.</p><p>The second one, another.</p>",
            "<h2>Why</h2><p>The first paragraph says a thing.</p><pre>let code = 1;</pre><p>The second one, another.</p>",
        ] {
            assert_eq!(hash("A", same), original, "{same}");
        }
        assert_eq!(hash("  A ", BODY), original);
        // Edits to what is read do change it.
        for edited in [
            "<h2>Why</h2><p>The first paragraph says another thing.</p><p>The second one, another.</p>",
            "<h2>Why</h2><p>The first paragraph says a thing.</p>",
            "<h2>Why</h2><p>The first paragraph says a thing. The second one, another.</p>",
            "<h3>Why</h3><p>The first paragraph says a thing.</p><p>The second one, another.</p>",
        ] {
            assert_ne!(hash("A", edited), original, "{edited}");
        }
        assert_ne!(hash("A, revised", BODY), original);
    }

    #[test]
    fn without_full_content_the_hash_is_of_title_and_summary() {
        let post = |summary: &str| {
            let xml = rss(&format!(
                "<item><guid>g</guid><title>T</title><description>{summary}</description></item>"
            ));
            parse_feed(xml.as_bytes(), None, None).unwrap().posts.remove(0)
        };
        let one = post("A short summary.");
        assert!(!one.full_text);
        assert_eq!(post("  A short\n summary. ").content_hash, one.content_hash);
        assert_eq!(post("&lt;p class=\"x\"&gt;A short summary.&lt;/p&gt;").content_hash, one.content_hash);
        assert_ne!(post("A longer summary.").content_hash, one.content_hash);
    }

    #[test]
    fn updated_dates_come_from_atom_updated_or_json_date_modified() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>
            <entry><id>e1</id><title>One</title><published>2024-01-01T00:00:00Z</published><updated>2024-02-01T00:00:00Z</updated></entry>
            <entry><id>e2</id><title>Two</title><published>2024-01-01T00:00:00Z</published><updated>2024-01-01T00:00:00Z</updated></entry>
            <entry><id>e3</id><title>Three</title><updated>2024-03-01T00:00:00Z</updated></entry></feed>"#;
        let feed = parse_feed(atom.as_bytes(), None, None).unwrap();
        let date = |s: &str| Some(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        assert_eq!(feed.posts[0].updated, date("2024-02-01T00:00:00Z"));
        assert_eq!(feed.posts[0].published, date("2024-01-01T00:00:00Z"));
        assert_eq!(feed.posts[1].updated, None, "updated when published is no update");
        assert_eq!(feed.posts[2].published, date("2024-03-01T00:00:00Z"));
        let rss = rss(
            "<item xmlns:a=\"http://www.w3.org/2005/Atom\"><guid>g</guid><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate>\
                       <a:updated>2024-01-05T00:00:00Z</a:updated></item>",
        );
        assert_eq!(
            parse_feed(rss.as_bytes(), None, None).unwrap().posts[0].updated,
            date("2024-01-05T00:00:00Z")
        );
        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[
            {"id":"1","date_published":"2024-01-01T00:00:00Z","date_modified":"2024-01-09T00:00:00Z"}]}"#;
        assert_eq!(
            parse_feed(json.as_bytes(), None, None).unwrap().posts[0].updated,
            date("2024-01-09T00:00:00Z")
        );
    }

    #[test]
    fn what_polling_needs_is_read_from_an_rss_channel() {
        let xml = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
     xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>Cast</title><link>https://cast.test/</link><ttl>90</ttl>
  <atom:link rel="hub" href="https://hub.test/"/><atom:link rel="self" href="/feed.xml"/>
  <sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>
  <itunes:image href="https://cast.test/big.jpg"/><itunes:explicit>yes</itunes:explicit>
  <itunes:author>Ann Host</itunes:author>
  <category>Tech</category><itunes:category text="Technology"/><category>Tech</category>
  <item><guid>ep1</guid><title>Episode 1</title>
    <enclosure url="/ep1.mp3" length="1234" type="audio/mpeg"/></item>
  <item><guid>ep2</guid><title>Episode 2</title></item>
</channel></rss>"#;
        let feed = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(feed.ttl_minutes, Some(90));
        assert_eq!(feed.ttl(), Some(Duration::from_secs(90 * 60)));
        assert_eq!(feed.update_period(), Some(Duration::from_secs(30 * 60)));
        assert_eq!(feed.hub.as_ref().map(Url::as_str), Some("https://hub.test/"));
        assert_eq!(feed.self_url.as_ref().map(Url::as_str), Some("https://blog.test/feed.xml"));
        assert_eq!(
            feed.image,
            Some(FeedImage {
                url: Url::parse("https://cast.test/big.jpg").unwrap(),
                width: None,
                height: None
            })
        );
        assert_eq!(feed.explicit, Some(true));
        assert_eq!(feed.author.as_deref(), Some("Ann Host"));
        assert_eq!(feed.categories, vec!["Tech".to_string(), "Technology".to_string()]);
        assert_eq!(feed.link.as_ref().map(Url::as_str), Some("https://cast.test/"));
        assert_eq!(
            feed.posts[0].enclosure,
            Some(Enclosure {
                url: Url::parse("https://blog.test/ep1.mp3").unwrap(),
                mime_type: Some("audio/mpeg".into()),
                length: Some(1234),
            })
        );
        assert_eq!(feed.posts[1].enclosure, None);
        // And they survive a round trip through JSON.
        let json = serde_json::to_string(&feed).unwrap();
        assert_eq!(serde_json::from_str::<Feed>(&json).unwrap(), feed);
        // A plain feed says none of it, and its JSON does not mention it.
        let plain = parse_feed(rss("<item><guid>g</guid></item>").as_bytes(), None, None).unwrap();
        assert_eq!(
            (
                plain.ttl_minutes,
                plain.update_period_secs,
                &plain.hub,
                &plain.self_url,
                &plain.image,
                plain.explicit
            ),
            (None, None, &None, &None, &None, None)
        );
        assert!(!serde_json::to_string(&plain).unwrap().contains("ttl_minutes"));
    }

    #[test]
    fn an_rss_image_gives_its_size_and_atom_and_json_name_hub_self_and_enclosure() {
        let xml = rss("<image><url>/logo.png</url><title>T</title><link>https://blog.test/</link>\
                       <width>88</width><height>31</height></image>");
        let image = parse_feed(xml.as_bytes(), Some(&base()), None).unwrap().image.unwrap();
        assert_eq!(
            (image.url.as_str(), image.width, image.height),
            ("https://blog.test/logo.png", Some(88), Some(31))
        );

        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><logo>/l.png</logo>
            <link rel="hub" href="https://hub.test/a"/><link rel="self" href="https://blog.test/atom"/>
            <author><name>Ann</name></author><category term="rust" label="Rust"/>
            <entry><id>e</id><title>E</title><link href="/e"/>
              <link rel="enclosure" href="/e.mp3" type="audio/mpeg" length="99"/></entry></feed>"#;
        let feed = parse_feed(atom.as_bytes(), Some(&base()), None).unwrap();
        assert_eq!(feed.hub.as_ref().map(Url::as_str), Some("https://hub.test/a"));
        assert_eq!(feed.self_url.as_ref().map(Url::as_str), Some("https://blog.test/atom"));
        assert_eq!(feed.image.map(|i| i.url.to_string()).as_deref(), Some("https://blog.test/l.png"));
        assert_eq!(
            (feed.author.as_deref(), feed.categories.as_slice()),
            (Some("Ann"), &["Rust".to_string()][..])
        );
        assert_eq!(feed.posts[0].url.as_ref().map(Url::as_str), Some("https://blog.test/e"));
        let enclosure = feed.posts[0].enclosure.clone().unwrap();
        assert_eq!((enclosure.url.as_str(), enclosure.length), ("https://blog.test/e.mp3", Some(99)));

        let json = r#"{"version":"https://jsonfeed.org/version/1.1","title":"J","feed_url":"https://j.test/feed.json",
          "hubs":[{"type":"WebSub","url":"https://hub.test/j"}],
          "items":[{"id":"1","url":"https://j.test/1","attachments":[{"url":"https://j.test/1.m4a","mime_type":"audio/x-m4a","size_in_bytes":7}]}]}"#;
        let feed = parse_feed(json.as_bytes(), None, None).unwrap();
        assert_eq!(feed.self_url.as_ref().map(Url::as_str), Some("https://j.test/feed.json"));
        assert_eq!(feed.hub.as_ref().map(Url::as_str), Some("https://hub.test/j"));
        assert_eq!(feed.posts[0].url.as_ref().map(Url::as_str), Some("https://j.test/1"));
        let enclosure = feed.posts[0].enclosure.clone().unwrap();
        assert_eq!(
            (enclosure.url.as_str(), enclosure.mime_type.as_deref(), enclosure.length),
            ("https://j.test/1.m4a", Some("audio/x-m4a"), Some(7))
        );
    }

    #[test]
    fn a_cut_feed_keeps_its_complete_items() {
        let whole = rss(&[
            item(Some("a"), None, "A", "Tue, 01 Oct 2019 10:00:00 GMT", BODY),
            item(Some("b"), None, "B", "Tue, 01 Oct 2019 11:00:00 GMT", BODY),
        ]
        .concat());
        let cut = &whole[..whole.find("<guid isPermaLink=\"false\">b").unwrap() + 10];
        let feed = parse_feed(cut.as_bytes(), None, None).unwrap();
        assert_eq!(feed.posts.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(feed.repairs, ["cut short: the 1 complete items kept"]);
    }

    #[test]
    fn poll_hints_gather_the_feed_and_the_answer() {
        use crate::fetch::RetryAfter;
        let feed = Feed {
            ttl_minutes: Some(60),
            update_period_secs: Some(7200),
            ..parse_feed(rss("").as_bytes(), None, None).unwrap()
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let meta = ResponseMeta {
            status: 200,
            url: base(),
            redirects: 0,
            etag: None,
            last_modified: None,
            max_age: Some(Duration::from_secs(300)),
            expires: Some(at("2026-01-01T00:30:00Z")),
            date: Some(at("2026-01-01T00:00:00Z")),
            retry_after: Some(RetryAfter::Seconds(60)),
            hub: None,
            self_url: None,
        };
        let now = at("2026-01-01T10:00:00Z");
        let hints = poll_hints(Some(&feed), &meta, now);
        assert_eq!(hints.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(hints.syndication_period, Some(Duration::from_secs(7200)));
        assert_eq!(hints.max_age, Some(Duration::from_secs(300)));
        assert_eq!(hints.expires, Some(at("2026-01-01T10:30:00Z")));
        assert_eq!(hints.retry_after, Some(at("2026-01-01T10:01:00Z")));
        let (next, reason) = lector_core::schedule::next_poll(now, None, &hints);
        assert_eq!(
            (next, reason),
            (at("2026-01-01T12:00:00Z"), lector_core::schedule::PollReason::SyndicationPeriod)
        );
        assert_eq!(poll_hints(None, &meta, now).ttl, None);
    }
}
