//! The workflow's steps: one type per Task state of `statemachines/conversion.asl.json`, each
//! with a stable state name, function name and `DefinitionSubstitutions` key, a typed input and
//! output, and an async `run` over the ports. The Lambda binaries and the local engine call the
//! very same `run` through [`invoke`]; only the adapters in [`StepPorts`] differ.
//!
//! Every step is idempotent: it reads the conversion's stream first and returns what is already
//! recorded instead of doing the work again, so a retried Lambda, a redriven execution or a
//! Map iteration that runs twice appends nothing twice and synthesizes nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::conversion::{Command, Conversion, Phase};
use lector_core::event::{
    ArticleFetched, ArticleSource, AudioFormat, ChunkSynthesized, ConversionCompleted, ConversionFailed,
    ConversionStarted, RetryMethod, SpeechPrepared, SynthesisTotals,
};
use lector_core::feed::index::FeedIndex;
use lector_core::ports::{Clock, ObjectStore, Voice, VoiceSpec, Workflows};
use lector_core::service::{execute, load};
use lector_core::{ConversionId, ErrorKind, EventMeta, EventStore, ObjectKey, RecordedEvent, StepError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::article::{Article, extract_article};
use crate::fetch::{Fetcher, Resource, decode_html};
use crate::speech::{RuleMarkup, Speech, Unit, prepare_with, unit_key};
use crate::stitch::{inspect, stitch};
use crate::timeline::{Segment, Timeline};
use crate::voices::choose_voice;
use futures::StreamExt;

/// The adapters a step works with.
#[derive(Clone)]
pub struct StepPorts {
    pub events: Arc<dyn EventStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub voice: Arc<dyn Voice>,
    /// The guarded fetcher, for the steps that fetch from the web; `None` where nothing does
    /// (a Lambda function whose step does not fetch builds no HTTP client), and a step that
    /// needs it then fails as [`ErrorKind::Internal`], named.
    pub fetcher: Option<Arc<Fetcher>>,
    pub clock: Arc<dyn Clock>,
    /// The list of subscriptions, for the step that lists the feeds due for a poll; `None`
    /// where no step reads it, and a step that needs it then fails as
    /// [`ErrorKind::Internal`], named.
    pub feeds: Option<Arc<dyn FeedIndex>>,
    /// Where WebSub hubs push feeds to, when this deployment can be reached by them; `None`
    /// polls only.
    pub websub: Option<Arc<crate::websub::WebSubConfig>>,
    /// The subscriptions this process has folded, so that a poll reads only what was appended
    /// to its feed's stream since (one per process: a Lambda environment keeps its own).
    pub folded_feeds: Arc<lector_core::feed::service::FoldedFeeds>,
}

impl std::fmt::Debug for StepPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepPorts").finish_non_exhaustive()
    }
}

impl StepPorts {
    pub(crate) fn feeds(&self, state: &str) -> Result<&dyn FeedIndex, StepError> {
        self.feeds.as_deref().ok_or_else(|| {
            StepError::new(
                ErrorKind::Internal,
                format!("{state} needs the list of subscriptions, and its ports have none"),
            )
        })
    }

    pub(crate) fn fetcher(&self, state: &str) -> Result<&Fetcher, StepError> {
        self.fetcher.as_deref().ok_or_else(|| {
            StepError::new(
                ErrorKind::Internal,
                format!("{state} needs to fetch, and its ports have no fetcher"),
            )
        })
    }

    fn meta(&self, id: &ConversionId, cause: Option<&str>) -> EventMeta {
        EventMeta {
            occurred_at: self.clock.now(),
            correlation_id: id.to_string(),
            causation_id: cause.map(str::to_owned),
        }
    }
}

/// One Task state of the workflow.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    /// The state's name in the state machine.
    const STATE: &'static str;
    /// The function's name (`functions/<name>`, and the Lambda's name suffix).
    const FUNCTION: &'static str;
    /// The `${...}` placeholder the state machine names the function by.
    const SUBSTITUTION: &'static str;

    type Input: DeserializeOwned + Send;
    type Output: Serialize + Send;

    async fn run(&self, ports: &StepPorts, input: Self::Input) -> Result<Self::Output, StepError>;
}

/// Run a step on JSON, as a Lambda function or a Task state receives it: input that does not
/// fit the step is a `Lector.InvalidInput` error, never a panic.
pub async fn invoke<S: Step>(step: &S, ports: &StepPorts, input: Value) -> Result<Value, StepError> {
    let input: S::Input = serde_json::from_value(input)
        .map_err(|e| StepError::new(ErrorKind::InvalidInput, format!("{} input: {e}", S::STATE)))?;
    let output = step.run(ports, input).await?;
    serde_json::to_value(output)
        .map_err(|e| StepError::new(ErrorKind::Internal, format!("{} output: {e}", S::STATE)))
}

