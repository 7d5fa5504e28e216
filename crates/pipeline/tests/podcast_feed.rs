//! The podcast feed renderer against the checker of Apple's and Podcasting 2.0's rules
//! (`lector_testkit::podcast_rules`): every feed the renderer makes passes, and the checker
//! fails on a feed missing its artwork, missing its owner, with a changing guid, and on each
//! other rule broken on purpose.

mod podcast_common;

use lector_pipeline::podcast::{Episode, podcast_guid, render};
use lector_testkit::podcast_rules::{assert_accepted, check, check_history, ids};
use podcast_common::{as_read, channel, episode, feeds, hostile_episode};
use quick_xml::events::Event;

/// The texts of every `<title>` inside an `<item>`, read back by an XML parser.
fn item_titles(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut in_item, mut in_title, mut titles) = (false, false, Vec::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == b"item" => in_item = true,
            Event::End(e) if e.name().as_ref() == b"item" => in_item = false,
            Event::Start(e) if in_item && e.name().as_ref() == b"title" => {
                in_title = true;
                titles.push(String::new());
            }
            Event::End(e) if e.name().as_ref() == b"title" => in_title = false,
            Event::Text(t) if in_title => titles.last_mut().unwrap().push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) if in_title => {
                let c = match r.decode().unwrap().as_ref() {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("unexpected entity {other}"),
                };
                titles.last_mut().unwrap().push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    titles
}

#[test]
fn every_feed_the_renderer_makes_passes_the_checker() {
    for (name, channel, episodes) in feeds() {
        let xml = render(&channel, &episodes);
        let violations = check(&xml);
        // Until an owner is set the feed is still rendered, and breaks that rule alone.
        let expected: &[&str] = if channel.owner.is_none() { &["channel.owner"] } else { &[] };
        assert_eq!(ids(&violations), expected, "{name}: {violations:#?}\n{xml}");
    }
}

#[test]
fn the_checker_fails_a_feed_missing_its_artwork() {
    let xml = render(&channel(true), &[episode(1)]);
    let image = xml.lines().find(|l| l.contains("<itunes:image ")).expect("an itunes:image line").to_owned();
    let without = xml.replace(&format!("{image}\n"), "");
    assert_eq!(ids(&check(&without)), ["channel.image"]);
    // An image that is not a .jpg or .png address is refused as well.
    let gif = xml.replace("cover.png\"/>", "cover.gif\"/>");
    assert_eq!(ids(&check(&gif)), ["channel.image"]);
}

#[test]
fn the_checker_fails_a_feed_missing_its_owner() {
    let xml = render(&channel(false), &[episode(1)]);
    assert!(!xml.contains("itunes:owner"), "no owner is rendered without one: {xml}");
    assert_eq!(ids(&check(&xml)), ["channel.owner"]);
    let no_email =
        render(&channel(true), &[episode(1)]).replace("<itunes:email>ann@example.com</itunes:email>", "");
    assert_eq!(ids(&check(&no_email)), ["channel.owner"]);
}

#[test]
fn the_checker_fails_a_feed_whose_guid_changes() {
    let before = render(&channel(true), &[episode(2), episode(1)]);
    let changed = Episode { guid: "lector:another-id".into(), ..episode(1) };
    let after = render(&channel(true), &[episode(2), changed]);
    assert!(check(&after).is_empty(), "each rendering is fine on its own");
    let violations = check_history(&before, &after);
    assert_eq!(ids(&violations), ["history.guid-stable"]);
    assert!(violations[0].detail.contains("https://blog.example.com/posts/1"), "{}", violations[0]);

    // A new revision (a new audio address and size, a new title) keeping the guid is fine.
    let mut revised = episode(1);
    revised.title = "Post number 1, revised".into();
    revised.enclosure.url = revised.enclosure.url.replace("rev=1", "rev=2");
    revised.enclosure.length += 4096;
    let later = render(&channel(true), &[episode(2), revised]);
    assert_eq!(check_history(&before, &later), []);

    // The show's own guid must not change either.
    let mut moved = channel(true);
    moved.guid = podcast_guid("https://elsewhere.example/feed.xml");
    assert_eq!(
        ids(&check_history(&before, &render(&moved, &[episode(2), episode(1)]))),
        ["history.podcast-guid-stable"]
    );
}

