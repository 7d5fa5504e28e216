//! `lector replay` end to end: conversions that failed (a 404, a voice outage) are found with
//! their reason and completed by a redrive or a restart, recorded in their streams, without
//! synthesizing again what was done and without duplicate audio; a dry run changes nothing.
//!
//! The voice outage is real at the process level ([`common::Outage`]).

mod common;

use std::path::Path;
use std::process::Output;

use common::{Lector, Outage, rss, rss_item};
use lector_testkit::http::{Reply, TestServer};
use serde_json::Value;

/// Files under `dir`, at any depth.
fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() { walk_files(&path) } else { 1 }
        })
        .sum()
}

fn run(lector: &Lector, outage: Option<&Outage>, args: &[&str]) -> Output {
    let mut command = lector.command(args);
    if let Some(outage) = outage {
        command.env("PATH", outage.path_env());
    }
    command.output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn convert(lector: &Lector, outage: Option<&Outage>, feed: &str) -> Vec<Value> {
    let out = lector.out();
    json_lines(&run(lector, outage, &["convert", feed, "--all", "--json", "--out", out.to_str().unwrap()]))
}

fn types(lector: &Lector, id: &str) -> Vec<String> {
    lector.events(id).iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// The stream's event types, with runs of ChunkSynthesized folded into one.
fn shape(types: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for t in types {
        if out.last() != Some(&t.as_str()) || t != "ChunkSynthesized" {
            out.push(t);
        }
    }
    out
}

fn article(title: &str, paragraphs: &[String]) -> String {
    let body: String = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}</article></body></html>"
    )
}

fn short_article(title: &str) -> String {
    let p = "This is a short post about nothing in particular, written so that a reader can listen to it. \
             It has a few sentences, which is all an article needs.";
    article(title, &vec![p.to_owned(); 5])
}

#[test]
fn a_404_then_served_page_is_completed_by_redrive_and_a_dry_run_changes_nothing() {
    let pages = TestServer::start();
    pages.route("/post", Reply::not_found());
    pages.route("/feed.xml", Reply::rss(rss("Blog", &[rss_item("The post", &pages.url("/post"), None)])));
    let lector = Lector::new();
    let first = convert(&lector, None, &pages.url("/feed.xml"));
    assert_eq!(first[0]["state"], "failed");
    let id = first[0]["conversion_id"].as_str().unwrap().to_owned();

    // Listed with its reason.
    let listed = json_lines(&run(&lector, None, &["replay", "--failed", "--json"]));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["conversion_id"], id.as_str());
    assert_eq!(listed[0]["error"], "Lector.NotFound");
    assert_eq!(listed[0]["failed_state"], "FetchArticle");
    assert!(listed[0]["cause"].as_str().unwrap().contains("404"));
    assert_eq!(listed[0]["attempt"], 1);
    assert!(listed[0]["age_seconds"].as_i64().unwrap() >= 0);

    // A dry run changes nothing.
    let before = types(&lector, &id);
    let dry = run(&lector, None, &["replay", "--failed", "--redrive"]);
    assert!(dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stderr).contains("dry run"));
    assert_eq!(types(&lector, &id), before);

    // Filters that do not match select nothing.
    let none =
        json_lines(&run(&lector, None, &["replay", "--failed", "--json", "--error", "Lector.Transient"]));
    assert!(none.is_empty());

    pages.route("/post", Reply::html(short_article("The post")));
    let replayed = run(
        &lector,
        None,
        &["replay", "--failed", "--redrive", "--yes", "--reason", "page is back", "--by", "ops", "--json"],
    );
    assert!(
        replayed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&replayed.stderr),
        String::from_utf8_lossy(&replayed.stdout)
    );
    let lines = json_lines(&replayed);
    assert_eq!(lines[0]["outcome"], "replayed");
    assert_eq!(lines[0]["final_state"], "completed");

    let events = lector.events(&id);
    let t = types(&lector, &id);
    assert_eq!(
        shape(&t),
        [
            "ConversionRequested",
            "ConversionStarted",
            "ConversionFailed",
            "ConversionRetried",
            "ArticleFetched",
            "SpeechPrepared",
            "ChunkSynthesized",
            "ConversionCompleted"
        ]
    );
    let retried = events.iter().find(|e| e["type"] == "ConversionRetried").unwrap();
    assert_eq!(retried["data"]["how"], "redrive");
    assert_eq!(retried["data"]["by"], "ops");
    assert_eq!(retried["data"]["reason"], "page is back");
    assert_eq!(lector.status(&id)["redrives"], 1);
    lector.assert_events_match_schemas(&id);
}