/// The functions of the workflow, as `(state, function, substitution)`: for wiring and for the
/// test that the state machine, the template and the local engine agree.
pub const STEPS: [(&str, &str, &str); 5] = [
    (FetchArticle::STATE, FetchArticle::FUNCTION, FetchArticle::SUBSTITUTION),
    (PrepareSpeech::STATE, PrepareSpeech::FUNCTION, PrepareSpeech::SUBSTITUTION),
    (SynthesizeChunk::STATE, SynthesizeChunk::FUNCTION, SynthesizeChunk::SUBSTITUTION),
    (StitchAudio::STATE, StitchAudio::FUNCTION, StitchAudio::SUBSTITUTION),
    (RecordFailure::STATE, RecordFailure::FUNCTION, RecordFailure::SUBSTITUTION),
];

/// The input of the workflow and of most steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversionRef {
    pub conversion_id: ConversionId,
    pub attempt: u32,
}

impl ConversionRef {
    /// The workflow input that runs `attempt` of a conversion.
    pub fn workflow_input(id: &ConversionId, attempt: u32) -> Value {
        serde_json::json!({ "conversion_id": id, "attempt": attempt })
    }
}

async fn put_json(ports: &StepPorts, key: &ObjectKey, value: &impl Serialize) -> Result<(), StepError> {
    let body = serde_json::to_vec(value).map_err(|e| StepError::new(ErrorKind::Internal, e.to_string()))?;
    ports.objects.put(key, Bytes::from(body), "application/json").await?;
    Ok(())
}

async fn get_json<T: DeserializeOwned>(ports: &StepPorts, key: &ObjectKey) -> Result<T, StepError> {
    let body = ports.objects.get(key).await?;
    serde_json::from_slice(&body)
        .map_err(|e| StepError::new(ErrorKind::Internal, format!("{key} is damaged: {e}")))
}

fn request_of(state: &Conversion) -> Result<&lector_core::event::ConversionRequested, StepError> {
    state
        .request
        .as_ref()
        .ok_or_else(|| StepError::new(ErrorKind::NotFound, "the conversion was never requested"))
}

// ---------------------------------------------------------------------------------------------

/// The input of [`FetchArticle`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchArticleInput {
    pub conversion_id: ConversionId,
    pub attempt: u32,
    /// The execution running the attempt (`$$.Execution.Id`).
    pub execution_id: String,
}

/// What [`FetchArticle`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchArticleOutput {
    pub title: String,
    pub words: u32,
    pub language: Option<String>,
    pub text_ref: ObjectKey,
}

impl From<&ArticleFetched> for FetchArticleOutput {
    fn from(a: &ArticleFetched) -> Self {
        Self {
            title: a.title.clone(),
            words: a.words,
            language: a.language.clone(),
            text_ref: a.text_ref.clone(),
        }
    }
}

/// Record that the execution took the conversion, then take the post's text from the feed (when
/// the feed carried the whole post) or fetch the page and extract it; store the article and
/// append `ArticleFetched`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchArticle;

#[async_trait]
impl Step for FetchArticle {
    const STATE: &'static str = "FetchArticle";
    const FUNCTION: &'static str = "fetch-article";
    const SUBSTITUTION: &'static str = "FetchArticleFunctionArn";
    type Input = FetchArticleInput;
    type Output = FetchArticleOutput;

