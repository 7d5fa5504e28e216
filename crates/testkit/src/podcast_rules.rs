//! A checker of podcast RSS feeds against Apple Podcasts' and Podcasting 2.0's published rules,
//! for tests: no offline validator covers them, so each rule here is written from its source
//! and cites it (document and section). [`check`] returns every rule one rendering breaks;
//! [`check_history`] compares two renderings of the same feed over time (an episode's guid, and
//! the show's `podcast:guid`, must never change).
//!
//! The document is parsed with namespaces resolved (quick-xml's `NsReader`), so a tag counts as
//! `itunes:` or `podcast:` only when its prefix is bound to that namespace, exactly as Apple and
//! the podcast namespace spell it.

use std::collections::{HashMap, HashSet};
use std::fmt;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The Apple Podcasts namespace.
pub const ITUNES_NS: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";
/// The Podcasting 2.0 namespace.
pub const PODCAST_NS: &str = "https://podcastindex.org/namespace/1.0";
/// The Atom namespace.
pub const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

const GUIDE: &str = "Apple Podcasts Connect Help, \"A Podcaster's Guide to RSS\" (help.apple.com/itc/podcasts_connect/#/itcb54353390; archived in Podcastindex-org/podcast-namespace, itunes_reference.md)";
const REQUIREMENTS: &str = "Apple Podcasts for Creators, \"Podcast RSS feed requirements\" (podcasters.apple.com/support/823-podcast-requirements), \"Podcast RSS feed technical requirements\"";
const HOSTING_2022: &str = "Apple Podcasts for Creators, \"Technical updates for hosting providers\" (podcasters.apple.com/4115, 22 August 2022), \"RSS feed requirements\"";
const NAMESPACE: &str = "Podcast Namespace 1.0 (Podcastindex-org/podcast-namespace)";
const PSP1: &str = "Podcast Standards Project, \"PSP-1: The Podcast RSS Standard\" 1.0 (Podcast-Standards-Project/PSP-1-Podcast-RSS-Specification, 1.0.md)";

/// One rule: a stable id, what it requires, and where that is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub requirement: &'static str,
    pub source: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $requirement:literal, $source:expr;)*) => {
        $(pub const $name: Rule = Rule { id: $id, requirement: $requirement, source: $source };)*
        /// Every rule the checker knows.
        pub const RULES: &[Rule] = &[$($name),*];
    };
}