/// A post of several chunks, every sentence its own, whose last sentence (so the last chunk)
/// holds the marker word.
fn long_post() -> String {
    let sentence = |p: usize, n: usize| {
        format!("The river ran past mill {p} and the miller counted sack {n} of grain one by one.")
    };
    let paragraph = |p: usize| {
        (0..12).map(|n| sentence(p, n)).collect::<Vec<_>>().join(" ") + &format!(" Paragraph {p} ends here.")
    };
    let mut paragraphs: Vec<String> = (0..14).map(paragraph).collect();
    paragraphs.push("At last the boat reached Zanzibar, and the story ends.".into());
    article("The long post", &paragraphs)
}

#[test]
fn a_redrive_after_a_voice_outage_does_not_synthesize_finished_chunks_again() {
    let pages = TestServer::start();
    pages.route("/long", Reply::html(long_post()));
    pages.route("/feed.xml", Reply::rss(rss("Blog", &[rss_item("Long", &pages.url("/long"), None)])));
    let outage = Outage::new(Some("Zanzibar"));
    outage.start();
    let lector = Lector::new();
    let first = convert(&lector, Some(&outage), &pages.url("/feed.xml"));
    assert_eq!(first[0]["state"], "failed", "{:#}", first[0]);
    let id = first[0]["conversion_id"].as_str().unwrap().to_owned();
    let status = lector.status(&id);
    assert_eq!(status["error"]["state"], "SynthesizeChunks");
    assert_eq!(status["error"]["error"], "Lector.Transient");
    let total = status["progress"]["chunks_total"].as_u64().unwrap();
    let done = status["progress"]["chunks_done"].as_u64().unwrap();
    assert!(total >= 3 && done == total - 1, "{done} of {total} chunks were made before the outage");
    let before: Vec<String> = outage.syntheses();

    outage.end();
    let replayed = run(&lector, Some(&outage), &["replay", "--failed", "--redrive", "--yes", "--json"]);
    assert!(
        replayed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&replayed.stderr),
        String::from_utf8_lossy(&replayed.stdout)
    );
    assert_eq!(lector.status(&id)["state"], "completed");
    let after = outage.syntheses();
    let new: Vec<&String> = after[before.len()..].iter().collect();
    assert_eq!(new.len(), 1, "only the sentence that failed was synthesized again: {new:?}");
    assert!(before.contains(new[0]), "and it is the one that failed during the outage");
    let spoken_twice: Vec<&String> =
        before.iter().filter(|h| *h != new[0] && before.iter().filter(|o| o == h).count() > 1).collect();
    assert!(spoken_twice.is_empty(), "a sentence that did not fail was spoken twice: {spoken_twice:?}");

    let t = types(&lector, &id);
    let failed = t.iter().position(|e| e == "ConversionFailed").unwrap();
    assert_eq!(t[failed + 1], "ConversionRetried");
    assert_eq!(t[t.len() - 2..], ["ChunkSynthesized", "ConversionCompleted"]);
    assert_eq!(t.iter().filter(|e| *e == "ChunkSynthesized").count() as u64, total, "one event per chunk");
}

#[test]
fn a_restart_runs_a_new_attempt_from_the_start() {
    let pages = TestServer::start();
    pages.route("/post", Reply::html(short_article("Restarted")));
    pages.route("/feed.xml", Reply::rss(rss("Blog", &[rss_item("Restarted", &pages.url("/post"), None)])));
    let outage = Outage::new(None);
    outage.start();
    let lector = Lector::new();
    let first = convert(&lector, Some(&outage), &pages.url("/feed.xml"));
    assert_eq!(first[0]["state"], "failed");
    let id = first[0]["conversion_id"].as_str().unwrap().to_owned();
    outage.end();

    let replayed = run(&lector, Some(&outage), &["replay", "--id", &id, "--restart", "--yes", "--json"]);
    assert!(
        replayed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&replayed.stderr),
        String::from_utf8_lossy(&replayed.stdout)
    );
    let status = lector.status(&id);
    assert_eq!(status["state"], "completed");
    assert_eq!(status["attempt"], 2);
    let t = types(&lector, &id);
    assert_eq!(
        shape(&t),
        [
            "ConversionRequested",
            "ConversionStarted",
            "ArticleFetched",
            "SpeechPrepared",
            "ConversionFailed",
            "ConversionRetried",
            "ConversionStarted",
            "ArticleFetched",
            "SpeechPrepared",
            "ChunkSynthesized",
            "ConversionCompleted"
        ]
    );
    assert_eq!(pages.hits("/post"), 2, "the restart fetched the page again");
    let events = lector.events(&id);
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "ConversionStarted")
        .map(|e| e["data"]["attempt"].clone())
        .collect();
    assert_eq!(started, [1, 2]);

    // A completed conversion is not replayed again.
    let again = json_lines(&run(&lector, None, &["replay", "--id", &id, "--restart", "--yes", "--json"]));
    assert_eq!(again[0]["outcome"], "skipped");
    assert_eq!(lector.status(&id)["attempt"], 2);
}