    async fn run(
        &self,
        ports: &StepPorts,
        input: FetchArticleInput,
    ) -> Result<FetchArticleOutput, StepError> {
        let id = &input.conversion_id;
        let started = execute(
            &*ports.events,
            id,
            Command::Start(ConversionStarted {
                execution_id: input.execution_id.clone(),
                attempt: input.attempt,
            }),
            &ports.meta(id, Some(&input.execution_id)),
        )
        .await?;
        if let Some(article) = &started.state.article {
            return Ok(article.into());
        }
        let request = request_of(&started.state)?.clone();
        let title = started.state.feed_title_of_post().map(str::to_owned);
        let (mut article, source) = match started.state.content_ref() {
            Some(key) => {
                let html = ports.objects.get(key).await?;
                let html = String::from_utf8_lossy(&html);
                (Article::from_feed_content(&html, title.as_deref(), None)?, ArticleSource::Feed)
            }
            None => {
                let fetched =
                    ports.fetcher(Self::STATE)?.fetch(request.post_url.as_str(), Resource::Page).await?;
                let html = decode_html(&fetched.body, fetched.charset.as_deref());
                let mut article = extract_article(&html, Some(&fetched.url))?;
                if article.title.trim().is_empty() {
                    article.title = title.clone().unwrap_or_else(|| fetched.url.to_string());
                }
                (article, ArticleSource::Page)
            }
        };
        if article.language.is_none() {
            article.language = request.feed_language.clone().or_else(|| detect_language(&article.document));
        }
        let text_ref = ObjectKey::article_text(id, input.attempt);
        put_json(ports, &text_ref, &article).await?;
        let fetched = ArticleFetched {
            attempt: input.attempt,
            title: article.title.clone(),
            byline: article.byline.clone(),
            language: article.language.clone(),
            words: u32::try_from(article.words).unwrap_or(u32::MAX),
            characters: article.document.characters() as u64,
            text_ref,
            source,
            content_hash: Some(article.document.content_hash()),
            summary: article.summary.clone(),
            published_at: article.published,
        };
        let done = execute(
            &*ports.events,
            id,
            Command::RecordArticle(fetched),
            &ports.meta(id, Some(&input.execution_id)),
        )
        .await?;
        let recorded = done
            .state
            .article
            .as_ref()
            .ok_or_else(|| StepError::new(ErrorKind::Internal, "article not recorded"))?;
        Ok(recorded.into())
    }
}

// ---------------------------------------------------------------------------------------------

/// What [`PrepareSpeech`] made: the chunk count and the indices the Map iterates over (only
/// the chunks with units to synthesize; none when every unit is already stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareSpeechOutput {
    pub chunks: u32,
    pub characters: u64,
    pub indices: Vec<u32>,
}

impl From<&SpeechPrepared> for PrepareSpeechOutput {
    fn from(s: &SpeechPrepared) -> Self {
        Self { chunks: s.chunks, characters: s.characters, indices: (0..s.chunks).collect() }
    }
}

/// How many stored objects a step looks up or reads at once.
const OBJECT_CONCURRENCY: usize = 16;

/// Turn the article into narration cut into units (sentences), choose the voice (the
/// request's, or the one that speaks the article's language), key each unit by everything
/// that decides its sound, look which are already stored, and group the others into chunks;
/// store the speech and append `SpeechPrepared`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepareSpeech;

#[async_trait]
impl Step for PrepareSpeech {
    const STATE: &'static str = "PrepareSpeech";
    const FUNCTION: &'static str = "prepare-speech";
    const SUBSTITUTION: &'static str = "PrepareSpeechFunctionArn";
    type Input = ConversionRef;
    type Output = PrepareSpeechOutput;

    async fn run(&self, ports: &StepPorts, input: ConversionRef) -> Result<PrepareSpeechOutput, StepError> {
        let id = &input.conversion_id;
        let (_, state) = load(&*ports.events, id).await?;
        check_attempt(&state, input.attempt)?;
        if let Some(speech) = &state.speech {
            return Ok(speech.into());
        }
        let article_event = state
            .article
            .as_ref()
            .ok_or_else(|| StepError::new(ErrorKind::Internal, "PrepareSpeech ran before FetchArticle"))?;
        let article: Article = get_json(ports, &article_event.text_ref).await?;
        let request = request_of(&state)?;
        let language = article.language.clone().or_else(|| request.feed_language.clone());
        let voices = ports.voice.voices().await?;
        let chosen = choose_voice(&voices, request.engine, &request.voice, language.as_deref())?;
        let limits = ports.voice.limits(chosen.engine);
        // The rules the revision was requested with: a redrive reads the same ones.
        let rules = state.pronunciations();
        let markup = RuleMarkup::for_engine(chosen.engine);
        let mut speech = prepare_with(&article.document, language.as_deref(), limits, &rules, markup)?;
        // The language the voice speaks, not the one detected: detection on a short or
        // repetitive text can come and go with an edit, and a unit sounds the same either way.
        let speaking = voices
            .iter()
            .find(|v| v.id == chosen.voice && v.engines.contains(&chosen.engine))
            .map(|v| v.language.clone())
            .or_else(|| language.clone());
        let spec = VoiceSpec {
            voice: chosen.voice.clone(),
            engine: chosen.engine,
            language: speaking,
            pronunciations: rules.clone(),
        };
        let fingerprint = ports.voice.fingerprint(&spec).await?;
        // Only the rules that occur in a unit's text take part in its key: changing a rule
        // makes exactly the sentences it touches be spoken again.
        speech.assign_keys(|unit| unit_key(&spec, &fingerprint, &rules.key_of(&unit.text), &unit.ssml));
        (speech.voice, speech.engine, speech.language) =
            (Some(spec.voice.clone()), Some(spec.engine), spec.language.clone());
        let stored = stored_units(ports, &speech).await?;
        speech.plan_chunks(limits, |key| stored.contains(key));
        let units_cached = speech.units.iter().filter(|u| stored.contains(&u.key)).count() as u32;
        let chunks_ref = ObjectKey::speech_chunks(id, input.attempt);
        ports.objects.put(&chunks_ref, Bytes::from(speech.to_json()), "application/json").await?;
        let prepared = SpeechPrepared {
            attempt: input.attempt,
            chunks: speech.chunks.len() as u32,
            characters: speech.billed_chars(),
            chunks_ref,
            units: Some(speech.units.len() as u32),
            units_cached: Some(units_cached),
            voice: Some(spec.voice),
            language,
            language_note: chosen.note,
        };
        let done =
            execute(&*ports.events, id, Command::PrepareSpeech(prepared), &ports.meta(id, None)).await?;
        let recorded = done
            .state
            .speech
            .as_ref()
            .ok_or_else(|| StepError::new(ErrorKind::Internal, "speech not recorded"))?;
        Ok(recorded.into())
    }
}

