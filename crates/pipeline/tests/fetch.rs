//! Guarded fetching against a real loopback HTTP server: every refusal named, transient
//! failures retried, limits enforced while streaming.

use std::time::{Duration, Instant};

use lector_core::ErrorKind;
use lector_pipeline::fetch::{AllowList, Backoff, FetchError, FetchPolicy, Fetcher, Resource};
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
