//! Speech: a narration cut into units (sentences, each one synthesis request, its SSML escaped
//! so that no text can become markup), each stored under a key made of everything that decides
//! its sound, and grouped into chunks for the workflow's Map. The same narration always gives
//! the same units and keys, so a revision, a redrive or another conversion of the same text
//! reuses the stored audio.

use lector_core::ports::VoiceSpec;
use lector_core::pronunciation::{Pronunciations, Rule};
use lector_core::voice::{SpeechLimits, VoiceEngine, VoiceId};
use lector_core::{ErrorKind, ObjectKey, StepError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::narrate::{Narration, Part, narrate};
use crate::timeline::TimelineBlock;

const OPEN: &str = "<speak>";
const CLOSE: &str = "</speak>";

/// The most units one chunk (one Map iteration) synthesizes, whatever their length: it keeps
/// each iteration well within a Lambda's time.
pub const MAX_UNITS_PER_CHUNK: usize = 48;

/// One unit of speech: a sentence (or a part of one too long for a request) and the pause
/// after it, as one SSML document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Zero-based position in the speech.
    pub index: u32,
    /// `<speak>...</speak>`: the escaped text and the pause that follows it.
    pub ssml: String,
    /// The sentence as read, plain text (for transcripts).
    pub text: String,
    /// Characters spoken (and billed): the text without markup, unescaped.
    pub billed_chars: usize,
    /// The index, in [`Speech::blocks`], of the block the sentence is read from.
    pub block: u32,
    /// The key of its stored audio ([`unit_key`]); empty until the voice is known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
}

impl Unit {
    /// Characters of the request, markup included.
    pub fn total_chars(&self) -> usize {
        self.ssml.chars().count()
    }

    /// Where the unit's audio is stored.
    pub fn audio_key(&self) -> Result<ObjectKey, SpeechError> {
        ObjectKey::speech_unit(&self.key)
            .ok_or_else(|| SpeechError::Corrupt(format!("unit {} has no key", self.index)))
    }
}

/// A group of units synthesized by one iteration of the workflow's Map. A chunk holds each
/// key once, and only keys whose audio was not stored when the speech was prepared: a key that
/// occurs twice in the speech is synthesized once, by one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub index: u32,
    /// The units it synthesizes, by index.
    #[serde(default)]
    pub units: Vec<u32>,
    /// Characters of those units.
    pub billed_chars: usize,
    /// The whole chunk as one SSML document: chunks prepared before units had this instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssml: Option<String>,
}

/// A narration as units, and the chunks that synthesize the units not yet stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speech {
    #[serde(default)]
    pub units: Vec<Unit>,
    /// The blocks the units are read from.
    #[serde(default)]
    pub blocks: Vec<TimelineBlock>,
    pub chunks: Vec<Chunk>,
    /// The voice that speaks the units (chosen when the speech was prepared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<VoiceEngine>,
    /// The language the units are read in (BCP 47).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The pronunciation rules in force, put into the units' SSML (or the engine's lexicon).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pronunciations: Vec<Rule>,
}

impl Speech {
    /// The voice the units were keyed for, once chosen, with the rules in force.
    pub fn voice_spec(&self) -> Option<VoiceSpec> {
        Some(VoiceSpec {
            voice: self.voice.clone()?,
            engine: self.engine?,
            language: self.language.clone(),
            pronunciations: Pronunciations::new(self.pronunciations.clone()),
        })
    }

    /// Characters spoken over all units.
    pub fn billed_chars(&self) -> u64 {
        self.units.iter().map(|u| u.billed_chars as u64).sum()
    }

