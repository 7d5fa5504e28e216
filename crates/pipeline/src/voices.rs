//! Which voice reads a text: the one a request names, or, when it says `auto`, a voice of its
//! engine that speaks the text's language (the local espeak-ng voice for a language the engine
//! has no voice for, when it is offered). A named voice whose language differs from the
//! text's is used as asked, with a note saying so.

use lector_core::voice::{VoiceEngine, VoiceId, VoiceInfo};
use lector_core::{ErrorKind, StepError};

/// The voice a text is read with, and why, when it is not what one would expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub voice: VoiceId,
    /// The engine that speaks it: the request's, or espeak-ng's for a language the request's
    /// engine does not speak.
    pub engine: VoiceEngine,
    /// Set when the voice does not speak the text's language, or when another engine reads it.
    pub note: Option<String>,
}

/// The primary language subtag, lower case: `fr` of `fr-CA`.
pub fn primary_language(tag: &str) -> String {
    tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase()
}

/// The region a language is most often spoken in, where the tag names none: the voice a
/// listener expects for `en` is an American one, for `fr` a French one.
fn usual_region(primary: &str) -> String {
    match primary {
        "en" => "US".into(),
        "pt" => "BR".into(),
        "zh" => "CN".into(),
        "ja" => "JP".into(),
        "ko" => "KR".into(),
        "sv" => "SE".into(),
        "da" => "DK".into(),
        "nb" | "no" | "nn" => "NO".into(),
        "cs" => "CZ".into(),
        "el" => "GR".into(),
        "uk" => "UA".into(),
        "hi" => "IN".into(),
        "ar" => "SA".into(),
        "ca" => "ES".into(),
        "cy" => "GB".into(),
        other => other.to_ascii_uppercase(),
    }
}

/// The voice of `engine` that best speaks `language`: the exact tag first, then the language
/// alone (`de`), then the language in its usual region (`fr-FR` for `fr`), then any voice of
/// the language, in the order listed.
pub fn voice_for_language<'a>(
    voices: &'a [VoiceInfo],
    engine: VoiceEngine,
    language: &str,
) -> Option<&'a VoiceInfo> {
    let on_engine = || voices.iter().filter(move |v| v.engines.contains(&engine));
    let primary = primary_language(language);
    let usual = format!("{primary}-{}", usual_region(&primary));
    on_engine()
        .find(|v| v.language.eq_ignore_ascii_case(language))
        .or_else(|| on_engine().find(|v| v.language.eq_ignore_ascii_case(&primary)))
        .or_else(|| on_engine().find(|v| v.language.eq_ignore_ascii_case(&usual)))
        .or_else(|| on_engine().find(|v| primary_language(&v.language) == primary))
}

