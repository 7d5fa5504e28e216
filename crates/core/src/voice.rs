//! Voices: which voice speaks, on which engine, within which limits.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A voice name as the voice service knows it (`Joanna` for Polly, `en-us` for espeak-ng).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct VoiceId(String);

impl VoiceId {
    /// The voice a request names when it leaves the choice to Lector: the voice of its engine
    /// that speaks the article's language.
    pub const AUTO: &'static str = "auto";

    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// [`VoiceId::AUTO`].
    pub fn auto() -> Self {
        Self(Self::AUTO.to_owned())
    }

    pub fn is_auto(&self) -> bool {
        self.0.eq_ignore_ascii_case(Self::AUTO)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VoiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The speech engine. Polly's four engines differ in quality, price and limits; `espeak` is the
/// local voice of the embedded default; `piper` is the local neural voice (Piper's VITS voices
/// run with ONNX Runtime), offered where it is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VoiceEngine {
    Standard,
    Neural,
    LongForm,
    Generative,
    Espeak,
    Piper,
}

impl VoiceEngine {
    pub const ALL: [VoiceEngine; 6] = [
        VoiceEngine::Standard,
        VoiceEngine::Neural,
        VoiceEngine::LongForm,
        VoiceEngine::Generative,
        VoiceEngine::Espeak,
        VoiceEngine::Piper,
    ];

    /// Amazon Polly's engines.
    pub const POLLY: [VoiceEngine; 4] =
        [VoiceEngine::Standard, VoiceEngine::Neural, VoiceEngine::LongForm, VoiceEngine::Generative];

    /// Whether the engine runs on this machine (no service is called, nothing is billed).
    pub fn is_local(self) -> bool {
        matches!(self, VoiceEngine::Espeak | VoiceEngine::Piper)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VoiceEngine::Standard => "standard",
            VoiceEngine::Neural => "neural",
            VoiceEngine::LongForm => "long-form",
            VoiceEngine::Generative => "generative",
            VoiceEngine::Espeak => "espeak",
            VoiceEngine::Piper => "piper",
        }
    }

    /// Price in US dollars per million characters synthesized (Amazon Polly's list prices;
    /// the local voices cost nothing). Used for the estimates shown before converting.
    pub fn usd_per_million_chars(self) -> f64 {
        match self {
            VoiceEngine::Standard => 4.0,
            VoiceEngine::Neural => 16.0,
            VoiceEngine::LongForm => 100.0,
            VoiceEngine::Generative => 30.0,
            VoiceEngine::Espeak | VoiceEngine::Piper => 0.0,
        }
    }

    /// The per-request limits of the engine.
    pub fn limits(self) -> SpeechLimits {
        match self {
            // Polly: 3,000 billed characters and 6,000 characters in all (markup included)
            // per SynthesizeSpeech request.
            VoiceEngine::Standard | VoiceEngine::Neural | VoiceEngine::LongForm | VoiceEngine::Generative => {
                SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 }
            }
            // The local voices have no hard limit (Piper speaks a sentence at a time whatever it is
            // given); chunks of this size keep each synthesis short and give the progress bar
            // something to count.
            VoiceEngine::Espeak | VoiceEngine::Piper => {
                SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 }
            }
        }
    }
}

impl fmt::Display for VoiceEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a voice engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown voice engine '{0}': expected one of standard, neural, long-form, generative, espeak, piper")]
pub struct UnknownEngine(pub String);

impl FromStr for VoiceEngine {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VoiceEngine::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownEngine(s.to_owned()))
    }
}

/// How much text one synthesis request may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SpeechLimits {
    /// Characters that are spoken (and billed): the text without markup.
    pub max_billed_chars: usize,
    /// Characters in the request, markup included.
    pub max_total_chars: usize,
}

/// One voice a voice service offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VoiceInfo {
    pub id: VoiceId,
    pub name: String,
    /// BCP 47 language code, such as `en-US`.
    pub language: String,
    pub gender: Option<String>,
    pub engines: Vec<VoiceEngine>,
    /// What a user should know of the voice's licence before publishing its audio, when there
    /// is something to know (a voice trained on data that restricts commercial use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_round_trip_through_their_names() {
        for engine in VoiceEngine::ALL {
            assert_eq!(engine.as_str().parse::<VoiceEngine>(), Ok(engine));
            assert_eq!(serde_json::to_value(engine).unwrap(), engine.as_str());
        }
        assert_eq!("Piper".parse::<VoiceEngine>(), Ok(VoiceEngine::Piper));
        let err = "kokoro".parse::<VoiceEngine>().unwrap_err();
        assert!(err.to_string().contains("piper"), "{err}");
        assert!(VoiceEngine::Piper.is_local() && VoiceEngine::Espeak.is_local());
        assert!(VoiceEngine::POLLY.iter().all(|e| !e.is_local()));
        assert_eq!(VoiceEngine::Piper.usd_per_million_chars(), 0.0);
    }

    #[test]
    fn a_licence_note_is_left_out_when_there_is_none() {
        let voice = VoiceInfo {
            id: VoiceId::new("en-us"),
            name: "English".into(),
            language: "en-US".into(),
            gender: None,
            engines: vec![VoiceEngine::Espeak],
            licence: None,
        };
        let json = serde_json::to_value(&voice).unwrap();
        assert!(json.get("licence").is_none(), "{json}");
        // Older answers, without the field, still read.
        let back: VoiceInfo = serde_json::from_value(json).unwrap();
        assert_eq!(back, voice);
        let noted = VoiceInfo { licence: Some("non-commercial".into()), ..voice };
        assert_eq!(serde_json::to_value(&noted).unwrap()["licence"], "non-commercial");
    }
}