/// The keys of the speech's units whose audio is already stored.
async fn stored_units(ports: &StepPorts, speech: &Speech) -> Result<HashSet<String>, StepError> {
    let keys: Vec<String> =
        speech.units.iter().map(|u| u.key.clone()).collect::<HashSet<_>>().into_iter().collect();
    let found: Vec<Result<Option<String>, StepError>> = futures::stream::iter(keys)
        .map(|key| async move {
            let object = ObjectKey::speech_unit(&key).ok_or_else(|| {
                StepError::new(ErrorKind::Internal, format!("unit key '{key}' is not a hash"))
            })?;
            Ok(ports.objects.head(&object).await?.filter(|m| m.size > 0).map(|_| key))
        })
        .buffer_unordered(OBJECT_CONCURRENCY)
        .collect()
        .await;
    found.into_iter().filter_map(Result::transpose).collect()
}

/// The language of a text that declares none, when it can be told with confidence.
fn detect_language(document: &crate::document::Document) -> Option<String> {
    let text: String =
        document.blocks.iter().filter(|b| b.is_prose()).map(|b| b.text()).collect::<Vec<_>>().join(" ");
    let sample: String = text.chars().take(4_000).collect();
    let info = whatlang::detect(&sample)?;
    if !info.is_reliable() {
        return None;
    }
    Some(iso_639_1(info.lang())?.to_owned())
}

/// The two-letter code of the languages whatlang tells apart that voices speak.
fn iso_639_1(lang: whatlang::Lang) -> Option<&'static str> {
    use whatlang::Lang::*;
    Some(match lang {
        Eng => "en",
        Fra => "fr",
        Deu => "de",
        Spa => "es",
        Ita => "it",
        Por => "pt",
        Nld => "nl",
        Swe => "sv",
        Dan => "da",
        Nob => "nb",
        Fin => "fi",
        Pol => "pl",
        Ces => "cs",
        Slk => "sk",
        Hun => "hu",
        Ron => "ro",
        Tur => "tr",
        Rus => "ru",
        Ukr => "uk",
        Ell => "el",
        Bul => "bg",
        Hrv => "hr",
        Srp => "sr",
        Slv => "sl",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Cat => "ca",
        Ara => "ar",
        Heb => "he",
        Hin => "hi",
        Cmn => "zh",
        Jpn => "ja",
        Kor => "ko",
        Vie => "vi",
        Ind => "id",
        Tha => "th",
        Epo => "eo",
        Afr => "af",
        _ => return None,
    })
}

fn check_attempt(state: &Conversion, attempt: u32) -> Result<(), StepError> {
    match state.phase {
        Phase::New => Err(StepError::new(ErrorKind::NotFound, "the conversion was never requested")),
        Phase::Completed if state.completed.as_ref().is_some_and(|c| c.attempt == attempt) => Ok(()),
        Phase::Completed => Err(StepError::new(ErrorKind::Superseded, "the conversion is already completed")),
        _ if state.attempt != attempt => Err(StepError::new(
            ErrorKind::Superseded,
            format!("attempt {attempt} was replaced by attempt {}", state.attempt),
        )),
        _ => Ok(()),
    }
}

