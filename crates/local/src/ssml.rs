//! The SSML Lector's speech steps write, read for an engine that does not take SSML itself (the
//! Piper voice): text, pauses (`break`), substitutions (`sub`), `say-as` and IPA phonemes
//! (`phoneme`). Sentence and paragraph elements end a sentence; any other element (`prosody`,
//! `emphasis`, `lang`, `mark`, `amazon:*`) is read through for its text.

use std::time::Duration;

use quick_xml::events::{BytesStart, Event};

/// The longest pause a `break` may ask for (Polly's limit too).
pub const MAX_BREAK: Duration = Duration::from_secs(10);

/// Why an SSML document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsmlError {
    /// Not well-formed XML.
    #[error("malformed SSML: {0}")]
    Malformed(String),
    /// The document is not one `<speak>` element.
    #[error("SSML must be one <speak> element: {0}")]
    NotSpeak(String),
    /// A `break` whose `time` or `strength` is not one SSML allows.
    #[error("bad <break>: {0}")]
    BadBreak(String),
    /// A `phoneme` in an alphabet other than IPA.
    #[error("<phoneme> alphabet '{0}' is not supported; use alphabet=\"ipa\"")]
    UnsupportedAlphabet(String),
    /// An element without an attribute it needs.
    #[error("<{element}> needs the attribute {attribute}")]
    MissingAttribute { element: &'static str, attribute: &'static str },
}

/// How a `say-as` asks its text to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SayAs {
    /// Letter by letter (`characters`, `spell-out`, `verbatim`).
    Characters,
    /// A date, a number, or anything else: read as the text is, which the phonemizer does well.
    AsText,
}

/// A piece of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Text to be read (a `sub`'s alias included), unescaped.
    Text(String),
    /// Text inside a `say-as`.
    SayAs(SayAs, String),
    /// IPA from a `phoneme`'s `ph`, spoken instead of the element's text.
    Phonemes(String),
}

/// What an SSML document says, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Inline(Inline),
    /// Silence of this length.
    Break(Duration),
    /// The end of an `<s>` or a `<p>`: whatever follows is a new sentence.
    SentenceEnd,
}

/// Whether the items hold anything to say (text with a letter or digit, or phonemes).
pub fn has_speech(items: &[Item]) -> bool {
    items.iter().any(|item| match item {
        Item::Inline(Inline::Text(t)) | Item::Inline(Inline::SayAs(_, t)) => {
            t.chars().any(char::is_alphanumeric)
        }
        Item::Inline(Inline::Phonemes(p)) => !p.trim().is_empty(),
        Item::Break(_) | Item::SentenceEnd => false,
    })
}

/// The elements whose content is not read: a `sub` speaks its alias, a `phoneme` its `ph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    Content,
}

struct Parser {
    items: Vec<Item>,
    /// Open elements below `speak`: (local name, whether their text is skipped, say-as kind).
    open: Vec<(String, Skip, Option<SayAs>)>,
    seen_speak: bool,
    closed_speak: bool,
}

