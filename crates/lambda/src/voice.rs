//! A voice that measures itself: each synthesis request reports the characters it was billed
//! for and how long it took, by engine. Wraps the Polly voice in `synthesize-chunk`. The
//! functions whose step does not speak have [`NoVoice`] instead: no Polly client is built at
//! their init, and none of its code is in their package.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::VoiceEngine;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{SpeechLimits, VoiceInfo};

use crate::metrics::Metrics;

/// The characters of an SSML document a voice service bills: the text, without the markup,
/// each character entity counted once.
pub fn billed_characters(ssml: &str) -> u64 {
    let mut count = 0u64;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in ssml.chars() {
        match c {
            '<' if !in_tag => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                in_entity = true;
                count += 1;
            }
            ';' if in_entity => in_entity = false,
            _ if in_entity => {}
            _ => count += 1,
        }
    }
    count
}

/// [`Voice`] around another voice, with metrics.
pub struct MeteredVoice {
    inner: Arc<dyn Voice>,
    metrics: Metrics,
}

impl std::fmt::Debug for MeteredVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredVoice").field("metrics", &self.metrics).finish_non_exhaustive()
    }
}

impl MeteredVoice {
    pub fn new(inner: Arc<dyn Voice>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl Voice for MeteredVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        self.inner.voices().await
    }

    fn limits(&self, engine: VoiceEngine) -> SpeechLimits {
        self.inner.limits(engine)
    }

    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        let started = Instant::now();
        let audio = self.inner.synthesize(ssml, spec).await?;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics.chunk_synthesized(spec.engine.as_str(), billed_characters(ssml), millis);
        Ok(audio)
    }
}

/// The voice of a function whose step does not speak: every request is refused, naming the
/// function, so that a step wired to the wrong function fails at once and says why.
#[derive(Debug, Clone, Copy)]
pub struct NoVoice {
    /// The function, for the error.
    pub function: &'static str,
}

impl NoVoice {
    fn refusal(&self) -> VoiceError {
        VoiceError::Refused(format!("the {} function has no voice: its step does not speak", self.function))
    }
}

#[async_trait]
impl Voice for NoVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        Err(self.refusal())
    }

    async fn synthesize(&self, _ssml: &str, _spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        Err(self.refusal())
    }
}

#[cfg(test)]
mod tests {
    use lector_core::VoiceId;

    use super::*;
    use crate::metrics::{CHARACTERS_SYNTHESIZED, CHUNK_SYNTHESIS_LATENCY, Captured};

    #[test]
    fn markup_is_not_billed_and_entities_are_one_character() {
        assert_eq!(billed_characters("<speak>Hello <break time=\"300ms\"/>world.</speak>"), 12);
        assert_eq!(billed_characters("<speak>Q&amp;A &lt;3</speak>"), 6);
        assert_eq!(billed_characters("plain"), 5);
    }

    struct Silence;

    #[async_trait]
    impl Voice for Silence {
        async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
            Ok(Vec::new())
        }
        async fn synthesize(&self, ssml: &str, _spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
            if ssml.contains("refuse") {
                return Err(VoiceError::Refused("no".into()));
            }
            Ok(Bytes::from_static(b"mp3"))
        }
    }

    #[tokio::test]
    async fn no_voice_refuses_every_request_naming_its_function() {
        let voice = NoVoice { function: "prepare-speech" };
        let spec = VoiceSpec {
            voice: VoiceId::new("Joanna"),
            engine: VoiceEngine::Neural,
            language: None,
            pronunciations: Default::default(),
        };
        let refused = voice.synthesize("<speak>Hi.</speak>", &spec).await.unwrap_err();
        assert!(matches!(&refused, VoiceError::Refused(why) if why.contains("prepare-speech")), "{refused}");
        assert!(matches!(voice.voices().await, Err(VoiceError::Refused(_))));
    }

    #[tokio::test]
    async fn each_synthesis_reports_its_characters_and_latency_and_a_refusal_reports_nothing() {
        let captured = Captured::default();
        let voice = MeteredVoice::new(
            Arc::new(Silence),
            Metrics::with_sink("N", "synthesize-chunk", captured.sink()),
        );
        let spec = VoiceSpec {
            voice: VoiceId::new("Joanna"),
            engine: VoiceEngine::Neural,
            language: None,
            pronunciations: Default::default(),
        };
        voice.synthesize("<speak>Ten chars.</speak>", &spec).await.unwrap();
        assert!(voice.synthesize("<speak>refuse</speak>", &spec).await.is_err());
        let lines = captured.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0][CHARACTERS_SYNTHESIZED], serde_json::json!(10.0));
        assert_eq!(lines[0]["Engine"], "neural");
        assert!(lines[1][CHUNK_SYNTHESIS_LATENCY].as_f64().is_some_and(|ms| ms >= 0.0));
    }
}
