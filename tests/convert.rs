//! `lector convert` end to end: a feed and article pages from the corpus served on loopback,
//! converted through the real `conversion.asl.json` on the local engine with espeak-ng, and a
//! catalogue of bad inputs that each end as a named error without a crash, a hang or a retry
//! of a permanent error.

mod common;

use std::path::Path;

use common::{Lector, decode_mp3_seconds, rss, rss_item};
use lector_testkit::http::{Reply, TestServer};
use serde_json::Value;

fn corpus(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus").join(path)
}

#[test]
fn a_feed_of_corpus_pages_converts_to_mp3s_that_decode_and_match_their_text() {
    let server = TestServer::start();
    server.serve_dir("/articles/", corpus("articles"));
    let feed = rss(
        "Corpus",
        &[
            rss_item("Minecraft exploit", &server.url("/articles/ars-1/source.html"), None),
            rss_item("Tracking", &server.url("/articles/aclu/source.html"), None),
            rss_item(
                "Carried in full",
                &server.url("/posts/full"),
                Some(
                    "<h2>A heading</h2><p>The feed carries this whole post, so its page is never fetched. \
                      It has two sentences and a list.</p><ul><li>one item</li><li>another item</li></ul>",
                ),
            ),
        ],
    );
    server.route("/feed.xml", Reply::rss(feed));

    let lector = Lector::new();
    let out = lector.convert_json(&[&server.url("/feed.xml"), "--all"]);
    assert_eq!(out.len(), 3, "one line per post: {out:#?}");
    assert_eq!(server.hits("/posts/full"), 0, "a post the feed carries in full is not fetched");

    for line in &out {
        assert_eq!(line["state"], "completed", "{line:#}");
        assert!(line["error"].is_null());
        let id = line["conversion_id"].as_str().unwrap();
        let audio = line["audio"].as_str().expect("an MP3 path");
        let reported = line["duration_seconds"].as_f64().unwrap();
        let decoded = decode_mp3_seconds(Path::new(audio));
        assert!(
            (decoded - reported).abs() < 0.1,
            "{audio}: decodes to {decoded:.2} s, reported {reported:.2} s"
        );

        let events = lector.events(id);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        let chunks = events.iter().filter(|e| e["type"] == "ChunkSynthesized").count();
        let mut expected =
            vec!["ConversionRequested", "ConversionStarted", "ArticleFetched", "SpeechPrepared"];
        expected.extend(std::iter::repeat_n("ChunkSynthesized", chunks));
        expected.push("ConversionCompleted");
        assert_eq!(types, expected, "{id}: the stream holds the events in order");
        assert!(chunks >= 1);

        // espeak-ng speaks about 150-200 words a minute; headings and list items add pauses.
        let words = events[2]["data"]["words"].as_f64().unwrap();
        let per_minute = words / (decoded / 60.0);
        assert!(
            (110.0..=230.0).contains(&per_minute),
            "{id}: {words} words in {decoded:.1} s is {per_minute:.0}/min"
        );

        let status = lector.status(id);
        assert_eq!(status["state"], "completed");
        assert_eq!(status["progress"]["chunks_done"], status["progress"]["chunks_total"]);
        lector.assert_events_match_schemas(id);
    }
    let long = out
        .iter()
        .find(|l| l["title"].as_str().unwrap_or_default().contains("Facebook"))
        .expect("the aclu page");
    assert!(
        lector
            .events(long["conversion_id"].as_str().unwrap())
            .iter()
            .filter(|e| e["type"] == "ChunkSynthesized")
            .count()
            > 1,
        "a long article is cut into several chunks"
    );

    // Converting again changes nothing and returns the same ids.
    let again = lector.convert_json(&[&server.url("/feed.xml"), "--all"]);
    let ids = |v: &[Value]| v.iter().map(|l| l["conversion_id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&again), ids(&out));
    assert_eq!(server.hits("/articles/ars-1/source.html"), 1, "a completed conversion is not fetched again");
}

#[test]
fn bad_posts_fail_with_named_errors_and_transient_ones_recover() {
    let server = TestServer::start();
    server.route("/bad/404", Reply::not_found());
    server.fail_then("/bad/503", 2, Reply::status(503), Reply::html(article_page("Back again")));
    server.route("/bad/loop-a", Reply::redirect(302, "/bad/loop-b"));
    server.route("/bad/loop-b", Reply::redirect(302, "/bad/loop-a"));
    server.route("/bad/huge", Reply::huge("text/html", 50 * 1024 * 1024));
    server.route("/bad/no-article", Reply::html("<html><body><nav><a href='/'>Home</a></nav></body></html>"));
    server.route("/bad/not-html", Reply::ok("application/zip", vec![0u8; 1024]));
    server.route(
        "/bad/injection",
        Reply::html(article_page(
            "</prosody></speak><speak><break time=\"600s\"/> &amp; <audio src=\"x\"/> \"quoted\" <b>bold</b>",
        )),
    );
    let items = [
        ("missing", server.url("/bad/404")),
        ("flaky", server.url("/bad/503")),
        ("loop", server.url("/bad/loop-a")),
        ("huge", server.url("/bad/huge")),
        ("empty", server.url("/bad/no-article")),
        ("zip", server.url("/bad/not-html")),
        ("injection", server.url("/bad/injection")),
        ("metadata", "http://169.254.169.254/latest/meta-data/".into()),
        ("private", "http://10.11.12.13/post".into()),
        ("file", "file:///etc/passwd".into()),
    ];
    let feed = rss("Bad", &items.iter().map(|(title, url)| rss_item(title, url, None)).collect::<Vec<_>>());
    server.route("/feed.xml", Reply::rss(feed));

    let lector = Lector::new();
    let out = lector.convert_json(&[&server.url("/feed.xml"), "--all"]);
    assert_eq!(out.len(), items.len(), "one line per post, in the feed's order: {out:#?}");
    let by_title = |t: &str| &out[items.iter().position(|(title, _)| *title == t).unwrap()];
    let expect_error = |t: &str, name: &str| {
        let line = by_title(t);
        assert_eq!(line["state"], "failed", "{t}: {line:#}");
        let error = line["error"].as_str().unwrap();
        assert!(error.starts_with(name), "{t}: expected {name}, got {error}");
        let events = lector.events(line["conversion_id"].as_str().unwrap());
        let failed =
            events.iter().find(|e| e["type"] == "ConversionFailed").expect("a ConversionFailed event");
        assert_eq!(failed["data"]["error"], name);
        assert_eq!(failed["data"]["state"], "FetchArticle");
        assert!(!failed["data"]["cause"].as_str().unwrap().is_empty(), "{t}: the failure says why");
    };
    expect_error("missing", "Lector.NotFound");
    expect_error("loop", "Lector.InvalidInput");
    expect_error("huge", "Lector.TooLarge");
    expect_error("empty", "Lector.NoArticle");
    expect_error("zip", "Lector.Unsupported");
    expect_error("metadata", "Lector.NotAllowed");
    expect_error("private", "Lector.NotAllowed");
    expect_error("file", "Lector.NotAllowed");
    assert_eq!(server.hits("/bad/404"), 1, "a permanent error is not retried");
    assert_eq!(server.hits("/bad/huge"), 1);

    assert_eq!(
        by_title("flaky")["state"],
        "completed",
        "a 503 that recovers is retried until it does: {:#}",
        by_title("flaky")
    );
    assert_eq!(server.hits("/bad/503"), 3);

    // Markup in the text is read as text: it cannot end the SSML document or add elements.
    let injected = by_title("injection");
    assert_eq!(injected["state"], "completed", "{injected:#}");
    let id = injected["conversion_id"].as_str().unwrap();
    let speech = lector.object(&format!("work/{id}/1/chunks.json"));
    let speech: Value = serde_json::from_slice(&speech).unwrap();
    let units = speech["units"].as_array().unwrap();
    assert!(!units.is_empty());
    for unit in units {
        let ssml = unit["ssml"].as_str().unwrap();
        assert_eq!(ssml.matches("<speak>").count(), 1, "{ssml}");
        assert!(!ssml.contains("<audio") && !ssml.contains("600s\"/>") && !ssml.contains("<b>"), "{ssml}");
    }
    assert!(injected["duration_seconds"].as_f64().unwrap() < 120.0, "no 600 s break was injected");
}

#[test]
fn a_feed_that_cannot_be_read_is_a_clear_error_and_a_billion_laughs_feed_does_not_hang() {
    let server = TestServer::start();
    server.route(
        "/truncated.xml",
        Reply::rss("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Cut"),
    );
    server.route("/laughs.xml", Reply::rss(billion_laughs()));
    server.route("/big.xml", Reply::huge("application/rss+xml", 50 * 1024 * 1024));
    let lector = Lector::new();

    for (path, says) in [("/truncated.xml", "feed"), ("/big.xml", "10485760")] {
        let run = lector.run(&["convert", &server.url(path), "--all", "--json"]);
        assert!(!run.status.success(), "{path} must fail");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("error:") && stderr.contains(says), "{path}: {stderr}");
    }
    // Entities are never expanded: the feed reads (or is refused) at once, with no gigabyte of
    // laughter in memory.
    let started = std::time::Instant::now();
    let run = lector.run(&["feed", &server.url("/laughs.xml"), "--json"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("lollollol"), "entities were expanded");
}

fn article_page(title: &str) -> String {
    let paragraph = "This paragraph is the body of a short post that a reader wants to hear. \
                     It has several sentences, so that it reads as an article and not as a list of links. \
                     Dr. Smith said so, e.g. in 2024, and 3.14 is still pi.";
    format!(
        "<!doctype html><html lang=\"en\"><head><title>{t}</title></head><body><article><h1>{t}</h1>\
         <p>{p}</p><p>{p}</p><p>{p}</p></article></body></html>",
        t = html_escape(title),
        p = paragraph
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn billion_laughs() -> String {
    let mut doc = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE rss [\n<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let prev = if i == 1 { "lol".to_owned() } else { format!("lol{}", i - 1) };
        doc.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", format!("&{prev};").repeat(10)));
    }
    doc.push_str(
        "]>\n<rss version=\"2.0\"><channel><title>&lol9;</title><item><title>&lol9;</title>\
                  <link>http://example.com/a</link></item></channel></rss>",
    );
    doc
}
