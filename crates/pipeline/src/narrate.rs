//! Narration: what of a document is read aloud, sentence by sentence, with pauses where the
//! structure asks for them. Code blocks, bare URLs and footnote marks are not read.

use serde::{Deserialize, Serialize};

use crate::document::{Block, Document, collapse_ws};
use crate::timeline::{BlockKind, TimelineBlock};

/// A silence between parts, longer for stronger breaks in the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pause {
    ListItem,
    Paragraph,
    Heading,
}

impl Pause {
    /// The silence, in milliseconds.
    pub fn millis(self) -> u32 {
        match self {
            Pause::ListItem => 350,
            Pause::Paragraph => 500,
            Pause::Heading => 800,
        }
    }
}

/// One part of a narration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Part {
    /// A sentence to speak, plain text (not escaped).
    Sentence(String),
    Pause(Pause),
}

/// What is read, in order: sentences and pauses, never two pauses in a row, none at the ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Narration {
    pub parts: Vec<Part>,
    /// The blocks read, in order (code and empty blocks are not read, so not here).
    #[serde(default)]
    pub blocks: Vec<TimelineBlock>,
    /// For each sentence of `parts`, in order, the index in `blocks` of the block it is read
    /// from.
    #[serde(default)]
    pub sentence_blocks: Vec<u32>,
}

impl Narration {
    pub fn sentences(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Sentence(s) => Some(s.as_str()),
            Part::Pause(_) => None,
        })
    }

    /// Characters that will be spoken.
    pub fn characters(&self) -> usize {
        self.sentences().map(|s| s.chars().count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.sentences().next().is_none()
    }

    fn pause(&mut self, pause: Pause) {
        match self.parts.last_mut() {
            None => {}
            Some(Part::Pause(p)) => *p = (*p).max(pause),
            Some(Part::Sentence(_)) => self.parts.push(Part::Pause(pause)),
        }
    }
}

/// The narration of `doc`. `language` (BCP 47, such as `en-US`) picks the sentence rules;
/// unknown languages fall back to English rules.
pub fn narrate(doc: &Document, language: Option<&str>) -> Narration {
    let lang = language
        .and_then(|l| l.split(['-', '_']).next())
        .map(str::to_ascii_lowercase)
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en".to_string());
    let mut out = Narration::default();
    for block in &doc.blocks {
        let (before, after, kind, level) = match block {
            Block::Code { .. } => continue,
            Block::Heading { level, .. } => {
                (Some(Pause::Heading), Pause::Heading, BlockKind::Heading, Some(*level))
            }
            Block::ListItem { .. } => (None, Pause::ListItem, BlockKind::ListItem, None),
            Block::Paragraph { .. } => (None, Pause::Paragraph, BlockKind::Paragraph, None),
            Block::Quote { .. } => (None, Pause::Paragraph, BlockKind::Quote, None),
        };
        let text = speakable(block.text());
        let sentences: Vec<&str> = sentencex::segment(&lang, &text)
            .into_iter()
            .map(str::trim)
            .filter(|s| s.chars().any(char::is_alphanumeric))
            .collect();
        if sentences.is_empty() {
            continue;
        }
        if let Some(p) = before {
            out.pause(p);
        }
        let index = out.blocks.len() as u32;
        out.blocks.push(TimelineBlock { kind, level });
        for sentence in sentences {
            out.parts.push(Part::Sentence(sentence.to_string()));
            out.sentence_blocks.push(index);
        }
        out.pause(after);
    }
    if matches!(out.parts.last(), Some(Part::Pause(_))) {
        out.parts.pop();
    }
    out
}

/// The text as it should be spoken: bare URLs and footnote marks removed, whitespace
/// collapsed, no space left before punctuation, no empty brackets.
pub fn speakable(text: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let cleaned = strip_footnotes(word);
        let cleaned = strip_url(&cleaned);
        if !cleaned.is_empty() {
            words.push(cleaned);
        }
    }
    let mut out = String::with_capacity(text.len());
    for word in words {
        let attaches = word.starts_with(['.', ',', ';', ':', '!', '?', ')']) && !out.is_empty();
        if !out.is_empty() && !attaches {
            out.push(' ');
        }
        out.push_str(&word);
    }
    let out = out.replace("()", "").replace("[]", "").replace("( )", "");
    collapse_ws(&out).replace(" ,", ",").replace(" .", ".").replace(" ;", ";").replace(" :", ":")
}