rules! {
    WELL_FORMED = "xml.well-formed",
        "the feed is well-formed XML (so an RSS 2.0 document at all)",
        REQUIREMENTS;
    RSS_ROOT = "rss.root",
        "the root is <rss version=\"2.0\"> holding exactly one <channel>",
        REQUIREMENTS;
    ITUNES_NAMESPACE = "namespace.itunes",
        "itunes: tags are in the namespace http://www.itunes.com/dtds/podcast-1.0.dtd, declared exactly so (\"Without this declaration, Podcasts Connect ignores all tags specific to Apple Podcasts\"); no tag has an undeclared prefix",
        GUIDE;
    PODCAST_NAMESPACE = "namespace.podcast",
        "podcast: tags are in the namespace https://podcastindex.org/namespace/1.0 (section \"Namespace Declarations\")",
        PSP1;
    CHANNEL_TITLE = "channel.title",
        "the show has a <title>, at most 255 characters (show tags, Required: <title>; \"Tag values are limited to 255 characters\")",
        GUIDE;
    CHANNEL_DESCRIPTION = "channel.description",
        "the show has a <description>, at most 4000 bytes (show tags, Required: <description>)",
        GUIDE;
    CHANNEL_IMAGE = "channel.image",
        "the show has <itunes:image href>, an http(s) address of a .jpg or .png file (show tags, Required: <itunes:image>: \"with appropriate file extensions (.jpg, .png)\")",
        GUIDE;
    CHANNEL_LANGUAGE = "channel.language",
        "the show has a <language> from ISO 639, two letters with optional modifiers such as en-us (show tags, Required: <language>)",
        GUIDE;
    CHANNEL_CATEGORY = "channel.category",
        "the show has an <itunes:category text> naming an Apple Podcasts category, and any nested one a subcategory of it (show tags, Required: <itunes:category>; the list: podcasters.apple.com/support/1691-apple-podcasts-categories)",
        GUIDE;
    CHANNEL_EXPLICIT = "channel.explicit",
        "the show has <itunes:explicit> true or false (show tags, Required: <itunes:explicit>)",
        GUIDE;
    CHANNEL_OWNER = "channel.owner",
        "the show has <itunes:owner> with <itunes:name> and an <itunes:email> address, the contact for the show (Apple, \"Making a Podcast\", iTunes RSS tags: <itunes:owner>; Apple's 2022 hosting update ranks it no longer recommended for Apple itself, but directories still verify ownership by it)",
        "Apple, \"Making a Podcast\" (apple.com/itunes/podcasts/specs.html), <itunes:owner>";
    CHANNEL_AUTHOR = "channel.author",
        "the show has an <itunes:author> (show tags, Recommended: <itunes:author>)",
        GUIDE;
    CHANNEL_LINK = "channel.link",
        "the show has a <link>, an http(s) address of its website (show tags, Recommended: <link>)",
        GUIDE;
    CHANNEL_TYPE = "channel.type",
        "<itunes:type>, when present, is episodic or serial, and a serial show numbers every episode with <itunes:episode> (show tags, Situational: <itunes:type>)",
        GUIDE;
    ATOM_SELF = "channel.atom-self",
        "the show has <atom:link rel=\"self\" href> with its feed's own address (section \"Required <channel>\": <atom:link rel=\"self\">)",
        PSP1;
    PODCAST_GUID = "podcast.guid",
        "the show has one <podcast:guid>, a UUIDv5 (36 characters, version 5) (docs/tags/guid.md: \"The value is a UUIDv5\"; Count: Single)",
        NAMESPACE;
    PODCAST_LOCKED = "podcast.locked",
        "the show has one <podcast:locked>, yes or no, its owner attribute (if any) an email address (docs/tags/locked.md: Node value, Attributes)",
        NAMESPACE;
    ITEM_TITLE = "item.title",
        "every episode has a <title> (episode tags, Required: <title>)",
        GUIDE;
    ITEM_ENCLOSURE = "item.enclosure",
        "every episode has one <enclosure> with an http(s) url, its length in bytes (a positive integer) and a type Apple supports: audio/x-m4a, audio/mpeg, video/quicktime, video/mp4, video/x-m4v or application/pdf (episode tags, Required: <enclosure>)",
        GUIDE;
    ITEM_ENCLOSURE_UNIQUE = "item.enclosure-unique",
        "no two episodes share an enclosure url (\"Each episode must have a unique <enclosure> tag ... Apple Podcasts will ignore duplicate <enclosure> URLs\")",
        REQUIREMENTS;
    ITEM_GUID = "item.guid",
        "every episode has a non-empty <guid> (\"All episodes must contain a globally unique identifier (GUID), which never changes\")",
        REQUIREMENTS;
    ITEM_GUID_UNIQUE = "item.guid-unique",
        "no two episodes share a <guid> (\"GUIDs ... must be unique for each episode in your show. ... Apple Podcasts will not process new episodes with duplicate GUIDs\")",
        HOSTING_2022;
    ITEM_PUBDATE = "item.pubdate",
        "every episode has a <pubDate> in RFC 2822 form (episode tags, Recommended: <pubDate>; an episodic show displays \"the publish date (required) of each episode\")",
        GUIDE;
    ITEM_DURATION = "item.duration",
        "<itunes:duration>, when present, is whole seconds or [HH:]MM:SS (episode tags, Recommended: <itunes:duration>: \"it is recommended to convert the length of the episode into seconds\")",
        GUIDE;
    ITEM_DESCRIPTION = "item.description",
        "an episode's <description>, when present, is at most 4000 bytes (episode tags, Recommended: <description>)",
        GUIDE;
    TRANSCRIPT = "podcast.transcript",
        "every <podcast:transcript> has an http(s) url and a MIME type (text/vtt, application/json, ...), and rel, when present, is captions (docs/tags/transcript.md: Attributes)",
        NAMESPACE;
    CHAPTERS = "podcast.chapters",
        "an episode has at most one <podcast:chapters>, with an http(s) url and the type application/json+chapters (docs/tags/chapters.md: Count: Single; Attributes)",
        NAMESPACE;
    GUID_STABLE = "history.guid-stable",
        "an episode's <guid> never changes between renderings (\"It is very important that each episode have a unique GUID and that it never changes, even if an episode's metadata, like title or enclosure URL, do change\"; episode tags, Recommended: <guid>)",
        GUIDE;
    PODCAST_GUID_STABLE = "history.podcast-guid-stable",
        "the show's <podcast:guid> never changes (docs/tags/guid.md: \"That GUID is then meant to follow the podcast from then on, for the duration of its life\")",
        NAMESPACE;
}

