//! Feed subscriptions end to end through `lector serve`, whose polls run the real
//! `statemachines/poll-feeds.asl.json` on the local engine: a loopback blog whose feed changes
//! over time (a new post, an edited post, a reordered feed, 304s with validators, a 429 with
//! `Retry-After`, 500s, a page that is not a feed), a WebSub hub that pushes good and forged
//! bodies, and a `kill -9` in the middle of a poll cycle.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Http, Lector, Serve, rss_item};
use lector_testkit::http::{Reply, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// A post: its slug, title and sentences.
#[derive(Clone)]
struct Post {
    slug: String,
    title: String,
    body: String,
}

impl Post {
    fn new(n: u32) -> Self {
        Self {
            slug: format!("post-{n}"),
            title: format!("Post number {n}"),
            body: format!("<p>The harbour had {n} boats at dawn. By noon the wind had turned.</p>"),
        }
    }
}

/// A blog on loopback whose feed is what `posts` holds now, served with an `ETag` and a
/// `Last-Modified`, answering `304` to a conditional GET that names them; `override_reply`,
/// when set, answers instead (a 429, a 500, a page that is not a feed).
struct Blog {
    server: TestServer,
    posts: Arc<Mutex<Vec<Post>>>,
    override_reply: Arc<Mutex<Option<Reply>>>,
    hub: Option<String>,
}

impl Blog {
    fn new(posts: Vec<Post>) -> Self {
        Self::build(posts, false)
    }

    /// A blog whose feed names a WebSub hub at `/hub` on the same server.
    fn with_hub(posts: Vec<Post>) -> Self {
        Self::build(posts, true)
    }

    fn build(posts: Vec<Post>, hub: bool) -> Self {
        let server = TestServer::start();
        let hub = hub.then(|| server.url("/hub"));
        let blog = Self {
            server,
            posts: Arc::new(Mutex::new(posts)),
            override_reply: Arc::new(Mutex::new(None)),
            hub,
        };
        let (posts, override_reply, base, hub) =
            (blog.posts.clone(), blog.override_reply.clone(), blog.server.url(""), blog.hub.clone());
        blog.server.dynamic("/feed.xml", move |request| {
            if let Some(reply) = override_reply.lock().unwrap().clone() {
                return reply;
            }
            let body = feed_xml(&posts.lock().unwrap(), &base, hub.as_deref());
            let etag = format!("\"{:016x}\"", fnv(body.as_bytes()));
            if request.headers.get("if-none-match") == Some(&etag) {
                return Reply::status(304).header("etag", &etag);
            }
            Reply::rss(body).header("etag", &etag).header("last-modified", "Tue, 01 Dec 2026 10:00:00 GMT")
        });
        blog.server.route("/hub", Reply::status(202));
        blog
    }

    fn url(&self) -> String {
        self.server.url("/feed.xml")
    }

    fn body(&self) -> String {
        feed_xml(&self.posts.lock().unwrap(), &self.server.url(""), self.hub.as_deref())
    }

    fn set(&self, posts: Vec<Post>) {
        *self.posts.lock().unwrap() = posts;
    }

    fn answer(&self, reply: Option<Reply>) {
        *self.override_reply.lock().unwrap() = reply;
    }

    /// The conditional headers of each request for the feed, in order.
    fn feed_requests(&self) -> Vec<(Option<String>, Option<String>)> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/feed.xml")
            .map(|r| (r.headers.get("if-none-match").cloned(), r.headers.get("if-modified-since").cloned()))
            .collect()
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

fn feed_xml(posts: &[Post], base: &str, hub: Option<&str>) -> String {
    let items: Vec<String> =
        posts.iter().map(|p| rss_item(&p.title, &format!("{base}/{}", p.slug), Some(&p.body))).collect();
    let hub = hub.map(|h| format!("<atom:link rel=\"hub\" href=\"{h}\"/>")).unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\
         <channel><title>Harbour notes</title><link>{base}/</link><description>A test blog</description>\
         <language>en</language>{hub}{}</channel></rss>",
        items.concat()
    )
}

/// Subscribe; the answer's envelope.
fn subscribe(http: &Http, serve: &Serve, body: &Value) -> (u16, Value) {
    let answer = http.post_json(&serve.url("/feeds"), body);
    (answer.status, answer.json())
}

fn feed(http: &Http, serve: &Serve, id: &str) -> Value {
    http.get(&serve.url(&format!("/feeds/{id}"))).json()["data"].clone()
}

/// Wait until the subscription satisfies `done`.
fn wait_feed(http: &Http, serve: &Serve, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = feed(http, serve, id);
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Poll now and wait until a poll later than `after` is recorded.
fn poll_now(http: &Http, serve: &Serve, id: &str) -> Value {
    let before = feed(http, serve, id);
    let version = before["version"].as_u64().unwrap();
    let answer = http.post_json(&serve.url(&format!("/feeds/{id}/poll")), &json!({}));
    assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
    wait_feed(http, serve, id, "a poll is recorded", |s| {
        s["version"].as_u64().unwrap() > version && s["last_poll_at"] != before["last_poll_at"]
    })
}

/// The conversions of a feed, newest first.
fn conversions(http: &Http, serve: &Serve, feed_url: &str) -> Vec<Value> {
    let mut url = reqwest::Url::parse(&serve.url("/conversions")).unwrap();
    url.query_pairs_mut().append_pair("feed_url", feed_url).append_pair("limit", "100");
    http.get(url.as_str()).json()["data"]["conversions"].as_array().cloned().unwrap_or_default()
}

fn wait_conversions(http: &Http, serve: &Serve, feed_url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = conversions(http, serve, feed_url);
        if list.len() >= n && list.iter().all(|c| c["state"] == "completed") {
            assert_eq!(list.len(), n, "no more conversions than posts: {list:#?}");
            return list;
        }
        assert!(list.iter().all(|c| c["state"] != "failed"), "{list:#?}");
        assert!(Instant::now() < deadline, "{n} conversions: {list:#?}");
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn events(http: &Http, serve: &Serve, path: &str) -> Vec<Value> {
    http.get(&serve.url(path)).json()["data"].as_array().cloned().unwrap_or_default()
}

fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["type"].as_str().unwrap_or_default().to_owned()).collect()
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

#[test]
fn a_subscription_backfills_narrates_new_posts_revises_edited_ones_and_answers_304s() {
    let blog = Blog::new(vec![Post::new(3), Post::new(2), Post::new(1)]);
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();

    let (code, created) = subscribe(&http, &serve, &json!({"url": blog.url(), "backfill": 2}));
    assert_eq!(code, 201, "{created:#}");
    assert_eq!(created["status"], "success");
    let id = created["data"]["feed_id"].as_str().unwrap().to_owned();
    // The same feed again: the same subscription.
    let (code, again) = subscribe(&http, &serve, &json!({"url": blog.url()}));
    assert_eq!((code, again["status"].as_str()), (200, Some("skipped")), "{again:#}");
    assert_eq!(again["data"]["feed_id"], id.as_str());

    // The first poll (due at once, by the poller) converts the two newest posts only.
    let first = wait_feed(&http, &serve, &id, "the first poll", |s| s["last_poll_at"].is_string());
    assert_eq!(first["state"], "active", "{first:#}");
    assert_eq!(first["title"], "Harbour notes");
    assert_eq!(first["posts_seen"], 3);
    assert_eq!(first["next_poll_reason"], "interval");
    let done = wait_conversions(&http, &serve, &blog.url(), 2);
    let titles: Vec<&str> = done.iter().filter_map(|c| c["title"].as_str()).collect();
    assert!(titles.contains(&"Post number 3") && titles.contains(&"Post number 2"), "{titles:?}");
    assert!(done.iter().all(|c| c["feed_id"] == id.as_str()), "{done:#?}");

    // Unchanged: a conditional GET with the validators kept, answered 304, finds nothing.
    let unchanged = poll_now(&http, &serve, &id);
    assert_eq!(unchanged["last_status"], 304, "{unchanged:#}");
    let (etag, since) = blog.feed_requests().last().cloned().unwrap();
    assert!(etag.is_some_and(|e| e.starts_with('"')), "If-None-Match is sent");
    assert_eq!(since.as_deref(), Some("Tue, 01 Dec 2026 10:00:00 GMT"));
    assert_eq!(conversions(&http, &serve, &blog.url()).len(), 2);

    // A new post is narrated by itself, caused by its discovery.
    let mut posts = vec![Post::new(4), Post::new(3), Post::new(2), Post::new(1)];
    blog.set(posts.clone());
    let polled = poll_now(&http, &serve, &id);
    assert_eq!(polled["last_status"], 200);
    let done = wait_conversions(&http, &serve, &blog.url(), 3);
    let newest = done.iter().find(|c| c["title"] == "Post number 4").expect("the new post is converted");
    let feed_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    assert_eq!(count(&feed_events, "PostDiscovered"), 4, "{:?}", types(&feed_events));
    let discovered = feed_events
        .iter()
        .find(|e| e["type"] == "PostDiscovered" && e["data"]["title"] == "Post number 4")
        .expect("its discovery");
    let conversion_id = newest["conversion_id"].as_str().unwrap().to_owned();
    let its_events = events(&http, &serve, &format!("/conversions/{conversion_id}/events"));
    assert_eq!(its_events[0]["type"], "ConversionRequested");
    assert_eq!(its_events[0]["causation_id"], discovered["event_id"], "caused by the discovery");

    // A reordered feed is no news.
    posts.reverse();
    blog.set(posts.clone());
    let reordered = poll_now(&http, &serve, &id);
    assert_eq!(reordered["last_status"], 200);
    let feed_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    assert_eq!(count(&feed_events, "PostDiscovered"), 4);
    assert_eq!(count(&feed_events, "PostChanged"), 0);
    let last_poll = feed_events.iter().rev().find(|e| e["type"] == "FeedPolled").unwrap();
    assert_eq!(
        (last_poll["data"]["new"].as_u64(), last_poll["data"]["changed"].as_u64()),
        (Some(0), Some(0))
    );

    // An edited post: PostChanged, and revision 2 of the same conversion.
    let edited = posts.iter_mut().find(|p| p.slug == "post-4").unwrap();
    edited.body = "<p>The harbour had 4 boats at dawn. By noon the wind had turned to the north.</p>".into();
    blog.set(posts);
    poll_now(&http, &serve, &id);
    let feed_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    assert_eq!(count(&feed_events, "PostChanged"), 1, "{:?}", types(&feed_events));
    let deadline = Instant::now() + WAIT;
    let revised = loop {
        let status = http.get(&serve.url(&format!("/conversions/{conversion_id}"))).json()["data"].clone();
        if status["audio_revision"] == 2 && status["state"] == "completed" {
            break status;
        }
        assert!(Instant::now() < deadline, "revision 2: {status:#}");
        std::thread::sleep(Duration::from_millis(150));
    };
    assert_eq!(revised["synthesis"]["units_synthesized"], 1, "only the edited sentence: {revised:#}");
    assert_eq!(conversions(&http, &serve, &blog.url()).len(), 3, "a revision is no new conversion");

    // Its podcast lists the three, each once.
    let podcast = http.get(&serve.url(&format!("/feeds/{id}/podcast.xml")));
    assert_eq!(podcast.status, 200);
    let xml = String::from_utf8_lossy(&podcast.body);
    assert_eq!(xml.matches("<item>").count(), 3, "{xml}");
    assert!(xml.contains(&format!("/conversions/{conversion_id}/audio/r2.mp3")), "{xml}");

    // Pause, resume, unsubscribe.
    let paused = http.patch_json(&serve.url(&format!("/feeds/{id}")), &json!({"paused": true}));
    assert_eq!(paused.status, 200, "{}", String::from_utf8_lossy(&paused.body));
    assert_eq!(feed(&http, &serve, &id)["state"], "paused");
    let refused = http.post_json(&serve.url(&format!("/feeds/{id}/poll")), &json!({}));
    assert_eq!(refused.status, 409);
    http.patch_json(&serve.url(&format!("/feeds/{id}")), &json!({"paused": false}));
    assert_eq!(feed(&http, &serve, &id)["state"], "active");
    let gone = http.delete(&serve.url(&format!("/feeds/{id}")));
    assert_eq!(gone.status, 200);
    assert_eq!(feed(&http, &serve, &id)["state"], "unsubscribed");
    // The list of subscriptions follows the log a moment later.
    let listed = |state: &str| -> Vec<Value> {
        let page = http.get(&serve.url(&format!("/feeds?state={state}"))).json();
        page["data"]["feeds"].as_array().cloned().unwrap_or_default()
    };
    let deadline = Instant::now() + WAIT;
    while !listed("unsubscribed").iter().any(|f| f["feed_id"] == id.as_str()) {
        assert!(
            Instant::now() < deadline,
            "the list shows the subscription ended: {:#?}",
            listed("unsubscribed")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(listed("active").iter().all(|f| f["feed_id"] != id.as_str()));
    // Its narrations stay.
    assert_eq!(conversions(&http, &serve, &blog.url()).len(), 3);
    drop(serve);
    lector.assert_events_match_schemas(&conversion_id);
}

#[test]
fn failures_show_their_reason_back_off_honour_retry_after_and_recover() {
    let blog = Blog::new(vec![Post::new(1)]);
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();
    let (_, created) = subscribe(&http, &serve, &json!({"url": blog.url(), "auto_convert": false}));
    let id = created["data"]["feed_id"].as_str().unwrap().to_owned();
    wait_feed(&http, &serve, &id, "the first poll", |s| s["last_poll_at"].is_string());

    // A 429 with Retry-After: failing, next try when the server said.
    blog.answer(Some(Reply::status(429).header("retry-after", "7200")));
    let limited = poll_now(&http, &serve, &id);
    assert_eq!(limited["state"], "failing", "{limited:#}");
    assert_eq!(limited["last_error"]["status"], 429);
    let next = chrono::DateTime::parse_from_rfc3339(limited["next_poll_at"].as_str().unwrap()).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(limited["last_error"]["at"].as_str().unwrap()).unwrap();
    let wait = (next - at).num_seconds();
    assert!((7190..=7300).contains(&wait), "Retry-After: 7200 s honoured, not {wait} s");

    // 500s: still failing, with backoff that grows, and the reason in words.
    blog.answer(Some(Reply::status(500)));
    let failing = poll_now(&http, &serve, &id);
    assert_eq!(failing["state"], "failing");
    assert_eq!(failing["consecutive_failures"], 2);
    assert_eq!(failing["last_error"]["kind"], "transient", "{failing:#}");
    assert!(!failing["last_error"]["cause"].as_str().unwrap().is_empty());
    let failed_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    let last = failed_events.iter().rev().find(|e| e["type"] == "FeedPollFailed").unwrap();
    assert_eq!(last["data"]["consecutive_failures"], 2);

    // The feed recovers by itself at the next poll.
    blog.answer(None);
    let recovered = poll_now(&http, &serve, &id);
    assert_eq!(recovered["state"], "active", "{recovered:#}");
    assert_eq!(recovered["consecutive_failures"], 0);
    assert!(recovered["last_error"].is_null());

    // A feed that became a page: failing (a maintenance page passes), then, three polls in a
    // row, paused with the reason.
    blog.answer(Some(Reply::html("<!doctype html><html><body><p>Moved to a new blog.</p></body></html>")));
    for _ in 0..2 {
        let failing = poll_now(&http, &serve, &id);
        assert_eq!(
            (failing["state"].as_str(), failing["last_error"]["kind"].as_str()),
            (Some("failing"), Some("not_a_feed")),
            "{failing:#}"
        );
    }
    let not_feed = poll_now(&http, &serve, &id);
    assert_eq!(not_feed["state"], "paused", "{not_feed:#}");
    assert_eq!(not_feed["paused_automatically"], true);
    assert!(not_feed["paused_reason"].as_str().unwrap().contains("Lector."), "{not_feed:#}");
    assert_eq!(conversions(&http, &serve, &blog.url()).len(), 0, "auto_convert off: nothing converted");
}

#[test]
fn a_feed_that_redirects_to_a_private_address_is_refused_with_its_reason() {
    let blog = Blog::new(vec![Post::new(1)]);
    let metadata = "http://169.254.169.254/latest/meta-data/";
    blog.server.route("/moved.xml", Reply::redirect(302, metadata));
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[]);
    let http = Http::new();

    // Refused at once when subscribing.
    let (code, refused) = subscribe(&http, &serve, &json!({"url": blog.server.url("/moved.xml")}));
    assert_eq!(code, 400, "{refused:#}");
    assert!(refused["message"].as_str().unwrap().contains("169.254.169.254"), "{refused:#}");

    // A subscribed feed that starts redirecting there fails, by name, and is not read.
    let (_, created) = subscribe(&http, &serve, &json!({"url": blog.url(), "auto_convert": false}));
    let id = created["data"]["feed_id"].as_str().unwrap().to_owned();
    wait_feed(&http, &serve, &id, "the first poll", |s| s["last_poll_at"].is_string());
    blog.answer(Some(Reply::redirect(302, metadata)));
    let status = poll_now(&http, &serve, &id);
    assert_ne!(status["state"], "active", "{status:#}");
    let cause = status["last_error"]["cause"].as_str().unwrap();
    assert!(cause.contains("169.254.169.254"), "the reason names the address: {status:#}");
}

#[test]
fn websub_pushes_are_read_only_when_their_signature_verifies() {
    let blog = Blog::with_hub(vec![Post::new(1)]);
    let lector = Lector::new();
    let secret = "a server secret of some length";
    let serve = Serve::start(
        &lector,
        &[("LECTOR_PUBLIC_URL", "http://lector.example"), ("LECTOR_WEBSUB_SECRET", secret)],
    );
    let http = Http::new();
    let (_, created) = subscribe(&http, &serve, &json!({"url": blog.url()}));
    let id = created["data"]["feed_id"].as_str().unwrap().to_owned();
    wait_feed(&http, &serve, &id, "the first poll", |s| s["last_poll_at"].is_string());

    // After a good poll the feed's hub is asked for a subscription, with a secret of its own.
    let deadline = Instant::now() + WAIT;
    while blog.server.hits("/hub") == 0 {
        assert!(Instant::now() < deadline, "the hub was never asked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let hub_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    let asked = hub_events.iter().find(|e| e["type"] == "HubSubscriptionRequested").expect("requested");
    assert_eq!(asked["data"]["topic"], blog.url().as_str());
    let callback = format!("/websub/{id}");

    // The hub checks the intent: a wrong topic is refused, the right one gets its challenge.
    let wrong = http.get(&serve.url(&format!(
        "{callback}?hub.mode=subscribe&hub.topic=http%3A%2F%2Fother.example%2Ffeed&hub.challenge=abc"
    )));
    assert_eq!(wrong.status, 404);
    let mut verify = reqwest::Url::parse(&serve.url(&callback)).unwrap();
    verify
        .query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.topic", &blog.url())
        .append_pair("hub.challenge", "challenge-8271")
        .append_pair("hub.lease_seconds", "86400");
    let answer = http.get(verify.as_str());
    assert_eq!(answer.status, 200);
    assert_eq!(String::from_utf8_lossy(&answer.body), "challenge-8271");
    let pushed = feed(&http, &serve, &id);
    assert!(pushed["hub"].as_str().unwrap().ends_with("/hub"), "{pushed:#}");

    // A forged push: acknowledged, and nothing is read from it.
    blog.set(vec![Post::new(2), Post::new(1)]);
    let body = blog.body();
    let forged = http.post_raw(
        &serve.url(&callback),
        &body,
        &[
            ("content-type", "application/rss+xml"),
            ("x-hub-signature", &format!("sha256={}", "ab".repeat(32))),
        ],
    );
    assert_eq!(forged.status, 200);
    assert_eq!(forged.json()["status"], "skipped");
    let unsigned = http.post_raw(&serve.url(&callback), &body, &[("content-type", "application/rss+xml")]);
    assert_eq!(unsigned.json()["status"], "skipped");
    assert_eq!(count(&events(&http, &serve, &format!("/feeds/{id}/events")), "PostDiscovered"), 1);

    // A push signed with the feed's secret is read as a poll would be.
    let feed_secret = lector_pipeline::websub::WebSubConfig::new(
        reqwest::Url::parse("http://lector.example").unwrap(),
        secret,
    )
    .unwrap()
    .feed_secret(&id.parse().unwrap());
    let signature = hex(&lector_pipeline::websub::hmac_sha256(feed_secret.as_bytes(), body.as_bytes()));
    let good = http.post_raw(
        &serve.url(&callback),
        &body,
        &[("content-type", "application/rss+xml"), ("x-hub-signature", &format!("sha256={signature}"))],
    );
    assert_eq!(good.status, 200, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(good.json()["status"], "success", "{}", String::from_utf8_lossy(&good.body));
    let after = events(&http, &serve, &format!("/feeds/{id}/events"));
    assert_eq!(count(&after, "PostDiscovered"), 2, "{:?}", types(&after));
    let push = after.iter().rev().find(|e| e["type"] == "FeedPolled").unwrap();
    assert_eq!(push["data"]["source"], "push");
    // The pushed post is narrated (the one there before was not: no backfill asked).
    let done = wait_conversions(&http, &serve, &blog.url(), 1);
    assert_eq!(done[0]["title"], "Post number 2");
    // Pushed feeds are still polled, daily.
    assert_eq!(feed(&http, &serve, &id)["next_poll_reason"], "pushed");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_kill_9_in_a_poll_cycle_loses_no_discovery_and_duplicates_no_conversion() {
    let posts: Vec<Post> = (1..=12).rev().map(Post::new).collect();
    let blog = Blog::new(posts);
    let lector = Lector::new();
    let http = Http::new();

    // Killed while the feed is being read: the poll is still due after the restart.
    blog.answer(Some(Reply::rss(blog.body()).delayed(Duration::from_secs(2))));
    let serve = Serve::start(&lector, &[]);
    let (_, created) = subscribe(&http, &serve, &json!({"url": blog.url(), "backfill": 12}));
    let id = created["data"]["feed_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + WAIT;
    while blog.server.hits("/feed.xml") == 0 {
        assert!(Instant::now() < deadline, "the feed was never read");
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.kill();
    blog.answer(None);

    // Killed again just after the poll is recorded, while its conversions are being asked for.
    let serve = Serve::start(&lector, &[]);
    wait_feed(&http, &serve, &id, "the poll after the restart", |s| s["last_poll_at"].is_string());
    serve.kill();

    let serve = Serve::start(&lector, &[]);
    let done = wait_conversions(&http, &serve, &blog.url(), 12);
    let mut titles: Vec<&str> = done.iter().filter_map(|c| c["title"].as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    assert_eq!(titles.len(), 12, "one conversion per post: {titles:?}");
    let feed_events = events(&http, &serve, &format!("/feeds/{id}/events"));
    assert_eq!(count(&feed_events, "PostDiscovered"), 12, "{:?}", types(&feed_events));
    // Each conversion was asked for once: one request event each.
    for c in &done {
        let id = c["conversion_id"].as_str().unwrap();
        let its = events(&http, &serve, &format!("/conversions/{id}/events"));
        assert_eq!(count(&its, "ConversionRequested"), 1, "{id}: {:?}", types(&its));
    }
}

#[test]
fn the_feeds_command_subscribes_lists_polls_pauses_and_unsubscribes() {
    let blog = Blog::new(vec![Post::new(2), Post::new(1)]);
    let lector = Lector::new();
    let run = |args: &[&str]| {
        let out = lector.run(args);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "lector {args:?}: {stderr}");
        stdout.into_owned()
    };
    let subscribed = run(&["feeds", "subscribe", &blog.url(), "--no-auto"]);
    let id = subscribed.lines().next().unwrap().strip_prefix("subscribed: ").expect("its id").to_owned();
    assert!(run(&["feeds", "subscribe", &blog.url()]).starts_with(&format!("already subscribed: {id}")));
    let listed = run(&["feeds", "list"]);
    assert!(listed.contains(&id) && listed.contains("active") && listed.contains(&blog.url()), "{listed}");

    let polled = run(&["feeds", "poll", &id]);
    assert!(polled.contains("HTTP 200"), "{polled}");
    let shown: Value = serde_json::from_str(&run(&["feeds", "show", &id, "--json"])).unwrap();
    assert_eq!((shown["posts_seen"].as_u64(), shown["title"].as_str()), (Some(2), Some("Harbour notes")));
    assert_eq!(shown["auto_convert"], false);
    assert!(blog.server.hits("/feed.xml") >= 1);

    assert!(run(&["feeds", "pause", &id]).starts_with("paused"));
    let refused = lector.run(&["feeds", "poll", &id]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("paused"), "a paused feed is not polled");
    assert!(run(&["feeds", "resume", &id]).starts_with("resumed"));
    assert!(run(&["feeds", "unsubscribe", &id]).starts_with("unsubscribed"));
    let all: Value = serde_json::from_str(&run(&["feeds", "list", "--json"])).unwrap();
    assert_eq!(all[0]["state"], "unsubscribed");
    assert_eq!(run(&["feeds", "list", "--state", "active"]).trim(), "no subscriptions");
}
