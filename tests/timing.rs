//! The timings of a conversion are the audio's own: for three real posts converted by
//! `lector convert`, every sentence's start in the Podcasting 2.0 transcript written beside the
//! MP3 lies within 50 ms of the silence before it, found by decoding the MP3.

mod common;

use std::path::Path;

use common::Lector;
use lector_testkit::http::{Reply, TestServer};
use serde_json::Value;

/// Articles of the corpus, as their sites served them.
const POSTS: [&str; 3] = ["ars-1", "wapo-1", "nytimes-4"];
/// Windows of 5 ms; a silence is 4 windows in a row (20 ms) under the threshold.
const WINDOW_MS: usize = 5;
const SILENT_WINDOWS: usize = 4;
const THRESHOLD: f32 = 0.01;
const TOLERANCE: f64 = 0.050;

/// The start (in seconds) of every window that belongs to a silence.
fn silences(samples: &[f32], rate: u32) -> Vec<f64> {
    let window = rate as usize * WINDOW_MS / 1000;
    let at = |j: usize| (j * window) as f64 / f64::from(rate);
    let quiet: Vec<bool> = samples
        .chunks(window)
        .map(|w| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt() < THRESHOLD)
        .collect();
    let mut out = Vec::new();
    let mut run = 0;
    for (i, q) in quiet.iter().enumerate() {
        run = if *q { run + 1 } else { 0 };
        if run == SILENT_WINDOWS {
            out.extend((i + 1 - SILENT_WINDOWS..=i).map(at));
        } else if run > SILENT_WINDOWS {
            out.push(at(i));
        }
    }
    out
}

/// The RMS of `n` windows from `from` seconds, rounded, for a failure's message.
fn loudness(samples: &[f32], rate: u32, from: f64, n: usize) -> Vec<f32> {
    let window = rate as usize * WINDOW_MS / 1000;
    let first = (from.max(0.0) * f64::from(rate)) as usize;
    samples[first.min(samples.len())..]
        .chunks(window)
        .take(n)
        .map(|w| ((w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt() * 1000.0).round() / 1000.0)
        .collect()
}

fn check(post: &str, mp3: &Path) {
    let transcript: Value =
        serde_json::from_slice(&std::fs::read(mp3.with_extension("transcript.json")).unwrap()).unwrap();
    let segments = transcript["segments"].as_array().unwrap();
    assert!(segments.len() > 10, "{post}: {} sentences", segments.len());
    let (samples, rate) = lector_testkit::audio::decode_mp3_samples(&std::fs::read(mp3).unwrap());
    let quiet = silences(&samples, rate);
    assert!(!quiet.is_empty(), "{post}: no silence at all");
    let speech = quiet.len() as f64 * WINDOW_MS as f64 / 1000.0;
    let total = samples.len() as f64 / f64::from(rate);
    assert!(
        speech < 0.6 * total,
        "{post}: {speech:.1} s of {total:.1} s is silence: the threshold hears nothing"
    );
    for (i, s) in segments.iter().enumerate().skip(1) {
        let start = s["startTime"].as_f64().unwrap();
        let nearest = quiet
            .iter()
            .map(|q| (q - start).abs().min((q + WINDOW_MS as f64 / 1000.0 - start).abs()))
            .fold(f64::MAX, f64::min);
        assert!(
            nearest <= TOLERANCE,
            "{post}: sentence {i} ({:?}) starts at {start:.3} s, {:.0} ms from any silence; loudness \
             of the 5 ms windows from 150 ms before it: {:?}",
            s["body"].as_str().unwrap_or_default(),
            nearest * 1000.0,
            loudness(&samples, rate, start - 0.15, 60)
        );
    }
}

#[test]
fn every_sentence_starts_within_50_ms_of_the_silence_before_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/articles");
    let server = TestServer::start();
    for post in POSTS {
        let html = std::fs::read(root.join(post).join("source.html")).unwrap();
        server.route(&format!("/{post}"), Reply::html(html));
    }
    let lector = Lector::new();
    for post in POSTS {
        let outcome = &lector.convert_json(&[&server.url(&format!("/{post}"))])[0];
        assert_eq!(outcome["state"], "completed", "{outcome:#}");
        check(post, Path::new(outcome["audio"].as_str().unwrap()));
    }
}