/// A broken rule, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {}: {} (source: {})",
            self.rule.id, self.detail, self.rule.requirement, self.rule.source
        )
    }
}

/// The ids of the rules among `violations`, for assertions.
pub fn ids(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.rule.id).collect()
}

/// Panics, naming every violation, unless `xml` breaks no rule.
pub fn assert_accepted(xml: &str) {
    let violations = check(xml);
    assert!(
        violations.is_empty(),
        "the podcast feed breaks {} rule(s):\n  {}\n{xml}",
        violations.len(),
        violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    );
}

/// An element: its namespace (when bound), local name, prefix as written, attributes (local
/// name to value; namespaced attributes are not used by any rule) and text.
#[derive(Debug, Default)]
struct Node {
    ns: Option<String>,
    local: String,
    prefix: Option<String>,
    attrs: HashMap<String, String>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn is(&self, ns: Option<&str>, local: &str) -> bool {
        self.ns.as_deref() == ns && self.local == local
    }

    fn all<'a>(&'a self, ns: Option<&'a str>, local: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.is(ns, local))
    }

    fn first(&self, ns: Option<&str>, local: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    fn text_of(&self, ns: Option<&str>, local: &str) -> Option<&str> {
        self.first(ns, local).map(|n| n.text.trim())
    }

    fn walk<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.push(self);
        for child in &self.children {
            child.walk(out);
        }
    }
}