/// The speech of the current attempt, as `PrepareSpeech` stored it.
async fn speech_of(ports: &StepPorts, state: &Conversion, step: &str) -> Result<Speech, StepError> {
    let prepared = state
        .speech
        .as_ref()
        .ok_or_else(|| StepError::new(ErrorKind::Internal, format!("{step} ran before PrepareSpeech")))?;
    Ok(Speech::from_json(&ports.objects.get(&prepared.chunks_ref).await?)?)
}

/// One unit's audio, and whether the voice had to speak it.
struct UnitAudio {
    bytes: Bytes,
    synthesized: bool,
}

/// The stored audio of `unit`, or, when there is none, the voice's, stored under its key.
async fn unit_audio(ports: &StepPorts, unit: &Unit, spec: &VoiceSpec) -> Result<UnitAudio, StepError> {
    let key = unit.audio_key()?;
    match ports.objects.get(&key).await {
        Ok(bytes) if !bytes.is_empty() => return Ok(UnitAudio { bytes, synthesized: false }),
        Ok(_) | Err(lector_core::ports::ObjectError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let bytes = ports.voice.synthesize(&unit.ssml, spec).await?;
    // Checked before it is stored: audio that does not decode is never kept under a key.
    inspect(&bytes)?;
    ports.objects.put(&key, bytes.clone(), "audio/mpeg").await?;
    Ok(UnitAudio { bytes, synthesized: true })
}

// ---------------------------------------------------------------------------------------------

/// The input of [`SynthesizeChunk`]: one Map item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthesizeChunkInput {
    pub conversion_id: ConversionId,
    pub attempt: u32,
    pub index: u32,
}

/// What one chunk did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesizeChunkOutput {
    pub index: u32,
    pub units: u32,
    pub units_synthesized: u32,
    pub duration_seconds: f64,
    /// Whether the voice was called (false when every unit's audio was already there).
    pub synthesized: bool,
}

impl From<&ChunkSynthesized> for SynthesizeChunkOutput {
    fn from(c: &ChunkSynthesized) -> Self {
        Self {
            index: c.index,
            units: c.units,
            units_synthesized: c.units_synthesized,
            duration_seconds: c.duration_seconds,
            synthesized: c.units_synthesized > 0,
        }
    }
}

/// Make sure every unit of one chunk has stored audio: a unit already stored (by an earlier
/// run, revision or conversion) is reused, the others are synthesized and stored under their
/// key; append `ChunkSynthesized` with what was synthesized and what was reused.
#[derive(Debug, Clone, Copy, Default)]
pub struct SynthesizeChunk;

#[async_trait]
impl Step for SynthesizeChunk {
    const STATE: &'static str = "SynthesizeChunk";
    const FUNCTION: &'static str = "synthesize-chunk";
    const SUBSTITUTION: &'static str = "SynthesizeChunkFunctionArn";
    type Input = SynthesizeChunkInput;
    type Output = SynthesizeChunkOutput;

    async fn run(
        &self,
        ports: &StepPorts,
        input: SynthesizeChunkInput,
    ) -> Result<SynthesizeChunkOutput, StepError> {
        let id = &input.conversion_id;
        let (_, state) = load(&*ports.events, id).await?;
        check_attempt(&state, input.attempt)?;
        if let Some(chunk) = state.chunks.get(&input.index) {
            let mut out = SynthesizeChunkOutput::from(chunk);
            out.synthesized = false;
            return Ok(out);
        }
        let speech = speech_of(ports, &state, Self::STATE).await?;
        let chunk = speech.chunks.get(input.index as usize).ok_or_else(|| {
            StepError::new(
                ErrorKind::InvalidInput,
                format!("chunk {} of {}", input.index, speech.chunks.len()),
            )
        })?;
        let spec = speech.voice_spec().ok_or_else(|| {
            StepError::new(
                ErrorKind::Internal,
                "the speech was prepared by an earlier version of Lector: restart the conversion",
            )
        })?;
        let mut record = ChunkSynthesized {
            attempt: input.attempt,
            index: input.index,
            units: chunk.units.len() as u32,
            units_synthesized: 0,
            units_reused: 0,
            characters_synthesized: 0,
            characters_reused: 0,
            bytes: 0,
            duration_seconds: 0.0,
            audio_ref: None,
        };
        let mut checked = ports.clock.now();
        for &index in &chunk.units {
            let unit = speech.units.get(index as usize).ok_or_else(|| {
                StepError::new(ErrorKind::Internal, format!("chunk {} names unit {index}", chunk.index))
            })?;
            // A newer attempt (a revision of an edited post) may have started meanwhile: stop
            // speaking for this one within a second rather than at the chunk's end.
            if ports.clock.now() - checked >= chrono::Duration::seconds(1) {
                check_attempt(&load(&*ports.events, id).await?.1, input.attempt)?;
                checked = ports.clock.now();
            }
            let audio = unit_audio(ports, unit, &spec).await?;
            let chars = unit.billed_chars as u64;
            if audio.synthesized {
                record.units_synthesized += 1;
                record.characters_synthesized += chars;
            } else {
                record.units_reused += 1;
                record.characters_reused += chars;
            }
            record.bytes += audio.bytes.len() as u64;
            record.duration_seconds += inspect(&audio.bytes)?.duration_seconds;
        }
        let out = SynthesizeChunkOutput::from(&record);
        execute(&*ports.events, id, Command::RecordChunk(record), &ports.meta(id, None)).await?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------

/// The finished audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StitchAudioOutput {
    pub audio_ref: ObjectKey,
    pub bytes: u64,
    pub duration_seconds: f64,
}

impl From<&ConversionCompleted> for StitchAudioOutput {
    fn from(c: &ConversionCompleted) -> Self {
        Self { audio_ref: c.audio_ref.clone(), bytes: c.bytes, duration_seconds: c.duration_seconds }
    }
}

/// Join the units' frames, in order, into one MP3 and time every sentence from the frames;
/// store the audio (a new object per revision) and its timeline, and append
/// `ConversionCompleted` with what the revision synthesized and reused.
#[derive(Debug, Clone, Copy, Default)]
pub struct StitchAudio;

#[async_trait]
impl Step for StitchAudio {
    const STATE: &'static str = "StitchAudio";
    const FUNCTION: &'static str = "stitch-audio";
    const SUBSTITUTION: &'static str = "StitchAudioFunctionArn";
    type Input = ConversionRef;
    type Output = StitchAudioOutput;