/// Reads an SSML document into the items it speaks.
pub fn parse(ssml: &str) -> Result<Vec<Item>, SsmlError> {
    let mut reader = quick_xml::Reader::from_str(ssml);
    let mut p = Parser { items: Vec::new(), open: Vec::new(), seen_speak: false, closed_speak: false };
    loop {
        let event = reader
            .read_event()
            .map_err(|e| SsmlError::Malformed(format!("at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(e) => p.start(&e, false)?,
            Event::Empty(e) => p.start(&e, true)?,
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                p.end(&name)?;
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| SsmlError::Malformed(e.to_string()))?;
                p.text(&text)?;
            }
            Event::CData(t) => {
                let text = t.decode().map_err(|e| SsmlError::Malformed(e.to_string()))?;
                p.text(&text)?;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| SsmlError::Malformed(e.to_string()))?;
                        match &*name {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => return Err(SsmlError::Malformed(format!("unknown entity &{other};"))),
                        }
                    }
                    Err(e) => return Err(SsmlError::Malformed(e.to_string())),
                };
                p.text(&resolved)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !p.seen_speak || !p.closed_speak {
        return Err(SsmlError::NotSpeak("no complete <speak> element".into()));
    }
    Ok(p.items)
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, SsmlError> {
    for attr in e.attributes() {
        let attr = attr.map_err(|err| SsmlError::Malformed(err.to_string()))?;
        if attr.key.local_name().as_ref() == name.as_bytes() {
            let value = attr.unescape_value().map_err(|err| SsmlError::Malformed(err.to_string()))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

impl Parser {
    fn skipping(&self) -> bool {
        self.open.iter().any(|(_, skip, _)| *skip == Skip::Content)
    }

    fn say_as(&self) -> Option<SayAs> {
        self.open.iter().rev().find_map(|(_, _, kind)| *kind)
    }

    fn push_inline(&mut self, inline: Inline) {
        // Adjacent text of the same kind is one piece: entities and text arrive separately.
        match (self.items.last_mut(), &inline) {
            (Some(Item::Inline(Inline::Text(last))), Inline::Text(more)) => last.push_str(more),
            (Some(Item::Inline(Inline::SayAs(k, last))), Inline::SayAs(kind, more)) if k == kind => {
                last.push_str(more)
            }
            _ => self.items.push(Item::Inline(inline)),
        }
    }

    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), SsmlError> {
        let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        if !self.seen_speak {
            if name != "speak" {
                return Err(SsmlError::NotSpeak(format!("the document starts with <{name}>")));
            }
            self.seen_speak = true;
            self.closed_speak = empty;
            return Ok(());
        }
        if self.closed_speak {
            return Err(SsmlError::NotSpeak(format!("<{name}> after </speak>")));
        }
        if self.skipping() {
            if !empty {
                self.open.push((name, Skip::Content, None));
            }
            return Ok(());
        }
        let mut skip = Skip::No;
        let mut kind = None;
        match name.as_str() {
            "break" => {
                let pause =
                    break_length(attribute(e, "time")?.as_deref(), attribute(e, "strength")?.as_deref())?;
                self.items.push(Item::Break(pause));
            }
            "sub" => {
                let alias = attribute(e, "alias")?
                    .ok_or(SsmlError::MissingAttribute { element: "sub", attribute: "alias" })?;
                self.push_inline(Inline::Text(alias));
                skip = Skip::Content;
            }
            "phoneme" => {
                let alphabet = attribute(e, "alphabet")?.unwrap_or_else(|| "ipa".into());
                if !alphabet.eq_ignore_ascii_case("ipa") {
                    return Err(SsmlError::UnsupportedAlphabet(alphabet));
                }
                let ph = attribute(e, "ph")?
                    .ok_or(SsmlError::MissingAttribute { element: "phoneme", attribute: "ph" })?;
                self.items.push(Item::Inline(Inline::Phonemes(ph)));
                skip = Skip::Content;
            }
            "say-as" => {
                let interpret = attribute(e, "interpret-as")?
                    .ok_or(SsmlError::MissingAttribute { element: "say-as", attribute: "interpret-as" })?;
                kind = Some(match interpret.as_str() {
                    "characters" | "spell-out" | "verbatim" => SayAs::Characters,
                    _ => SayAs::AsText,
                });
            }
            "s" | "p" => self.sentence_end(),
            _ => {}
        }
        if !empty {
            self.open.push((name, skip, kind));
        }
        Ok(())
    }

    fn sentence_end(&mut self) {
        if !matches!(self.items.last(), None | Some(Item::SentenceEnd)) {
            self.items.push(Item::SentenceEnd);
        }
    }

    fn end(&mut self, name: &str) -> Result<(), SsmlError> {
        match self.open.pop() {
            Some((open, _, _)) => {
                if open != name {
                    return Err(SsmlError::Malformed(format!("</{name}> closes <{open}>")));
                }
                if !self.skipping() && (name == "s" || name == "p") {
                    self.sentence_end();
                }
                Ok(())
            }
            None if name == "speak" && self.seen_speak && !self.closed_speak => {
                self.closed_speak = true;
                Ok(())
            }
            None => Err(SsmlError::Malformed(format!("</{name}> closes nothing"))),
        }
    }

    fn text(&mut self, text: &str) -> Result<(), SsmlError> {
        if !self.seen_speak || self.closed_speak {
            if text.trim().is_empty() {
                return Ok(());
            }
            return Err(SsmlError::NotSpeak("text outside <speak>".into()));
        }
        if self.skipping() || text.is_empty() {
            return Ok(());
        }
        let inline = match self.say_as() {
            Some(kind) => Inline::SayAs(kind, text.to_owned()),
            None => Inline::Text(text.to_owned()),
        };
        self.push_inline(inline);
        Ok(())
    }
}

/// A `break`'s pause: `time` ("500ms", "1.5s") wins over `strength`; a bare `<break/>` is a
/// medium pause (a comma's).
pub fn break_length(time: Option<&str>, strength: Option<&str>) -> Result<Duration, SsmlError> {
    if let Some(time) = time {
        let time = time.trim();
        let (number, scale) = if let Some(ms) = time.strip_suffix("ms") {
            (ms, 0.001)
        } else if let Some(s) = time.strip_suffix('s') {
            (s, 1.0)
        } else {
            return Err(SsmlError::BadBreak(format!("time '{time}' has no unit (ms or s)")));
        };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| SsmlError::BadBreak(format!("time '{time}' is not a number")))?;
        if !value.is_finite() || value < 0.0 {
            return Err(SsmlError::BadBreak(format!("time '{time}' is not a length")));
        }
        return Ok(Duration::from_secs_f64(value * scale).min(MAX_BREAK));
    }
    let millis = match strength.unwrap_or("medium") {
        "none" => 0,
        "x-weak" => 100,
        "weak" => 250,
        "medium" => 400,
        "strong" => 750,
        "x-strong" => 1_250,
        other => return Err(SsmlError::BadBreak(format!("strength '{other}'"))),
    };
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Item {
        Item::Inline(Inline::Text(t.into()))
    }

    #[test]
    fn text_and_breaks_read_in_order_with_entities_resolved() {
        let items =
            parse("<speak>Tom &amp; Jerry&apos;s &#233;t&#xE9;. <break time=\"500ms\"/>Next.</speak>")
                .unwrap();
        assert_eq!(
            items,
            vec![text("Tom & Jerry's été. "), Item::Break(Duration::from_millis(500)), text("Next.")]
        );
    }

    #[test]
    fn sub_speaks_its_alias_and_phoneme_its_ipa() {
        let items = parse(
            "<speak>The <sub alias=\"World Wide Web\">WWW</sub> and a \
             <phoneme alphabet=\"ipa\" ph=\"təˈmɑːtoʊ\">tomato</phoneme>.</speak>",
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                text("The World Wide Web and a "),
                Item::Inline(Inline::Phonemes("təˈmɑːtoʊ".into())),
                text("."),
            ]
        );
    }

    #[test]
    fn say_as_keeps_its_kind() {
        let items = parse(
            "<speak>Call the <say-as interpret-as=\"characters\">API</say-as> on \
             <say-as interpret-as=\"date\">2024-05-01</say-as>.</speak>",
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                text("Call the "),
                Item::Inline(Inline::SayAs(SayAs::Characters, "API".into())),
                text(" on "),
                Item::Inline(Inline::SayAs(SayAs::AsText, "2024-05-01".into())),
                text("."),
            ]
        );
    }

    #[test]
    fn sentences_and_paragraphs_end_sentences_and_other_elements_are_read_through() {
        let items = parse(
            "<speak><p><s>One</s><s>Two <prosody rate=\"slow\">slowly</prosody></s></p>\
             <p>Three<mark name=\"m\"/></p></speak>",
        )
        .unwrap();
        assert_eq!(
            items,
            vec![
                text("One"),
                Item::SentenceEnd,
                text("Two slowly"),
                Item::SentenceEnd,
                text("Three"),
                Item::SentenceEnd
            ]
        );
    }

    #[test]
    fn break_lengths_follow_time_then_strength() {
        assert_eq!(break_length(Some("1.5s"), None), Ok(Duration::from_millis(1_500)));
        assert_eq!(break_length(Some("250ms"), Some("x-strong")), Ok(Duration::from_millis(250)));
        assert_eq!(break_length(None, Some("strong")), Ok(Duration::from_millis(750)));
        assert_eq!(break_length(None, None), Ok(Duration::from_millis(400)));
        assert_eq!(break_length(Some("99s"), None), Ok(MAX_BREAK));
        assert!(matches!(break_length(Some("5"), None), Err(SsmlError::BadBreak(_))));
        assert!(matches!(break_length(Some("-1s"), None), Err(SsmlError::BadBreak(_))));
        assert!(matches!(break_length(None, Some("loud")), Err(SsmlError::BadBreak(_))));
    }

    #[test]
    fn bad_documents_get_named_errors() {
        assert!(matches!(parse("plain text"), Err(SsmlError::NotSpeak(_))));
        assert!(matches!(parse("<p>x</p>"), Err(SsmlError::NotSpeak(_))));
        assert!(matches!(parse("<speak>x"), Err(SsmlError::NotSpeak(_))));
        assert!(matches!(parse("<speak>x</speak> more"), Err(SsmlError::NotSpeak(_))));
        assert!(matches!(parse("<speak><s>x</p></speak>"), Err(SsmlError::Malformed(_))));
        assert!(matches!(parse("<speak>&nbsp;</speak>"), Err(SsmlError::Malformed(_))));
        assert!(matches!(
            parse("<speak><phoneme alphabet=\"x-sampa\" ph=\"t@\">a</phoneme></speak>"),
            Err(SsmlError::UnsupportedAlphabet(a)) if a == "x-sampa"
        ));
        assert!(matches!(
            parse("<speak><sub>WWW</sub></speak>"),
            Err(SsmlError::MissingAttribute { element: "sub", .. })
        ));
    }

    #[test]
    fn speech_needs_a_word_or_phonemes() {
        assert!(!has_speech(&parse("<speak></speak>").unwrap()));
        assert!(!has_speech(&parse("<speak> . <break time=\"1s\"/> </speak>").unwrap()));
        assert!(has_speech(&parse("<speak>a</speak>").unwrap()));
        assert!(has_speech(&parse("<speak><phoneme ph=\"ə\">x</phoneme></speak>").unwrap()));
    }
}
