//! Guarded fetching against a real loopback HTTP server: every refusal named, transient
//! failures retried, limits enforced while streaming; conditional GETs with their validators,
//! 304s and `Retry-After`.

use std::time::{Duration, Instant};

use lector_core::ErrorKind;
use lector_core::schedule::FailureKind;
use lector_pipeline::feed::{FeedError, PollError, Polled, poll_feed, poll_feed_typed};
use lector_pipeline::fetch::{
    AllowList, Backoff, Conditional, FetchError, FetchPolicy, Fetcher, Resource, RetryAfter, Validators,
};
use lector_testkit::http::{Reply, TestServer};

fn loopback_fetcher() -> Fetcher {
    Fetcher::new(FetchPolicy { allow: AllowList::parse("127.0.0.1").unwrap(), ..FetchPolicy::default() })
        .unwrap()
}

const PAGE: &str = "<html><body><p>hello</p></body></html>";

#[tokio::test]
async fn a_page_is_fetched_with_its_type_and_gzip_is_decoded() {
    let server = TestServer::start();
    server.route("/plain", Reply::html(PAGE));
    server.route("/zipped", Reply::html(PAGE).gzip());
    let f = loopback_fetcher();
    let got = f.fetch(&server.url("/plain"), Resource::Page).await.unwrap();
    assert_eq!(got.body.as_ref(), PAGE.as_bytes());
    assert_eq!(got.content_type.as_deref(), Some("text/html"));
    assert_eq!(got.charset.as_deref(), Some("utf-8"));
    let got = f.fetch(&server.url("/zipped"), Resource::Page).await.unwrap();
    assert_eq!(got.body.as_ref(), PAGE.as_bytes());
    let asked = server.requests().into_iter().find(|r| r.path == "/zipped").unwrap();
    assert!(asked.headers.get("accept-encoding").is_some_and(|v| v.contains("gzip")));
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowed() {
    let server = TestServer::start();
    server.route("/", Reply::html(PAGE));
    let strict = Fetcher::new(FetchPolicy::default()).unwrap();
    let port = server.addr().port();
    for url in [
        server.url("/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00:ec2::254]/".to_string(),
        "http://10.0.0.1/".to_string(),
    ] {
        let err = strict.fetch(&url, Resource::Page).await.unwrap_err();
        assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{url}: {err}");
        assert_eq!(err.kind(), ErrorKind::NotAllowed);
        assert!(err.to_string().contains("--allow-host"), "{err}");
    }
    assert_eq!(server.hits("/"), 0, "a refused address was contacted");
    // Allowed by name: the name resolves to loopback and the name is on the list.
    let by_name =
        Fetcher::new(FetchPolicy { allow: AllowList::parse("localhost").unwrap(), ..Default::default() })
            .unwrap();
    let got = by_name.fetch(&format!("http://localhost:{port}/"), Resource::Page).await.unwrap();
    assert_eq!(got.body.as_ref(), PAGE.as_bytes());
}

#[tokio::test]
async fn only_http_and_https_are_fetched() {
    let f = loopback_fetcher();
    for url in ["file:///etc/passwd", "ftp://example.com/x", "gopher://example.com/", "data:text/html,hi"] {
        let err = f.fetch(url, Resource::Page).await.unwrap_err();
        assert!(matches!(err, FetchError::SchemeNotAllowed { .. }), "{url}: {err}");
        assert_eq!(err.kind(), ErrorKind::NotAllowed);
    }
    let err = f.fetch("not a url", Resource::Page).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn status_codes_map_to_named_errors() {
    let server = TestServer::start();
    server.route("/gone", Reply::status(410));
    server.route("/down", Reply::status(503));
    server.route("/busy", Reply::status(429));
    server.route("/forbidden", Reply::status(403));
    let f = loopback_fetcher();
    let err = f.fetch(&server.url("/missing"), Resource::Page).await.unwrap_err();
    assert_eq!(
        (err.kind(), matches!(err, FetchError::NotFound { status: 404, .. })),
        (ErrorKind::NotFound, true)
    );
    assert_eq!(f.fetch(&server.url("/gone"), Resource::Page).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(f.fetch(&server.url("/down"), Resource::Page).await.unwrap_err().kind(), ErrorKind::Transient);
    assert_eq!(f.fetch(&server.url("/busy"), Resource::Page).await.unwrap_err().kind(), ErrorKind::Transient);
    assert_eq!(
        f.fetch(&server.url("/forbidden"), Resource::Page).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn a_503_that_recovers_is_retried_and_a_404_is_not() {
    let server = TestServer::start();
    server.fail_then("/flaky", 2, Reply::status(503), Reply::html(PAGE));
    let f = loopback_fetcher();
    let quick =
        Backoff { attempts: 4, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) };
    let got = f.fetch_retrying(&server.url("/flaky"), Resource::Page, quick).await.unwrap();
    assert_eq!(got.body.as_ref(), PAGE.as_bytes());
    assert_eq!(server.hits("/flaky"), 3);
    let err = f.fetch_retrying(&server.url("/nothing"), Resource::Page, quick).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(server.hits("/nothing"), 1, "a permanent error was retried");
    // A service that stays down gives up after the attempts.
    server.route("/down", Reply::status(502));
    let err = f.fetch_retrying(&server.url("/down"), Resource::Page, quick).await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(server.hits("/down"), 4);
}

#[tokio::test]
async fn redirects_are_followed_up_to_five_and_loops_are_named() {
    let server = TestServer::start();
    for i in 0..6 {
        server.route(&format!("/r{i}"), Reply::redirect(302, &format!("/r{}", i + 1)));
    }
    server.route("/r6", Reply::html(PAGE));
    server.route("/loop-a", Reply::redirect(301, "/loop-b"));
    server.route("/loop-b", Reply::redirect(301, "/loop-a"));
    let f = loopback_fetcher();
    let got = f.fetch(&server.url("/r1"), Resource::Page).await.unwrap();
    assert_eq!((got.redirects, got.url.path()), (5, "/r6"));
    let err = f.fetch(&server.url("/r0"), Resource::Page).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects { limit: 5, .. }), "{err}");
    let err = f.fetch(&server.url("/loop-a"), Resource::Page).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectLoop { .. }), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn every_redirect_hop_is_checked_again() {
    let server = TestServer::start();
    server.route("/to-metadata", Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"));
    server.route("/to-file", Reply::redirect(302, "file:///etc/passwd"));
    let f = loopback_fetcher();
    let err = f.fetch(&server.url("/to-metadata"), Resource::Page).await.unwrap_err();
    assert!(
        matches!(err, FetchError::AddressNotAllowed { ref reason, .. } if reason.contains("metadata")),
        "{err}"
    );
    let err = f.fetch(&server.url("/to-file"), Resource::Page).await.unwrap_err();
    assert!(matches!(err, FetchError::SchemeNotAllowed { .. }), "{err}");
}

#[tokio::test]
async fn bodies_over_the_limit_stop_while_streaming() {
    let server = TestServer::start();
    server.route("/huge", Reply::huge("text/html", 50 * 1024 * 1024));
    server.route("/endless", Reply::endless("application/rss+xml"));
    server.route("/declared", Reply::html(vec![b'a'; 6 * 1024 * 1024]));
    server.route("/bomb", Reply::gzip_bomb("text/html", 50 * 1024 * 1024));
    let f = loopback_fetcher();
    let started = Instant::now();
    for (path, what, limit) in [
        ("/huge", Resource::Page, 5 * 1024 * 1024),
        ("/endless", Resource::Feed, 10 * 1024 * 1024),
        ("/declared", Resource::Page, 5 * 1024 * 1024),
        ("/bomb", Resource::Page, 5 * 1024 * 1024),
    ] {
        let err = f.fetch(&server.url(path), what).await.unwrap_err();
        assert_eq!(err, FetchError::TooLarge { url: server.url(path), limit }, "{path}");
        assert_eq!(err.kind(), ErrorKind::TooLarge);
    }
    assert!(started.elapsed() < Duration::from_secs(20), "limits were not enforced while streaming");
}

#[tokio::test]
async fn wrong_content_types_are_refused() {
    let server = TestServer::start();
    server.route("/image", Reply::ok("image/png", vec![0x89, b'P', b'N', b'G']));
    server.route("/feed-as-html", Reply::ok("text/html", "<rss version=\"2.0\"></rss>"));
    let f = loopback_fetcher();
    let err = f.fetch(&server.url("/image"), Resource::Page).await.unwrap_err();
    assert!(
        matches!(err, FetchError::UnsupportedContentType { ref content_type, .. } if content_type == "image/png")
    );
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(f.fetch(&server.url("/image"), Resource::Feed).await.is_err());
    // Feeds are often served as text/html: the parser decides.
    assert!(f.fetch(&server.url("/feed-as-html"), Resource::Feed).await.is_ok());
}

#[tokio::test]
async fn slow_servers_time_out_as_transient() {
    let server = TestServer::start();
    server.route("/slow-start", Reply::html(PAGE).delayed(Duration::from_secs(5)));
    server.route("/drip", Reply::html(vec![b'a'; 10_000]).slow(10, Duration::from_millis(50)));
    let f = Fetcher::new(FetchPolicy {
        allow: AllowList::parse("127.0.0.1").unwrap(),
        timeout: Duration::from_millis(800),
        read_timeout: Duration::from_millis(400),
        ..FetchPolicy::default()
    })
    .unwrap();
    for path in ["/slow-start", "/drip"] {
        let started = Instant::now();
        let err = f.fetch(&server.url(path), Resource::Page).await.unwrap_err();
        assert!(matches!(err, FetchError::Timeout { .. }), "{path}: {err}");
        assert!(err.is_transient());
        assert!(started.elapsed() < Duration::from_secs(3), "{path} took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn corpus_feeds_and_pages_are_fetched_and_read_in_one_call() {
    let corpus = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus");
    let server = TestServer::start();
    server.serve_dir("/c/", &corpus);
    server.route("/moved", Reply::redirect(301, "/c/feeds/gulp-atom.atom"));
    let f = loopback_fetcher();
    let feed = lector_pipeline::fetch_feed(&f, &server.url("/c/feeds/guardian.rss")).await.unwrap();
    assert_eq!(feed.posts.len(), 55);
    // Relative links resolve against where the feed was finally fetched from.
    let feed = lector_pipeline::fetch_feed(&f, &server.url("/moved")).await.unwrap();
    assert_eq!(
        feed.posts[0].url.as_ref().map(|u| u.as_str().to_string()),
        Some(server.url("/gulpjs/gulp/releases/tag/v3.9.0"))
    );
    let article =
        lector_pipeline::fetch_article(&f, &server.url("/c/articles/002/source.html")).await.unwrap();
    assert_eq!(article.title, "This API is so Fetching!");
    let err = lector_pipeline::fetch_article(&f, &server.url("/c/articles/lazy-image-3/source.html"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoArticle);
    let err =
        lector_pipeline::fetch_article(&f, &server.url("/c/articles/none/source.html")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let err = lector_pipeline::fetch_feed(&f, &server.url("/c/feeds/unrecognized.rss")).await.unwrap_err();
    assert_eq!((err.kind, err.name()), (ErrorKind::InvalidInput, "Lector.InvalidInput"));
}

const FEED: &str = "<rss version=\"2.0\"><channel><title>T</title><ttl>30</ttl>\
    <item><guid>1</guid><title>One</title></item></channel></rss>";

/// A feed that answers 304 to its own ETag or Last-Modified, and the feed with its caching
/// and WebSub headers otherwise.
fn conditional_feed(server: &TestServer, path: &str) {
    server.dynamic(path, |req| {
        let etag_matches = req.headers.get("if-none-match").is_some_and(|v| v == "W/\"v1\"");
        let date_matches =
            req.headers.get("if-modified-since").is_some_and(|v| v == "Tue, 01 Oct 2019 10:00:00 GMT");
        let reply = if etag_matches || date_matches { Reply::status(304) } else { Reply::rss(FEED) };
        reply
            .header("etag", "W/\"v1\"")
            .header("last-modified", "Tue, 01 Oct 2019 10:00:00 GMT")
            .header("cache-control", "public, max-age=600")
            .header("expires", "Tue, 01 Oct 2019 10:20:00 GMT")
            .header("date", "Tue, 01 Oct 2019 10:05:00 GMT")
            .header("link", "<https://hub.test/>; rel=\"hub\", </feed.xml>; rel=\"self\"")
    });
}

#[tokio::test]
async fn a_conditional_get_sends_the_last_validators_and_a_304_is_not_modified() {
    let server = TestServer::start();
    conditional_feed(&server, "/feed.xml");
    let f = loopback_fetcher();
    let url = server.url("/feed.xml");
    let first = f.fetch_conditional(&url, Resource::Feed, &Validators::default()).await.unwrap();
    let Conditional::Modified { fetched, meta } = &first else {
        panic!("a first fetch is a body: {first:?}")
    };
    assert_eq!(fetched.body.as_ref(), FEED.as_bytes());
    assert_eq!(meta.status, 200);
    assert_eq!(meta.etag.as_deref(), Some("W/\"v1\""));
    assert_eq!(meta.last_modified.as_deref(), Some("Tue, 01 Oct 2019 10:00:00 GMT"));
    assert_eq!(meta.max_age, Some(Duration::from_secs(600)));
    assert_eq!(meta.expires.map(|d| d.to_rfc3339()).as_deref(), Some("2019-10-01T10:20:00+00:00"));
    assert_eq!(meta.date.map(|d| d.to_rfc3339()).as_deref(), Some("2019-10-01T10:05:00+00:00"));
    assert_eq!(meta.hub.as_ref().map(|u| u.as_str()), Some("https://hub.test/"));
    assert_eq!(meta.self_url.as_ref().map(|u| u.to_string()), Some(server.url("/feed.xml")));

    let validators = Validators::default().updated_by(meta);
    let second = f.fetch_conditional(&url, Resource::Feed, &validators).await.unwrap();
    let Conditional::NotModified(meta) = &second else { panic!("an unchanged feed is a 304: {second:?}") };
    assert_eq!((meta.status, meta.etag.as_deref()), (304, Some("W/\"v1\"")));
    assert_eq!(second.meta().max_age, Some(Duration::from_secs(600)));
    // With only a date to go by, the date is sent and matches.
    let by_date = Validators { etag: None, last_modified: validators.last_modified.clone() };
    assert!(matches!(
        f.fetch_conditional(&url, Resource::Feed, &by_date).await.unwrap(),
        Conditional::NotModified(_)
    ));

    let sent: Vec<_> = server.requests().into_iter().filter(|r| r.path == "/feed.xml").collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].headers.get("if-none-match"), None);
    assert_eq!(sent[0].headers.get("if-modified-since"), None);
    assert_eq!(sent[1].headers.get("if-none-match").map(String::as_str), Some("W/\"v1\""));
    assert_eq!(
        sent[1].headers.get("if-modified-since").map(String::as_str),
        Some("Tue, 01 Oct 2019 10:00:00 GMT")
    );
    assert_eq!(sent[2].headers.get("if-none-match"), None);
}

#[tokio::test]
async fn a_poll_parses_a_changed_feed_and_not_an_unchanged_one() {
    let server = TestServer::start();
    conditional_feed(&server, "/feed.xml");
    // A 304 whose body would not parse shows that nothing is parsed.
    server.route("/broken-304", Reply::status(304).header("etag", "\"x\"").body("<html>not a feed"));
    let f = loopback_fetcher();
    let polled = poll_feed(&f, &server.url("/feed.xml"), &Validators::default()).await.unwrap();
    let Polled::Feed(feed, meta) = &polled else { panic!("{polled:?}") };
    assert_eq!((feed.posts.len(), feed.ttl_minutes), (1, Some(30)));
    let validators = Validators::default().updated_by(meta);
    assert!(matches!(
        poll_feed(&f, &server.url("/feed.xml"), &validators).await.unwrap(),
        Polled::NotModified(_)
    ));
    let etag = Validators { etag: Some("\"x\"".into()), last_modified: None };
    assert!(matches!(
        poll_feed(&f, &server.url("/broken-304"), &etag).await.unwrap(),
        Polled::NotModified(_)
    ));
    // A plain fetch sent no validators, so a 304 is not an answer to it.
    let err = f.fetch(&server.url("/broken-304"), Resource::Feed).await.unwrap_err();
    assert!(matches!(err, FetchError::Refused { status: 304, .. }), "{err}");
    // A page instead of a feed is named, and tells the schedule what it is.
    server.route("/html", Reply::html("<!DOCTYPE html><html><body>moved</body></html>"));
    let err = poll_feed_typed(&f, &server.url("/html"), &Validators::default()).await.unwrap_err();
    assert!(matches!(err, PollError::Feed(FeedError::NotAFeed(_))), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::NotAFeed);
}

#[tokio::test]
async fn retry_after_is_read_in_seconds_and_as_a_date_on_429_and_503() {
    let server = TestServer::start();
    server.route("/busy", Reply::status(429).header("retry-after", "120"));
    server.route("/down", Reply::status(503).header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"));
    server.route("/plain-down", Reply::status(503));
    let f = loopback_fetcher();
    let none = Validators::default();
    let err = f.fetch_conditional(&server.url("/busy"), Resource::Feed, &none).await.unwrap_err();
    assert_eq!(
        err,
        FetchError::Unavailable {
            url: server.url("/busy"),
            status: 429,
            retry_after: Some(RetryAfter::Seconds(120))
        }
    );
    assert!(err.is_transient());
    let err = f.fetch(&server.url("/down"), Resource::Feed).await.unwrap_err();
    let at = err.retry_after().map(|r| r.at(chrono::Utc::now()).to_rfc3339());
    assert_eq!(at.as_deref(), Some("2015-10-21T07:28:00+00:00"));
    assert_eq!(err.failure_kind(), FailureKind::Transient);
    let err = f.fetch(&server.url("/plain-down"), Resource::Feed).await.unwrap_err();
    assert!(matches!(err, FetchError::Unavailable { status: 503, retry_after: None, .. }), "{err}");
}

#[tokio::test]
async fn a_conditional_get_keeps_every_guard() {
    let server = TestServer::start();
    conditional_feed(&server, "/feed.xml");
    server.route("/moved", Reply::redirect(301, "/feed.xml"));
    server.route("/to-metadata", Reply::redirect(302, "http://169.254.169.254/latest/meta-data/"));
    server.route("/huge", Reply::huge("application/rss+xml", 20 * 1024 * 1024));
    server.route("/loop", Reply::redirect(302, "/loop"));
    let f = loopback_fetcher();
    let validators = Validators { etag: Some("W/\"v1\"".into()), last_modified: None };
    // Redirects are followed with the validators, and the meta names where the answer came from.
    let got = f.fetch_conditional(&server.url("/moved"), Resource::Feed, &validators).await.unwrap();
    let meta = got.meta();
    assert!(matches!(got, Conditional::NotModified(_)));
    assert_eq!((meta.url.to_string(), meta.redirects), (server.url("/feed.xml"), 1));
    let err =
        f.fetch_conditional(&server.url("/to-metadata"), Resource::Feed, &validators).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{err}");
    assert_eq!(err.failure_kind(), FailureKind::Refused);
    let err = f.fetch_conditional(&server.url("/huge"), Resource::Feed, &validators).await.unwrap_err();
    assert_eq!(err, FetchError::TooLarge { url: server.url("/huge"), limit: 10 * 1024 * 1024 });
    let err = f.fetch_conditional(&server.url("/loop"), Resource::Feed, &validators).await.unwrap_err();
    assert!(matches!(err, FetchError::RedirectLoop { .. }), "{err}");
    let err = f.fetch_conditional(&server.url("/gone"), Resource::Feed, &validators).await.unwrap_err();
    assert_eq!(err.failure_kind(), FailureKind::Gone);
    let strict = Fetcher::new(FetchPolicy::default()).unwrap();
    let err =
        strict.fetch_conditional(&server.url("/feed.xml"), Resource::Feed, &validators).await.unwrap_err();
    assert!(matches!(err, FetchError::AddressNotAllowed { .. }), "{err}");
}
