//! The Amazon Polly voice: SSML in, MP3 out, with Polly's errors sorted into the port's.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_polly::Client;
use aws_sdk_polly::config::ProvideCredentials;
use aws_sdk_polly::error::SdkError;
use aws_sdk_polly::operation::synthesize_speech::SynthesizeSpeechError;
use aws_sdk_polly::types::{Engine, LanguageCode, OutputFormat, TextType, VoiceId as PollyVoiceId};
use bytes::Bytes;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::pronunciation::{Pronunciations, Rule};
use lector_core::voice::VoiceInfo;
use lector_core::{VoiceEngine, VoiceId};

use crate::sdk::Failure;

/// The MP3 sample rates Lector asks Polly for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRate {
    Hz22050,
    Hz24000,
}

impl SampleRate {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleRate::Hz22050 => "22050",
            SampleRate::Hz24000 => "24000",
        }
    }

    /// The highest MP3 rate each engine gives: 22,050 Hz for standard voices, 24,000 Hz for the
    /// others.
    pub fn for_engine(engine: VoiceEngine) -> Self {
        match engine {
            VoiceEngine::Standard => SampleRate::Hz22050,
            _ => SampleRate::Hz24000,
        }
    }
}

/// Why Polly cannot be used with the AWS settings at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollySetupError {
    #[error(
        "Amazon Polly needs an AWS region: set AWS_REGION, or AWS_PROFILE naming a profile with a region"
    )]
    NoRegion,
    #[error(
        "Amazon Polly needs AWS credentials and the usual chain found none ({0}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`"
    )]
    NoCredentials(String),
}

/// [`Voice`] on Amazon Polly's `SynthesizeSpeech` (SSML, MP3). Pronunciation rules that
/// substitute words or give their IPA go to Polly as a PLS lexicon, made once per rule set and
/// language (`PutLexicon`) and named on each request (`LexiconNames`); say-as rules are in the
/// SSML already.
#[derive(Debug, Clone)]
pub struct PollyVoice {
    client: Client,
    sample_rate: Option<SampleRate>,
    /// The lexicons this process has put, by name.
    lexicons: std::sync::Arc<tokio::sync::Mutex<std::collections::HashSet<String>>>,
    /// Each voice's language, asked once (a lexicon applies only in its voice's language).
    languages: std::sync::Arc<tokio::sync::OnceCell<std::collections::HashMap<String, String>>>,
}

/// A PLS lexicon of a rule set's substitutions (as aliases) and IPA (as phonemes), in one
/// language: its name (`[0-9A-Za-z]{1,20}`, from the rules' hash) and its document. `None`
/// when the set has no such rule.
pub fn lexicon(rules: &Pronunciations, language: &str) -> Option<(String, String)> {
    let entries: Vec<Rule> =
        rules.rules.iter().filter(|r| !matches!(r, Rule::SayAs { .. })).cloned().collect();
    if entries.is_empty() {
        return None;
    }
    let hash = Pronunciations::new(entries.clone()).hash();
    let lang: String = language.chars().filter(char::is_ascii_alphanumeric).take(6).collect();
    let name: String = format!("lx{lang}{hash}").chars().take(20).collect();
    let escape =
        |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let mut pls = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<lexicon version=\"1.0\" \
         xmlns=\"http://www.w3.org/2005/01/pronunciation-lexicon\" alphabet=\"ipa\" xml:lang=\"{}\">\n",
        escape(language)
    );
    for rule in &entries {
        let grapheme = escape(rule.matches());
        match rule {
            Rule::Substitute { say, .. } => pls.push_str(&format!(
                "  <lexeme><grapheme>{grapheme}</grapheme><alias>{}</alias></lexeme>\n",
                escape(say)
            )),
            Rule::Ipa { phonemes, .. } => pls.push_str(&format!(
                "  <lexeme><grapheme>{grapheme}</grapheme><phoneme>{}</phoneme></lexeme>\n",
                escape(phonemes)
            )),
            Rule::SayAs { .. } => {}
        }
    }
    pls.push_str("</lexicon>\n");
    Some((name, pls))
}

impl PollyVoice {
    /// Each engine at its best MP3 rate ([`SampleRate::for_engine`]).
    pub fn new(client: Client) -> Self {
        Self { client, sample_rate: None, lexicons: Default::default(), languages: Default::default() }
    }

