//! A podcast feed: RSS 2.0 with the Apple Podcasts (`itunes:`), Podcasting 2.0 (`podcast:`) and
//! Atom namespaces, rendered from plain structs. Pure: the caller gathers the channel and the
//! episodes (from conversions, settings and the source feed) and serves the string.
//!
//! Every text goes through one escaper that drops what XML 1.0 cannot carry (control
//! characters) and escapes the five markup characters, so no title or summary can break the
//! document: there is no CDATA section, and so no `]]>` to worry about.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The Apple Podcasts namespace, exactly as Apple spells it.
pub const ITUNES_NS: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";
/// The Podcasting 2.0 namespace.
pub const PODCAST_NS: &str = "https://podcastindex.org/namespace/1.0";
/// The Atom namespace (for the feed's `rel="self"` link).
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// The namespace `podcast:guid` values are derived in (the podcast namespace's guid tag).
pub const PODCAST_GUID_NAMESPACE: Uuid = Uuid::from_u128(0xead4c236_bf58_58c6_a2c6_a6b28d128cb6);

/// The most bytes Apple Podcasts takes for a show's or an episode's description.
pub const MAX_DESCRIPTION_BYTES: usize = 4000;
/// The most characters Apple Podcasts takes for other values.
pub const MAX_VALUE_CHARS: usize = 255;

/// The show.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub title: String,
    /// Plain text; escaped, and cut to [`MAX_DESCRIPTION_BYTES`].
    pub description: String,
    /// The language spoken, an ISO 639 code with optional modifiers (`en`, `en-us`).
    pub language: String,
    /// The website the show belongs to.
    pub link: String,
    /// Where this feed is served (`atom:link rel="self"`).
    pub self_url: String,
    /// `itunes:image` (and the RSS `image`): square, 1400 to 3000 px, JPEG or PNG.
    pub image_url: String,
    pub category: Category,
    pub explicit: bool,
    /// `itunes:author`: who makes the show.
    pub author: String,
    /// `itunes:owner`, when a name and email are set. The feed is rendered without one, but
    /// Apple Podcasts does not accept it then.
    pub owner: Option<Owner>,
    pub show_type: ShowType,
    /// `podcast:guid`: assigned once, from the feed's address ([`podcast_guid`]), then kept.
    pub guid: Uuid,
    /// `podcast:locked`: whether other hosts must refuse to import the feed.
    pub locked: bool,
    /// `generator`, when set.
    pub generator: Option<String>,
}

/// `itunes:owner`: who Apple and directories contact about the show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub name: String,
    pub email: String,
}

/// An Apple Podcasts category, with an optional subcategory (names as Apple lists them, for
/// example `Society & Culture` / `Documentary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub name: String,
    pub subcategory: Option<String>,
}

impl Category {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), subcategory: None }
    }
}

/// `itunes:type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShowType {
    /// Newest first; the usual show.
    #[default]
    Episodic,
    /// Oldest first, numbered.
    Serial,
}

impl ShowType {
    pub fn as_str(self) -> &'static str {
        match self {
            ShowType::Episodic => "episodic",
            ShowType::Serial => "serial",
        }
    }
}

/// One episode: a narrated post.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The `guid`: the caller's stable key, the same in every rendering and every revision.
    pub guid: String,
    /// The post's own title.
    pub title: String,
    /// The post's address.
    pub link: Option<String>,
    /// When the post was published.
    pub published: DateTime<Utc>,
    /// The post's summary, plain text; escaped, and cut to [`MAX_DESCRIPTION_BYTES`].
    pub summary: Option<String>,
    pub author: Option<String>,
    pub enclosure: Enclosure,
    pub duration_seconds: f64,
    /// `podcast:transcript` links, in the order given.
    pub transcripts: Vec<TranscriptLink>,
    /// `podcast:chapters`, a JSON chapters file.
    pub chapters_url: Option<String>,
}

