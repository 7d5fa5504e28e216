//! Hostile pages and feeds, each met within a stated bound and with a named error: a page of
//! 200,000 nested elements, a feed nested as deep, a server that drips one byte every two
//! seconds, one that sends its headers as slowly, and a preview of a feed whose every server
//! misbehaves, which still answers within 30 s.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Http, Lector, Serve, rss, rss_item};
use lector_core::ErrorKind;
use lector_pipeline::fetch::{AllowList, Backoff, FetchError, FetchPolicy, Fetcher, Resource};
use lector_testkit::http::{Reply, TestServer};
use serde_json::json;

/// Elements a nesting bomb nests; the measurement used this many.
const BOMB_DEPTH: usize = 200_000;

/// A page whose body is `depth` nested `<div>`s around a paragraph.
fn nesting_bomb(depth: usize) -> String {
    let mut html = String::with_capacity(depth * 11 + 200);
    html.push_str("<!doctype html><html><head><title>Deep</title></head><body>");
    for _ in 0..depth {
        html.push_str("<div>");
    }
    html.push_str("<p>Words at the bottom of a very deep page.</p>");
    for _ in 0..depth {
        html.push_str("</div>");
    }
    html.push_str("</body></html>");
    html
}

/// A feed whose channel holds `depth` nested elements before its one item.
fn nested_feed(depth: usize) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Deep</title>");
    for _ in 0..depth {
        xml.push_str("<x>");
    }
    for _ in 0..depth {
        xml.push_str("</x>");
    }
    xml.push_str("<item><title>One</title><link>http://127.0.0.1/one</link></item></channel></rss>");
    xml
}