    /// The language of `voice`, as Polly lists it.
    async fn voice_language(&self, voice: &VoiceId) -> Result<Option<String>, VoiceError> {
        let languages = self
            .languages
            .get_or_try_init(|| async {
                let voices = self.voices().await?;
                Ok::<_, VoiceError>(
                    voices.into_iter().map(|v| (v.id.as_str().to_owned(), v.language)).collect(),
                )
            })
            .await?;
        Ok(languages.get(voice.as_str()).cloned())
    }

    /// The name of the lexicon of `spec`'s rules in its voice's language, put first when this
    /// process has not put it yet; `None` when the rules need no lexicon.
    async fn lexicon_for(&self, spec: &VoiceSpec) -> Result<Option<String>, VoiceError> {
        if !spec.pronunciations.rules.iter().any(|r| !matches!(r, Rule::SayAs { .. })) {
            return Ok(None);
        }
        let Some(language) = self.voice_language(&spec.voice).await? else {
            return Err(VoiceError::UnsupportedVoice(format!("Polly lists no voice {}", spec.voice)));
        };
        let Some((name, content)) = lexicon(&spec.pronunciations, &language) else { return Ok(None) };
        let mut put = self.lexicons.lock().await;
        if !put.contains(&name) {
            self.client.put_lexicon().name(&name).content(content).send().await.map_err(|e| {
                let failure = Failure::of(&e);
                let reason = format!("putting the lexicon {name}: {}", failure.message);
                if failure.transient { VoiceError::Unavailable(reason) } else { VoiceError::Refused(reason) }
            })?;
            put.insert(name.clone());
        }
        Ok(Some(name))
    }

    /// Polly with an SDK config from the usual chain, once it is known to have a region and
    /// credentials: a run that cannot call Polly says so at its start, not at its first post.
    pub async fn from_sdk_config(config: &SdkConfig) -> Result<Self, PollySetupError> {
        if config.region().is_none() {
            return Err(PollySetupError::NoRegion);
        }
        let provider = config
            .credentials_provider()
            .ok_or_else(|| PollySetupError::NoCredentials("no provider".into()))?;
        provider.provide_credentials().await.map_err(|e| {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason = format!("{reason}: {s}");
                source = s.source();
            }
            PollySetupError::NoCredentials(reason)
        })?;
        Ok(Self::new(Client::new(config)))
    }

    /// Every request at `rate`.
    pub fn with_sample_rate(mut self, rate: SampleRate) -> Self {
        self.sample_rate = Some(rate);
        self
    }

    fn sample_rate(&self, engine: VoiceEngine) -> SampleRate {
        self.sample_rate.unwrap_or_else(|| SampleRate::for_engine(engine))
    }
}

/// Polly's name of a Lector engine; the local engines are not Polly's.
pub fn polly_engine(engine: VoiceEngine) -> Option<Engine> {
    match engine {
        VoiceEngine::Standard => Some(Engine::Standard),
        VoiceEngine::Neural => Some(Engine::Neural),
        VoiceEngine::LongForm => Some(Engine::LongForm),
        VoiceEngine::Generative => Some(Engine::Generative),
        VoiceEngine::Espeak | VoiceEngine::Piper => None,
    }
}

fn lector_engine(engine: &Engine) -> Option<VoiceEngine> {
    match engine {
        Engine::Standard => Some(VoiceEngine::Standard),
        Engine::Neural => Some(VoiceEngine::Neural),
        Engine::LongForm => Some(VoiceEngine::LongForm),
        Engine::Generative => Some(VoiceEngine::Generative),
        _ => None,
    }
}

/// Polly's language code for a BCP 47 tag, when Polly knows it (`en-us` → `en-US`). A bare
/// language (`en`) is left out: the voice then speaks its own language.
pub fn polly_language(tag: &str) -> Option<LanguageCode> {
    LanguageCode::values()
        .iter()
        .find(|code| code.eq_ignore_ascii_case(tag))
        .map(|code| LanguageCode::from(*code))
}