    async fn run(&self, ports: &StepPorts, input: ConversionRef) -> Result<StitchAudioOutput, StepError> {
        let id = &input.conversion_id;
        let (_, state) = load(&*ports.events, id).await?;
        check_attempt(&state, input.attempt)?;
        if let Some(done) = &state.completed {
            return Ok(done.into());
        }
        let missing = state.missing_chunks();
        if !missing.is_empty() || state.speech.is_none() {
            return Err(StepError::new(ErrorKind::Internal, format!("chunks {missing:?} have no audio yet")));
        }
        let speech = speech_of(ports, &state, Self::STATE).await?;
        let (joined, timeline, fallback) = if speech.is_legacy() {
            (join_legacy_chunks(ports, &state).await?, None::<Timeline>, SynthesisTotals::default())
        } else {
            let (joined, timeline, fallback) = join_units(ports, &speech, &state).await?;
            (joined, Some(timeline), fallback)
        };
        let revision = state.revision.max(1);
        let audio_ref = ObjectKey::revision_audio(id, revision);
        let bytes = joined.bytes.len() as u64;
        ports.objects.put(&audio_ref, Bytes::from(joined.bytes), AudioFormat::Mp3.content_type()).await?;
        let timings_ref = match &timeline {
            Some(timeline) => {
                let key = ObjectKey::timings(id, revision);
                ports.objects.put(&key, Bytes::from(timeline.to_json()), "application/json").await?;
                Some(key)
            }
            None => None,
        };
        let completed = ConversionCompleted {
            attempt: input.attempt,
            audio_ref,
            bytes,
            duration_seconds: joined.info.duration_seconds,
            format: AudioFormat::Mp3,
            revision: Some(revision),
            chapters: timeline.as_ref().map(|t| t.chapters.len() as u32),
            timings_ref,
            synthesis: Some(totals(&speech, &state, fallback)),
        };
        let done = execute(&*ports.events, id, Command::Complete(completed), &ports.meta(id, None)).await?;
        let recorded = done
            .state
            .completed
            .as_ref()
            .ok_or_else(|| StepError::new(ErrorKind::Internal, "not completed"))?;
        Ok(recorded.into())
    }
}

/// What the revision synthesized and reused: the chunks' synthesis, plus any unit stitching
/// had to make again (its stored audio had expired), against every unit of the speech.
fn totals(speech: &Speech, state: &Conversion, fallback: SynthesisTotals) -> SynthesisTotals {
    let units = speech.units.len() as u32;
    let characters = speech.billed_chars();
    let synthesized = state.chunks.values().fold(fallback, |t, c| {
        t.plus(SynthesisTotals {
            units_synthesized: c.units_synthesized,
            characters_synthesized: c.characters_synthesized,
            ..SynthesisTotals::default()
        })
    });
    SynthesisTotals {
        units,
        units_synthesized: synthesized.units_synthesized.min(units),
        units_reused: units.saturating_sub(synthesized.units_synthesized),
        characters_synthesized: synthesized.characters_synthesized.min(characters),
        characters_reused: characters.saturating_sub(synthesized.characters_synthesized),
    }
}

/// The units' audio, in order, joined; the timeline of their sentences; and what had to be
/// synthesized again because its stored audio was gone.
async fn join_units(
    ports: &StepPorts,
    speech: &Speech,
    state: &Conversion,
) -> Result<(crate::stitch::Stitched, Timeline, SynthesisTotals), StepError> {
    let spec = speech
        .voice_spec()
        .ok_or_else(|| StepError::new(ErrorKind::Internal, "the speech names no voice"))?;
    let spec = &spec;
    // A key spoken twice is read (or, if gone, made) once.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    let distinct: Vec<&Unit> =
        speech.units.iter().filter(|u| first_of.insert(u.key.as_str(), first_of.len()).is_none()).collect();
    // Boxed: the futures borrow the ports and units, and async_trait needs the step's future to
    // be Send for every lifetime, which an unboxed stream of borrowing closures cannot show.
    let reads: Vec<futures::future::BoxFuture<'_, Result<UnitAudio, StepError>>> =
        distinct.into_iter().map(|unit| Box::pin(unit_audio(ports, unit, spec)) as _).collect();
    let fetched: Vec<Result<UnitAudio, StepError>> =
        futures::stream::iter(reads).buffered(OBJECT_CONCURRENCY).collect().await;
    let fetched: Vec<UnitAudio> = fetched.into_iter().collect::<Result<_, _>>()?;
    let mut fallback = SynthesisTotals::default();
    for (unit, audio) in speech.units.iter().zip(&fetched) {
        if audio.synthesized {
            tracing::warn!(conversion_id = %state.id().map(ConversionId::as_str).unwrap_or(""), unit = unit.index, "stored unit audio was gone: synthesized again");
            fallback.units_synthesized += 1;
            fallback.characters_synthesized += unit.billed_chars as u64;
        }
    }
    let parts: Vec<&Bytes> = speech.units.iter().map(|u| &fetched[first_of[u.key.as_str()]].bytes).collect();
    let joined = stitch(&parts)?;
    let mut samples = 0u64;
    let rate = f64::from(joined.info.sample_rate);
    let mut segments = Vec::with_capacity(speech.units.len());
    for (unit, part) in speech.units.iter().zip(&parts) {
        let info = inspect(part)?;
        let start = samples as f64 / rate;
        samples += info.samples;
        segments.push(Segment {
            start,
            end: samples as f64 / rate,
            text: unit.text.clone(),
            block: unit.block,
        });
    }
    if samples != joined.info.samples {
        return Err(StepError::new(
            ErrorKind::Internal,
            format!("the units hold {samples} samples but the joined audio {}", joined.info.samples),
        ));
    }
    let mut timeline = Timeline {
        duration_seconds: joined.info.duration_seconds,
        language: speech.language.clone(),
        chapters: Vec::new(),
        segments,
        blocks: speech.blocks.clone(),
    };
    timeline.chapters = timeline.chapters_from_headings(state.article.as_ref().map(|a| a.title.as_str()));
    timeline.validate().map_err(|e| StepError::new(ErrorKind::Internal, format!("the timeline: {e}")))?;
    Ok((joined, timeline, fallback))
}

/// The chunks' own MP3s joined, for a speech prepared before units existed.
async fn join_legacy_chunks(
    ports: &StepPorts,
    state: &Conversion,
) -> Result<crate::stitch::Stitched, StepError> {
    let mut parts = Vec::with_capacity(state.chunks.len());
    for chunk in state.chunks.values() {
        let key = chunk.audio_ref.as_ref().ok_or_else(|| {
            StepError::new(ErrorKind::Internal, format!("chunk {} has no audio of its own", chunk.index))
        })?;
        parts.push(ports.objects.get(key).await?);
    }
    Ok(stitch(&parts)?)
}

// ---------------------------------------------------------------------------------------------

/// The input of [`RecordFailure`]: the whole state data of the execution (with the caught error
/// under `failed.<state>`) and the execution's redrive count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordFailureInput {
    pub state: Value,
    #[serde(default)]
    pub redrive_count: u32,
    pub execution_id: String,
}