/// The audio file: its address (one per revision), its exact size in bytes and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosure {
    pub url: String,
    pub length: u64,
    pub mime: String,
}

/// A `podcast:transcript` link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLink {
    pub url: String,
    pub mime: String,
    /// When it differs from the channel's language.
    pub language: Option<String>,
    /// `rel="captions"`: the file carries time codes.
    pub captions: bool,
}

impl TranscriptLink {
    /// A WebVTT transcript with its time codes.
    pub fn vtt(url: impl Into<String>) -> Self {
        Self { url: url.into(), mime: crate::timeline::VTT_MIME.into(), language: None, captions: true }
    }

    /// A Podcasting 2.0 JSON transcript.
    pub fn json(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            mime: crate::timeline::JSON_TRANSCRIPT_MIME.into(),
            language: None,
            captions: false,
        }
    }

    /// An SRT transcript.
    pub fn srt(url: impl Into<String>) -> Self {
        Self { url: url.into(), mime: crate::timeline::SRT_MIME.into(), language: None, captions: true }
    }
}

/// The `podcast:guid` of a feed address: the UUIDv5, in the podcast namespace
/// ([`PODCAST_GUID_NAMESPACE`]), of the address without its scheme and trailing slashes.
pub fn podcast_guid(feed_url: &str) -> Uuid {
    let url = feed_url.trim();
    let without_scheme = match url.find("://") {
        Some(i) if url[..i].chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => &url[i + 3..],
        _ => url,
    };
    Uuid::new_v5(&PODCAST_GUID_NAMESPACE, without_scheme.trim_end_matches('/').as_bytes())
}

/// Whether XML 1.0 can carry `c` at all (its `Char` production), and it is not a C1 control.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
}