#[test]
fn fifty_conversions_failed_by_a_voice_outage_are_all_completed_by_one_redrive() {
    let pages = TestServer::start();
    let items: Vec<String> = (0..50)
        .map(|n| {
            rss_item(
                &format!("Post {n}"),
                &pages.url(&format!("/posts/{n}")),
                Some(&format!("<p>Post number {n} is short. It has two sentences.</p>")),
            )
        })
        .collect();
    pages.route("/feed.xml", Reply::rss(rss("Many", &items)));
    let outage = Outage::new(None);
    outage.start();
    let lector = Lector::new();
    let first = convert(&lector, Some(&outage), &pages.url("/feed.xml"));
    assert_eq!(first.len(), 50);
    assert!(first.iter().all(|l| l["state"] == "failed"), "every conversion failed during the outage");
    assert!(first.iter().all(|l| l["error"].as_str().unwrap().starts_with("Lector.Transient")));

    outage.end();
    let started = std::time::Instant::now();
    let replayed = run(
        &lector,
        Some(&outage),
        &["replay", "--failed", "--redrive", "--yes", "--rate", "10/s", "--json"],
    );
    assert!(
        replayed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&replayed.stderr),
        String::from_utf8_lossy(&replayed.stdout)
    );
    let lines = json_lines(&replayed);
    assert_eq!(lines.len(), 50);
    assert!(
        lines.iter().all(|l| l["outcome"] == "replayed" && l["final_state"] == "completed"),
        "{lines:#?}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(4_900),
        "50 replays at 10/s take about 5 s"
    );

    // One audio object per distinct sentence (each post's own, and "It has two sentences."
    // that all share) and one MP3 per conversion: nothing duplicated.
    let units = walk_files(&lector.data().join("objects/speech"));
    assert_eq!(units, 51, "{units} stored sentences");
    for line in &first {
        let id = line["conversion_id"].as_str().unwrap();
        assert!(lector.data().join("objects/audio").join(format!("{id}.mp3")).is_file());
        let t = types(&lector, id);
        assert!(t.iter().filter(|e| *e == "ChunkSynthesized").count() <= 1);
        assert_eq!(t.last().map(String::as_str), Some("ConversionCompleted"));
    }
    assert!(
        json_lines(&run(&lector, None, &["replay", "--failed", "--json"])).is_empty(),
        "nothing is left failed"
    );
}

#[test]
fn events_replay_delivers_a_missed_request_to_the_workflow_rule() {
    let lector = Lector::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A request in the log whose delivery the workflow rule missed: its cursor is past it.
    let id = rt.block_on(async {
        let data = lector::data::DataDir::open(&lector.data()).unwrap();
        let submitted = lector_pipeline::submit::submit(
            &data.events,
            &data.objects,
            &lector_local::clock::SystemClock,
            lector_pipeline::submit::Submission {
                title: Some("Missed".into()),
                content_html: Some("<p>This request was never delivered to the workflow. It has two sentences.</p>".into()),
                ..lector_pipeline::submit::Submission::new(
                    url::Url::parse("https://example.com/missed").unwrap(),
                    lector_core::VoiceId::new("en-us"),
                    lector_core::VoiceEngine::Espeak,
                    "test",
                )
            },
        )
        .await
        .unwrap();
        data.db
            .write(|tx| {
                tx.execute("INSERT INTO outbox_cursors (subscriber, position) VALUES ('start-conversion-workflow', 1000)", [])
                    .map_err(lector_local::db::DbError::from)
            })
            .await
            .unwrap();
        submitted.conversion_id.to_string()
    });
    assert_eq!(lector.status(&id)["state"], "requested");

    let unknown = run(&lector, None, &["events", "replay", "--since", "1h", "--type", "Nonsense"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown event type"));

    let replayed =
        run(&lector, None, &["events", "replay", "--since", "1h", "--type", "ConversionRequested"]);
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(said.contains("delivered") && said.contains("started and finished"), "{said}");
    assert_eq!(lector.status(&id)["state"], "completed");
    // Replaying again starts nothing: the execution of that request exists.
    let again = run(&lector, None, &["events", "replay", "--since", "1h", "--type", "ConversionRequested"]);
    assert!(!String::from_utf8_lossy(&again.stdout).contains("started"));
    assert_eq!(types(&lector, &id).iter().filter(|t| *t == "ConversionStarted").count(), 1);
}
