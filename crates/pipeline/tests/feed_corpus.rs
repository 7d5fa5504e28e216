//! The feed reader on real feeds (testdata/corpus/feeds, from rss-parser's test suite) against
//! what rss-parser returns for them: item counts, titles, links, enclosures, images, `ttl`,
//! `itunes:explicit` and the feed's own address; and what subscriptions rely on: every post's
//! key and content hash the same however the feed is ordered.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lector_pipeline::feed::{Feed, FeedError, parse_feed};
use url::Url;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus/feeds")
}

/// Agreement with rss-parser over one feed.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    items_expected: usize,
    items_got: usize,
    titles_agree: usize,
    links_agree: usize,
    disagreements: Vec<String>,
}

fn compare(name: &str) -> Result<Tally, FeedError> {
    let dir = corpus();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == name) && p.extension().is_some_and(|e| e != "json"))
        .unwrap();
    let base = Url::parse(&format!("https://feeds.example.test/{name}")).unwrap();
    let feed = parse_feed(&std::fs::read(&file).unwrap(), Some(&base), None)?;
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.expected.json"))).unwrap()).unwrap();
    let items = expected["feed"]["items"].as_array().cloned().unwrap_or_default();
    let mut t = Tally { items_expected: items.len(), items_got: feed.posts.len(), ..Tally::default() };
    for (i, (want, got)) in items.iter().zip(&feed.posts).enumerate() {
        let want_title = want["title"].as_str().map(visible);
        if want_title == got.title.clone() {
            t.titles_agree += 1;
        } else {
            t.disagreements.push(format!("{name}[{i}] title: {want_title:?} vs {:?}", got.title));
        }
        let want_link =
            want["link"].as_str().map(|l| base.join(l.trim()).map(String::from).unwrap_or(l.to_string()));
        if want_link == got.url.as_ref().map(|u| u.to_string()) {
            t.links_agree += 1;
        } else {
            t.disagreements
                .push(format!("{name}[{i}] link: {want_link:?} vs {:?}", got.url.as_ref().map(Url::as_str)));
        }
    }
    Ok(t)
}

/// Every corpus feed that rss-parser reads, with the figures Lector reaches on it.
const FEEDS: &[(&str, usize)] = &[
    ("content-encoded", 7),
    ("craigslist", 25),
    ("giantbomb-podcast", 730),
    ("guardian", 55),
    ("gulp-atom", 10),
    ("heise", 15),
    ("heraldsun", 2),
    ("incomplete-fields", 1),
    ("instant-article", 1),
    ("itunes-category", 1),
    ("itunes-keywords-astext", 32),
    ("many-links", 25),
    ("narro", 1),
    ("pagination-links", 1),
    ("reddit-atom", 24),
];