#[test]
fn the_checker_fails_each_rule_broken_on_purpose() {
    let good = render(&channel(true), &[episode(2), episode(1)]);
    assert_accepted(&good);
    let guid = podcast_guid(&channel(true).self_url).to_string();
    let cases: Vec<(&str, String)> = vec![
        ("rss.root", good.replace("<rss version=\"2.0\"", "<rss version=\"0.91\"")),
        ("namespace.itunes", good.replace("podcast-1.0.dtd", "Podcast-1.0.dtd")),
        (
            "namespace.podcast",
            good.replace("https://podcastindex.org/namespace/1.0", "https://example.com/ns"),
        ),
        ("channel.title", good.replacen("<title>Example Blog (narrated)</title>", "<title></title>", 1)),
        ("channel.description", good.replace("Posts of Example Blog, read aloud.", &"x".repeat(4001))),
        ("channel.language", good.replace("<language>en-us</language>", "<language>English</language>")),
        ("channel.category", good.replace("text=\"Documentary\"", "text=\"Podcasting\"")),
        ("channel.category", good.replace("text=\"Society &amp; Culture\"", "text=\"Society and Culture\"")),
        ("channel.explicit", good.replace("<itunes:explicit>false", "<itunes:explicit>clean")),
        ("channel.author", good.replace("<itunes:author>Example Blog</itunes:author>", "")),
        ("channel.link", good.replacen("<link>https://blog.example.com/</link>", "<link>blog</link>", 1)),
        ("channel.type", good.replace("<itunes:type>episodic", "<itunes:type>serial")),
        ("channel.atom-self", good.replace("rel=\"self\"", "rel=\"alternate\"")),
        ("podcast.guid", good.replace(&guid, &guid.replacen("-5", "-4", 1))),
        ("podcast.locked", good.replace(">yes</podcast:locked>", ">true</podcast:locked>")),
        ("item.title", good.replace("<title>Post number 1</title>", "")),
        ("item.enclosure", good.replace("type=\"audio/mpeg\"", "type=\"audio/wav\"")),
        ("item.enclosure", good.replace("length=\"100007\"", "length=\"0\"")),
        ("item.enclosure-unique", good.replace("0000000000000002/audio", "0000000000000001/audio")),
        ("item.guid", good.replace("<guid isPermaLink=\"false\">lector:0000000000000001</guid>", "")),
        ("item.guid-unique", good.replace("lector:0000000000000001", "lector:0000000000000002")),
        ("item.pubdate", good.replace("Fri, 1 Mar 2024 09:30:00 +0000", "2024-03-01")),
        (
            "item.duration",
            good.replace("<itunes:duration>63</itunes:duration>", "<itunes:duration>1h</itunes:duration>"),
        ),
        ("podcast.transcript", good.replace("type=\"text/vtt\"", "type=\"vtt\"")),
        ("podcast.transcript", good.replace("rel=\"captions\"", "rel=\"subtitles\"")),
        ("podcast.chapters", good.replace("application/json+chapters", "application/json")),
    ];
    for (rule, xml) in cases {
        assert_ne!(xml, good, "the case for {rule} changed nothing");
        let found = ids(&check(&xml));
        // A tag in the wrong namespace is also missing from the right one: other rules fire too.
        let only = !rule.starts_with("namespace.");
        assert!(
            found.contains(&rule) && (!only || found.iter().all(|id| *id == rule)),
            "expected {}{rule}, got {found:?}",
            if only { "only " } else { "" }
        );
    }
}

#[test]
fn hostile_titles_and_summaries_cannot_break_the_feed() {
    let hostile = hostile_episode(7);
    let xml = render(&channel(true), std::slice::from_ref(&hostile));
    assert_accepted(&xml);
    assert_eq!(item_titles(&xml), [as_read(&hostile.title)]);
    assert!(!xml.contains("<script>") && !xml.contains("]]>") && !xml.contains('\u{7}'));
    let description = xml
        .lines()
        .find(|l| l.contains("<description>Tom &amp; Jerry ]]&gt; a &lt; b"))
        .expect("the summary");
    assert!(description.len() < 4100 && description.contains("…</description>"), "{}", description.len());
}

#[test]
fn episodes_carry_the_posts_own_date_whole_seconds_and_the_show_guid_of_its_address() {
    let e = episode(1);
    let xml = render(&channel(true), std::slice::from_ref(&e));
    assert!(xml.contains(&format!("<pubDate>{}</pubDate>", e.published.to_rfc2822())), "{xml}");
    assert!(xml.contains("<itunes:duration>63</itunes:duration>"), "61.6 + 1 rounds to 63 seconds: {xml}");
    assert!(xml.contains(&format!(
        "<enclosure url=\"{}\" length=\"100007\" type=\"audio/mpeg\"/>",
        e.enclosure.url.replace('&', "&amp;")
    )));
    let guid = podcast_guid("https://lector.example/feeds/0123456789abcdef/podcast.xml");
    assert!(xml.contains(&format!("<podcast:guid>{guid}</podcast:guid>")));
    assert!(xml.contains("<podcast:locked owner=\"ann@example.com\">yes</podcast:locked>"));
    for tag in [
        "<podcast:transcript url=\"https://lector.example/conversions/0000000000000001/transcript.vtt\" type=\"text/vtt\" rel=\"captions\"/>",
        "<podcast:transcript url=\"https://lector.example/conversions/0000000000000001/transcript.json\" type=\"application/json\"/>",
        "<podcast:chapters url=\"https://lector.example/conversions/0000000000000001/chapters.json\" type=\"application/json+chapters\"/>",
    ] {
        assert!(xml.contains(tag), "{tag} in {xml}");
    }
}