fn synthesize_error(
    err: &SdkError<SynthesizeSpeechError, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    spec: &VoiceSpec,
) -> VoiceError {
    let failure = Failure::of(err);
    let reason = failure.message.clone();
    let who = format!("voice {} on engine {}", spec.voice, spec.engine);
    if let SdkError::ServiceError(ctx) = err {
        match ctx.err() {
            SynthesizeSpeechError::EngineNotSupportedException(_) => {
                return VoiceError::UnsupportedVoice(format!("{who}: {reason}"));
            }
            SynthesizeSpeechError::LanguageNotSupportedException(_) => {
                return VoiceError::UnsupportedLanguage(format!(
                    "{who}, language {}: {reason}",
                    spec.language.as_deref().unwrap_or("-")
                ));
            }
            SynthesizeSpeechError::InvalidSsmlException(_)
            | SynthesizeSpeechError::TextLengthExceededException(_)
            | SynthesizeSpeechError::InvalidSampleRateException(_)
            | SynthesizeSpeechError::LexiconNotFoundException(_)
            | SynthesizeSpeechError::MarksNotSupportedForFormatException(_)
            | SynthesizeSpeechError::SsmlMarksNotSupportedForTextTypeException(_) => {
                return VoiceError::Refused(reason);
            }
            _ => {}
        }
    }
    if failure.transient {
        return VoiceError::Unavailable(reason);
    }
    // An unknown voice id fails Polly's input validation; the SDK knows every voice it was
    // built with, so only a voice outside that list is called unsupported.
    let invalid_input = failure.code_is("ValidationException") || failure.code_is("InvalidParameterValue");
    if invalid_input && !PollyVoiceId::values().contains(&spec.voice.as_str()) {
        return VoiceError::UnsupportedVoice(format!("{who}: {reason}"));
    }
    VoiceError::Refused(reason)
}

