//! The voices `lector serve` and `lector convert` speak with: espeak-ng always (the zero-setup
//! default), Piper when it is installed (`scripts/tools.sh piper`), and Amazon Polly when asked
//! (`--engine polly`, in a build with the `aws` feature) through the usual AWS credentials chain,
//! everything else staying local.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lector_core::VoiceEngine;
use lector_core::ports::Voice;
use lector_local::espeak::EspeakVoice;
use lector_local::piper::{PiperError, PiperOptions, PiperVoice};
use lector_local::voices::EngineRouter;

/// Where the Piper voice's files are when `scripts/tools.sh piper` installed them, from the
/// repository's root.
pub const TOOLS_PIPER: &str = ".tools/piper";

/// The command that installs the Piper voice.
pub const INSTALL_PIPER: &str = "scripts/tools.sh piper";

/// How to choose the voices.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VoiceArgs {
    /// The engine of a request that names none: espeak (the default), piper (the neural local
    /// voice), or polly (Amazon Polly's neural engine; standard, long-form and generative name
    /// Polly's other engines).
    #[arg(long, env = "LECTOR_ENGINE", value_name = "ENGINE")]
    pub engine: Option<String>,
    /// Folders of Piper voices (NAME.onnx with NAME.onnx.json), separated by ':' [default:
    /// .tools/piper/voices and the data folder's voices/]
    #[arg(long = "voices", env = "LECTOR_VOICES", value_name = "DIRS")]
    pub voices: Option<String>,
    /// The ONNX Runtime library the Piper voice runs on [default:
    /// .tools/piper/lib/libonnxruntime.so]
    #[arg(long, env = "LECTOR_ONNXRUNTIME", value_name = "FILE")]
    pub onnxruntime: Option<PathBuf>,
    /// Piper's noise scales (variation of sound and of timing) instead of the voice's own; 0
    /// gives the same audio on every run.
    #[arg(long, env = "LECTOR_PIPER_NOISE", value_name = "SCALE")]
    pub piper_noise: Option<f32>,
}

/// What an engine name on the command line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineChoice {
    Local(VoiceEngine),
    /// Amazon Polly, with this engine.
    Polly(VoiceEngine),
}

impl EngineChoice {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        if name.eq_ignore_ascii_case("polly") {
            return Ok(EngineChoice::Polly(VoiceEngine::Neural));
        }
        let engine: VoiceEngine = name.parse().map_err(|e| anyhow::anyhow!("{e}, or polly"))?;
        Ok(if engine.is_local() { EngineChoice::Local(engine) } else { EngineChoice::Polly(engine) })
    }

    pub fn engine(self) -> VoiceEngine {
        match self {
            EngineChoice::Local(e) | EngineChoice::Polly(e) => e,
        }
    }
}

/// The voices of a run.
#[derive(Clone)]
pub struct VoiceSetup {
    pub voice: Arc<dyn Voice>,
    /// The engines offered.
    pub engines: Vec<VoiceEngine>,
    /// The engine of a request that names none.
    pub default_engine: VoiceEngine,
    /// One line on what is offered, for the start-up message.
    pub summary: String,
}

impl std::fmt::Debug for VoiceSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceSetup")
            .field("engines", &self.engines)
            .field("default_engine", &self.default_engine)
            .finish_non_exhaustive()
    }
}

impl VoiceSetup {
    /// espeak-ng alone.
    pub fn espeak() -> Self {
        Self {
            voice: Arc::new(EngineRouter::new().route(&[VoiceEngine::Espeak], Arc::new(EspeakVoice::new()))),
            engines: vec![VoiceEngine::Espeak],
            default_engine: VoiceEngine::Espeak,
            summary: "espeak-ng".into(),
        }
    }
}

impl VoiceArgs {
    /// The Piper voice folders: those given, else `.tools/piper/voices` and `DATA/voices`.
    pub fn voice_dirs(&self, data: &Path) -> Vec<PathBuf> {
        match self.voices.as_deref().filter(|v| !v.trim().is_empty()) {
            Some(list) => std::env::split_paths(list).collect(),
            None => vec![Path::new(TOOLS_PIPER).join("voices"), data.join("voices")],
        }
    }

    pub fn runtime(&self) -> PathBuf {
        self.onnxruntime.clone().unwrap_or_else(|| Path::new(TOOLS_PIPER).join("lib/libonnxruntime.so"))
    }

    fn piper_options(&self) -> PiperOptions {
        let mut options = PiperOptions::default();
        if let Some(noise) = self.piper_noise {
            options.noise_scale = Some(noise);
            options.noise_w = Some(noise);
        }
        options
    }

