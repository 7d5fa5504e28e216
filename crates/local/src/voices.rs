//! One [`Voice`] over several: each request goes to the voice of its engine (espeak-ng, Piper,
//! Amazon Polly's engines), and the voice list is all of theirs.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{SpeechLimits, VoiceEngine, VoiceId, VoiceInfo};

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

/// The voice of `engine` for `language` (BCP 47): one of exactly that language, else of its
/// primary language (`fr-CA` → a `fr` voice), else, with no language or none that matches,
/// American English, else any English, else the engine's first. `None` when the engine has no
/// voice at all.
pub fn voice_for(voices: &[VoiceInfo], engine: VoiceEngine, language: Option<&str>) -> Option<VoiceId> {
    let of_engine: Vec<&VoiceInfo> = voices.iter().filter(|v| v.engines.contains(&engine)).collect();
    let primary = |tag: &str| tag.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
    let exact = |tag: &str| of_engine.iter().find(|v| v.language.eq_ignore_ascii_case(tag)).copied();
    let same_primary = |tag: &str| of_engine.iter().find(|v| primary(&v.language) == primary(tag)).copied();
    language
        .and_then(|tag| exact(tag).or_else(|| same_primary(tag)))
        .or_else(|| exact("en-US"))
        .or_else(|| same_primary("en"))
        .or_else(|| of_engine.first().copied())
        .map(|v| v.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str, language: &str, engines: &[VoiceEngine]) -> VoiceInfo {
        VoiceInfo {
            id: VoiceId::new(id),
            name: id.into(),
            language: language.into(),
            gender: None,
            engines: engines.to_vec(),
            licence: None,
        }
    }

    #[test]
    fn a_voice_follows_the_language_within_its_engine() {
        let voices = vec![
            info("en-gb", "en-GB", &[VoiceEngine::Espeak]),
            info("en-us", "en-US", &[VoiceEngine::Espeak]),
            info("fr-fr", "fr-FR", &[VoiceEngine::Espeak]),
            info("de", "de", &[VoiceEngine::Espeak]),
            info("en_US-joe-medium", "en-US", &[VoiceEngine::Piper]),
            info("Celine", "fr-FR", &[VoiceEngine::Standard]),
            info("Lea", "fr-FR", &[VoiceEngine::Standard, VoiceEngine::Neural]),
        ];
        let pick = |engine, lang| voice_for(&voices, engine, lang).map(|v| v.to_string());
        assert_eq!(pick(VoiceEngine::Espeak, Some("fr-FR")).as_deref(), Some("fr-fr"));
        assert_eq!(pick(VoiceEngine::Espeak, Some("fr")).as_deref(), Some("fr-fr"));
        assert_eq!(pick(VoiceEngine::Espeak, Some("de-AT")).as_deref(), Some("de"));
        assert_eq!(pick(VoiceEngine::Espeak, Some("en-gb")).as_deref(), Some("en-gb"));
        assert_eq!(pick(VoiceEngine::Espeak, None).as_deref(), Some("en-us"));
        assert_eq!(pick(VoiceEngine::Espeak, Some("xx")).as_deref(), Some("en-us"));
        // Piper has no French voice here: its English one, not espeak-ng's French.
        assert_eq!(pick(VoiceEngine::Piper, Some("fr")).as_deref(), Some("en_US-joe-medium"));
        assert_eq!(pick(VoiceEngine::Neural, Some("fr-FR")).as_deref(), Some("Lea"));
        assert_eq!(pick(VoiceEngine::Generative, None), None);
    }
}
