//! One poll cycle over 1,000 subscribed feeds on a loopback server (90 % answering `304`, 10 %
//! with one new item), through the polling workflow on the local engine
//! (`statemachines/poll-feeds.asl.json`, its Map of 10 at once, each poll's events appended to
//! SQLite), against a baseline in the same run: a bare `reqwest` loop of the same conditional
//! GETs, 10 at once, reading each body. Three times: with the server answering at once (the
//! workflow's whole cost against a GET that costs next to nothing but its CPU), after 1 ms (a
//! server close by; the runtime's timer makes it 1 to 2 ms) and after 50 ms (a feed server's
//! usual answer).
//!
//! `cargo bench --bench polls` (`-- 0` for the server answering at once alone; any list of
//! milliseconds)
//!
//! Prints, over five rounds, the wall time and the CPU time per poll of each (each round, then
//! the median round of each), and their ratio (target ≤ 1.5×), with the bare loop's mean time
//! per GET; and, between them, the same polls made by the poll-feed handler itself, 10 at once,
//! without the workflow, which splits the workflow's cost into the engine's and the handler's.
//! The process's CPU includes the loopback server's, the same for both, and for the workflow
//! the outbox's work on what the cycle appended (the list of subscriptions kept up to date).

use std::sync::atomic::{AtomicU64, Ordering};
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
use lector_pipeline::poll::{PollFeed, PollFeedInput, PollOutcome, PollRequest};
use lector_pipeline::steps::Step;
use lector_testkit::http::{Reply, TestServer};

const FEEDS: usize = 1_000;
const CONCURRENCY: usize = 10;
/// Rounds per server latency: a shared machine's noise moves one round by a third.
const REPEATS: usize = 5;

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

/// Serve feed `n` at `/feeds/n.xml` with `items[n]` items, an ETag per content and 304s, each
/// answer after `latency` milliseconds.
fn serve(server: &TestServer, items: Arc<Mutex<Vec<usize>>>, latency: Arc<AtomicU64>) {
    for feed in 0..FEEDS {
        let (items, latency) = (items.clone(), latency.clone());
        server.dynamic(&format!("/feeds/{feed}.xml"), move |request| {
            let count = items.lock().unwrap()[feed];
            let etag = format!("\"{feed}-{count}\"");
            let reply = if request.headers.get("if-none-match") == Some(&etag) {
                Reply::status(304).header("etag", &etag)
            } else {
                Reply::rss(feed_xml(feed, count)).header("etag", &etag)
            };
            reply.delayed(Duration::from_millis(latency.load(Ordering::Relaxed)))
        });
    }
}

/// The cycle of median wall time (and that cycle's CPU).
fn median(mut cycles: Vec<Cycle>) -> Cycle {
    cycles.sort_by_key(|c| c.wall);
    cycles.swap_remove(cycles.len() / 2)
}

/// One cycle's wall and CPU time.
struct Cycle {
    wall: Duration,
    cpu: Duration,
}

impl Cycle {
    async fn time<T>(work: impl std::future::Future<Output = T>) -> (T, Cycle) {
        let (cpu0, wall0) = (cpu(), Instant::now());
        let out = work.await;
        (out, Cycle { wall: wall0.elapsed(), cpu: cpu() - cpu0 })
    }
}

/// Wait until the process is idle (under 2 ms of CPU in 100 ms): the outbox has projected and
/// delivered what the cycle appended. Returns the CPU time spent meanwhile, the idle window
/// left out.
async fn settle() -> Duration {
    let mut spent = Duration::ZERO;
    loop {
        let before = cpu();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let used = cpu() - before;
        if used < Duration::from_millis(2) {
            return spent;
        }
        spent += used;
    }
}

/// Give every tenth feed one new item.
fn publish(items: &Mutex<Vec<usize>>) {
    for feed in (0..FEEDS).step_by(10) {
        items.lock().unwrap()[feed] += 1;
    }
}

/// The same conditional GETs as the poll cycle just made, with the validators it was given
/// (every tenth feed's one item behind), `CONCURRENCY` at once, each body read.
async fn bare_cycle(server: &TestServer, items: &Mutex<Vec<usize>>) -> Vec<u16> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let etags: Vec<String> = (0..FEEDS)
        .map(|feed| {
            let count = items.lock().unwrap()[feed];
            let last = if feed % 10 == 0 { count - 1 } else { count };
            format!("\"{feed}-{last}\"")
        })
        .collect();
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut gets = tokio::task::JoinSet::new();
    for (feed, etag) in etags.into_iter().enumerate() {
        let (client, url, permits) =
            (client.clone(), server.url(&format!("/feeds/{feed}.xml")), permits.clone());
        gets.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let response = client.get(url).header("if-none-match", etag).send().await.unwrap();
            let status = response.status().as_u16();
            response.bytes().await.unwrap();
            status
        });
    }
    gets.join_all().await
}

