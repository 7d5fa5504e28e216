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
/// local voice of the embedded default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum VoiceEngine {
    Standard,
    Neural,
    LongForm,
    Generative,
    Espeak,
}

impl VoiceEngine {
    pub const ALL: [VoiceEngine; 5] = [
        VoiceEngine::Standard,
        VoiceEngine::Neural,
        VoiceEngine::LongForm,
        VoiceEngine::Generative,
        VoiceEngine::Espeak,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VoiceEngine::Standard => "standard",
            VoiceEngine::Neural => "neural",
            VoiceEngine::LongForm => "long-form",
            VoiceEngine::Generative => "generative",
            VoiceEngine::Espeak => "espeak",
        }
    }

    /// Price in US dollars per million characters synthesized (Amazon Polly's list prices;
    /// the local voice costs nothing). Used for the estimates shown before converting.
    pub fn usd_per_million_chars(self) -> f64 {
        match self {
            VoiceEngine::Standard => 4.0,
            VoiceEngine::Neural => 16.0,
            VoiceEngine::LongForm => 100.0,
            VoiceEngine::Generative => 30.0,
            VoiceEngine::Espeak => 0.0,
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
            // espeak-ng has no hard limit; chunks of this size keep each synthesis short and
            // give the progress bar something to count.
            VoiceEngine::Espeak => SpeechLimits { max_billed_chars: 3_000, max_total_chars: 6_000 },
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
#[error("unknown voice engine '{0}': expected one of standard, neural, long-form, generative, espeak")]
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
}