/// The predefined XML entities.
fn predefined(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

fn parse(xml: &str) -> Result<Node, String> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let (resolved, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            _ => None,
        };
        match event {
            Event::Start(start) => {
                let name = start.name();
                let mut node = Node {
                    ns,
                    local: String::from_utf8_lossy(name.local_name().as_ref()).into_owned(),
                    prefix: name.prefix().map(|p| String::from_utf8_lossy(p.as_ref()).into_owned()),
                    ..Node::default()
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| e.to_string())?;
                    if attr.key.prefix().is_some() || attr.key.as_ref() == b"xmlns" {
                        continue;
                    }
                    let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
                    let value = attr.unescape_value().map_err(|e| e.to_string())?.into_owned();
                    node.attrs.insert(key, value);
                }
                stack.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("an end tag without a start")?;
                stack.last_mut().ok_or("an end tag without a start")?.children.push(node);
            }
            Event::Text(text) => {
                let text = text.decode().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| e.to_string())?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(reference) => {
                let c = if reference.is_char_ref() {
                    reference.resolve_char_ref().map_err(|e| e.to_string())?
                } else {
                    predefined(&reference.decode().map_err(|e| e.to_string())?)
                };
                let c = c.ok_or_else(|| {
                    format!("an undefined entity &{};", String::from_utf8_lossy(&reference))
                })?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().ok_or("no document")?;
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    let mut roots = document.children.drain(..);
    match (roots.next(), roots.next()) {
        (Some(root), None) => Ok(root),
        (None, _) => Err("no root element".into()),
        _ => Err("more than one root element".into()),
    }
}

/// Apple Podcasts' categories and their subcategories, as Apple names them
/// (podcasters.apple.com/support/1691-apple-podcasts-categories).
const APPLE_CATEGORIES: &[(&str, &[&str])] = &[
    ("Arts", &["Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"]),
    ("Business", &["Careers", "Entrepreneurship", "Investing", "Management", "Marketing", "Non-Profit"]),
    ("Comedy", &["Comedy Interviews", "Improv", "Stand-Up"]),
    ("Education", &["Courses", "How To", "Language Learning", "Self-Improvement"]),
    ("Fiction", &["Comedy Fiction", "Drama", "Science Fiction"]),
    ("Government", &[]),
    ("History", &[]),
    (
        "Health & Fitness",
        &["Alternative Health", "Fitness", "Medicine", "Mental Health", "Nutrition", "Sexuality"],
    ),
    ("Kids & Family", &["Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"]),
    (
        "Leisure",
        &[
            "Animation & Manga",
            "Automotive",
            "Aviation",
            "Crafts",
            "Games",
            "Hobbies",
            "Home & Garden",
            "Video Games",
        ],
    ),
    ("Music", &["Music Commentary", "Music History", "Music Interviews"]),
    (
        "News",
        &[
            "Business News",
            "Daily News",
            "Entertainment News",
            "News Commentary",
            "Politics",
            "Sports News",
            "Tech News",
        ],
    ),
    (
        "Religion & Spirituality",
        &["Buddhism", "Christianity", "Hinduism", "Islam", "Judaism", "Religion", "Spirituality"],
    ),
    (
        "Science",
        &[
            "Astronomy",
            "Chemistry",
            "Earth Sciences",
            "Life Sciences",
            "Mathematics",
            "Natural Sciences",
            "Nature",
            "Physics",
            "Social Sciences",
        ],
    ),
    (
        "Society & Culture",
        &["Documentary", "Personal Journals", "Philosophy", "Places & Travel", "Relationships"],
    ),
    (
        "Sports",
        &[
            "Baseball",
            "Basketball",
            "Cricket",
            "Fantasy Sports",
            "Football",
            "Golf",
            "Hockey",
            "Rugby",
            "Running",
            "Soccer",
            "Swimming",
            "Tennis",
            "Volleyball",
            "Wilderness",
            "Wrestling",
        ],
    ),
    ("Technology", &[]),
    ("True Crime", &[]),
    ("TV & Film", &["After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"]),
];

/// The MIME types Apple Podcasts takes for an enclosure.
const ENCLOSURE_TYPES: &[&str] =
    &["audio/x-m4a", "audio/mpeg", "video/quicktime", "video/mp4", "video/x-m4v", "application/pdf"];

fn is_web_url(s: &str) -> bool {
    url::Url::parse(s.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn is_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// ISO 639 two-letter code, optionally with modifiers: `en`, `en-us`, `pt-BR`.
fn is_language(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or_default();
    primary.len() == 2
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A UUID in its 36-character form whose version is 5 and variant RFC 4122.
fn is_uuid_v5(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, &c)| if [8, 13, 18, 23].contains(&i) { c == b'-' } else { c.is_ascii_hexdigit() })
        && b[14] == b'5'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
}

/// Whole seconds, or `MM:SS` / `HH:MM:SS` with minutes and seconds below 60.
fn is_duration(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [seconds] => digits(seconds),
        [rest @ .., m, s] if rest.len() <= 1 => {
            rest.iter().all(|h| digits(h))
                && digits(m)
                && digits(s)
                && s.len() == 2
                && s.parse::<u32>().is_ok_and(|v| v < 60)
                && (rest.is_empty() || (m.len() == 2 && m.parse::<u32>().is_ok_and(|v| v < 60)))
        }
        _ => false,
    }
}

/// Every rule `xml` breaks, in document order; empty when the feed is accepted.
pub fn check(xml: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut broken = |rule: Rule, detail: String| out.push(Violation { rule, detail });
    let root = match parse(xml) {
        Ok(root) => root,
        Err(e) => {
            broken(WELL_FORMED, e);
            return out;
        }
    };
    if !root.is(None, "rss") || root.attrs.get("version").map(String::as_str) != Some("2.0") {
        broken(RSS_ROOT, format!("the root is <{}> version {:?}", root.local, root.attrs.get("version")));
    }
    let channels: Vec<&Node> = root.all(None, "channel").collect();
    let [channel] = channels.as_slice() else {
        broken(RSS_ROOT, format!("{} <channel> elements", channels.len()));
        return out;
    };

    // Namespaces: a prefix as written must be bound to the namespace it stands for.
    let mut nodes = Vec::new();
    root.walk(&mut nodes);
    for node in &nodes {
        let (rule, expected) = match node.prefix.as_deref() {
            Some("itunes") => (ITUNES_NAMESPACE, ITUNES_NS),
            Some("podcast") => (PODCAST_NAMESPACE, PODCAST_NS),
            Some(prefix) if node.ns.is_none() => {
                broken(ITUNES_NAMESPACE, format!("<{prefix}:{}> has an undeclared prefix", node.local));
                continue;
            }
            _ => continue,
        };
        if node.ns.as_deref() != Some(expected) {
            broken(
                rule,
                format!(
                    "<{}:{}> is in namespace {:?}",
                    node.prefix.as_deref().unwrap_or(""),
                    node.local,
                    node.ns
                ),
            );
        }
    }

    let itunes = Some(ITUNES_NS);
    let podcast = Some(PODCAST_NS);
    match channel.text_of(None, "title") {
        Some(t) if !t.is_empty() && t.chars().count() <= 255 => {}
        other => broken(CHANNEL_TITLE, format!("the title is {other:?}")),
    }
    match channel.text_of(None, "description") {
        Some(d) if !d.is_empty() && d.len() <= 4000 => {}
        Some(d) => broken(CHANNEL_DESCRIPTION, format!("the description has {} bytes", d.len())),
        None => broken(CHANNEL_DESCRIPTION, "no <description>".into()),
    }
    match channel.first(itunes, "image").and_then(|i| i.attrs.get("href")) {
        None => broken(CHANNEL_IMAGE, "no <itunes:image href>".into()),
        Some(href) => {
            let path = url::Url::parse(href).map(|u| u.path().to_ascii_lowercase()).unwrap_or_default();
            if !is_web_url(href) || ![".jpg", ".jpeg", ".png"].iter().any(|e| path.ends_with(e)) {
                broken(CHANNEL_IMAGE, format!("the image is {href:?}"));
            }
        }
    }
    match channel.text_of(None, "language") {
        Some(l) if is_language(l) => {}
        other => broken(CHANNEL_LANGUAGE, format!("the language is {other:?}")),
    }
    let categories: Vec<&Node> = channel.all(itunes, "category").collect();
    if categories.is_empty() {
        broken(CHANNEL_CATEGORY, "no <itunes:category>".into());
    }
    for category in categories {
        let name = category.attrs.get("text").map(String::as_str).unwrap_or_default();
        match APPLE_CATEGORIES.iter().find(|(c, _)| *c == name) {
            None => broken(CHANNEL_CATEGORY, format!("{name:?} is not an Apple Podcasts category")),
            Some((_, subs)) => {
                for sub in category.all(itunes, "category") {
                    let sub = sub.attrs.get("text").map(String::as_str).unwrap_or_default();
                    if !subs.contains(&sub) {
                        broken(CHANNEL_CATEGORY, format!("{sub:?} is not a subcategory of {name:?}"));
                    }
                }
            }
        }
    }
    match channel.text_of(itunes, "explicit") {
        Some("true" | "false") => {}
        other => broken(CHANNEL_EXPLICIT, format!("itunes:explicit is {other:?}")),
    }
    match channel.first(itunes, "owner") {
        None => broken(CHANNEL_OWNER, "no <itunes:owner>".into()),
        Some(owner) => {
            if owner.text_of(itunes, "name").is_none_or(str::is_empty) {
                broken(CHANNEL_OWNER, "the owner has no <itunes:name>".into());
            }
            match owner.text_of(itunes, "email") {
                Some(e) if is_email(e) => {}
                other => broken(CHANNEL_OWNER, format!("the owner's email is {other:?}")),
            }
        }
    }
    if channel.text_of(itunes, "author").is_none_or(str::is_empty) {
        broken(CHANNEL_AUTHOR, "no <itunes:author>".into());
    }
    match channel.text_of(None, "link") {
        Some(l) if is_web_url(l) => {}
        other => broken(CHANNEL_LINK, format!("the link is {other:?}")),
    }
    let items: Vec<&Node> = channel.all(None, "item").collect();
    match channel.text_of(itunes, "type") {
        None | Some("episodic") => {}
        Some("serial") => {
            for (i, item) in items.iter().enumerate() {
                if item.text_of(itunes, "episode").is_none_or(|e| e.parse::<u32>().is_err()) {
                    broken(
                        CHANNEL_TYPE,
                        format!("episode {i} of a serial show has no <itunes:episode> number"),
                    );
                }
            }
        }
        Some(other) => broken(CHANNEL_TYPE, format!("itunes:type is {other:?}")),
    }
    let self_link = channel
        .all(Some(ATOM_NS), "link")
        .find(|l| l.attrs.get("rel").map(String::as_str) == Some("self"))
        .and_then(|l| l.attrs.get("href"));
    if !self_link.is_some_and(|h| is_web_url(h)) {
        broken(ATOM_SELF, format!("the self link is {self_link:?}"));
    }
    let guids: Vec<&Node> = channel.all(podcast, "guid").collect();
    match guids.as_slice() {
        [guid] if is_uuid_v5(guid.text.trim()) => {}
        [guid] => broken(PODCAST_GUID, format!("podcast:guid is {:?}", guid.text.trim())),
        other => broken(PODCAST_GUID, format!("{} <podcast:guid> elements", other.len())),
    }
    let locks: Vec<&Node> = channel.all(podcast, "locked").collect();
    match locks.as_slice() {
        [lock] => {
            if !matches!(lock.text.trim(), "yes" | "no") {
                broken(PODCAST_LOCKED, format!("podcast:locked is {:?}", lock.text.trim()));
            }
            if let Some(owner) = lock.attrs.get("owner").filter(|o| !is_email(o)) {
                broken(PODCAST_LOCKED, format!("its owner is {owner:?}"));
            }
        }
        other => broken(PODCAST_LOCKED, format!("{} <podcast:locked> elements", other.len())),
    }

    let mut enclosures = HashSet::new();
    let mut item_guids = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = |what: &str| format!("episode {i}: {what}");
        if item.text_of(None, "title").is_none_or(str::is_empty) {
            broken(ITEM_TITLE, at("no <title>"));
        }
        let found: Vec<&Node> = item.all(None, "enclosure").collect();
        match found.as_slice() {
            [enclosure] => {
                let attr = |k: &str| enclosure.attrs.get(k).map(String::as_str).unwrap_or_default();
                let (url, length, kind) = (attr("url"), attr("length"), attr("type"));
                if !is_web_url(url) {
                    broken(ITEM_ENCLOSURE, at(&format!("the enclosure url is {url:?}")));
                }
                if length.parse::<u64>().map_or(true, |l| l == 0) {
                    broken(ITEM_ENCLOSURE, at(&format!("the enclosure length is {length:?}")));
                }
                if !ENCLOSURE_TYPES.contains(&kind) {
                    broken(ITEM_ENCLOSURE, at(&format!("the enclosure type is {kind:?}")));
                }
                if !enclosures.insert(url.to_owned()) {
                    broken(ITEM_ENCLOSURE_UNIQUE, at(&format!("{url} is another episode's enclosure too")));
                }
            }
            other => broken(ITEM_ENCLOSURE, at(&format!("{} <enclosure> elements", other.len()))),
        }
        match item.text_of(None, "guid") {
            Some(g) if !g.is_empty() => {
                if !item_guids.insert(g.to_owned()) {
                    broken(ITEM_GUID_UNIQUE, at(&format!("the guid {g:?} is another episode's too")));
                }
            }
            _ => broken(ITEM_GUID, at("no <guid>")),
        }
        match item.text_of(None, "pubDate") {
            Some(d) if chrono::DateTime::parse_from_rfc2822(d).is_ok() => {}
            other => broken(ITEM_PUBDATE, at(&format!("pubDate is {other:?}"))),
        }
        if let Some(d) = item.text_of(itunes, "duration").filter(|d| !is_duration(d)) {
            broken(ITEM_DURATION, at(&format!("itunes:duration is {d:?}")));
        }
        if let Some(d) = item.text_of(None, "description").filter(|d| d.len() > 4000) {
            broken(ITEM_DESCRIPTION, at(&format!("the description has {} bytes", d.len())));
        }
        for transcript in item.all(podcast, "transcript") {
            let url = transcript.attrs.get("url").map(String::as_str).unwrap_or_default();
            let kind = transcript.attrs.get("type").map(String::as_str).unwrap_or_default();
            let mime =
                kind.split_once('/').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'));
            if !is_web_url(url) || !mime {
                broken(TRANSCRIPT, at(&format!("a transcript has url {url:?} and type {kind:?}")));
            }
            if let Some(rel) = transcript.attrs.get("rel").filter(|r| r.as_str() != "captions") {
                broken(TRANSCRIPT, at(&format!("a transcript has rel {rel:?}")));
            }
        }
        let chapters: Vec<&Node> = item.all(podcast, "chapters").collect();
        if chapters.len() > 1 {
            broken(CHAPTERS, at(&format!("{} <podcast:chapters> elements", chapters.len())));
        }
        for chapter in chapters {
            let url = chapter.attrs.get("url").map(String::as_str).unwrap_or_default();
            let kind = chapter.attrs.get("type").map(String::as_str).unwrap_or_default();
            if !is_web_url(url) || kind != "application/json+chapters" {
                broken(CHAPTERS, at(&format!("chapters at {url:?} of type {kind:?}")));
            }
        }
    }
    out
}

