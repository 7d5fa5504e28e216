//! One [`Voice`] over several: each request goes to the voice of its engine (espeak-ng, Piper,
//! Amazon Polly's engines), and the voice list is all of theirs.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{SpeechLimits, VoiceEngine, VoiceInfo};

/// Routes by engine.
#[derive(Clone, Default)]
pub struct EngineRouter {
    /// The voices and the engines each one serves, in the order they were added.
    routes: Vec<(Vec<VoiceEngine>, Arc<dyn Voice>)>,
}

impl std::fmt::Debug for EngineRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineRouter").field("engines", &self.engines()).finish()
    }
}

impl EngineRouter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `voice` serves `engines`; an engine already served keeps its first voice.
    pub fn route(mut self, engines: &[VoiceEngine], voice: Arc<dyn Voice>) -> Self {
        let taken = self.engines();
        let engines: Vec<VoiceEngine> = engines.iter().copied().filter(|e| !taken.contains(e)).collect();
        if !engines.is_empty() {
            self.routes.push((engines, voice));
        }
        self
    }

    /// The engines served, in the order they were added.
    pub fn engines(&self) -> Vec<VoiceEngine> {
        self.routes.iter().flat_map(|(engines, _)| engines.iter().copied()).collect()
    }

    fn voice_for(&self, engine: VoiceEngine) -> Result<&Arc<dyn Voice>, VoiceError> {
        self.routes.iter().find(|(engines, _)| engines.contains(&engine)).map(|(_, voice)| voice).ok_or_else(
            || {
                let offered: Vec<&str> = self.engines().iter().map(|e| e.as_str()).collect();
                VoiceError::UnsupportedVoice(format!(
                    "the {engine} engine is not available here (offered: {})",
                    offered.join(", ")
                ))
            },
        )
    }
}

#[async_trait]
impl Voice for EngineRouter {
    /// Each voice's list, its engines narrowed to those it serves here.
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        let mut all = Vec::new();
        for (engines, voice) in &self.routes {
            for mut info in voice.voices().await? {
                info.engines.retain(|e| engines.contains(e));
                if !info.engines.is_empty() {
                    all.push(info);
                }
            }
        }
        Ok(all)
    }

    fn limits(&self, engine: VoiceEngine) -> SpeechLimits {
        self.voice_for(engine).map_or_else(|_| engine.limits(), |voice| voice.limits(engine))
    }

    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        self.voice_for(spec.engine)?.synthesize(ssml, spec).await
    }

    async fn fingerprint(&self, spec: &VoiceSpec) -> Result<String, VoiceError> {
        self.voice_for(spec.engine)?.fingerprint(spec).await
    }
}
