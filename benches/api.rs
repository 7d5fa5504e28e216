//! `GET /conversions/{id}` under concurrent load on loopback, against `GET /health` in the same
//! run: requests per second and latency percentiles of a real `lector serve` stack (axum, the
//! SQLite log, the status fold), with the load generator in the same process.
//!
//! `cargo bench --bench api`

use std::time::{Duration, Instant};

use lector::serve::{SAMPLE_FEED_PATH, ServeOptions, Server};
use lector_pipeline::fetch::AllowList;

const CONNECTIONS: usize = 32;
const SECONDS: u64 = 5;

async fn load(url: String) -> (f64, Duration, Duration) {
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(CONNECTIONS).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let response = client.get(&url).send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (all.len() as f64 / elapsed.as_secs_f64(), pct(0.50), pct(0.99))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(ServeOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            data: dir.path().to_path_buf(),
            allow_hosts: AllowList::default(),
            token: None,
            public_url: None,
            voice: None,
            podcast_owner: None,
            poll_every: None,
            websub: None,
        })
        .await
        .unwrap();
        let base = server.url();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let body = serde_json::json!({"url": "https://example.com/lector/welcome", "feed_url": format!("{base}{SAMPLE_FEED_PATH}")});
        let answer = client
            .post(format!("{base}/conversions"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let submitted: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        let status_url = submitted["data"]["status_url"].as_str().unwrap().to_owned();
        loop {
            let answer = client.get(&status_url).send().await.unwrap().bytes().await.unwrap();
            let status: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            if status["data"]["state"] == "completed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{CONNECTIONS} connections, {SECONDS} s each, load generator in the same process, 2 cores");
        let (h_rps, h_p50, h_p99) = load(format!("{base}/health")).await;
        let (c_rps, c_p50, c_p99) = load(status_url).await;
        println!("  GET /health             {h_rps:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms", ms(h_p50), ms(h_p99));
        println!("  GET /conversions/{{id}}   {c_rps:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms", ms(c_p50), ms(c_p99));
        println!("  status / health         {:>8.2}x throughput   {:.2}x p99", c_rps / h_rps, ms(c_p99) / ms(h_p99));
        server.shutdown().await.unwrap();
    });
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
