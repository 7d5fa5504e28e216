//! Peak memory of each workflow step on a 10,000-word post, each step in a process of its own
//! as a Lambda runs it (FetchArticle fetching the page from a loopback server), against the
//! peak of a process that only starts up the same way (the baseline in the same run).
//!
//! `cargo bench --bench step_memory`

use std::process::Command;
use std::sync::Arc;

use lector_core::ports::Clock;
use lector_core::{ConversionId, EventStore};
use lector_local::clock::SystemClock;
use lector_local::espeak::EspeakVoice;
use lector_pipeline::fetch::{AllowList, FetchPolicy, Fetcher};
use lector_pipeline::steps::{FetchArticle, PrepareSpeech, StepPorts, StitchAudio, SynthesizeChunk, invoke};
use serde_json::json;

/// The process's peak resident memory (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn post(words: usize) -> String {
    let sentence =
        "The reading group met again to talk about the book, and everyone had a different favourite chapter.";
    let per = sentence.split_whitespace().count();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><title>Long read</title></head><body><article><h1>Long read</h1>",
    );
    let mut count = 0;
    let mut n = 0;
    while count < words {
        if n % 30 == 0 {
            html.push_str(&format!("<h2>Section {}</h2>", n / 30 + 1));
        }
        html.push_str(&format!("<p>{}</p>", [sentence; 4].join(" ")));
        count += per * 4;
        n += 1;
    }
    html.push_str("</article></body></html>");
    html
}

/// Run one step in this process (the child) and print its peak memory.
fn child(step: &str, data: &str, input: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = lector::data::DataDir::open(std::path::Path::new(data)).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let ports = StepPorts {
            events: Arc::new(dir.events.clone()),
            objects: Arc::new(dir.objects.clone()),
            voice: Arc::new(EspeakVoice::new()),
            fetcher: Some(Arc::new(
                Fetcher::new(FetchPolicy {
                    allow: AllowList::parse("127.0.0.1").unwrap(),
                    ..FetchPolicy::default()
                })
                .unwrap(),
            )),
            clock,
            feeds: None,
            websub: None,
            folded_feeds: Default::default(),
        };
        let input: serde_json::Value = serde_json::from_str(input).unwrap();
        let output = match step {
            "baseline" => Ok(json!(null)),
            "FetchArticle" => invoke(&FetchArticle, &ports, input).await,
            "PrepareSpeech" => invoke(&PrepareSpeech, &ports, input).await,
            "SynthesizeChunk" => invoke(&SynthesizeChunk, &ports, input).await,
            "StitchAudio" => invoke(&StitchAudio, &ports, input).await,
            other => panic!("unknown step {other}"),
        };
        output.unwrap_or_else(|e| panic!("{step}: {e}"));
        println!("{}", peak_mib());
    });
}

fn run_child(step: &str, data: &std::path::Path, input: serde_json::Value) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child", step, data.to_str().unwrap(), &input.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{step}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2], &args[3], &args[4]);
    }
    const WORDS: usize = 10_000;
    let server = lector_testkit::http::TestServer::start();
    server.route("/long-read", lector_testkit::http::Reply::html(post(WORDS)));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data = lector::data::DataDir::open(dir.path()).unwrap();
    let id: ConversionId = rt.block_on(async {
        let submitted = lector_pipeline::submit::submit(
            &data.events,
            &data.objects,
            &SystemClock,
            lector_pipeline::submit::Submission::new(
                url::Url::parse(&server.url("/long-read")).unwrap(),
                lector_core::VoiceId::new("en-us"),
                lector_core::VoiceEngine::Espeak,
                "bench",
            ),
        )
        .await
        .unwrap();
        submitted.conversion_id
    });
    let conversion = json!({"conversion_id": id, "attempt": 1});
    let baseline = run_child("baseline", dir.path(), json!(null));
    let fetch = run_child(
        "FetchArticle",
        dir.path(),
        json!({"conversion_id": id, "attempt": 1, "execution_id": "bench"}),
    );
    let prepare = run_child("PrepareSpeech", dir.path(), conversion.clone());
    let chunks = rt.block_on(async {
        let (_, state) = lector_core::service::load(&data.events, &id).await.unwrap();
        state.speech.unwrap().chunks
    });
    let mut synth: f64 = 0.0;
    for index in 0..chunks {
        synth = synth.max(run_child(
            "SynthesizeChunk",
            dir.path(),
            json!({"conversion_id": id, "attempt": 1, "index": index}),
        ));
    }
    let stitch = run_child("StitchAudio", dir.path(), conversion);
    let words = rt.block_on(async {
        let events = data.events.read_stream(&id.stream(), 0).await.unwrap();
        lector_core::ConversionStatus::fold(&events).unwrap().unwrap()
    });
    println!(
        "10,000-word post ({} words read, {chunks} chunks, {:.0} s of audio): peak resident memory per step, one process each",
        words.words.unwrap_or_default(),
        words.duration_seconds.unwrap_or_default()
    );
    println!("  baseline (start-up only) {baseline:>7.1} MiB");
    for (name, peak) in [
        ("FetchArticle", fetch),
        ("PrepareSpeech", prepare),
        ("SynthesizeChunk (max)", synth),
        ("StitchAudio", stitch),
    ] {
        println!("  {name:<24} {peak:>7.1} MiB   ({:+.1} MiB over the baseline)", peak - baseline);
    }
}
