//! `lector serve` over HTTP only, as the front-end uses it: preview a corpus feed served on
//! loopback, submit posts (one twice), poll them to completed, download the MP3 whole and by
//! range, read the podcast feed back with a feed parser, and get an envelope error for each bad
//! request.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Http, Lector, Serve};
use lector_testkit::http::{Reply, TestServer};
use serde_json::{Value, json};

fn corpus_feed(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/feeds").join(name)).unwrap()
}

fn assert_envelope(answer: &common::Answer, code: u16, status: &str, says: &str) {
    let body = answer.json();
    assert_eq!(answer.status, code, "{body:#}");
    assert_eq!(body["status"], status, "{body:#}");
    assert!(body["data"].is_null(), "errors carry no data: {body:#}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(says), "'{message}' should mention '{says}'");
    assert_eq!(body.as_object().unwrap().len(), 3, "exactly status, message and data: {body:#}");
}

#[test]
fn the_front_end_path_works_over_http() {
    let feeds = TestServer::start();
    feeds.route("/feed.xml", Reply::rss(corpus_feed("content-encoded.rss")));
    let feed_url = feeds.url("/feed.xml");
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();

    assert_eq!(http.get(&serve.url("/health")).json()["data"]["status"], "ok");
    let voices = http.get(&serve.url("/voices")).json();
    // No voice named: each article is read by the voice that speaks its language.
    assert_eq!(voices["data"]["default_voice"], "auto");
    let listed = voices["data"]["voices"].as_array().unwrap();
    assert!(listed.iter().any(|v| v["id"] == "en-us" && v["language"] == "en-US"), "{listed:?}");
    assert!(listed.iter().any(|v| v["language"].as_str().unwrap().starts_with("fr")));

    // Preview: every post with its length and cost estimate.
    let preview = http.post_json(&serve.url("/feeds/preview"), &json!({"url": feed_url}));
    assert_eq!(preview.status, 200, "{}", String::from_utf8_lossy(&preview.body));
    let preview = preview.json()["data"].clone();
    let posts = preview["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 7);
    for post in posts {
        if post["full_text"] == true {
            assert!(post["characters"].as_u64().unwrap() > 100, "{post:#}");
            assert_eq!(post["estimated_cost_usd"], 0.0, "espeak-ng costs nothing");
        } else {
            // Its page is on the internet, which this test does not reach: measured as unknown,
            // with the reason.
            assert!(post["characters"].is_null(), "{post:#}");
            assert!(!post["measure_error"].as_str().unwrap().is_empty());
        }
        assert!(post["state"].is_null());
    }
    assert_eq!(posts.iter().filter(|p| p["full_text"] == true).count(), 6);
    assert_eq!(feeds.hits("/feed.xml"), 1);
    // The same preview for Polly's neural engine is refused here: this server speaks espeak only.
    let neural = http.post_json(&serve.url("/feeds/preview"), &json!({"url": feed_url, "engine": "neural"}));
    assert_envelope(&neural, 400, "badRequest", "neural");

    // Submit the two shortest posts, the first one twice.
    let mut shortest: Vec<&Value> = posts.iter().filter(|p| p["full_text"] == true).collect();
    shortest.sort_by_key(|p| p["characters"].as_u64().unwrap());
    let (a, b) = (shortest[0]["url"].as_str().unwrap(), shortest[1]["url"].as_str().unwrap());
    let first = http.post_json(&serve.url("/conversions"), &json!({"url": a, "feed_url": feed_url}));
    assert_eq!(first.status, 202);
    assert_eq!(first.json()["status"], "accepted");
    let again = http.post_json(&serve.url("/conversions"), &json!({"url": a, "feed_url": feed_url}));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["status"], "skipped");
    assert_eq!(
        again.json()["data"]["conversion_id"],
        first.json()["data"]["conversion_id"],
        "same post and voice, same id"
    );
    assert_eq!(again.json()["data"]["created"], false);
    let second = http
        .post_json(&serve.url("/conversions/batch"), &json!({"feed_url": feed_url, "posts": [{"url": b}]}));
    assert_eq!(second.status, 202, "{}", String::from_utf8_lossy(&second.body));

    let status_urls = [
        first.json()["data"]["status_url"].as_str().unwrap().to_owned(),
        second.json()["data"]["conversions"][0]["status_url"].as_str().unwrap().to_owned(),
    ];
    let mut done = Vec::new();
    for url in &status_urls {
        let status = http.wait_final(url, Duration::from_secs(180));
        assert_eq!(status["state"], "completed", "{status:#}");
        assert_eq!(status["progress"]["chunks_done"], status["progress"]["chunks_total"]);
        assert!(status["embed_html"].as_str().unwrap().contains("<iframe"));
        done.push(status);
    }
    // Starting nothing new: exactly one stream per post, one ConversionRequested each.
    let events = http.get(&format!("{}/events", status_urls[0])).json();
    let requested =
        events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "ConversionRequested").count();
    assert_eq!(requested, 1);
    let started =
        events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "ConversionStarted").count();
    assert_eq!(started, 1, "the repeated submission started no second execution");

    // The MP3, whole and by range.
    let audio_url = done[0]["audio_url"].as_str().unwrap();
    let whole = http.get(audio_url);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("audio/mpeg"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.body.len() as u64, done[0]["audio_bytes"].as_u64().unwrap());
    let decoded = lector_testkit::audio::decode_mp3(&whole.body).seconds();
    assert!((decoded - done[0]["duration_seconds"].as_f64().unwrap()).abs() < 0.1);
    let part = http.get_with(audio_url, &[("range", "bytes=100-1099")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, whole.body[100..1100]);
    assert_eq!(part.header("content-range"), Some(format!("bytes 100-1099/{}", whole.body.len()).as_str()));
    let tail = http.get_with(audio_url, &[("range", "bytes=-500")]);
    assert_eq!(tail.body, whole.body[whole.body.len() - 500..]);
    let beyond = http.get_with(audio_url, &[("range", &format!("bytes={}-", whole.body.len()))]);
    assert_eq!(beyond.status, 416);

    // The embed page plays the audio.
    let embed = http.get(done[0]["embed_url"].as_str().unwrap());
    assert_eq!(embed.status, 200);
    let html = String::from_utf8_lossy(&embed.body);
    assert!(html.contains(audio_url) && html.contains("<audio"), "{html}");

    // The podcast feed, read back by a feed parser, lists both episodes.
    let podcast = http.get(done[0]["podcast_url"].as_str().unwrap());
    assert_eq!(podcast.status, 200);
    assert!(podcast.header("content-type").unwrap().starts_with("application/rss+xml"));
    let parsed = feed_rs::parser::parse(&podcast.body[..]).expect("the podcast feed parses");
    assert_eq!(parsed.entries.len(), 2);
    for status in &done {
        let entry = parsed
            .entries
            .iter()
            .find(|e| e.links.iter().any(|l| l.href == status["post_url"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no episode for {}", status["post_url"]));
        let enclosure = entry.media.iter().flat_map(|m| &m.content).next().expect("an enclosure");
        assert_eq!(enclosure.url.as_ref().unwrap().as_str(), status["audio_url"].as_str().unwrap());
        assert_eq!(enclosure.size, status["audio_bytes"].as_u64());
        assert_eq!(enclosure.content_type.as_ref().unwrap().to_string(), "audio/mpeg");
        let duration = entry.media.iter().find_map(|m| m.duration).expect("an itunes:duration");
        assert!((duration.as_secs_f64() - status["duration_seconds"].as_f64().unwrap()).abs() <= 1.0);
        assert!(entry.published.is_some());
    }
    let xml = String::from_utf8_lossy(&podcast.body);
    assert!(xml.contains("<itunes:duration>") && xml.contains("isPermaLink=\"false\""));

    // The list, newest first, filtered by feed and state.
    let list =
        http.get(&serve.url(&format!("/conversions?state=completed&feed_url={}", urlencode(&feed_url))));
    assert_eq!(list.json()["data"]["conversions"].as_array().unwrap().len(), 2);
    let page = http.get(&serve.url("/conversions?limit=1")).json();
    let cursor = page["data"]["next_cursor"].as_str().expect("a second page").to_owned();
    let next = http.get(&serve.url(&format!("/conversions?limit=1&cursor={cursor}"))).json();
    assert_ne!(
        page["data"]["conversions"][0]["conversion_id"],
        next["data"]["conversions"][0]["conversion_id"]
    );
    assert!(next["data"]["next_cursor"].is_null());

    // Every bad request gets an envelope that says what is wrong.
    let url = serve.url("/conversions");
    assert_envelope(&http.post_raw(&url, "{\"url\": ", &[]), 400, "badRequest", "not valid JSON");
    assert_envelope(
        &http.post_json(&url, &json!({"feed_url": feed_url})),
        400,
        "badRequest",
        "missing field `url`",
    );
    assert_envelope(&http.post_json(&url, &json!({"url": 42})), 400, "badRequest", "invalid type");
    assert_envelope(
        &http.post_json(&url, &json!({"url": "ftp://x.example/a"})),
        400,
        "badRequest",
        "http or https",
    );
    assert_envelope(
        &http.post_json(&url, &json!({"url": a, "voice": "klingon"})),
        400,
        "badRequest",
        "unsupported voice",
    );
    assert_envelope(
        &http.post_json(&url, &json!({"url": a, "colour": "red"})),
        400,
        "badRequest",
        "unknown field",
    );
    assert_envelope(
        &http.get(&serve.url("/conversions/0123456789abcdef0123")),
        404,
        "notFound",
        "no conversion",
    );
    assert_envelope(
        &http.get(&serve.url("/conversions/not-an-id")),
        400,
        "badRequest",
        "not a conversion id",
    );
    assert_envelope(&http.get(&serve.url("/conversions?limit=1000")), 400, "badRequest", "limit");
    assert_envelope(&http.get(&serve.url("/conversions?cursor=garbage")), 400, "badRequest", "cursor");
    assert_envelope(
        &http.get(&serve.url("/feeds/0123456789abcdef/podcast.xml")),
        404,
        "notFound",
        "no conversions",
    );
    assert_envelope(&http.get(&serve.url("/nowhere")), 404, "notFound", "/nowhere");
    assert_envelope(
        &http.post_json(&serve.url("/feeds/preview"), &json!({"url": feeds.url("/missing.xml")})),
        400,
        "badRequest",
        "404",
    );
    assert_envelope(
        &http.post_json(&serve.url("/feeds/preview"), &json!({"url": "http://169.254.169.254/latest/"})),
        400,
        "badRequest",
        "169.254.169.254",
    );
    assert_envelope(
        &http.post_json(&serve.url("/conversions/batch"), &json!({"posts": []})),
        400,
        "badRequest",
        "1 to 100",
    );

    assert!(serve.terminate().success(), "SIGTERM stops serve cleanly");
}

#[test]
fn writes_need_the_token_when_one_is_set_and_serve_refuses_other_interfaces_without_one() {
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("LECTOR_API_TOKEN", "s3cret")]);
    let http = Http::new();
    let preview = serve.url("/feeds/preview");
    let body = json!({"url": serve.url("/sample/feed.xml")}).to_string();
    assert_envelope(&http.post_raw(&preview, &body, &[]), 401, "notAuthenticated", "Bearer");
    assert_envelope(
        &http.post_raw(&preview, &body, &[("authorization", "Bearer wrong")]),
        403,
        "unauthorized",
        "token",
    );
    let ok = http.post_raw(&preview, &body, &[("authorization", "Bearer s3cret")]);
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(http.get(&serve.url("/health")).status, 200, "reads need no token");
    drop(serve);

    let refused =
        lector.command(&["serve", "--addr", "0.0.0.0:0"]).env_remove("LECTOR_API_TOKEN").output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("without a token"));
}