    /// The speech as one JSON document (for the chunks object).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, SpeechError> {
        serde_json::from_slice(bytes).map_err(|e| SpeechError::Corrupt(e.to_string()))
    }

    /// Whether the speech was prepared before units existed (its chunks are whole documents).
    pub fn is_legacy(&self) -> bool {
        self.units.is_empty() && !self.chunks.is_empty()
    }

    /// Give every unit its key: `key(unit)` is [`unit_key`] with the voice, the engine's
    /// fingerprint and the pronunciation rules in force.
    pub fn assign_keys(&mut self, mut key: impl FnMut(&Unit) -> String) {
        for unit in &mut self.units {
            unit.key = key(unit);
        }
    }

    /// Group into chunks the units whose audio is missing (`stored(key)` false), each key
    /// once, in order, within `limits` and [`MAX_UNITS_PER_CHUNK`].
    pub fn plan_chunks(&mut self, limits: SpeechLimits, stored: impl Fn(&str) -> bool) {
        let mut seen = std::collections::HashSet::new();
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut current = Chunk { index: 0, units: Vec::new(), billed_chars: 0, ssml: None };
        for unit in &self.units {
            if stored(&unit.key) || !seen.insert(unit.key.as_str()) {
                continue;
            }
            let full = current.units.len() >= MAX_UNITS_PER_CHUNK
                || current.billed_chars + unit.billed_chars > limits.max_billed_chars;
            if full && !current.units.is_empty() {
                let index = chunks.len() as u32 + 1;
                chunks.push(std::mem::replace(
                    &mut current,
                    Chunk { index, units: Vec::new(), billed_chars: 0, ssml: None },
                ));
            }
            current.units.push(unit.index);
            current.billed_chars += unit.billed_chars;
        }
        if !current.units.is_empty() {
            chunks.push(current);
        }
        self.chunks = chunks;
    }
}

/// The key a unit's audio is stored under: a hash of everything that decides its sound (the
/// engine, the voice, the language, the engine's fingerprint, the pronunciation rules that apply
/// to it, and the SSML as sent). Stable across runs and machines.
pub fn unit_key(spec: &VoiceSpec, fingerprint: &str, rules: &str, ssml: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        spec.engine.as_str(),
        spec.voice.as_str(),
        spec.language.as_deref().unwrap_or(""),
        fingerprint,
        rules,
        ssml,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// Why a text cannot become speech.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    /// Nothing in the text is read aloud (empty, or only code and links).
    #[error("the text has nothing to read aloud")]
    NothingToSay,
    /// The limits leave no room for any text.
    #[error("speech limits too small: {0:?}")]
    LimitsTooSmall(SpeechLimits),
    /// A stored speech document does not read.
    #[error("stored speech is damaged: {0}")]
    Corrupt(String),
}

impl SpeechError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SpeechError::NothingToSay => ErrorKind::NoArticle,
            SpeechError::LimitsTooSmall(_) | SpeechError::Corrupt(_) => ErrorKind::Internal,
        }
    }
}

impl From<SpeechError> for StepError {
    fn from(e: SpeechError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

/// Narrates `doc` and cuts it into units: the whole of the PrepareSpeech step's text work.
/// The units have no keys and no chunks yet (they depend on the voice and the stored audio).
pub fn prepare(doc: &Document, language: Option<&str>, limits: SpeechLimits) -> Result<Speech, SpeechError> {
    units(&narrate(doc, language), limits)
}

/// [`prepare`], with the pronunciation rules put into each unit's SSML as `markup` says.
pub fn prepare_with(
    doc: &Document,
    language: Option<&str>,
    limits: SpeechLimits,
    rules: &Pronunciations,
    markup: RuleMarkup,
) -> Result<Speech, SpeechError> {
    units_with(&narrate(doc, language), limits, rules, markup)
}

/// How pronunciation rules go into a unit's SSML for an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleMarkup {
    /// Every rule inline: `<sub alias>`, `<phoneme alphabet="ipa">`, `<say-as>` (espeak-ng and
    /// Piper, which read them from the SSML).
    Inline,
    /// Only say-as inline: substitutions and IPA go in the engine's lexicon (Amazon Polly's
    /// PLS lexicons, made from [`VoiceSpec::pronunciations`]).
    SayAsOnly,
}

impl RuleMarkup {
    pub fn for_engine(engine: VoiceEngine) -> Self {
        if engine.is_local() { RuleMarkup::Inline } else { RuleMarkup::SayAsOnly }
    }
}

/// `text` as escaped SSML with `rules` marked up where they occur.
pub fn render(text: &str, rules: &Pronunciations, markup: RuleMarkup) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for found in rules.find(text) {
        out.push_str(&escape(&text[at..found.start]));
        let words = escape(&text[found.start..found.end]);
        match (&rules.rules[found.rule], markup) {
            (Rule::Substitute { say, .. }, RuleMarkup::Inline) => {
                out.push_str(&format!("<sub alias=\"{}\">{words}</sub>", escape(say)));
            }
            (Rule::Ipa { phonemes, .. }, RuleMarkup::Inline) => {
                out.push_str(&format!(
                    "<phoneme alphabet=\"ipa\" ph=\"{}\">{words}</phoneme>",
                    escape(phonemes)
                ));
            }
            (Rule::SayAs { interpret_as, .. }, _) => {
                out.push_str(&format!("<say-as interpret-as=\"{}\">{words}</say-as>", interpret_as.as_str()));
            }
            (Rule::Substitute { .. } | Rule::Ipa { .. }, RuleMarkup::SayAsOnly) => out.push_str(&words),
        }
        at = found.end;
    }
    out.push_str(&escape(&text[at..]));
    out
}