/// The state data key a resumed execution carries: the redrive count it resumed at.
pub const RESUMED_AT: &str = "resumed_at_redrive";

/// Record the failure the workflow caught, then fail the execution with
/// `Lector.ConversionFailed`. Run again by a redrive, it returns the state data with `resume`
/// naming the state that failed, so the execution picks up there.
///
/// Telling the two apart: the state data carries the redrive count at which it last resumed
/// (0 from the start). A failure reached in the same run sees that count equal to the
/// execution's; a redrive has raised the execution's count above it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordFailure;

#[async_trait]
impl Step for RecordFailure {
    const STATE: &'static str = "RecordFailure";
    const FUNCTION: &'static str = "record-failure";
    const SUBSTITUTION: &'static str = "RecordFailureFunctionArn";
    type Input = RecordFailureInput;
    type Output = Value;

    async fn run(&self, ports: &StepPorts, input: RecordFailureInput) -> Result<Value, StepError> {
        let data: ConversionRef = serde_json::from_value(input.state.clone())
            .map_err(|e| StepError::new(ErrorKind::InvalidInput, format!("RecordFailure state: {e}")))?;
        let id = &data.conversion_id;
        let (failed_state, error, cause) = caught(&input.state)?;
        let resumed_at = input.state.get(RESUMED_AT).and_then(Value::as_u64).unwrap_or(0);
        let meta = ports.meta(id, Some(&input.execution_id));
        if u64::from(input.redrive_count) > resumed_at {
            // A redrive: make sure the log says so, then go back to the state that failed.
            let (_, state) = load(&*ports.events, id).await?;
            if state.phase == Phase::Failed {
                let retry = Command::Retry {
                    how: RetryMethod::Redrive,
                    by: "step-functions".into(),
                    reason: Some("execution redriven".into()),
                };
                execute(&*ports.events, id, retry, &meta).await?;
            }
            let mut resumed = input.state.clone();
            if let Value::Object(map) = &mut resumed {
                map.remove("failed");
                map.insert("resume".into(), Value::String(failed_state));
                map.insert(RESUMED_AT.into(), Value::from(input.redrive_count));
            }
            return Ok(resumed);
        }
        let failure = ConversionFailed {
            attempt: data.attempt,
            state: failed_state.clone(),
            error: error.clone(),
            cause: cause.clone(),
        };
        if let Err(e) = execute(&*ports.events, id, Command::Fail(failure), &meta).await {
            let e = StepError::from(e);
            // Completed or moved on: there is nothing to mark as failed, but this run still failed.
            if e.kind != ErrorKind::Superseded {
                return Err(e);
            }
        }
        Err(StepError::new(
            ErrorKind::ConversionFailed,
            format!("{failed_state} failed with {error}: {cause}"),
        ))
    }
}