#[async_trait]
impl Voice for PollyVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        let mut voices = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_voices()
                .include_additional_language_codes(true)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    let failure = Failure::of(&e);
                    if failure.transient {
                        VoiceError::Unavailable(failure.message)
                    } else {
                        VoiceError::Refused(failure.message)
                    }
                })?;
            for voice in out.voices() {
                let Some(id) = voice.id() else { continue };
                voices.push(VoiceInfo {
                    id: VoiceId::new(id.as_str()),
                    name: voice.name().unwrap_or(id.as_str()).to_owned(),
                    language: voice.language_code().map(|l| l.as_str().to_owned()).unwrap_or_default(),
                    gender: voice.gender().map(|g| g.as_str().to_owned()),
                    engines: voice.supported_engines().iter().filter_map(lector_engine).collect(),
                    licence: None,
                });
            }
            match out.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(voices),
            }
        }
    }

    /// The voice and the engine are in the speech cache key already; what else decides Polly's
    /// sound is the service's own (not versioned for callers) and the sample rate.
    async fn fingerprint(&self, spec: &VoiceSpec) -> Result<String, VoiceError> {
        Ok(format!("polly; mp3 {} Hz", self.sample_rate(spec.engine).as_str()))
    }

    #[tracing::instrument(skip(self, ssml), fields(voice = %spec.voice, engine = %spec.engine, chars = ssml.len()))]
    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        let engine = polly_engine(spec.engine).ok_or_else(|| {
            VoiceError::UnsupportedVoice(format!("engine {} is not an Amazon Polly engine", spec.engine))
        })?;
        let lexicon = self.lexicon_for(spec).await?;
        let out = self
            .client
            .synthesize_speech()
            .set_lexicon_names(lexicon.map(|name| vec![name]))
            .text(ssml)
            .text_type(TextType::Ssml)
            .voice_id(PollyVoiceId::from(spec.voice.as_str()))
            .engine(engine)
            .set_language_code(spec.language.as_deref().and_then(polly_language))
            .output_format(OutputFormat::Mp3)
            .sample_rate(self.sample_rate(spec.engine).as_str())
            .send()
            .await
            .map_err(|e| synthesize_error(&e, spec))?;
        let audio = out
            .audio_stream
            .collect()
            .await
            .map_err(|e| VoiceError::Unavailable(format!("the audio stream was cut short: {e}")))?
            .into_bytes();
        if audio.is_empty() {
            return Err(VoiceError::Unavailable("Polly answered with no audio".into()));
        }
        Ok(audio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_and_rates_map_to_pollys() {
        assert_eq!(polly_engine(VoiceEngine::LongForm), Some(Engine::LongForm));
        assert_eq!(polly_engine(VoiceEngine::Espeak), None);
        assert_eq!(polly_engine(VoiceEngine::Piper), None);
        assert_eq!(SampleRate::for_engine(VoiceEngine::Standard).as_str(), "22050");
        assert_eq!(SampleRate::for_engine(VoiceEngine::Generative).as_str(), "24000");
        for engine in VoiceEngine::ALL {
            if let Some(p) = polly_engine(engine) {
                assert_eq!(lector_engine(&p), Some(engine));
            }
        }
    }

    fn service_error(
        err: SynthesizeSpeechError,
        status: u16,
    ) -> SdkError<SynthesizeSpeechError, aws_smithy_runtime_api::client::orchestrator::HttpResponse> {
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap();
        let raw =
            aws_smithy_runtime_api::http::Response::new(status, aws_smithy_types::body::SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    fn generic(code: &str) -> SynthesizeSpeechError {
        let meta =
            aws_smithy_types::error::ErrorMetadata::builder().code(code).message("from the test").build();
        SynthesizeSpeechError::generic(meta)
    }

    #[test]
    fn pollys_errors_become_the_ports_named_errors() {
        use aws_sdk_polly::types::error::{
            EngineNotSupportedException, InvalidSsmlException, LanguageNotSupportedException,
            ServiceFailureException, TextLengthExceededException,
        };
        let spec = VoiceSpec {
            voice: VoiceId::new("Joanna"),
            engine: VoiceEngine::Generative,
            language: None,
            pronunciations: Default::default(),
        };
        let map = |err, status| synthesize_error(&service_error(err, status), &spec);

        let engine = SynthesizeSpeechError::EngineNotSupportedException(
            EngineNotSupportedException::builder().build(),
        );
        assert!(
            matches!(map(engine, 400), VoiceError::UnsupportedVoice(m) if m.contains("Joanna") && m.contains("generative"))
        );
        let language = SynthesizeSpeechError::LanguageNotSupportedException(
            LanguageNotSupportedException::builder().build(),
        );
        assert!(matches!(map(language, 400), VoiceError::UnsupportedLanguage(_)));
        let ssml = SynthesizeSpeechError::InvalidSsmlException(InvalidSsmlException::builder().build());
        assert!(matches!(map(ssml, 400), VoiceError::Refused(_)));
        let long = SynthesizeSpeechError::TextLengthExceededException(
            TextLengthExceededException::builder().build(),
        );
        assert!(matches!(map(long, 400), VoiceError::Refused(_)));
        let failure =
            SynthesizeSpeechError::ServiceFailureException(ServiceFailureException::builder().build());
        assert!(matches!(map(failure, 500), VoiceError::Unavailable(_)));
        assert!(matches!(map(generic("ThrottlingException"), 400), VoiceError::Unavailable(_)));
        assert!(matches!(map(generic("Whatever"), 503), VoiceError::Unavailable(_)));
        // A voice the SDK knows is not "unsupported" just because the input was invalid.
        assert!(matches!(map(generic("ValidationException"), 400), VoiceError::Refused(_)));
        let unknown = VoiceSpec { voice: VoiceId::new("Nobody"), ..spec.clone() };
        let err = synthesize_error(&service_error(generic("ValidationException"), 400), &unknown);
        assert!(matches!(err, VoiceError::UnsupportedVoice(_)));
    }

    #[tokio::test]
    async fn the_fingerprint_names_polly_and_the_sample_rate_of_the_engine() {
        let config = aws_sdk_polly::Config::builder()
            .behavior_version(aws_sdk_polly::config::BehaviorVersion::latest())
            .region(aws_sdk_polly::config::Region::new("us-east-1"))
            .build();
        let voice = PollyVoice::new(Client::from_conf(config));
        let spec = |engine| VoiceSpec {
            voice: VoiceId::new("Joanna"),
            engine,
            language: None,
            pronunciations: Default::default(),
        };
        assert_eq!(voice.fingerprint(&spec(VoiceEngine::Standard)).await.unwrap(), "polly; mp3 22050 Hz");
        assert_eq!(voice.fingerprint(&spec(VoiceEngine::Neural)).await.unwrap(), "polly; mp3 24000 Hz");
        let fixed = voice.with_sample_rate(SampleRate::Hz22050);
        assert_eq!(fixed.fingerprint(&spec(VoiceEngine::Neural)).await.unwrap(), "polly; mp3 22050 Hz");
    }

    #[test]
    fn languages_are_passed_only_when_polly_knows_them() {
        assert_eq!(polly_language("en-us"), Some(LanguageCode::EnUs));
        assert_eq!(polly_language("de-DE"), Some(LanguageCode::DeDe));
        assert_eq!(polly_language("en"), None);
        assert_eq!(polly_language("xx-YY"), None);
    }
}