/// Titles are compared as visible text, since Lector gives plain text where rss-parser gives
/// the raw field: craigslist's titles carry escaped markup (`&lt;sup&gt;2&lt;/sup&gt;`) and
/// entities (`&#x0024;`) that rss-parser leaves as they are. Links are compared after
/// resolving against the feed's address, as Lector does (gulp-atom's links are relative).
/// With those two readings every item, title and link agrees.
#[test]
fn titles_links_and_counts_agree_with_rss_parser() {
    let mut total = Tally::default();
    for (name, items) in FEEDS {
        let t = compare(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((t.items_expected, t.items_got), (*items, *items), "{name}: item count");
        assert!(t.disagreements.is_empty(), "{name}: {:#?}", t.disagreements);
        total.items_expected += t.items_expected;
        total.items_got += t.items_got;
        total.titles_agree += t.titles_agree;
        total.links_agree += t.links_agree;
    }
    assert_eq!((total.items_got, total.titles_agree, total.links_agree), (930, 930, 930));
}

/// `unrecognized.rss` is an HTML "document moved" page; rss-parser fails on it too (it has no
/// expected output), and Lector names it.
#[test]
fn an_html_page_is_named_not_a_feed() {
    let body = std::fs::read(corpus().join("unrecognized.rss")).unwrap();
    assert!(
        matches!(parse_feed(&body, None, None), Err(FeedError::NotAFeed(ref why)) if why.contains("HTML"))
    );
}

/// Markup in the expected title removed, entities decoded, whitespace collapsed.
fn visible(s: &str) -> String {
    let decoded = html_escape::decode_html_entities(s);
    let mut out = String::new();
    let mut in_tag = false;
    for c in decoded.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Real feeds broken the ways feedparser forgives read the same as the originals; a truncated
/// one is refused by name.
#[test]
fn broken_copies_of_real_feeds_recover_like_feedparser() {
    let original = std::fs::read_to_string(corpus().join("guardian.rss")).unwrap();
    let base = Url::parse("https://feeds.example.test/guardian").unwrap();
    let good = parse_feed(original.as_bytes(), Some(&base), None).unwrap();
    assert!(good.repairs.is_empty());
    let titles = |xml: &[u8]| {
        let feed = parse_feed(xml, Some(&base), None).unwrap();
        feed.posts.iter().map(|p| p.title.clone()).collect::<Vec<_>>()
    };
    let want: Vec<_> = good.posts.iter().map(|p| p.title.clone()).collect();
    let bare_amp = original.replacen("<title>", "<title>Fish & chips, ", 1);
    assert_eq!(titles(bare_amp.as_bytes())[1..], want[1..]);
    let junk = format!("{original}\n<html><body>tracking pixel</body></html>\0\0");
    assert_eq!(titles(junk.as_bytes()), want);
    let entity = original.replacen("</description>", "&nbsp;&mdash;</description>", 3);
    let feed = parse_feed(entity.as_bytes(), Some(&base), None).unwrap();
    assert!(
        feed.posts[0].summary.as_deref().is_some_and(|s| s.ends_with('\u{2014}')),
        "{:?}",
        feed.posts[0].summary
    );
    assert_eq!(titles(entity.as_bytes()), want);
    let wrong_encoding = original.replacen("encoding=\"utf-8\"", "encoding=\"ISO-8859-1\"", 1);
    assert_ne!(wrong_encoding, original);
    let feed = parse_feed(wrong_encoding.as_bytes(), Some(&base), None).unwrap();
    assert_eq!(feed.posts.iter().map(|p| p.title.clone()).collect::<Vec<_>>(), want);
    // A file cut short keeps its complete items, and says so.
    let truncated = &original[..original.len() / 2];
    let feed = parse_feed(truncated.as_bytes(), Some(&base), None).unwrap();
    let kept: Vec<_> = feed.posts.iter().map(|p| p.title.clone()).collect();
    assert!(kept.len() > 10 && kept.len() < want.len(), "{} of {} kept", kept.len(), want.len());
    assert_eq!(kept[..], want[..kept.len()]);
    let cut = format!("cut short: the {} complete items kept", kept.len());
    assert!(feed.repairs.contains(&cut), "{:?}", feed.repairs);
    assert_eq!(good.posts[..kept.len()], feed.posts[..], "the kept posts read as in the whole feed");
    // Cut before its first item ends, nothing can be kept: that is no feed to read.
    let head = &original[..original.find("</item>").unwrap()];
    assert!(matches!(parse_feed(head.as_bytes(), Some(&base), None), Err(FeedError::Malformed(_))));
}

/// Lector's date parser reads every date of the corpus feeds as feed-rs's own lenient one does.
#[test]
fn dates_agree_with_feed_rs_on_the_corpus() {
    let mut compared = 0;
    for (name, _) in FEEDS {
        let file = std::fs::read_dir(corpus())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_stem().is_some_and(|s| s == *name) && p.extension().is_some_and(|e| e != "json"))
            .unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let theirs = feed_rs::parser::parse(bytes.as_slice()).unwrap();
        let ours = parse_feed(&bytes, None, None).unwrap();
        for (t, o) in theirs.entries.iter().zip(&ours.posts) {
            assert_eq!(t.published.or(t.updated), o.published, "{name}: {:?}", t.title);
            compared += usize::from(o.published.is_some());
        }
    }
    assert!(compared > 850, "{compared} dates compared");
}

fn read_corpus_feed(name: &str) -> (Vec<u8>, serde_json::Value, Url) {
    let file = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == name) && p.extension().is_some_and(|e| e != "json"))
        .unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus().join(format!("{name}.expected.json"))).unwrap())
            .unwrap();
    let base = Url::parse(&format!("https://feeds.example.test/{name}")).unwrap();
    (std::fs::read(file).unwrap(), expected, base)
}

/// An address as `Url` writes it (`https://host` gains its `/`).
fn normal(v: &serde_json::Value) -> Option<Url> {
    v.as_str().and_then(|s| Url::parse(s).ok())
}

