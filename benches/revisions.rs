//! Revisions against the first conversion, on the embedded default (the local engine running
//! `conversion.asl.json`, SQLite, the object folder, espeak-ng + LAME): a 3,000-word post is
//! converted, then revised three times: one paragraph edited (about 3 % of its characters),
//! two paragraphs swapped, one paragraph deleted.
//!
//! `cargo bench --bench revisions`
//!
//! Prints, for each revision, the characters synthesized against the characters of the
//! sentences that changed (target ≤ 1.2×) and the wall time against the first conversion's
//! (target ≤ 20 %), both measured in this run.

use std::time::{Duration, Instant};

use lector::local::{LocalOptions, LocalSystem};
use lector_core::{ConversionId, ConversionState, ConversionStatus, VoiceEngine, VoiceId};
use lector_pipeline::fetch::AllowList;
use lector_pipeline::submit::{Outcome, Submission, submit};

const WORDS: usize = 3_000;
const SENTENCES_PER_PARAGRAPH: usize = 4;

const SUBJECTS: [&str; 6] =
    ["The committee", "The old keeper", "Our neighbour", "A young reader", "The mayor", "Each volunteer"];
const VERBS: [&str; 5] =
    ["talked about", "wrote a note on", "asked questions about", "argued over", "read aloud"];
const OBJECTS: [&str; 7] = [
    "the budget for the coming year",
    "the cost of the harbour repairs",
    "the reading programme in October",
    "the library's weekend hours",
    "the storm that closed the road",
    "the bridge over the northern river",
    "the schedule of the morning ferry",
];

/// Sentence `n` of paragraph `p`: every sentence of the post differs from every other.
fn sentence(p: usize, n: usize, edit: u32) -> String {
    let k = p * SENTENCES_PER_PARAGRAPH + n;
    let extra = if edit > 0 { format!(", and changed its mind {edit} times") } else { String::new() };
    format!(
        "In part {} {} {} {} on day {}{extra}.",
        p + 1,
        SUBJECTS[k % SUBJECTS.len()].to_lowercase(),
        VERBS[k % VERBS.len()],
        OBJECTS[k % OBJECTS.len()],
        k + 1
    )
}

/// The post's paragraphs, each a list of sentences, about `WORDS` words in all.
fn paragraphs() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut words = 0;
    let mut p = 0;
    while words < WORDS {
        let paragraph: Vec<String> = (0..SENTENCES_PER_PARAGRAPH).map(|n| sentence(p, n, 0)).collect();
        words += paragraph.iter().map(|s| s.split_whitespace().count()).sum::<usize>();
        out.push(paragraph);
        p += 1;
    }
    out
}

fn html(paragraphs: &[Vec<String>]) -> String {
    paragraphs.iter().map(|p| format!("<p>{}</p>", p.join(" "))).collect()
}

fn characters(sentences: &[String]) -> u64 {
    sentences.iter().map(|s| s.chars().count() as u64).sum()
}

struct Run {
    system: LocalSystem,
}

impl Run {
    /// Submit the post as it is now and wait until its audio is of the revision asked for.
    async fn submit(&self, paragraphs: &[Vec<String>]) -> (ConversionStatus, Duration) {
        let started = Instant::now();
        let submitted = submit(
            self.system.events(),
            self.system.objects(),
            &*self.system.ports.clock,
            Submission {
                title: Some("Bench".into()),
                content_html: Some(html(paragraphs)),
                ..Submission::new(
                    url::Url::parse("https://example.com/revisions").unwrap(),
                    VoiceId::new("en-us"),
                    VoiceEngine::Espeak,
                    "bench",
                )
            },
        )
        .await
        .unwrap();
        assert!(!matches!(submitted.outcome, Outcome::Unchanged), "the post changed");
        let status = self.wait(&submitted.conversion_id).await;
        (status, started.elapsed())
    }

    async fn wait(&self, id: &ConversionId) -> ConversionStatus {
        let mut revision = 0;
        loop {
            let events = self.system.events().read_stream(&id.stream(), 0).await.unwrap();
            let status = ConversionStatus::fold(&events).unwrap().unwrap();
            revision = revision.max(status.revision);
            match status.state {
                ConversionState::Completed if status.audio_revision == Some(revision) => return status,
                ConversionState::Failed => panic!("failed: {:?}", status.error),
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
}

fn report(what: &str, status: &ConversionStatus, wall: Duration, first: Duration, changed_chars: u64) {
    let synthesis = status.synthesis.as_ref().expect("the revision's totals");
    let ratio = if changed_chars == 0 {
        if synthesis.characters_synthesized == 0 {
            "0 (nothing changed, nothing spoken)".to_owned()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.2}x", synthesis.characters_synthesized as f64 / changed_chars as f64)
    };
    println!(
        "  {what:<22} {:>6} chars synthesized / {:>6} changed = {ratio:<10}  wall {:>6.2} s = {:>5.1}% of the first  ({})",
        synthesis.characters_synthesized,
        changed_chars,
        wall.as_secs_f64(),
        100.0 * wall.as_secs_f64() / first.as_secs_f64(),
        synthesis.describe(),
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let system = LocalSystem::start(dir.path(), LocalOptions::new(AllowList::default())).await.unwrap();
        let run = Run { system };
        let mut text = paragraphs();
        let words: usize = text.iter().flatten().map(|s| s.split_whitespace().count()).sum();
        let all: Vec<String> = text.iter().flatten().cloned().collect();
        let total = characters(&all);

        let (first, first_wall) = run.submit(&text).await;
        println!(
            "{words}-word post, {} paragraphs, {} sentences, {total} characters, espeak-ng + LAME, 2 cores",
            text.len(),
            all.len(),
        );
        println!(
            "  first conversion       {:>6} chars synthesized                        wall {:>6.2} s  ({})",
            first.synthesis.as_ref().unwrap().characters_synthesized,
            first_wall.as_secs_f64(),
            first.synthesis.as_ref().unwrap().describe()
        );

        // One paragraph edited: every sentence of it.
        let edited = text.len() / 3;
        for (n, s) in text[edited].iter_mut().enumerate() {
            *s = sentence(edited, n, 1);
        }
        let changed = characters(&text[edited]);
        println!(
            "  (the edited paragraph is {:.1}% of the post's characters)",
            100.0 * changed as f64 / total as f64
        );
        let (status, wall) = run.submit(&text).await;
        report("one paragraph edited", &status, wall, first_wall, changed);

        // Two paragraphs swapped: no sentence is new.
        text.swap(4, 5);
        let (status, wall) = run.submit(&text).await;
        report("two paragraphs swapped", &status, wall, first_wall, 0);

        // One paragraph deleted.
        text.remove(7);
        let (status, wall) = run.submit(&text).await;
        report("one paragraph deleted", &status, wall, first_wall, 0);
        run.system.shutdown().await;
    });
}