/// Text for an element or an attribute: characters XML cannot carry dropped, the five markup
/// characters escaped, no space at either end.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.trim().chars().filter(|&c| xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` cut to at most `max` characters, with an ellipsis when cut.
fn clip_chars(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// `<tag>text</tag>` on its own line, text clipped to `MAX_VALUE_CHARS`: for names and titles.
fn element(xml: &mut String, indent: &str, tag: &str, text: &str) {
    value(xml, indent, tag, &clip_chars(text, MAX_VALUE_CHARS));
}

/// `<tag>value</tag>` on its own line, never clipped: for addresses, dates and codes, which a
/// cut would break.
fn value(xml: &mut String, indent: &str, tag: &str, text: &str) {
    xml.push_str(&format!("{indent}<{tag}>{}</{tag}>\n", escape_xml(text)));
}

/// `<tag>text</tag>` for a description: escaped, and clipped so that the escaped text stays
/// within [`MAX_DESCRIPTION_BYTES`].
fn description(xml: &mut String, indent: &str, tag: &str, text: &str) {
    xml.push_str(&format!("{indent}<{tag}>{}</{tag}>\n", escape_clipped(text, MAX_DESCRIPTION_BYTES)));
}

/// `text` escaped, at most `max_bytes` long: when the whole does not fit, cut at a word boundary
/// where there is one in the second half, with an ellipsis.
fn escape_clipped(text: &str, max_bytes: usize) -> String {
    let escaped = escape_xml(text);
    if escaped.len() <= max_bytes {
        return escaped;
    }
    // Escape the plain text character by character until the budget (less the ellipsis) is
    // spent, remembering the last space: entities are never cut in two.
    let budget = max_bytes.saturating_sub('…'.len_utf8());
    let mut out = String::with_capacity(max_bytes);
    let mut last_space = None;
    for c in text.trim().chars() {
        let piece = escape_xml(&c.to_string());
        let piece = if piece.is_empty() && c.is_whitespace() { c.to_string() } else { piece };
        if out.len() + piece.len() > budget {
            break;
        }
        if c.is_whitespace() {
            last_space = Some(out.len());
        }
        out.push_str(&piece);
    }
    if let Some(space) = last_space.filter(|&s| s > budget / 2) {
        out.truncate(space);
    }
    format!("{}…", out.trim_end())
}

/// The feed: RSS 2.0 with the `itunes`, `podcast` and `atom` namespaces declared, the channel's
/// tags, then one `item` per episode in the order given.
pub fn render(channel: &Channel, episodes: &[Episode]) -> String {
    let mut xml = String::with_capacity(2048 + episodes.len() * 1200);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<rss version=\"2.0\" xmlns:itunes=\"{ITUNES_NS}\" xmlns:podcast=\"{PODCAST_NS}\" xmlns:atom=\"{ATOM_NS}\">\n"
    ));
    xml.push_str("<channel>\n");
    let c = "  ";
    element(&mut xml, c, "title", &channel.title);
    description(&mut xml, c, "description", &channel.description);
    value(&mut xml, c, "language", &channel.language);
    value(&mut xml, c, "link", &channel.link);
    xml.push_str(&format!(
        "{c}<atom:link href=\"{}\" rel=\"self\" type=\"application/rss+xml\"/>\n",
        escape_xml(&channel.self_url)
    ));
    if let Some(generator) = &channel.generator {
        element(&mut xml, c, "generator", generator);
    }
    xml.push_str(&format!("{c}<itunes:image href=\"{}\"/>\n", escape_xml(&channel.image_url)));
    xml.push_str(&format!("{c}<image>\n"));
    value(&mut xml, "    ", "url", &channel.image_url);
    element(&mut xml, "    ", "title", &channel.title);
    value(&mut xml, "    ", "link", &channel.link);
    xml.push_str(&format!("{c}</image>\n"));
    let category = escape_xml(&channel.category.name);
    match &channel.category.subcategory {
        Some(sub) => xml.push_str(&format!(
            "{c}<itunes:category text=\"{category}\">\n{c}  <itunes:category text=\"{}\"/>\n{c}</itunes:category>\n",
            escape_xml(sub)
        )),
        None => xml.push_str(&format!("{c}<itunes:category text=\"{category}\"/>\n")),
    }
    value(&mut xml, c, "itunes:explicit", if channel.explicit { "true" } else { "false" });
    element(&mut xml, c, "itunes:author", &channel.author);
    if let Some(owner) = &channel.owner {
        xml.push_str(&format!("{c}<itunes:owner>\n"));
        element(&mut xml, "    ", "itunes:name", &owner.name);
        value(&mut xml, "    ", "itunes:email", &owner.email);
        xml.push_str(&format!("{c}</itunes:owner>\n"));
    }
    value(&mut xml, c, "itunes:type", channel.show_type.as_str());
    value(&mut xml, c, "podcast:guid", &channel.guid.hyphenated().to_string());
    let locked = if channel.locked { "yes" } else { "no" };
    match &channel.owner {
        Some(owner) => xml.push_str(&format!(
            "{c}<podcast:locked owner=\"{}\">{locked}</podcast:locked>\n",
            escape_xml(&owner.email)
        )),
        None => value(&mut xml, c, "podcast:locked", locked),
    }
    for episode in episodes {
        item(&mut xml, episode);
    }
    xml.push_str("</channel>\n</rss>\n");
    xml
}