/// Escapes text for SSML: `&`, `<`, `>`, `"` and `'`, so that no text can become markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not allowed in XML; they are never speech.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A piece of a sentence that fits one request: its SSML, its plain text.
struct Piece {
    ssml: String,
    text: String,
}

/// The narration's sentences as units, in order: one unit per sentence, or several when a
/// sentence alone is over the limits (cut between words, else between characters); each
/// pause goes at the end of the unit before it.
pub fn units(narration: &Narration, limits: SpeechLimits) -> Result<Speech, SpeechError> {
    units_with(narration, limits, &Pronunciations::default(), RuleMarkup::Inline)
}

/// [`units`], each unit's SSML with the rules that occur in its text marked up.
pub fn units_with(
    narration: &Narration,
    limits: SpeechLimits,
    rules: &Pronunciations,
    markup: RuleMarkup,
) -> Result<Speech, SpeechError> {
    if narration.is_empty() {
        return Err(SpeechError::NothingToSay);
    }
    // The longest pause's markup, so that a unit with its pause still fits.
    let pause_room = "<break time=\"800ms\"/>".len();
    let room_total = limits.max_total_chars.saturating_sub(OPEN.len() + CLOSE.len() + pause_room);
    let room_billed = limits.max_billed_chars;
    // The longest escape is 6 characters ("&quot;"): a room below that could loop forever.
    if room_total < 8 || room_billed < 2 {
        return Err(SpeechError::LimitsTooSmall(limits));
    }
    let mut speech =
        Speech { blocks: narration.blocks.clone(), pronunciations: rules.rules.clone(), ..Speech::default() };
    let mut sentence = 0usize;
    for part in &narration.parts {
        match part {
            Part::Pause(p) => {
                if let Some(last) = speech.units.last_mut() {
                    let body = last.ssml.trim_end_matches(CLOSE);
                    last.ssml = format!("{body}<break time=\"{}ms\"/>{CLOSE}", p.millis());
                }
            }
            Part::Sentence(s) => {
                let block = narration.sentence_blocks.get(sentence).copied().unwrap_or(0);
                sentence += 1;
                let mut pieces = Vec::new();
                split_to_fit(s, room_total, room_billed, &|t| render(t, rules, markup), &mut pieces);
                for piece in pieces {
                    speech.units.push(Unit {
                        index: speech.units.len() as u32,
                        ssml: format!("{OPEN}{}{CLOSE}", piece.ssml),
                        billed_chars: piece.text.chars().count(),
                        text: piece.text,
                        block,
                        key: String::new(),
                    });
                }
            }
        }
    }
    if speech.units.is_empty() {
        return Err(SpeechError::NothingToSay);
    }
    Ok(speech)
}

