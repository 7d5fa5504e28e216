//! Speech: a narration cut into SSML chunks that each fit one synthesis request, with every
//! character of the text escaped. The same narration always gives the same chunks.

use lector_core::ports::VoiceSpec;
use lector_core::voice::SpeechLimits;
use lector_core::{ErrorKind, StepError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::Document;
use crate::narrate::{Narration, Part, narrate};

const OPEN: &str = "<speak>";
const CLOSE: &str = "</speak>";

/// One SSML document for one synthesis request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Zero-based position in the speech.
    pub index: u32,
    /// `<speak>...</speak>`.
    pub ssml: String,
    /// Characters spoken (and billed): the text without markup, unescaped.
    pub billed_chars: usize,
}

impl Chunk {
    /// Characters of the request, markup included.
    pub fn total_chars(&self) -> usize {
        self.ssml.chars().count()
    }

    /// A hash of what is synthesized (the SSML and the voice), for keying the chunk's audio:
    /// the same chunk spoken by the same voice is the same object.
    pub fn content_hash(&self, spec: &VoiceSpec) -> String {
        let mut h = Sha256::new();
        h.update(spec.voice.as_str().as_bytes());
        h.update([0]);
        h.update(spec.engine.as_str().as_bytes());
        h.update([0]);
        h.update(spec.language.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(self.ssml.as_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

/// A narration as chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speech {
    pub chunks: Vec<Chunk>,
}

impl Speech {
    /// Characters spoken over all chunks.
    pub fn billed_chars(&self) -> u64 {
        self.chunks.iter().map(|c| c.billed_chars as u64).sum()
    }

    /// The chunks as one JSON document (for the chunks object).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, SpeechError> {
        serde_json::from_slice(bytes).map_err(|e| SpeechError::Corrupt(e.to_string()))
    }
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
    /// A stored chunks document does not read.
    #[error("stored speech chunks are damaged: {0}")]
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

/// Narrates `doc` and cuts it into chunks: the whole of the PrepareSpeech step's work.
pub fn prepare(doc: &Document, language: Option<&str>, limits: SpeechLimits) -> Result<Speech, SpeechError> {
    chunk(&narrate(doc, language), limits)
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

/// A piece of a chunk: its SSML and its billed characters.
struct Piece {
    ssml: String,
    billed: usize,
    is_pause: bool,
}

/// Packs the narration's parts into as few chunks as fit the limits, in order. A chunk ends
/// between sentences; a sentence is cut (between words, else between characters) only when it
/// alone exceeds the limits.
pub fn chunk(narration: &Narration, limits: SpeechLimits) -> Result<Speech, SpeechError> {
    if narration.is_empty() {
        return Err(SpeechError::NothingToSay);
    }
    let overhead = OPEN.len() + CLOSE.len();
    // Room for text in one chunk, with one separating space.
    let room_total = limits.max_total_chars.saturating_sub(overhead + 1);
    let room_billed = limits.max_billed_chars.saturating_sub(1);
    // The longest escape is 6 characters ("&quot;"): a room below that could loop forever.
    if room_total < 8 || room_billed < 2 {
        return Err(SpeechError::LimitsTooSmall(limits));
    }

    let mut pieces = Vec::new();
    for part in &narration.parts {
        match part {
            Part::Pause(p) => pieces.push(Piece {
                ssml: format!("<break time=\"{}ms\"/>", p.millis()),
                billed: 0,
                is_pause: true,
            }),
            Part::Sentence(s) => split_to_fit(s, room_total, room_billed, &mut pieces),
        }
    }

    let mut chunks = Vec::new();
    let mut body = String::new();
    let mut total = 0usize;
    let mut billed = 0usize;
    let mut finish = |body: &mut String, billed: &mut usize, total: &mut usize| {
        // A trailing pause would only lengthen the silence the next chunk starts with.
        while body.ends_with("/>") {
            match body.rfind("<break") {
                Some(i) => body.truncate(i),
                None => break,
            }
        }
        let text = body.trim_end();
        if !text.is_empty() && *billed > 0 {
            chunks.push(Chunk {
                index: chunks.len() as u32,
                ssml: format!("{OPEN}{text}{CLOSE}"),
                billed_chars: *billed,
            });
        }
        body.clear();
        *billed = 0;
        *total = 0;
    };
    for piece in pieces {
        let sep = usize::from(!body.is_empty() && !piece.is_pause);
        let piece_total = piece.ssml.chars().count();
        if total + sep + piece_total > room_total || billed + sep + piece.billed > room_billed {
            finish(&mut body, &mut billed, &mut total);
        }
        if body.is_empty() && piece.is_pause {
            // A chunk never starts with silence; the previous one ended there.
            continue;
        }
        let sep = usize::from(!body.is_empty() && !piece.is_pause);
        if sep == 1 {
            body.push(' ');
        }
        body.push_str(&piece.ssml);
        total += sep + piece_total;
        billed += sep + piece.billed;
    }
    finish(&mut body, &mut billed, &mut total);
    if chunks.is_empty() {
        return Err(SpeechError::NothingToSay);
    }
    Ok(Speech { chunks })
}

/// Adds `sentence` as one piece, or as several when it alone is over the room.
fn split_to_fit(sentence: &str, room_total: usize, room_billed: usize, out: &mut Vec<Piece>) {
    let fits = |text: &str| text.chars().count() <= room_billed && escape(text).chars().count() <= room_total;
    if fits(sentence) {
        out.push(Piece { ssml: escape(sentence), billed: sentence.chars().count(), is_pause: false });
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
            out.push(Piece { ssml: escape(&current), billed: current.chars().count(), is_pause: false });
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
                    out.push(Piece {
                        ssml: escape(&current),
                        billed: current.chars().count(),
                        is_pause: false,
                    });
                    current.clear();
                    current.push(c);
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(Piece { ssml: escape(&current), billed: current.chars().count(), is_pause: false });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Block;

    const POLLY: SpeechLimits = SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 };

    #[test]
    fn escaping_covers_every_markup_character() {
        assert_eq!(escape(r#"<speak a="b">&'"#), "&lt;speak a=&quot;b&quot;&gt;&amp;&apos;");
    }

    #[test]
    fn small_limits_cut_between_sentences_and_stay_within() {
        let text = (0..40).map(|i| format!("Sentence number {i} is here.")).collect::<Vec<_>>().join(" ");
        let doc = Document::new(vec![Block::Paragraph { text }]);
        let limits = SpeechLimits { max_billed_chars: 100, max_total_chars: 200 };
        let speech = prepare(&doc, None, limits).unwrap();
        assert!(speech.chunks.len() > 5);
        for c in &speech.chunks {
            assert!(c.billed_chars <= 100 && c.total_chars() <= 200, "{c:?}");
            assert!(c.ssml.ends_with(".</speak>"), "cut mid-sentence: {}", c.ssml);
        }
    }

    #[test]
    fn one_overlong_sentence_is_cut_between_words() {
        let text = "word ".repeat(2_000);
        let doc = Document::new(vec![Block::Paragraph { text: text.trim().to_string() }]);
        let speech = prepare(&doc, None, POLLY).unwrap();
        assert!(speech.chunks.len() >= 4);
        for c in &speech.chunks {
            assert!(c.billed_chars <= 3_000);
            assert!(!c.ssml.contains("wo "), "a word was cut");
        }
        assert_eq!(speech.billed_chars() as usize, text.trim().len() - (speech.chunks.len() - 1));
    }

    #[test]
    fn nothing_to_say_is_a_named_error() {
        let doc = Document::new(vec![Block::Code { text: "x = 1".into() }]);
        assert_eq!(prepare(&doc, None, POLLY), Err(SpeechError::NothingToSay));
        assert_eq!(SpeechError::NothingToSay.kind(), ErrorKind::NoArticle);
    }
}