/// What polling and podcasts need from a feed, against rss-parser where it reads the same
/// thing: each item's enclosure, the feed's image (RSS `<image>`, else `itunes:image`), an RSS
/// feed's `atom:link rel="self"`, `ttl` and `itunes:explicit`.
#[test]
fn enclosures_images_self_ttl_and_explicit_agree_with_rss_parser() {
    let (mut enclosures, mut images, mut selves, mut ttls, mut explicits) = (0, 0, 0, 0, 0);
    for (name, _) in FEEDS {
        let (bytes, expected, base) = read_corpus_feed(name);
        let feed = parse_feed(&bytes, Some(&base), None).unwrap();
        let want = &expected["feed"];
        for (i, (item, post)) in want["items"].as_array().unwrap().iter().zip(&feed.posts).enumerate() {
            if let Some(enclosure) = item.get("enclosure") {
                let got = post.enclosure.as_ref().unwrap_or_else(|| panic!("{name}[{i}]: no enclosure"));
                assert_eq!(Some(&got.url), normal(&enclosure["url"]).as_ref(), "{name}[{i}]");
                assert_eq!(got.mime_type.as_deref(), enclosure["type"].as_str(), "{name}[{i}]");
                let length = enclosure["length"].as_str().and_then(|l| l.parse::<u64>().ok());
                assert_eq!(got.length, length, "{name}[{i}]");
                enclosures += 1;
            }
        }
        let image = want["image"]["url"].as_str().or(want["itunes"]["image"].as_str());
        if let Some(image) = image {
            let got = feed.image.as_ref().unwrap_or_else(|| panic!("{name}: no image"));
            assert_eq!(Some(&got.url), Url::parse(image).ok().as_ref(), "{name}");
            let px = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<u32>().ok());
            assert_eq!(
                (got.width, got.height),
                (px(&want["image"]["width"]), px(&want["image"]["height"])),
                "{name}"
            );
            images += 1;
        }
        if feed.format.starts_with("rss")
            && let Some(own) = want["feedUrl"].as_str()
        {
            assert_eq!(feed.self_url, Url::parse(own).ok(), "{name}");
            selves += 1;
        }
        let ttl = want["ttl"].as_str().and_then(|t| t.parse::<u32>().ok());
        assert_eq!(feed.ttl_minutes, ttl, "{name}");
        ttls += usize::from(ttl.is_some());
        let explicit =
            want["itunes"]["explicit"].as_str().map(|e| matches!(e.to_lowercase().as_str(), "yes" | "true"));
        assert_eq!(feed.explicit, explicit, "{name}");
        explicits += usize::from(explicit.is_some());
    }
    assert_eq!((enclosures, images, selves, ttls, explicits), (767, 8, 6, 1, 5));
}

/// An Atom feed through FeedBurner names its WebSub hub and its own address in the Atom
/// namespace under another prefix; its posts' pages are not their comment pages.
#[test]
fn a_feedburner_feed_names_its_hub_and_itself() {
    let (bytes, _, base) = read_corpus_feed("many-links");
    let feed = parse_feed(&bytes, Some(&base), None).unwrap();
    assert_eq!(feed.hub.as_ref().map(Url::as_str), Some("http://pubsubhubbub.appspot.com/"));
    assert_eq!(feed.self_url.as_ref().map(Url::as_str), Some("http://feeds.feedburner.com/blogspot/RLXA"));
    assert_eq!(feed.link.as_ref().map(Url::as_str), Some("http://testing.googleblog.com/"));
}

/// The items of a feed in reverse order, when they stand in one run between the head and the
/// tail of the document.
fn reversed(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    // `<item` but not `<items>`.
    let opens_at = |s: &str| {
        s.starts_with(&open) && s[open.len()..].starts_with(|c: char| c == '>' || c.is_whitespace())
    };
    let first = text.match_indices(&open).map(|(i, _)| i).find(|&i| opens_at(&text[i..]))?;
    let last = text.rfind(&close)? + close.len();
    let mut items = Vec::new();
    let mut rest = &text[first..last];
    while !rest.is_empty() {
        let end = rest.find(&close)? + close.len();
        items.push(&rest[..end]);
        rest = rest[end..].trim_start();
        if !rest.is_empty() && !opens_at(rest) {
            return None;
        }
    }
    items.reverse();
    Some(format!("{}{}{}", &text[..first], items.join("\n"), &text[last..]))
}

fn keys_and_hashes(feed: &Feed) -> BTreeMap<String, String> {
    feed.posts.iter().map(|p| (p.id.clone(), p.content_hash.clone())).collect()
}

/// On every corpus feed, reading it twice or with its items in reverse order gives every post
/// the same key and the same content hash: nothing is random and nothing is the position.
#[test]
fn every_post_keeps_its_key_and_hash_however_the_feed_is_ordered() {
    let mut reordered = 0;
    for (name, _) in FEEDS {
        let (bytes, _, base) = read_corpus_feed(name);
        let feed = parse_feed(&bytes, Some(&base), None).unwrap();
        let again = parse_feed(&bytes, Some(&base), None).unwrap();
        assert_eq!(feed, again, "{name}");
        let text = String::from_utf8(bytes).unwrap();
        let tag = if feed.format == "atom" { "entry" } else { "item" };
        let Some(reversed) = reversed(&text, tag) else { continue };
        let back = parse_feed(reversed.as_bytes(), Some(&base), None).unwrap();
        assert_eq!(back.posts.len(), feed.posts.len(), "{name}");
        assert_eq!(
            back.posts.first().map(|p| &p.id),
            feed.posts.last().map(|p| &p.id),
            "{name}: the reversal reversed nothing"
        );
        assert_eq!(keys_and_hashes(&back), keys_and_hashes(&feed), "{name}");
        reordered += 1;
    }
    assert!(reordered >= 12, "only {reordered} feeds could be reordered");
}