/// The language a text is read in when nothing says which: English.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Choose the voice for a text in `language` (BCP 47, when known).
///
/// `requested` is the request's voice: [`VoiceId::AUTO`] picks the voice of `engine` that
/// speaks the language (English when the language is unknown); a language no voice of
/// `engine` speaks goes to espeak-ng when `voices` lists it, else to the engine's English
/// voice, with a note. A named voice is used as asked.
pub fn choose_voice(
    voices: &[VoiceInfo],
    engine: VoiceEngine,
    requested: &VoiceId,
    language: Option<&str>,
) -> Result<Chosen, StepError> {
    let language = language.map(str::trim).filter(|l| !l.is_empty());
    if !requested.is_auto() {
        let info = voices.iter().find(|v| &v.id == requested);
        let note = match (info, language) {
            (Some(info), Some(lang)) if primary_language(&info.language) != primary_language(lang) => {
                Some(format!(
                    "the text is in {lang} and voice {} speaks {}: it reads it as asked",
                    info.id, info.language
                ))
            }
            _ => None,
        };
        return Ok(Chosen { voice: requested.clone(), engine, note });
    }
    let lang = language.unwrap_or(DEFAULT_LANGUAGE);
    if let Some(found) = voice_for_language(voices, engine, lang) {
        return Ok(Chosen { voice: found.id.clone(), engine, note: None });
    }
    if engine != VoiceEngine::Espeak
        && let Some(found) = voice_for_language(voices, VoiceEngine::Espeak, lang)
    {
        return Ok(Chosen {
            voice: found.id.clone(),
            engine: VoiceEngine::Espeak,
            note: Some(format!("no {engine} voice speaks {lang}: espeak-ng's {} reads it", found.id)),
        });
    }
    if let Some(found) = voice_for_language(voices, engine, DEFAULT_LANGUAGE) {
        return Ok(Chosen {
            voice: found.id.clone(),
            engine,
            note: Some(format!("no voice speaks {lang}: {} reads it", found.id)),
        });
    }
    Err(StepError::new(ErrorKind::Unsupported, format!("no {engine} voice speaks {lang}, nor English")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(id: &str, language: &str, engine: VoiceEngine) -> VoiceInfo {
        VoiceInfo {
            id: VoiceId::new(id),
            name: id.into(),
            language: language.into(),
            gender: None,
            engines: vec![engine],
            licence: None,
        }
    }

    fn voices() -> Vec<VoiceInfo> {
        vec![
            voice("en-029", "en-029", VoiceEngine::Espeak),
            voice("en-gb", "en-GB", VoiceEngine::Espeak),
            voice("en-us", "en-US", VoiceEngine::Espeak),
            voice("fr-be", "fr-BE", VoiceEngine::Espeak),
            voice("fr-fr", "fr-FR", VoiceEngine::Espeak),
            voice("de", "de", VoiceEngine::Espeak),
            voice("Joanna", "en-US", VoiceEngine::Neural),
        ]
    }

    fn auto(engine: VoiceEngine, lang: Option<&str>) -> Chosen {
        choose_voice(&voices(), engine, &VoiceId::auto(), lang).unwrap()
    }

    #[test]
    fn auto_follows_the_language() {
        assert_eq!(auto(VoiceEngine::Espeak, Some("fr")).voice.as_str(), "fr-fr");
        assert_eq!(auto(VoiceEngine::Espeak, Some("fr-BE")).voice.as_str(), "fr-be");
        assert_eq!(auto(VoiceEngine::Espeak, Some("de-AT")).voice.as_str(), "de");
        assert_eq!(auto(VoiceEngine::Espeak, None).voice.as_str(), "en-us");
        assert_eq!(auto(VoiceEngine::Espeak, Some("en")).voice.as_str(), "en-us");
        assert_eq!(auto(VoiceEngine::Espeak, Some("en-GB")).voice.as_str(), "en-gb");
        assert_eq!(auto(VoiceEngine::Neural, Some("en-GB")).voice.as_str(), "Joanna");
    }

    #[test]
    fn a_language_the_engine_lacks_goes_to_espeak_ng_with_a_note() {
        let chosen = auto(VoiceEngine::Neural, Some("de"));
        assert_eq!((chosen.voice.as_str(), chosen.engine), ("de", VoiceEngine::Espeak));
        assert!(chosen.note.unwrap().contains("de"));
        let chosen = auto(VoiceEngine::Espeak, Some("xx"));
        assert_eq!(chosen.voice.as_str(), "en-us");
        assert!(chosen.note.is_some());
    }

    #[test]
    fn a_named_voice_is_used_as_asked_with_a_note_when_the_language_differs() {
        let chosen =
            choose_voice(&voices(), VoiceEngine::Espeak, &VoiceId::new("en-us"), Some("fr")).unwrap();
        assert_eq!(chosen.voice.as_str(), "en-us");
        assert!(chosen.note.unwrap().contains("fr"));
        let same = choose_voice(&voices(), VoiceEngine::Espeak, &VoiceId::new("en-us"), Some("en")).unwrap();
        assert_eq!(same.note, None);
    }
}