/// The rules two renderings of the same feed break over time: an episode (matched by its
/// `<link>`) whose `<guid>` changed, and a changed `<podcast:guid>`. The renderings must each
/// parse; a document that does not is reported under `xml.well-formed`.
pub fn check_history(earlier: &str, later: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let (before, after) = match (parse(earlier), parse(later)) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            out.push(Violation { rule: WELL_FORMED, detail: e });
            return out;
        }
    };
    let channel = |root: &Node| -> Option<(Option<String>, HashMap<String, String>)> {
        let channel = root.first(None, "channel")?;
        let guid = channel.text_of(Some(PODCAST_NS), "guid").map(str::to_owned);
        let items = channel
            .all(None, "item")
            .filter_map(|i| Some((i.text_of(None, "link")?.to_owned(), i.text_of(None, "guid")?.to_owned())))
            .collect();
        Some((guid, items))
    };
    let (Some((show_before, items_before)), Some((show_after, items_after))) =
        (channel(&before), channel(&after))
    else {
        out.push(Violation { rule: RSS_ROOT, detail: "a rendering has no <channel>".into() });
        return out;
    };
    if show_before != show_after {
        out.push(Violation {
            rule: PODCAST_GUID_STABLE,
            detail: format!("podcast:guid was {show_before:?}, then {show_after:?}"),
        });
    }
    let mut links: Vec<&String> = items_after.keys().collect();
    links.sort();
    for link in links {
        if let Some(old) = items_before.get(link)
            && old != &items_after[link]
        {
            out.push(Violation {
                rule: GUID_STABLE,
                detail: format!("the episode {link}: guid {old:?}, then {:?}", items_after[link]),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_forms() {
        assert!(is_uuid_v5("917393e3-1b1e-5cef-ace4-edaa54e1f810"));
        assert!(!is_uuid_v5("917393e3-1b1e-4cef-ace4-edaa54e1f810"), "version 4");
        assert!(!is_uuid_v5("917393e3-1b1e-5cef-7ce4-edaa54e1f810"), "not the RFC 4122 variant");
        assert!(!is_uuid_v5("917393e31b1e5ceface4edaa54e1f810"));
        for ok in ["0", "3725", "05:02", "1:02:05", "100:00:00"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "1.5", "5:7", "1:60:00", "00:61", "a", "1:2:3:4"] {
            assert!(!is_duration(bad), "{bad}");
        }
        for ok in ["en", "en-us", "pt-BR", "zh-Hant-TW"] {
            assert!(is_language(ok), "{ok}");
        }
        for bad in ["", "eng", "english", "en_US", "e1"] {
            assert!(!is_language(bad), "{bad}");
        }
        assert!(is_email("owner@example.com"));
        for bad in ["", "owner", "owner@", "@example.com", "a b@example.com", "a@example", "a@b@c.com"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn the_category_list_is_apples_110() {
        let subs: usize = APPLE_CATEGORIES.iter().map(|(_, s)| s.len()).sum();
        assert_eq!((APPLE_CATEGORIES.len(), subs), (19, 91));
    }

    #[test]
    fn rule_ids_are_unique_and_every_rule_cites_a_source() {
        let ids: HashSet<&str> = RULES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), RULES.len());
        assert!(RULES.iter().all(|r| !r.source.is_empty() && !r.requirement.is_empty()));
    }

    #[test]
    fn malformed_xml_and_undefined_entities_are_reported() {
        assert_eq!(ids(&check("<rss version=\"2.0\"><channel>")), ["xml.well-formed"]);
        assert_eq!(
            ids(&check("<rss version=\"2.0\"><channel><title>&nbsp;</title></channel></rss>")),
            ["xml.well-formed"]
        );
    }
}