#[test]
fn serve_resumes_a_conversion_cut_off_by_a_crash() {
    let pages = TestServer::start();
    // The page answers slowly the first time, so the crash lands while the fetch is in flight.
    pages.sequence(
        "/slow-post",
        vec![Reply::html(article()).delayed(Duration::from_secs(30)), Reply::html(article())],
    );
    let lector = Lector::new();
    let http = Http::new();
    let serve = Serve::start(&lector, &[]);
    let submitted = http.post_json(&serve.url("/conversions"), &json!({"url": pages.url("/slow-post")}));
    assert_eq!(submitted.status, 202);
    let id = submitted.json()["data"]["conversion_id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pages.hits("/slow-post") == 0 {
        assert!(std::time::Instant::now() < deadline, "the page was never fetched");
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.kill();

    let serve = Serve::start(&lector, &[]);
    let status = http.wait_final(&serve.url(&format!("/conversions/{id}")), Duration::from_secs(120));
    assert_eq!(status["state"], "completed", "{status:#}");
    assert_eq!(pages.hits("/slow-post"), 2, "the fetch cut off by the crash ran again after the restart");
    let events = http.get(&serve.url(&format!("/conversions/{id}/events"))).json();
    let started =
        events["data"].as_array().unwrap().iter().filter(|e| e["type"] == "ConversionStarted").count();
    assert_eq!(started, 1, "the same execution resumed; no second one started");
}

fn article() -> String {
    let p = "A short article that the test serves slowly, so that the server can be killed while it waits. \
             It has enough sentences to read as an article rather than a page of links.";
    format!(
        "<html lang=\"en\"><head><title>Slow</title></head><body><article><h1>Slow</h1><p>{p}</p><p>{p}</p><p>{p}</p></article></body></html>"
    )
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
