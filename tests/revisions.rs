//! Revisions end to end through `lector serve`: an edited post is re-narrated sentence by
//! sentence (what is stored is reused, each new sentence is spoken once), the previous audio
//! stays served until the new one is complete, an unchanged post submitted again changes
//! nothing, an edit during a run supersedes it, a failed revision is redriven without speaking
//! again what it had made, and a `kill -9` in the middle of a revision loses nothing.
//!
//! Every synthesis goes through [`common::Outage`]'s `espeak-ng`, which logs a hash of each
//! input: what was spoken, and how many times, is read from there.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Http, Lector, Outage, Serve, rss, rss_item};
use lector_testkit::http::{Reply, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// A post of `paragraphs`, each a list of sentences, carried whole in the feed.
fn post_html(paragraphs: &[Vec<String>]) -> String {
    paragraphs.iter().map(|p| format!("<p>{}</p>", p.join(" "))).collect()
}

/// Eight paragraphs of six sentences, each sentence its own.
fn paragraphs() -> Vec<Vec<String>> {
    (0..8)
        .map(|p| {
            (0..6)
                .map(|n| format!("In paragraph {p} the keeper lit lamp number {n} before the storm came in."))
                .collect()
        })
        .collect()
}

struct Blog {
    server: TestServer,
}

impl Blog {
    fn new(paragraphs: &[Vec<String>]) -> Self {
        let blog = Self { server: TestServer::start() };
        blog.publish(paragraphs);
        blog
    }

    fn publish(&self, paragraphs: &[Vec<String>]) {
        let item =
            rss_item("The lighthouse", &self.server.url("/posts/lighthouse"), Some(&post_html(paragraphs)));
        self.server.route("/feed.xml", Reply::rss(rss("Coast", &[item])));
    }

    fn submission(&self) -> Value {
        json!({"url": self.server.url("/posts/lighthouse"), "feed_url": self.server.url("/feed.xml")})
    }
}

/// Submit the post; the answer's envelope.
fn submit(http: &Http, serve: &Serve, blog: &Blog) -> Value {
    let answer = http.post_json(&serve.url("/conversions"), &blog.submission());
    assert!(answer.status == 202 || answer.status == 200, "{}", String::from_utf8_lossy(&answer.body));
    answer.json()
}

/// Poll until the conversion's audio is of `revision`.
fn wait_revision(http: &Http, serve: &Serve, id: &str, revision: u64) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let data = http.get(&serve.url(&format!("/conversions/{id}"))).json()["data"].clone();
        if data["audio_revision"] == revision && data["state"] == "completed" {
            return data;
        }
        assert!(data["state"] != "failed", "revision {revision} failed: {data:#}");
        assert!(std::time::Instant::now() < deadline, "revision {revision} not done: {data:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How many times each input was spoken.
fn counts(syntheses: &[String]) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for s in syntheses {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    counts
}

fn assert_each_spoken_once(syntheses: &[String], what: &str) {
    let twice: Vec<_> = counts(syntheses).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.is_empty(), "{what}: a unit was synthesized twice for the same key: {twice:?}");
}

/// The decoded length of an MP3 answer.
fn decoded_seconds(body: &[u8]) -> f64 {
    lector_testkit::audio::decode_mp3(body).seconds()
}

/// The audio's length is the sum of its units: the timeline's segments tile it from 0 to its
/// end, and the decoded MP3 is as long as the frames say.
fn assert_audio_is_its_units(http: &Http, serve: &Serve, status: &Value) {
    let audio = http.get(status["revision_audio_url"].as_str().unwrap());
    assert_eq!(audio.status, 200);
    let duration = status["duration_seconds"].as_f64().unwrap();
    let timeline = http.get(status["transcript_json_url"].as_str().unwrap());
    assert_eq!(timeline.status, 200, "{}", String::from_utf8_lossy(&timeline.body));
    let segments = timeline.json()["segments"].as_array().unwrap().clone();
    let mut at = 0.0;
    for s in &segments {
        let (start, end) = (s["startTime"].as_f64().unwrap(), s["endTime"].as_f64().unwrap());
        assert!((start - at).abs() < 0.002, "segments tile the audio: {start} after {at}");
        at = end;
    }
    assert!((at - duration).abs() < 0.002, "the units add up to {at} s, the audio is {duration} s");
    // A decoder may trim the encoder's delay from the first frame, no more.
    assert!(
        (decoded_seconds(&audio.body) - duration).abs() < 0.06,
        "decoded length differs from {duration} s"
    );
    let _ = serve;
}

#[test]
fn an_edited_post_re_narrates_only_the_changed_sentence_and_keeps_the_old_audio_served() {
    let voice = Outage::new(None);
    let mut text = paragraphs();
    let blog = Blog::new(&text);
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let http = Http::new();

    let first = submit(&http, &serve, &blog);
    assert_eq!(first["status"], "accepted");
    let id = first["data"]["conversion_id"].as_str().unwrap().to_owned();
    let one = wait_revision(&http, &serve, &id, 1);
    let units = one["synthesis"]["units"].as_u64().unwrap();
    assert_eq!(units, 48, "one unit per sentence: {one:#}");
    assert_eq!(one["synthesis"]["units_synthesized"], 48);
    assert_eq!(one["synthesis_summary"], format!("narrated 48 sentences, {} characters", group(&one)));
    let before = voice.syntheses();
    assert_eq!(before.len(), 48);
    assert_each_spoken_once(&before, "the first revision");
    let r1 = http.get(one["revision_audio_url"].as_str().unwrap());
    assert!(one["revision_audio_url"].as_str().unwrap().ends_with("/audio/r1.mp3"));
    assert_audio_is_its_units(&http, &serve, &one);

    // Unchanged: submitting again changes nothing.
    let again = submit(&http, &serve, &blog);
    assert_eq!(again["status"], "skipped", "{again:#}");
    assert_eq!(voice.syntheses().len(), 48);

    // One sentence edited: revision 2 speaks that sentence only, while revision 1 is served.
    text[3][2] =
        "In paragraph 3 the keeper let the lamp go dark, and the ships found their way anyway.".into();
    blog.publish(&text);
    voice.slow(true);
    let edited = submit(&http, &serve, &blog);
    assert_eq!(edited["status"], "accepted", "{edited:#}");
    assert_eq!(edited["data"]["revision"], 2);
    let during = http.get(&serve.url(&format!("/conversions/{id}"))).json()["data"].clone();
    assert_eq!(during["revision"], 2);
    assert_ne!(during["state"], "completed", "the revision is being made: {during:#}");
    let served = http.get(&serve.url(&format!("/conversions/{id}/audio")));
    assert_eq!(served.status, 200, "the previous revision is served meanwhile");
    assert_eq!(served.body, r1.body);
    voice.slow(false);
    let two = wait_revision(&http, &serve, &id, 2);
    let after = voice.syntheses();
    assert_eq!(after.len() - before.len(), 1, "only the edited sentence was spoken: {two:#}");
    assert!(!before.contains(&after[48]));
    let cost = &two["synthesis"];
    assert_eq!((cost["units"].as_u64(), cost["units_synthesized"].as_u64()), (Some(48), Some(1)));
    let edited_chars = text[3][2].chars().count() as u64;
    assert_eq!(cost["characters_synthesized"].as_u64(), Some(edited_chars));
    assert!(two["synthesis_summary"].as_str().unwrap().starts_with("re-narrated 1 of 48 sentences"));
    assert!(two["revision_audio_url"].as_str().unwrap().ends_with("/audio/r2.mp3"));
    assert_audio_is_its_units(&http, &serve, &two);
    // Both revisions stay at their own address.
    assert_eq!(http.get(&serve.url(&format!("/conversions/{id}/audio/r1.mp3"))).body, r1.body);
    assert_eq!(http.get(&serve.url(&format!("/conversions/{id}/audio/r3.mp3"))).status, 404);
    drop(serve);
    lector.assert_events_match_schemas(&id);
    let types: Vec<String> =
        lector.events(&id).iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types.iter().filter(|t| *t == "ConversionRevisionRequested").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "ConversionCompleted").count(), 2);
}