fn item(xml: &mut String, episode: &Episode) {
    let i = "    ";
    xml.push_str("  <item>\n");
    element(xml, i, "title", &episode.title);
    // The same title for Apple (`itunes:title`, an episode tag); readers that group the iTunes
    // tags of an item (feed-rs) drop its `itunes:duration` when the group has no title.
    element(xml, i, "itunes:title", &episode.title);
    if let Some(link) = &episode.link {
        value(xml, i, "link", link);
    }
    xml.push_str(&format!("{i}<guid isPermaLink=\"false\">{}</guid>\n", escape_xml(&episode.guid)));
    value(xml, i, "pubDate", &episode.published.to_rfc2822());
    if let Some(summary) = episode.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        description(xml, i, "description", summary);
    }
    if let Some(author) = &episode.author {
        element(xml, i, "itunes:author", author);
    }
    xml.push_str(&format!(
        "{i}<enclosure url=\"{}\" length=\"{}\" type=\"{}\"/>\n",
        escape_xml(&episode.enclosure.url),
        episode.enclosure.length,
        escape_xml(&episode.enclosure.mime)
    ));
    let seconds =
        if episode.duration_seconds.is_finite() { episode.duration_seconds.max(0.0).round() } else { 0.0 };
    value(xml, i, "itunes:duration", &format!("{}", seconds as u64));
    for transcript in &episode.transcripts {
        let mut tag = format!(
            "{i}<podcast:transcript url=\"{}\" type=\"{}\"",
            escape_xml(&transcript.url),
            escape_xml(&transcript.mime)
        );
        if let Some(language) = &transcript.language {
            tag.push_str(&format!(" language=\"{}\"", escape_xml(language)));
        }
        if transcript.captions {
            tag.push_str(" rel=\"captions\"");
        }
        tag.push_str("/>\n");
        xml.push_str(&tag);
    }
    if let Some(chapters) = &episode.chapters_url {
        xml.push_str(&format!(
            "{i}<podcast:chapters url=\"{}\" type=\"{}\"/>\n",
            escape_xml(chapters),
            crate::timeline::CHAPTERS_MIME
        ));
    }
    xml.push_str("  </item>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podcast_guids_match_the_namespace_examples() {
        // The two examples of the podcast namespace's guid tag.
        assert_eq!(
            podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml").to_string(),
            "917393e3-1b1e-5cef-ace4-edaa54e1f810"
        );
        assert_eq!(
            podcast_guid("http://podnews.net/rss/").to_string(),
            "9b024349-ccf0-5f69-a609-6b82873eab3c"
        );
        assert_eq!(podcast_guid("podnews.net/rss"), podcast_guid("https://podnews.net/rss//"));
        assert_eq!(podcast_guid("podnews.net/rss").get_version_num(), 5);
    }

    #[test]
    fn escaping_drops_what_xml_cannot_carry() {
        assert_eq!(escape_xml(" a<b>&\"c'\u{0}\u{1b}\u{85}]]> "), "a&lt;b&gt;&amp;&quot;c&apos;]]&gt;");
        assert_eq!(escape_xml("line\nbreak\ttab"), "line\nbreak\ttab");
        assert_eq!(escape_xml("\u{FFFF}é"), "é");
    }

    #[test]
    fn long_texts_are_clipped_within_their_limits() {
        let long = "word ".repeat(2000);
        let clipped = escape_clipped(&long, MAX_DESCRIPTION_BYTES);
        assert!(clipped.len() <= MAX_DESCRIPTION_BYTES && clipped.ends_with("word…"), "{}", clipped.len());
        assert_eq!(escape_clipped("short", 10), "short");
        let wide = "é".repeat(3000);
        assert!(escape_clipped(&wide, 4000).len() <= 4000);
        assert_eq!(clip_chars(&"x".repeat(300), MAX_VALUE_CHARS).chars().count(), MAX_VALUE_CHARS);
        let mut xml = String::new();
        let long_url = format!("https://example.com/{}", "a".repeat(400));
        value(&mut xml, "", "link", &long_url);
        assert_eq!(xml, format!("<link>{long_url}</link>\n"), "addresses are never cut");
        let escaped = escape_clipped(&"<&> ".repeat(2000), MAX_DESCRIPTION_BYTES);
        assert!(escaped.len() <= MAX_DESCRIPTION_BYTES && escaped.ends_with("&gt;…"), "{}", escaped.len());
        assert_eq!(escape_clipped("a & b", MAX_DESCRIPTION_BYTES), "a &amp; b");
    }
}
