//! One poll cycle over 1,000 subscribed feeds on a loopback server (90 % answering `304`, 10 %
//! with one new item), through the polling workflow on the local engine
//! (`statemachines/poll-feeds.asl.json`, its Map of 10 at once, each poll's events appended to
//! SQLite), against a baseline in the same run: a bare `reqwest` loop of the same conditional
//! GETs, 10 at once, reading each body.
//!
//! `cargo bench --bench polls`
//!
//! Prints the wall time and the CPU time per poll of each, and their ratio (target ≤ 1.5×).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lector::local::{LocalOptions, LocalSystem};
use lector_core::feed::FeedStatus;
use lector_core::feed::event::FeedSubscribed;
use lector_core::feed::event::PollSource;
use lector_core::feed::index::FeedIndex;
use lector_core::feed::service::execute_feed;
use lector_core::feed::subscription::FeedCommand;
use lector_core::{EventMeta, FeedId, VoiceEngine, VoiceId};
use lector_pipeline::fetch::AllowList;
use lector_pipeline::poll::PollRequest;
use lector_testkit::http::{Reply, TestServer};

const FEEDS: usize = 1_000;
const CONCURRENCY: usize = 10;

fn item(feed: usize, n: usize) -> String {
    format!(
        "<item><title>Post {n} of feed {feed}</title><link>http://blog.test/{feed}/{n}</link>\
         <guid>feed-{feed}-post-{n}</guid><description>Post {n}, a short one.</description></item>"
    )
}

fn feed_xml(feed: usize, items: usize) -> String {
    let items: String = (1..=items).rev().map(|n| item(feed, n)).collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Feed {feed}</title>\
         <link>http://blog.test/{feed}/</link><description>Feed {feed}</description>{items}</channel></rss>"
    )
}

/// The process's CPU time (user + system), from `/proc/self/stat` (in clock ticks of 10 ms).
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Serve feed `n` at `/feeds/n.xml` with `items[n]` items, an ETag per content and 304s.
fn serve(server: &TestServer, items: Arc<Mutex<Vec<usize>>>) {
    for feed in 0..FEEDS {
        let items = items.clone();
        server.dynamic(&format!("/feeds/{feed}.xml"), move |request| {
            let count = items.lock().unwrap()[feed];
            let etag = format!("\"{feed}-{count}\"");
            if request.headers.get("if-none-match") == Some(&etag) {
                return Reply::status(304).header("etag", &etag);
            }
            Reply::rss(feed_xml(feed, count)).header("etag", &etag)
        });
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let server = TestServer::start();
        let items = Arc::new(Mutex::new(vec![3usize; FEEDS]));
        serve(&server, items.clone());
        let dir = tempfile::tempdir().unwrap();
        let allow = AllowList::parse("127.0.0.1").unwrap();
        let system = LocalSystem::start(dir.path(), LocalOptions::new(allow)).await.unwrap();
        let now = chrono::Utc::now();
        let mut ids = Vec::new();
        for feed in 0..FEEDS {
            let url = url::Url::parse(&server.url(&format!("/feeds/{feed}.xml"))).unwrap();
            let id = FeedId::derive(&url);
            let subscribed = FeedSubscribed {
                feed_id: id.clone(),
                url,
                voice: VoiceId::auto(),
                engine: VoiceEngine::Espeak,
                // Polling is measured, not narration.
                auto_convert: false,
                regenerate_on_edit: false,
                backfill: 0,
                interval_minutes: 15,
                owner: None,
                podcast_guid: None,
                subscribed_by: "bench".into(),
            };
            let meta = EventMeta { occurred_at: now, correlation_id: id.to_string(), causation_id: None };
            execute_feed(system.events(), &id, FeedCommand::Subscribe(subscribed), &meta).await.unwrap();
            let events = system.events().read_stream(&id.stream(), 0).await.unwrap();
            system.feeds.put(&FeedStatus::fold(&events).unwrap().unwrap()).await.unwrap();
            ids.push(id);
        }
        // The first cycle reads every feed and keeps its validators.
        let request = PollRequest { feed_ids: Some(ids.clone()), limit: None };
        system.polls.run(&request).await.unwrap();

        // 10 % get a new item.
        for feed in (0..FEEDS).step_by(10) {
            items.lock().unwrap()[feed] += 1;
        }
        let (cpu0, wall0) = (cpu(), Instant::now());
        system.polls.run(&request).await.unwrap();
        let (workflow_wall, workflow_cpu) = (wall0.elapsed(), cpu() - cpu0);

        // Check what the cycle did: every feed polled once more, 100 new posts.
        let mut not_modified = 0;
        let mut discovered = 0;
        for id in &ids {
            let events = system.events().read_stream(&id.stream(), 0).await.unwrap();
            let polls: Vec<_> = events.iter().filter(|e| e.event_type == "FeedPolled").collect();
            assert_eq!(polls.len(), 2, "{id} polled twice");
            assert_eq!(polls[1].data["source"], serde_json::to_value(PollSource::Poll).unwrap());
            not_modified += usize::from(polls[1].data["status"] == 304);
            discovered += polls[1].data["new"].as_u64().unwrap() as usize;
        }
        assert_eq!((not_modified, discovered), (FEEDS * 9 / 10, FEEDS / 10));
        system.shutdown().await;

        // The baseline: the same conditional GETs with the validators of the last answers.
        for feed in (0..FEEDS).step_by(10) {
            items.lock().unwrap()[feed] += 1;
        }
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let etags: Vec<String> = (0..FEEDS)
            .map(|feed| {
                let count = items.lock().unwrap()[feed];
                let current = if feed % 10 == 0 { count - 1 } else { count };
                format!("\"{feed}-{current}\"")
            })
            .collect();
        let (cpu0, wall0) = (cpu(), Instant::now());
        let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut gets = tokio::task::JoinSet::new();
        for (feed, etag) in etags.iter().enumerate() {
            let (client, etag, url) = (client.clone(), etag.clone(), server.url(&format!("/feeds/{feed}.xml")));
            let permits = permits.clone();
            gets.spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                let response = client.get(url).header("if-none-match", etag).send().await.unwrap();
                let status = response.status().as_u16();
                response.bytes().await.unwrap();
                status
            });
        }
        let statuses: Vec<u16> = gets.join_all().await;
        let (bare_wall, bare_cpu) = (wall0.elapsed(), cpu() - cpu0);
        assert_eq!(statuses.iter().filter(|s| **s == 304).count(), FEEDS * 9 / 10);

        let per = |d: Duration| d.as_secs_f64() * 1e6 / FEEDS as f64;
        println!("{FEEDS} feeds on loopback, 90 % answering 304, 10 % with one new item, {CONCURRENCY} at once, 2 cores");
        println!(
            "  polling workflow (local engine, SQLite)  wall {:>7.3} s   CPU {:>7.0} µs/poll",
            workflow_wall.as_secs_f64(),
            per(workflow_cpu)
        );
        println!(
            "  bare reqwest conditional GETs           wall {:>7.3} s   CPU {:>7.0} µs/poll",
            bare_wall.as_secs_f64(),
            per(bare_cpu)
        );
        println!(
            "  workflow / bare: wall {:.2}x, CPU {:.2}x",
            workflow_wall.as_secs_f64() / bare_wall.as_secs_f64(),
            workflow_cpu.as_secs_f64() / bare_cpu.as_secs_f64()
        );
    });
}