/// `18,034`-style characters of a status's synthesis.
fn group(status: &Value) -> String {
    let n = status["synthesis"]["characters_synthesized"].as_u64().unwrap()
        + status["synthesis"]["characters_reused"].as_u64().unwrap();
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn reordered_and_deleted_paragraphs_speak_nothing_new() {
    let voice = Outage::new(None);
    let mut text = paragraphs();
    let blog = Blog::new(&text);
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let http = Http::new();
    let id = submit(&http, &serve, &blog)["data"]["conversion_id"].as_str().unwrap().to_owned();
    wait_revision(&http, &serve, &id, 1);
    let spoken = voice.syntheses().len();

    text.swap(1, 5);
    blog.publish(&text);
    assert_eq!(submit(&http, &serve, &blog)["data"]["revision"], 2);
    let two = wait_revision(&http, &serve, &id, 2);
    assert_eq!(two["synthesis"]["units_synthesized"], 0, "{two:#}");
    assert_eq!(voice.syntheses().len(), spoken, "a reordered post speaks nothing again");
    assert_audio_is_its_units(&http, &serve, &two);

    text.remove(6);
    blog.publish(&text);
    assert_eq!(submit(&http, &serve, &blog)["data"]["revision"], 3);
    let three = wait_revision(&http, &serve, &id, 3);
    assert_eq!(three["synthesis"]["units"], 42);
    assert_eq!(three["synthesis"]["units_synthesized"], 0, "{three:#}");
    assert_eq!(voice.syntheses().len(), spoken);
    assert!(three["duration_seconds"].as_f64() < two["duration_seconds"].as_f64());
}

#[test]
fn an_edit_during_a_run_supersedes_it_and_never_interleaves() {
    let voice = Outage::new(None);
    let mut text = paragraphs();
    let blog = Blog::new(&text);
    let lector = Lector::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let http = Http::new();
    voice.slow(true);
    let id = submit(&http, &serve, &blog)["data"]["conversion_id"].as_str().unwrap().to_owned();
    // Wait until revision 1 is speaking.
    let deadline = std::time::Instant::now() + WAIT;
    while voice.syntheses().is_empty() {
        assert!(std::time::Instant::now() < deadline, "revision 1 never started speaking");
        std::thread::sleep(Duration::from_millis(50));
    }
    text[0][0] = "The keeper wrote a new first sentence while the old one was being read.".into();
    blog.publish(&text);
    let edited = submit(&http, &serve, &blog);
    assert_eq!(edited["data"]["revision"], 2, "{edited:#}");
    voice.slow(false);
    let two = wait_revision(&http, &serve, &id, 2);
    assert_eq!(two["attempt"], 2);
    drop(serve);

    // After the revision was asked for, nothing of attempt 1 was recorded.
    let events = lector.events(&id);
    let asked = events.iter().position(|e| e["type"] == "ConversionRevisionRequested").unwrap();
    for e in &events[asked + 1..] {
        if let Some(attempt) = e["data"]["attempt"].as_u64() {
            assert_eq!(attempt, 2, "an event of the superseded attempt came after the revision: {e:#}");
        }
    }
    assert_eq!(
        events.iter().filter(|e| e["type"] == "ConversionCompleted").count(),
        1,
        "only revision 2 completed"
    );
    // Units are stored by content, so revision 2 speaks again only what revision 1 was speaking
    // when it was superseded (a synthesis under way is not recalled): at most the Map's 4.
    let spoken = voice.syntheses();
    let twice: Vec<_> = counts(&spoken).into_iter().filter(|(_, n)| *n > 1).collect();
    assert!(twice.len() <= 4 && twice.iter().all(|(_, n)| *n == 2), "spoken again: {twice:?}");
}

#[test]
fn a_failed_revision_is_redriven_without_speaking_again_what_it_made() {
    let voice = Outage::new(Some("Zanzibar"));
    let mut text = paragraphs();
    let blog = Blog::new(&text);
    let lector = Lector::new();
    let http = Http::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let id = submit(&http, &serve, &blog)["data"]["conversion_id"].as_str().unwrap().to_owned();
    wait_revision(&http, &serve, &id, 1);

    // The edit adds two sentences; the voice fails on the second.
    text[7].push("A seventh sentence came in with the tide.".into());
    text[7].push("The last boat sailed for Zanzibar at dawn.".into());
    blog.publish(&text);
    voice.start();
    assert_eq!(submit(&http, &serve, &blog)["data"]["revision"], 2);
    let failed = http.wait_final(&serve.url(&format!("/conversions/{id}")), WAIT);
    assert_eq!(failed["state"], "failed", "{failed:#}");
    assert_eq!(failed["error"]["state"], "SynthesizeChunks");
    assert_eq!(failed["audio_revision"], 1, "revision 1 is still what listeners get");
    assert_eq!(http.get(&serve.url(&format!("/conversions/{id}/audio"))).status, 200);
    drop(serve);
    let before = voice.syntheses();

    voice.end();
    let replayed = lector
        .command(&["replay", "--failed", "--redrive", "--yes", "--json"])
        .env("PATH", voice.path_env())
        .output()
        .unwrap();
    assert!(replayed.status.success(), "{}", String::from_utf8_lossy(&replayed.stderr));
    let status = lector.status(&id);
    assert_eq!((status["state"].as_str(), status["audio_revision"].as_u64()), (Some("completed"), Some(2)));
    let after = voice.syntheses();
    let new = &after[before.len()..];
    assert_eq!(new.len(), 1, "only the sentence that failed was spoken again: {new:?}");
    assert!(before.contains(&new[0]), "the one that failed");
    // The redrive's totals: the unit the failed attempt stored is reused, like any stored unit.
    assert_eq!(
        (status["synthesis"]["units_synthesized"].as_u64(), status["synthesis"]["units_reused"].as_u64()),
        (Some(1), Some(49)),
        "{status:#}"
    );
}

#[test]
fn a_kill_during_a_revision_loses_nothing_and_the_next_start_finishes_it() {
    let voice = Outage::new(None);
    let mut text = paragraphs();
    let blog = Blog::new(&text);
    let lector = Lector::new();
    let http = Http::new();
    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let id = submit(&http, &serve, &blog)["data"]["conversion_id"].as_str().unwrap().to_owned();
    wait_revision(&http, &serve, &id, 1);
    let before = voice.syntheses().len();

    for p in &mut text {
        p[5] = p[5].replace("storm", "gale");
    }
    blog.publish(&text);
    voice.slow(true);
    assert_eq!(submit(&http, &serve, &blog)["data"]["revision"], 2);
    let deadline = std::time::Instant::now() + WAIT;
    while voice.syntheses().len() < before + 3 {
        assert!(std::time::Instant::now() < deadline, "revision 2 never started speaking");
        std::thread::sleep(Duration::from_millis(50));
    }
    serve.kill();
    voice.slow(false);

    let serve = Serve::start(&lector, &[("PATH", &voice.path_env())]);
    let two = wait_revision(&http, &serve, &id, 2);
    assert_eq!(two["synthesis"]["units"], 48);
    assert_audio_is_its_units(&http, &serve, &two);
    drop(serve);
    // Eight sentences changed; a sentence spoken before the kill is not spoken again, only
    // one in flight when the process died may be.
    let spoken = &voice.syntheses()[before..];
    let counts = counts(spoken);
    assert_eq!(counts.len(), 8, "{spoken:?}");
    assert!(counts.values().filter(|n| **n > 1).count() <= 4, "{counts:?}");
    let events = lector.events(&id);
    let versions: Vec<u64> = events.iter().map(|e| e["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, (1..=events.len() as u64).collect::<Vec<_>>(), "the stream has no gap");
}
