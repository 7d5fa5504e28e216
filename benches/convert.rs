//! A 3,000-word post converted end to end on the embedded default (the local engine running
//! `conversion.asl.json`, SQLite, the object folder, espeak-ng + LAME), against a baseline in
//! the same run: the same chunks synthesized and encoded directly, with the same concurrency,
//! without the workflow.
//!
//! `cargo bench --bench convert`
//!
//! Prints the wall time of each, the share of the workflow's wall time during which no
//! synthesis was running (the cost of everything that is not speech), and the audio's length
//! against the wall time (speed against real time).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use lector::local::{LocalOptions, LocalSystem};
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::VoiceInfo;
use lector_core::{ConversionState, ConversionStatus, VoiceEngine, VoiceId};
use lector_local::espeak::EspeakVoice;
use lector_pipeline::document::Document;
use lector_pipeline::fetch::AllowList;
use lector_pipeline::submit::{Submission, submit};
use tokio::sync::Mutex;

/// A voice that measures how long syntheses run: the time during which at least one runs.
struct Timed {
    inner: EspeakVoice,
    active: AtomicUsize,
    state: Mutex<(Option<Instant>, Duration)>,
}

impl Timed {
    async fn enter(&self) {
        let mut state = self.state.lock().await;
        if self.active.fetch_add(1, Ordering::SeqCst) == 0 {
            state.0 = Some(Instant::now());
        }
    }
    async fn leave(&self) {
        let mut state = self.state.lock().await;
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1
            && let Some(since) = state.0.take()
        {
            state.1 += since.elapsed();
        }
    }
    async fn busy(&self) -> Duration {
        self.state.lock().await.1
    }
}

#[async_trait]
impl Voice for Timed {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        self.inner.voices().await
    }
    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        self.enter().await;
        let out = self.inner.synthesize(ssml, spec).await;
        self.leave().await;
        out
    }
}

/// A post of exactly `words` words in paragraphs with some headings and a list, from varied
/// sentences (so sentence splitting and chunking do real work).
fn post(words: usize) -> String {
    let sentences = [
        "The committee met on Tuesday to discuss the budget for the coming year.",
        "Dr. Smith argued that the figures, e.g. the cost of repairs, were far too low.",
        "Nobody disagreed, although several members asked for more time to read the report.",
        "In the end the vote was postponed until the next meeting in 3.5 weeks.",
        "Meanwhile the library will stay open on weekends, as it has since the spring.",
        "Volunteers are still needed for the reading programme that starts in October.",
    ];
    let mut html = String::new();
    let mut count = 0;
    let mut i = 0;
    while count < words {
        if i % 40 == 0 {
            html.push_str(&format!("<h2>Part {}</h2>", i / 40 + 1));
        }
        let mut paragraph = String::new();
        for _ in 0..5 {
            let s = sentences[i % sentences.len()];
            let take: Vec<&str> = s.split_whitespace().take(words - count).collect();
            count += take.len();
            paragraph.push_str(&take.join(" "));
            paragraph.push(' ');
            i += 1;
            if count >= words {
                break;
            }
        }
        html.push_str(&format!("<p>{}</p>", paragraph.trim()));
    }
    html
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        const WORDS: usize = 3_000;
        let html = post(WORDS);
        let document = Document::from_html(&html);
        // Headings add a few words to the paragraphs' 3,000.
        assert!(document.words().abs_diff(WORDS) < 50, "the post has {} words", document.words());
        let voice = Arc::new(Timed {
            inner: EspeakVoice::new(),
            active: AtomicUsize::new(0),
            state: Mutex::new((None, Duration::ZERO)),
        });

        // The workflow.
        let dir = tempfile::tempdir().unwrap();
        let options = LocalOptions { voice: voice.clone(), ..LocalOptions::new(AllowList::default()) };
        let system = LocalSystem::start(dir.path(), options).await.unwrap();
        let started = Instant::now();
        let submitted = submit(
            system.events(),
            system.objects(),
            &*system.ports.clock,
            Submission {
                title: Some("Bench".into()),
                content_html: Some(html.clone()),
                ..Submission::new(
                    url::Url::parse("https://example.com/bench").unwrap(),
                    VoiceId::new("en-us"),
                    VoiceEngine::Espeak,
                    "bench",
                )
            },
        )
        .await
        .unwrap();
        let status = loop {
            let events = system.events().read_stream(&submitted.conversion_id.stream(), 0).await.unwrap();
            let status = ConversionStatus::fold(&events).unwrap().unwrap();
            if matches!(status.state, ConversionState::Completed | ConversionState::Failed) {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let wall = started.elapsed();
        assert_eq!(status.state, ConversionState::Completed, "{:?}", status.error);
        let busy = voice.busy().await;
        let audio = status.duration_seconds.unwrap();
        system.shutdown().await;

        // The baseline: the same units, the same voice, the same concurrency (the Map's 4).
        let speech = lector_pipeline::speech::prepare(&document, None, VoiceEngine::Espeak.limits()).unwrap();
        let spec = VoiceSpec {
            voice: VoiceId::new("en-us"),
            engine: VoiceEngine::Espeak,
            language: None,
            pronunciations: Default::default(),
        };
        let plain = Arc::new(EspeakVoice::new());
        let started = Instant::now();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(4));
        let mut tasks = Vec::new();
        for unit in speech.units.clone() {
            let (plain, spec, semaphore) = (plain.clone(), spec.clone(), semaphore.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = semaphore.acquire().await.unwrap();
                plain.synthesize(&unit.ssml, &spec).await.unwrap()
            }));
        }
        let mut parts = Vec::new();
        for task in tasks {
            parts.push(task.await.unwrap());
        }
        let joined = lector_pipeline::stitch::stitch(&parts).unwrap();
        let baseline = started.elapsed();

        let outside = wall.saturating_sub(busy);
        println!(
            "{}-word post ({} units, {audio:.0} s of audio), espeak-ng + LAME 48 kbps, 2 cores",
            document.words(),
            speech.units.len()
        );
        println!(
            "  workflow end to end     {:>8.2} s   {:>6.0}x real time",
            wall.as_secs_f64(),
            audio / wall.as_secs_f64()
        );
        println!(
            "  baseline (speech only)  {:>8.2} s   {:>6.0}x real time",
            baseline.as_secs_f64(),
            joined.info.duration_seconds / baseline.as_secs_f64()
        );
        println!("  workflow / baseline     {:>8.2}x", wall.as_secs_f64() / baseline.as_secs_f64());
        println!(
            "  outside synthesis+encoding: {:.3} s of {:.2} s = {:.1}% of wall time",
            outside.as_secs_f64(),
            wall.as_secs_f64(),
            100.0 * outside.as_secs_f64() / wall.as_secs_f64()
        );
    });
}
