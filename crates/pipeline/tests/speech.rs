//! Narration and units end to end on text: SSML that no text can inject into (checked by
//! parsing it), units within the voice's limits, one per sentence, the same units for the same
//! text, and chunks that group them within the limits.

use lector_core::voice::{SpeechLimits, VoiceEngine};
use lector_pipeline::document::{Block, Document};
use lector_pipeline::speech::{Speech, prepare};
use lector_pipeline::timeline::BlockKind;
use quick_xml::Reader;
use quick_xml::events::Event;

const POLLY: SpeechLimits = SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 };

/// Parses one chunk: the root's name, the names of the elements inside it, and its text.
fn parse(ssml: &str) -> (String, Vec<String>, String) {
    let mut reader = Reader::from_str(ssml);
    let mut root = String::new();
    let mut inner = Vec::new();
    let mut text = String::new();
    let mut depth = 0;
    loop {
        match reader.read_event().expect("chunk is well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                if depth == 0 {
                    root = name
                } else {
                    inner.push(name)
                }
                depth += 1;
            }
            Event::Empty(e) => inner.push(String::from_utf8(e.name().as_ref().to_vec()).unwrap()),
            Event::End(_) => depth -= 1,
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap();
                let resolved = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .expect("only XML's own entities")
                        .to_string(),
                };
                text.push_str(&resolved);
            }
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {ssml}"),
        }
    }
    assert_eq!(depth, 0);
    (root, inner, text)
}

#[test]
fn text_cannot_inject_markup() {
    let hostile = [
        "Use <b>bold</b> & \"quotes\" & 'apostrophes' freely.",
        "</speak><speak>Injected.</speak>",
        "<break time=\"10s\"/> was typed here.",
        "Fish &amp; chips &#60; &lt; all escaped.",
        "<![CDATA[ x ]]> <!-- c --> <?pi x?> end.",
    ];
    let doc = Document::new(hostile.iter().map(|t| Block::Paragraph { text: t.to_string() }).collect());
    let speech = prepare(&doc, Some("en"), POLLY).unwrap();
    let mut spoken = String::new();
    for unit in &speech.units {
        let (root, inner, text) = parse(&unit.ssml);
        assert_eq!(root, "speak");
        assert!(inner.iter().all(|n| n == "break"), "markup got in: {inner:?} from {}", unit.ssml);
        assert_eq!(text, unit.text, "the unit speaks its text");
        spoken.push_str(&text);
    }
    // Sentence splitting may put a space where a sentence ends; the characters are all there.
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    for t in hostile {
        assert!(squeeze(&spoken).contains(&squeeze(t)), "{t:?} was not spoken as written: {spoken}");
    }
    // Only the pauses narration put in are breaks: one between each two paragraphs.
    let breaks: usize = speech.units.iter().map(|u| parse(&u.ssml).1.len()).sum();
    assert_eq!(breaks, hostile.len() - 1);
}

fn long_post(words: usize) -> Document {
    let sentences = [
        "Dr. Smith arrived at 3.14 p.m. to look at the results, e.g. the ones from Tuesday.",
        "The quick brown fox jumps over the lazy dog while the committee deliberates at length.",
        "See the code at https://example.com/repo for details [1].",
        "Nobody expected the results to hold up, but they did, again and again.",
    ];
    let mut blocks = Vec::new();
    let mut count = 0;
    let mut i = 0;
    while count < words {
        if i % 12 == 0 {
            blocks.push(Block::Heading { level: 2, text: format!("Section {}", i / 12 + 1) });
        }
        let text = (0..5).map(|k| sentences[(i + k) % sentences.len()]).collect::<Vec<_>>().join(" ");
        count += text.split_whitespace().count();
        blocks.push(if i % 7 == 3 {
            Block::ListItem { ordered: false, text }
        } else {
            Block::Paragraph { text }
        });
        if i % 9 == 5 {
            blocks.push(Block::Code { text: "fn main() { println!(\"not read\"); }".into() });
        }
        i += 1;
    }
    Document::new(blocks)
}

#[test]
fn a_long_post_is_cut_into_sentences_within_limits_the_same_way_every_time() {
    let doc = long_post(10_000);
    let limits = VoiceEngine::Neural.limits();
    let speech = prepare(&doc, Some("en-US"), limits).unwrap();
    let again = prepare(&Document::from_text(&doc.to_text()), Some("en-US"), limits).unwrap();
    assert_eq!(speech, again, "the same text gave other units");
    assert!(speech.units.len() >= 500, "{} units", speech.units.len());
    for (i, u) in speech.units.iter().enumerate() {
        assert_eq!(u.index as usize, i);
        assert!(u.billed_chars <= 3_000 && u.total_chars() <= 6_000);
        let (_, _, text) = parse(&u.ssml);
        assert_eq!(text.chars().count(), u.billed_chars);
        // Every unit is one sentence (or a heading, which has no full stop).
        let last = text.trim_end();
        assert!(last.ends_with('.') || last.starts_with("Section"), "unit {i} is not a sentence: {text}");
        assert!(!text.contains("https://") && !text.contains("[1]") && !text.contains("println"));
        assert!(matches!(
            speech.blocks[u.block as usize].kind,
            BlockKind::Heading | BlockKind::Paragraph | BlockKind::ListItem
        ));
    }
    // Chunks of the missing units (here: all, each with a key of its own) stay within the
    // limits and are packed: all but the last at least half full.
    let mut keyed = speech.clone();
    keyed.assign_keys(|u| format!("{:032x}", u.index));
    keyed.plan_chunks(limits, |_| false);
    assert!(keyed.chunks.len() >= 15, "{} chunks", keyed.chunks.len());
    for c in &keyed.chunks {
        assert!(c.billed_chars <= 3_000);
        assert!(c.units.len() <= lector_pipeline::speech::MAX_UNITS_PER_CHUNK);
    }
    assert!(
        keyed.chunks[..keyed.chunks.len() - 1]
            .iter()
            .all(|c| c.billed_chars > 1_500 || c.units.len() == lector_pipeline::speech::MAX_UNITS_PER_CHUNK)
    );
    let json = keyed.to_json();
    assert_eq!(Speech::from_json(&json).unwrap(), keyed);
}