/// Adds `sentence` as one piece, or as several when it alone is over the room.
fn split_to_fit(
    sentence: &str,
    room_total: usize,
    room_billed: usize,
    ssml: &dyn Fn(&str) -> String,
    out: &mut Vec<Piece>,
) {
    let fits = |text: &str| text.chars().count() <= room_billed && ssml(text).chars().count() <= room_total;
    let piece = |text: &str| Piece { ssml: ssml(text), text: text.to_owned() };
    if fits(sentence) {
        out.push(piece(sentence));
        return;
    }
    let mut current = String::new();
    for word in sentence.split_whitespace() {
        let candidate = if current.is_empty() { word.to_string() } else { format!("{current} {word}") };
        if fits(&candidate) {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            out.push(piece(&current));
            current.clear();
        }
        if fits(word) {
            current = word.to_string();
        } else {
            // One "word" longer than a whole request: cut between characters.
            for c in word.chars() {
                current.push(c);
                if !fits(&current) {
                    current.pop();
                    out.push(piece(&current));
                    current.clear();
                    current.push(c);
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(piece(&current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Block;

    const POLLY: SpeechLimits = SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 };

    fn spec() -> VoiceSpec {
        VoiceSpec {
            voice: VoiceId::new("en-us"),
            engine: VoiceEngine::Espeak,
            language: Some("en".into()),
            pronunciations: Default::default(),
        }
    }

    fn keyed(doc: &Document) -> Speech {
        let mut speech = prepare(doc, Some("en"), POLLY).unwrap();
        speech.assign_keys(|u| unit_key(&spec(), "espeak-ng 1.51", "", &u.ssml));
        speech
    }

    #[test]
    fn escaping_covers_every_markup_character() {
        assert_eq!(escape(r#"<speak a="b">&'"#), "&lt;speak a=&quot;b&quot;&gt;&amp;&apos;");
    }

    #[test]
    fn each_sentence_is_a_unit_with_the_pause_after_it() {
        let doc = Document::new(vec![
            Block::Heading { level: 2, text: "Intro".into() },
            Block::Paragraph { text: "One here. Two here.".into() },
            Block::Paragraph { text: "Three.".into() },
        ]);
        let speech = prepare(&doc, None, POLLY).unwrap();
        let ssml: Vec<&str> = speech.units.iter().map(|u| u.ssml.as_str()).collect();
        assert_eq!(
            ssml,
            vec![
                "<speak>Intro<break time=\"800ms\"/></speak>",
                "<speak>One here.</speak>",
                "<speak>Two here.<break time=\"500ms\"/></speak>",
                "<speak>Three.</speak>",
            ]
        );
        assert_eq!(speech.units.iter().map(|u| u.block).collect::<Vec<_>>(), vec![0, 1, 1, 2]);
        assert_eq!(speech.units[1].text, "One here.");
        assert_eq!(speech.blocks.len(), 3);
        assert_eq!(speech.billed_chars(), ("Intro".len() + "One here.".len() + "Two here.".len() + 6) as u64);
    }

    #[test]
    fn one_overlong_sentence_is_cut_between_words() {
        let text = "word ".repeat(2_000);
        let doc = Document::new(vec![Block::Paragraph { text: text.trim().to_string() }]);
        let speech = prepare(&doc, None, POLLY).unwrap();
        assert!(speech.units.len() >= 4);
        for u in &speech.units {
            assert!(u.billed_chars <= 3_000 && u.total_chars() <= 6_000);
            assert!(!u.ssml.contains("wo "), "a word was cut");
        }
        assert_eq!(speech.billed_chars() as usize, text.trim().len() - (speech.units.len() - 1));
    }

    #[test]
    fn keys_follow_everything_that_decides_the_sound() {
        let base = unit_key(&spec(), "v1", "", "<speak>Hi.</speak>");
        assert_eq!(base, unit_key(&spec(), "v1", "", "<speak>Hi.</speak>"));
        let other_voice = VoiceSpec { voice: VoiceId::new("fr"), ..spec() };
        for other in [
            unit_key(&other_voice, "v1", "", "<speak>Hi.</speak>"),
            unit_key(&spec(), "v2", "", "<speak>Hi.</speak>"),
            unit_key(&spec(), "v1", "Hi=>Hello", "<speak>Hi.</speak>"),
            unit_key(&spec(), "v1", "", "<speak>Hi!</speak>"),
            unit_key(&VoiceSpec { language: None, ..spec() }, "v1", "", "<speak>Hi.</speak>"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn chunks_hold_each_missing_key_once_within_the_limits() {
        let sentences =
            (0..30).map(|i| format!("Sentence {} is here.", i % 10)).collect::<Vec<_>>().join(" ");
        let doc = Document::new(vec![Block::Paragraph { text: sentences }]);
        let mut speech = keyed(&doc);
        assert_eq!(speech.units.len(), 30);
        let stored = speech.units[0].key.clone();
        speech.plan_chunks(SpeechLimits { max_billed_chars: 60, max_total_chars: 6_000 }, |k| k == stored);
        let planned: Vec<u32> = speech.chunks.iter().flat_map(|c| c.units.clone()).collect();
        // Ten distinct sentences, one of them stored: nine units to make, each once.
        assert_eq!(planned, (1..10).collect::<Vec<u32>>());
        for c in &speech.chunks {
            assert!(c.billed_chars <= 60, "{c:?}");
        }
        let mut all = speech.clone();
        all.plan_chunks(POLLY, |_| true);
        assert!(all.chunks.is_empty());
    }

    #[test]
    fn the_speech_document_round_trips_and_reads_legacy_chunks() {
        let speech = keyed(&Document::new(vec![Block::Paragraph { text: "A. B.".into() }]));
        assert_eq!(Speech::from_json(&speech.to_json()).unwrap(), speech);
        let legacy =
            Speech::from_json(br#"{"chunks":[{"index":0,"ssml":"<speak>A.</speak>","billed_chars":2}]}"#)
                .unwrap();
        assert!(legacy.is_legacy());
        assert_eq!(legacy.chunks[0].ssml.as_deref(), Some("<speak>A.</speak>"));
    }

    fn rules(lector_ipa: &str) -> Pronunciations {
        use lector_core::pronunciation::InterpretAs;
        Pronunciations::new(vec![
            Rule::Substitute { matches: "K8s".into(), say: "Kubernetes & co".into() },
            Rule::Ipa { matches: "Lector".into(), phonemes: lector_ipa.into() },
            Rule::SayAs { matches: "NASA".into(), interpret_as: InterpretAs::Characters },
        ])
    }

    #[test]
    fn rules_are_marked_up_where_their_words_are_and_nowhere_else() {
        let text = "Run K8s & Lector at NASA, not Lectors or k8s.";
        assert_eq!(
            render(text, &rules("ˈlɛktɚ"), RuleMarkup::Inline),
            "Run <sub alias=\"Kubernetes &amp; co\">K8s</sub> &amp; \
             <phoneme alphabet=\"ipa\" ph=\"ˈlɛktɚ\">Lector</phoneme> at \
             <say-as interpret-as=\"characters\">NASA</say-as>, not Lectors or k8s."
        );
        // For a lexicon engine only say-as is inline.
        assert_eq!(
            render(text, &rules("ˈlɛktɚ"), RuleMarkup::SayAsOnly),
            "Run K8s &amp; Lector at <say-as interpret-as=\"characters\">NASA</say-as>, not Lectors or k8s."
        );
        assert_eq!(render(text, &Pronunciations::default(), RuleMarkup::Inline), escape(text));
        assert_eq!(RuleMarkup::for_engine(VoiceEngine::Piper), RuleMarkup::Inline);
        assert_eq!(RuleMarkup::for_engine(VoiceEngine::Neural), RuleMarkup::SayAsOnly);
    }

    #[test]
    fn a_changed_rule_re_keys_exactly_the_units_it_touches() {
        let doc = Document::new(vec![Block::Paragraph {
            text: "The sea was calm. Lector read it. We run K8s. Lector and K8s agree. Gulls flew.".into(),
        }]);
        let keys = |rules: &Pronunciations| -> Vec<(String, String)> {
            let mut speech = prepare_with(&doc, Some("en"), POLLY, rules, RuleMarkup::Inline).unwrap();
            speech.assign_keys(|u| unit_key(&spec(), "espeak-ng 1.51", &rules.key_of(&u.text), &u.ssml));
            speech.units.into_iter().map(|u| (u.text, u.key)).collect()
        };
        let none = keys(&Pronunciations::default());
        let before = keys(&rules("ˈlɛktɚ"));
        let after = keys(&rules("ˈlɛktər"));
        let differ = |a: &[(String, String)], b: &[(String, String)]| -> Vec<String> {
            a.iter().zip(b).filter(|(x, y)| x.1 != y.1).map(|(x, _)| x.0.clone()).collect()
        };
        assert_eq!(differ(&none, &before), ["Lector read it.", "We run K8s.", "Lector and K8s agree."]);
        assert_eq!(differ(&before, &after), ["Lector read it.", "Lector and K8s agree."]);
        // A sentence no rule touches keeps the key it had before there were rules.
        assert_eq!(none[0], before[0]);
        let speech = prepare_with(&doc, Some("en"), POLLY, &rules("ˈlɛktɚ"), RuleMarkup::Inline).unwrap();
        assert_eq!(speech.voice_spec(), None, "no voice yet");
        assert_eq!(speech.pronunciations, rules("ˈlɛktɚ").rules);
    }

    #[test]
    fn nothing_to_say_is_a_named_error() {
        let doc = Document::new(vec![Block::Code { text: "x = 1".into() }]);
        assert_eq!(prepare(&doc, None, POLLY), Err(SpeechError::NothingToSay));
        assert_eq!(SpeechError::NothingToSay.kind(), ErrorKind::NoArticle);
    }
}