/// The state, error and cause the workflow caught, from `failed.<state>: {Error, Cause}`.
fn caught(state: &Value) -> Result<(String, String, String), StepError> {
    let failed =
        state.get("failed").and_then(Value::as_object).and_then(|m| m.iter().next()).ok_or_else(|| {
            StepError::new(ErrorKind::InvalidInput, "RecordFailure needs failed.<state> in its input")
        })?;
    let (name, detail) = failed;
    let field = |k: &str| detail.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    Ok((name.clone(), field("Error"), field("Cause")))
}

// ---------------------------------------------------------------------------------------------

/// The event types that start a workflow execution: a request, and a revision.
pub const STARTING_EVENTS: [&str; 2] = ["ConversionRequested", "ConversionRevisionRequested"];

/// Start the workflow for a requested conversion or revision: the rule that connects
/// `ConversionRequested` and `ConversionRevisionRequested` on the bus to the state machine.
/// The execution is named after the conversion, revision and attempt, so a repeated delivery
/// starts nothing new.
pub async fn start_requested(
    workflows: &dyn Workflows,
    event: &RecordedEvent,
) -> Result<Option<String>, StepError> {
    if !STARTING_EVENTS.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let id = event.stream_id.conversion_id().ok_or_else(|| {
        StepError::new(ErrorKind::InvalidInput, format!("{} is not a conversion stream", event.stream_id))
    })?;
    let (revision, attempt) = match event.decode() {
        Ok(lector_core::ConversionEvent::ConversionRevisionRequested(r)) => (r.revision, r.attempt),
        Ok(_) => (1, 1),
        Err(e) => return Err(StepError::new(ErrorKind::InvalidInput, e.to_string())),
    };
    let name = id.revision_execution_name(revision, attempt);
    match workflows.start(&name, &ConversionRef::workflow_input(&id, attempt)).await {
        Ok(execution) => Ok(Some(execution)),
        Err(e) if e.is_transient() => Err(StepError::new(ErrorKind::Transient, e.to_string())),
        Err(lector_core::ports::WorkflowError::AlreadyExists(_)) => Ok(None),
        Err(e) => Err(StepError::new(ErrorKind::Internal, e.to_string())),
    }
}