/// A word that is, or holds, a bare URL keeps only its surrounding punctuation: "(https://x)."
/// becomes "().".
fn strip_url(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let start = ["https://", "http://", "ftp://", "www."].iter().filter_map(|p| lower.find(p)).min();
    let Some(start) = start else { return word.to_string() };
    // "www." must start the word (after opening punctuation) to count.
    if !word[..start].chars().all(|c| !c.is_alphanumeric()) {
        return word.to_string();
    }
    let rest = &word[start..];
    let keep_tail = rest
        .char_indices()
        .rev()
        .take_while(|(_, c)| {
            matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '"' | '\'' | '»' | '”')
        })
        .last()
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    format!("{}{}", &word[..start], &rest[keep_tail..])
}

/// Removes `[12]` and `[^note]`-style footnote marks from a word.
fn strip_footnotes(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if is_footnote_label(&after[..close]) => {
                rest = &after[close + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_footnote_label(label: &str) -> bool {
    // `[^note]` is always a footnote; a bare `[i]` may be code, so only digits count there.
    match label.strip_prefix('^') {
        Some(rest) => {
            !rest.is_empty() && rest.len() <= 12 && rest.chars().all(|c| c.is_alphanumeric() || c == '-')
        }
        None => !label.is_empty() && label.len() <= 3 && label.chars().all(|c| c.is_ascii_digit()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(n: &Narration) -> Vec<&str> {
        n.sentences().collect()
    }

    #[test]
    fn urls_and_footnotes_are_not_read() {
        assert_eq!(speakable("See https://example.com/a?b=c. It works[1] well[^2]."), "See. It works well.");
        assert_eq!(speakable("Docs (https://docs.rs) are here"), "Docs are here");
        assert_eq!(speakable("Visit www.example.org, then rest"), "Visit, then rest");
        assert_eq!(speakable("an array[i] stays"), "an array[i] stays");
        assert_eq!(speakable("keep [this note] too"), "keep [this note] too");
    }

    #[test]
    fn abbreviations_decimals_and_urls_do_not_end_sentences() {
        let doc = Document::new(vec![Block::Paragraph {
            text: "Dr. Smith met us, e.g. at noon. Pi is 3.14 exactly. He left.".into(),
        }]);
        let n = narrate(&doc, Some("en-US"));
        assert_eq!(sentences(&n), vec!["Dr. Smith met us, e.g. at noon.", "Pi is 3.14 exactly.", "He left."]);
    }

    #[test]
    fn addresses_in_the_prose_stay_in_one_sentence() {
        let doc = Document::new(vec![Block::Paragraph {
            text: "Read the guide at docs.example.com/start.html before you begin. Then email a.b@example.org today."
                .into(),
        }]);
        let n = narrate(&doc, Some("en"));
        assert_eq!(
            sentences(&n),
            vec![
                "Read the guide at docs.example.com/start.html before you begin.",
                "Then email a.b@example.org today."
            ]
        );
    }

    #[test]
    fn structure_gives_pauses_and_code_is_skipped() {
        let doc = Document::new(vec![
            Block::Heading { level: 1, text: "Title".into() },
            Block::Paragraph { text: "Body text.".into() },
            Block::Code { text: "fn main() {}".into() },
            Block::ListItem { ordered: false, text: "one".into() },
            Block::ListItem { ordered: false, text: "two".into() },
            Block::Heading { level: 2, text: "Next".into() },
        ]);
        let n = narrate(&doc, None);
        use Part::*;
        assert_eq!(
            n.parts,
            vec![
                Sentence("Title".into()),
                Pause(super::Pause::Heading),
                Sentence("Body text.".into()),
                Pause(super::Pause::Paragraph),
                Sentence("one".into()),
                Pause(super::Pause::ListItem),
                Sentence("two".into()),
                Pause(super::Pause::Heading),
                Sentence("Next".into()),
            ]
        );
    }
}