    /// espeak-ng, Piper when installed (required when it is the engine asked for), Polly when
    /// asked. Fails with the reason when the engine asked for cannot be had.
    pub async fn setup(&self, data: &Path) -> anyhow::Result<VoiceSetup> {
        let choice = match self.engine.as_deref() {
            Some(name) => EngineChoice::parse(name)?,
            None => EngineChoice::Local(VoiceEngine::Espeak),
        };
        let mut router = EngineRouter::new();
        let mut summary = Vec::new();
        if let EngineChoice::Polly(_) = choice {
            router = router.route(&VoiceEngine::POLLY, polly().await?);
            summary.push("Amazon Polly".to_owned());
        }
        router = router.route(&[VoiceEngine::Espeak], Arc::new(EspeakVoice::new()));
        summary.push("espeak-ng".to_owned());
        let dirs = self.voice_dirs(data);
        match PiperVoice::open(&self.runtime(), dirs, self.piper_options()) {
            Ok(piper) => {
                let names: Vec<String> = lector_core::ports::Voice::voices(&piper)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .into_iter()
                    .map(|v| v.id.to_string())
                    .collect();
                router = router.route(&[VoiceEngine::Piper], Arc::new(piper));
                summary.push(format!("Piper ({})", names.join(", ")));
            }
            Err(e) if choice == EngineChoice::Local(VoiceEngine::Piper) => {
                anyhow::bail!("the piper engine cannot be used: {e}")
            }
            Err(e @ (PiperError::NoVoices { .. } | PiperError::RuntimeMissing { .. })) => {
                tracing::debug!(error = %e, "the Piper voice is not installed");
                summary.push(format!("for a natural neural voice: {INSTALL_PIPER}"));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the Piper voice is installed but cannot be used");
                summary.push(format!("Piper cannot be used: {e}"));
            }
        }
        let engines = router.engines();
        Ok(VoiceSetup {
            voice: Arc::new(router),
            engines,
            default_engine: choice.engine(),
            summary: format!("Voices: {}; default engine {}", summary.join(", "), choice.engine()),
        })
    }
}

/// Amazon Polly from the usual AWS chain (`AWS_PROFILE`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...,
/// `AWS_ENDPOINT_URL`), checked for a region and credentials before anything runs.
#[cfg(feature = "aws")]
async fn polly() -> anyhow::Result<Arc<dyn Voice>> {
    let config = lector_aws::sdk::load(None).await;
    let voice = lector_aws::PollyVoice::from_sdk_config(&config).await?;
    Ok(Arc::new(voice))
}

#[cfg(not(feature = "aws"))]
async fn polly() -> anyhow::Result<Arc<dyn Voice>> {
    anyhow::bail!("{}", POLLY_NOT_BUILT)
}

/// What a build without the Polly adapter says to `--engine polly`.
pub const POLLY_NOT_BUILT: &str = "this lector was built without Amazon Polly: build it with `cargo build --features aws` to use --engine polly";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_choose_a_local_engine_or_polly() {
        assert_eq!(EngineChoice::parse("piper").unwrap(), EngineChoice::Local(VoiceEngine::Piper));
        assert_eq!(EngineChoice::parse("espeak").unwrap(), EngineChoice::Local(VoiceEngine::Espeak));
        assert_eq!(EngineChoice::parse("polly").unwrap(), EngineChoice::Polly(VoiceEngine::Neural));
        assert_eq!(EngineChoice::parse("Polly").unwrap().engine(), VoiceEngine::Neural);
        assert_eq!(EngineChoice::parse("long-form").unwrap(), EngineChoice::Polly(VoiceEngine::LongForm));
        let err = EngineChoice::parse("kokoro").unwrap_err().to_string();
        assert!(err.contains("piper") && err.contains("polly"), "{err}");
        assert!(POLLY_NOT_BUILT.contains("--features aws"));
    }

    #[test]
    fn voice_folders_default_to_the_tools_and_the_data_folder() {
        let args = VoiceArgs::default();
        assert_eq!(
            args.voice_dirs(Path::new("/data")),
            vec![PathBuf::from(".tools/piper/voices"), PathBuf::from("/data/voices")]
        );
        let args = VoiceArgs { voices: Some("/a:/b".into()), ..VoiceArgs::default() };
        assert_eq!(args.voice_dirs(Path::new("/data")), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(args.runtime(), PathBuf::from(".tools/piper/lib/libonnxruntime.so"));
    }
}