/// Poll every feed once with the poll-feed handler itself, as the workflow's Map does but
/// without the engine: `CONCURRENCY` at once.
async fn handler_cycle(system: &LocalSystem, ids: &[FeedId]) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut polls = tokio::task::JoinSet::new();
    for id in ids {
        let (ports, permits, input) =
            (system.ports.clone(), permits.clone(), PollFeedInput { feed_id: id.clone(), force: true });
        polls.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            PollFeed.run(&ports, input).await.unwrap()
        });
    }
    for output in polls.join_all().await {
        assert_eq!(output.outcome, PollOutcome::Polled);
    }
}

/// What a round did: every feed polled `rounds` times in all, the last time 90 % answering 304
/// and 100 new posts.
async fn check(system: &LocalSystem, ids: &[FeedId], rounds: usize) {
    let (mut polls, mut not_modified, mut discovered) = (0, 0, 0);
    for id in ids {
        let events = system.events().read_stream(&id.stream(), 0).await.unwrap();
        let polled: Vec<_> = events.iter().filter(|e| e.event_type == "FeedPolled").collect();
        assert_eq!(polled.len(), rounds, "{id} polled once per round");
        let last = polled.last().unwrap();
        assert_eq!(last.data["source"], serde_json::to_value(PollSource::Poll).unwrap());
        polls += 1;
        not_modified += usize::from(last.data["status"] == 304);
        discovered += last.data["new"].as_u64().unwrap() as usize;
    }
    assert_eq!((polls, not_modified, discovered), (FEEDS, FEEDS * 9 / 10, FEEDS / 10));
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let server = TestServer::start();
        let items = Arc::new(Mutex::new(vec![3usize; FEEDS]));
        let latency = Arc::new(AtomicU64::new(0));
        serve(&server, items.clone(), latency.clone());
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
        settle().await;

        println!("{FEEDS} feeds on loopback, 90 % answering 304, 10 % with one new item, {CONCURRENCY} at once, 2 cores");
        let per = |d: Duration| d.as_secs_f64() * 1e6 / FEEDS as f64;
        let mut rounds = 1;
        // `cargo bench --bench polls -- 0` measures only the server answering at once.
        let mut latencies: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
        if latencies.is_empty() {
            latencies = vec![0, 1, 50];
        }
        for ms in latencies {
            latency.store(ms, Ordering::Relaxed);
            println!("  the server answering in {ms} ms, {REPEATS} rounds, then the median round of each:");
            let (mut workflows, mut handlers, mut bares) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..REPEATS {
                publish(&items);
                let ((), mut workflow) = Cycle::time(async { system.polls.run(&request).await.unwrap() }).await;
                // What the cycle leaves to the outbox (the list of subscriptions) is its cost too.
                workflow.cpu += settle().await;
                rounds += 1;
                check(&system, &ids, rounds).await;

                // The same polls without the workflow: the poll-feed handler, `CONCURRENCY` at once.
                publish(&items);
                let ((), mut handler) = Cycle::time(handler_cycle(&system, &ids)).await;
                handler.cpu += settle().await;
                rounds += 1;
                check(&system, &ids, rounds).await;

                let (statuses, bare) = Cycle::time(bare_cycle(&server, &items)).await;
                assert_eq!(statuses.iter().filter(|s| **s == 304).count(), FEEDS * 9 / 10);
                println!(
                    "    round: workflow {:.3} s, handler {:.3} s, bare {:.3} s: {:.2}x, {:.2}x",
                    workflow.wall.as_secs_f64(),
                    handler.wall.as_secs_f64(),
                    bare.wall.as_secs_f64(),
                    workflow.wall.as_secs_f64() / bare.wall.as_secs_f64(),
                    handler.wall.as_secs_f64() / bare.wall.as_secs_f64(),
                );
                workflows.push(workflow);
                handlers.push(handler);
                bares.push(bare);
            }
            let (workflow, handler, bare) = (median(workflows), median(handlers), median(bares));
            for (what, c) in [
                ("polling workflow (local engine, SQLite)", &workflow),
                ("poll-feed handler alone, no workflow", &handler),
                ("bare reqwest conditional GETs", &bare),
            ] {
                println!("    {what:<41} wall {:>7.3} s   CPU {:>6.0} µs/poll", c.wall.as_secs_f64(), per(c.cpu));
            }
            let per_get = bare.wall.as_secs_f64() * 1e3 * CONCURRENCY as f64 / FEEDS as f64;
            println!("    a bare GET took {per_get:.2} ms on average");
            let ratio = |a: &Cycle| a.wall.as_secs_f64() / bare.wall.as_secs_f64();
            println!(
                "    workflow / bare: wall {:.2}x, CPU {:.2}x; handler alone / bare: wall {:.2}x",
                ratio(&workflow),
                workflow.cpu.as_secs_f64() / bare.cpu.as_secs_f64(),
                ratio(&handler),
            );
        }
        system.shutdown().await;
    });
}