/// A server that answers every connection with a status line and then one byte of a header
/// every `interval`, never finishing the headers. Stops when dropped.
struct SlowHeaders {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl SlowHeaders {
    fn start(interval: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        listener.set_nonblocking(true).expect("non-blocking accept");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let stopping = stopping.clone();
                        std::thread::spawn(move || {
                            let mut request = [0u8; 4096];
                            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                            let _ = stream.read(&mut request);
                            if stream.write_all(b"HTTP/1.1 200 OK\r\n").is_err() {
                                return;
                            }
                            for byte in b"X-Slow: ".iter().chain(std::iter::repeat(&b'a')) {
                                if stopping.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                                    return;
                                }
                                std::thread::sleep(interval);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { port, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for SlowHeaders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A body of `len` bytes sent one byte every two seconds.
fn drip(content_type: &str, len: usize) -> Reply {
    Reply::ok(content_type, vec![b' '; len]).slow(1, Duration::from_secs(2))
}

#[test]
fn a_page_of_200_000_nested_elements_is_refused_by_name_within_seconds() {
    let server = TestServer::start();
    server.route("/deep.html", Reply::html(nesting_bomb(BOMB_DEPTH)));
    let lector = Lector::new();
    let started = Instant::now();
    let run = lector.run(&["article", &server.url("/deep.html"), "--json"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a nesting bomb must be refused: {stderr}");
    assert!(stderr.contains("page too complex") && stderr.contains("nest more than 512 deep"), "{stderr}");
    assert!(took < Duration::from_secs(10), "refused after {took:?}");

    // The same page as a post: the conversion fails by name at FetchArticle, not by a timeout.
    let feed = rss("Deep", &[rss_item("Deep post", &server.url("/deep.html"), None)]);
    server.route("/feed.xml", Reply::rss(feed));
    let started = Instant::now();
    let out = lector.convert_json(&[&server.url("/feed.xml"), "--all"]);
    assert!(started.elapsed() < Duration::from_secs(30), "convert took {:?}", started.elapsed());
    assert_eq!(out[0]["state"], "failed", "{:#}", out[0]);
    let error = out[0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("Lector.TooLarge") && error.contains("nest more than 512 deep"), "{error}");
}

#[test]
fn a_feed_that_carries_a_nesting_bomb_as_its_post_fails_that_post_by_name() {
    let server = TestServer::start();
    let bomb = nesting_bomb(BOMB_DEPTH);
    let body = bomb.split_once("<body>").map(|(_, b)| b).unwrap_or(&bomb);
    let feed = rss("Deep", &[rss_item("Carried whole", &server.url("/whole"), Some(body))]);
    server.route("/feed.xml", Reply::rss(feed));
    let lector = Lector::new();
    let started = Instant::now();
    let out = lector.convert_json(&[&server.url("/feed.xml"), "--all"]);
    assert!(started.elapsed() < Duration::from_secs(30), "convert took {:?}", started.elapsed());
    assert_eq!(out[0]["state"], "failed", "{:#}", out[0]);
    let error = out[0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("Lector.TooLarge") && error.contains("nest more than 512 deep"), "{error}");
    assert_eq!(server.hits("/whole"), 0, "a post the feed carries whole is not fetched");
}

#[test]
fn a_feed_nested_200_000_elements_deep_is_answered_at_once() {
    let server = TestServer::start();
    server.route("/deep.xml", Reply::rss(nested_feed(BOMB_DEPTH)));
    let lector = Lector::new();
    let started = Instant::now();
    let run = lector.run(&["feed", &server.url("/deep.xml"), "--json"]);
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    // Read or refused, but answered, with no crash: either the one post or a named error.
    assert!(
        (run.status.success() && stdout.contains("\"title\": \"One\"")) || stderr.contains("error:"),
        "status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        run.status
    );
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
}

#[test]
fn a_feed_that_drips_one_byte_every_two_seconds_fails_at_its_deadline() {
    let server = TestServer::start();
    server.route("/drip.xml", drip("application/rss+xml", 1_000));
    let lector = Lector::new();
    let started = Instant::now();
    let run = lector.run(&["feed", &server.url("/drip.xml")]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(stderr.contains("no complete answer within the deadline of 20 s"), "{stderr}");
    // The deadline holds across retries: one deadline, not one per attempt.
    assert!(took < Duration::from_secs(25), "failed after {took:?}");
    assert!(took >= Duration::from_secs(19), "gave up before the deadline, after {took:?}");
}

#[test]
fn a_server_that_sends_its_headers_slowly_fails_at_the_deadline() {
    let server = SlowHeaders::start(Duration::from_millis(500));
    let lector = Lector::new();
    let started = Instant::now();
    let run = lector.run(&["article", &server.url("/post")]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "{stderr}");
    assert!(stderr.contains("no complete answer within the deadline of 20 s"), "{stderr}");
    assert!(took < Duration::from_secs(25), "failed after {took:?}");
}

#[tokio::test]
async fn one_deadline_covers_every_retry_and_names_the_last_failure() {
    let server = TestServer::start();
    // Each answer is a 503 after 400 ms: retried, and retried, until the deadline.
    server.route("/down", Reply::status(503).delayed(Duration::from_millis(400)));
    let fetcher = Fetcher::new(FetchPolicy {
        allow: AllowList::parse("127.0.0.1").expect("an allow list"),
        deadline: Duration::from_millis(1_500),
        ..FetchPolicy::default()
    })
    .expect("a fetcher");
    let patient = Backoff {
        attempts: 100,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
    };
    let started = Instant::now();
    let err = fetcher.fetch_retrying(&server.url("/down"), Resource::Page, patient).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, FetchError::DeadlineExceeded { last: Some(last), .. } if last.contains("HTTP 503")),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Transient);
    assert!(took < Duration::from_millis(2_000), "took {took:?}");
    assert!(server.hits("/down") >= 2, "it was retried");

    // A single fetch of a slow drip ends at the same deadline.
    server.route("/drip", Reply::html(vec![b'a'; 100]).slow(1, Duration::from_millis(200)));
    let started = Instant::now();
    let err = fetcher.fetch(&server.url("/drip"), Resource::Page).await.unwrap_err();
    assert!(matches!(err, FetchError::DeadlineExceeded { last: None, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_millis(2_000), "took {:?}", started.elapsed());
}

#[test]
fn a_preview_answers_within_30_s_whatever_the_servers_do() {
    let server = TestServer::start();
    let slow_headers = SlowHeaders::start(Duration::from_millis(500));
    let deep = nesting_bomb(BOMB_DEPTH);
    server.route("/deep.html", Reply::html(deep));
    server.route("/drip.html", drip("text/html", 1_000));
    server.route("/late.html", Reply::html("<p>late</p>").delayed(Duration::from_secs(120)));
    let mut items = vec![
        rss_item("Deep", &server.url("/deep.html"), None),
        rss_item("Slow headers", &slow_headers.url("/post"), None),
    ];
    // More slow pages than the preview measures at once, so that they queue behind each other.
    for i in 0..8 {
        items.push(rss_item(&format!("Drip {i}"), &server.url(&format!("/drip.html?{i}")), None));
        items.push(rss_item(&format!("Late {i}"), &server.url(&format!("/late.html?{i}")), None));
    }
    server.route("/feed.xml", Reply::rss(rss("Hostile", &items)));
    server.route("/drip.xml", drip("application/rss+xml", 1_000));

    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();

    let started = Instant::now();
    let answer = http.post_json(&serve.url("/feeds/preview"), &json!({"url": server.url("/feed.xml")}));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "the preview took {took:?}");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let posts = answer.json()["data"]["posts"].as_array().cloned().unwrap_or_default();
    assert_eq!(posts.len(), items.len());
    let deep = &posts[0];
    assert!(
        deep["measure_error"].as_str().is_some_and(|e| e.contains("nest more than 512 deep")),
        "{deep:#}"
    );
    // Every other post says why it was not measured: its server timed out (no byte for 15 s),
    // its fetch met its deadline, or the preview's own deadline came first.
    for post in &posts[1..] {
        let why = post["measure_error"].as_str().unwrap_or_default();
        assert!(
            why.contains("timed out")
                || why.contains("no complete answer within the deadline")
                || why.contains("not measured within the preview's 25 s"),
            "{post:#}"
        );
    }

    // A feed that drips: the preview says why, within the same bound.
    let started = Instant::now();
    let answer = http.post_json(&serve.url("/feeds/preview"), &json!({"url": server.url("/drip.xml")}));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(30), "the preview took {took:?}");
    let body = answer.json();
    assert_ne!(answer.status, 200, "{body:#}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("deadline")), "{body:#}");
}
