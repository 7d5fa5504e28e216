//! The Piper voice against real time and against espeak-ng, in the same run, on sentences of real
//! posts (the corpus's English articles): seconds of speech per second of wall time with one
//! inference at a time (one core) and with two at once (two cores, sentences in parallel), MP3
//! encoding included; then the process's peak RSS.
//!
//!   cargo bench -p lector-local --bench piper                      # ~1,500 words, all three
//!   cargo bench -p lector-local --bench piper -- --words 10000 --only piper2   # peak RSS of a long post
//!
//! Needs `scripts/tools.sh piper` (the runtime and the en_US-joe-medium voice) and espeak-ng.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lector_core::ports::{Voice, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId};
use lector_local::espeak::EspeakVoice;
use lector_local::piper::{PiperOptions, PiperVoice};
use lector_testkit::audio::decode_mp3;

/// English articles of the corpus, read in this order until the words are enough.
const ARTICLES: &[&str] = &[
    "ars-1",
    "aclu",
    "google-sre-book-1",
    "engadget",
    "buzzfeed-1",
    "ehow-1",
    "daringfireball-1",
    "ietf-1",
    "mercurial",
    "medium-3",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The text of an extracted article: tags dropped, entities of the common kinds decoded.
fn text_of(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sentences: cut after `.`, `?` or `!` followed by a space and a capital letter.
fn sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..chars.len() {
        let ends = matches!(chars[i], '.' | '?' | '!')
            && chars.get(i + 1) == Some(&' ')
            && chars.get(i + 2).is_some_and(|c| c.is_uppercase());
        if ends {
            out.push(chars[start..=i].iter().collect::<String>().trim().to_owned());
            start = i + 2;
        }
    }
    let rest: String = chars[start..].iter().collect();
    if !rest.trim().is_empty() {
        out.push(rest.trim().to_owned());
    }
    out.into_iter().filter(|s| s.chars().any(char::is_alphabetic)).collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One SSML document per sentence, `words` words in all.
fn units(words: usize) -> Vec<String> {
    let mut units = Vec::new();
    let mut count = 0;
    'articles: for round in 0.. {
        for article in ARTICLES {
            let path = root().join("testdata/corpus/articles").join(article).join("expected.html");
            let html = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            for sentence in sentences(&text_of(&html)) {
                count += sentence.split_whitespace().count();
                units.push(format!("<speak>{}</speak>", escape(&sentence)));
                if count >= words {
                    break 'articles;
                }
            }
        }
        assert!(round < 100, "the corpus has no text");
    }
    units
}

struct Run {
    audio: f64,
    wall: Duration,
}

impl Run {
    fn real_time(&self) -> f64 {
        self.audio / self.wall.as_secs_f64()
    }
}

/// Synthesizes every unit with `workers` at once; the seconds of audio and the wall time.
async fn run(voice: Arc<dyn Voice>, spec: &VoiceSpec, units: &Arc<Vec<String>>, workers: usize) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (voice, spec, units, next) = (voice.clone(), spec.clone(), units.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut audio = 0.0;
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(unit) = units.get(i) else { return audio };
                let mp3 = voice.synthesize(unit, &spec).await.expect("synthesis");
                audio += decode_mp3(&mp3).seconds();
            }
        }));
    }
    let mut audio = 0.0;
    for task in tasks {
        audio += task.await.expect("a worker");
    }
    Run { audio, wall: started.elapsed() }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn piper(sessions: usize) -> Arc<dyn Voice> {
    let dir = root().join(".tools/piper");
    let options = PiperOptions { sessions, threads: 1, ..PiperOptions::default() };
    Arc::new(
        PiperVoice::open(&dir.join("lib/libonnxruntime.so"), vec![dir.join("voices")], options)
            .expect("the Piper voice is installed: run scripts/tools.sh piper"),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let words: usize = value("--words").and_then(|w| w.parse().ok()).unwrap_or(1_500);
    let only = value("--only");
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let units = Arc::new(units(words));
    let total_words: usize = units.iter().map(|u| u.split_whitespace().count()).sum();
    println!("{} sentences, {total_words} words, from the corpus's English articles", units.len());

    let espeak_spec = VoiceSpec {
        voice: VoiceId::new("en-us"),
        engine: VoiceEngine::Espeak,
        language: Some("en-US".into()),
        pronunciations: Default::default(),
    };
    let piper_spec = VoiceSpec {
        voice: VoiceId::new("en_US-joe-medium"),
        engine: VoiceEngine::Piper,
        language: Some("en-US".into()),
        pronunciations: Default::default(),
    };
    let warm = Arc::new(units.iter().take(2).cloned().collect::<Vec<_>>());

    let mut espeak_rt = None;
    if wanted("espeak") {
        let espeak: Arc<dyn Voice> = Arc::new(EspeakVoice::new());
        run(espeak.clone(), &espeak_spec, &warm, 1).await;
        let r = run(espeak, &espeak_spec, &units, 1).await;
        println!(
            "espeak-ng, one at a time:  {:>7.1} s of speech in {:>6.1} s: {:>6.1}x real time",
            r.audio,
            r.wall.as_secs_f64(),
            r.real_time()
        );
        espeak_rt = Some(r.real_time());
    }
    for (name, sessions) in [("piper1", 1), ("piper2", 2)] {
        if !wanted(name) {
            continue;
        }
        let voice = piper(sessions);
        // Load the model into each session first: a run's first sentence pays it once.
        run(voice.clone(), &piper_spec, &warm, sessions).await;
        println!("peak RSS after loading {sessions} session(s) and two sentences: {:.0} MB", peak_rss_mb());
        let r = run(voice, &piper_spec, &units, sessions).await;
        let versus = espeak_rt
            .map(|e| format!(" ({:.3} of espeak-ng's speed)", r.real_time() / e))
            .unwrap_or_default();
        println!(
            "Piper, {sessions} at once ({sessions} core{}): {:>7.1} s of speech in {:>6.1} s: {:>5.2}x real time, {:.2}x per core{versus}",
            if sessions == 1 { "" } else { "s" },
            r.audio,
            r.wall.as_secs_f64(),
            r.real_time(),
            r.real_time() / sessions as f64,
        );
    }
    println!("peak RSS of this process: {:.0} MB", peak_rss_mb());
}
