//! The workflow's steps: one type per Task state of `statemachines/conversion.asl.json`, each
//! with a stable state name, function name and `DefinitionSubstitutions` key, a typed input and
//! output, and an async `run` over the ports. The Lambda binaries and the local engine call the
//! very same `run` through [`invoke`]; only the adapters in [`StepPorts`] differ.
//!
//! Every step is idempotent: it reads the conversion's stream first and returns what is already
//! recorded instead of doing the work again, so a retried Lambda, a redriven execution or a
//! Map iteration that runs twice appends nothing twice and synthesizes nothing twice.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::conversion::{Command, Conversion, Phase};
use lector_core::event::{
    ArticleFetched, ArticleSource, AudioFormat, ChunkSynthesized, ConversionCompleted, ConversionFailed,
    ConversionStarted, RetryMethod, SpeechPrepared,
};
use lector_core::ports::{Clock, ObjectStore, Voice, VoiceSpec, Workflows};
use lector_core::service::{execute, load};
use lector_core::{ConversionId, ErrorKind, EventMeta, EventStore, ObjectKey, RecordedEvent, StepError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::article::{Article, extract_article};
use crate::fetch::{Fetcher, Resource, decode_html};
use crate::speech::{Speech, prepare};
use crate::stitch::{inspect, stitch};

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
}

impl std::fmt::Debug for StepPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepPorts").finish_non_exhaustive()
    }
}

impl StepPorts {
    fn fetcher(&self, state: &str) -> Result<&Fetcher, StepError> {
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

fn voice_spec(state: &Conversion) -> Result<VoiceSpec, StepError> {
    let request = request_of(state)?;
    Ok(VoiceSpec {
        voice: request.voice.clone(),
        engine: request.engine,
        language: state.article.as_ref().and_then(|a| a.language.clone()),
    })
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
        let (article, source) = match &request.content_ref {
            Some(key) => {
                let html = ports.objects.get(key).await?;
                let html = String::from_utf8_lossy(&html);
                (Article::from_feed_content(&html, request.title.as_deref(), None)?, ArticleSource::Feed)
            }
            None => {
                let fetched =
                    ports.fetcher(Self::STATE)?.fetch(request.post_url.as_str(), Resource::Page).await?;
                let html = decode_html(&fetched.body, fetched.charset.as_deref());
                let mut article = extract_article(&html, Some(&fetched.url))?;
                if article.title.trim().is_empty() {
                    article.title = request.title.clone().unwrap_or_else(|| fetched.url.to_string());
                }
                (article, ArticleSource::Page)
            }
        };
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

/// What [`PrepareSpeech`] made: the chunk count and the indices the Map iterates over.
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

/// Turn the article into narration cut into SSML chunks within the voice's limits; store the
/// chunks and append `SpeechPrepared`.
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
        let engine = request_of(&state)?.engine;
        let speech = prepare(&article.document, article.language.as_deref(), ports.voice.limits(engine))?;
        let chunks_ref = ObjectKey::speech_chunks(id, input.attempt);
        ports.objects.put(&chunks_ref, Bytes::from(speech.to_json()), "application/json").await?;
        let prepared = SpeechPrepared {
            attempt: input.attempt,
            chunks: speech.chunks.len() as u32,
            characters: speech.billed_chars(),
            chunks_ref,
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

// ---------------------------------------------------------------------------------------------

/// The input of [`SynthesizeChunk`]: one Map item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthesizeChunkInput {
    pub conversion_id: ConversionId,
    pub attempt: u32,
    pub index: u32,
}

/// One chunk's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthesizeChunkOutput {
    pub index: u32,
    pub audio_ref: ObjectKey,
    pub duration_seconds: f64,
    /// Whether the voice was called (false when the audio was already there).
    pub synthesized: bool,
}

/// Synthesize one chunk unless its audio is already recorded or stored; store it and append
/// `ChunkSynthesized`.
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
            return Ok(SynthesizeChunkOutput {
                index: chunk.index,
                audio_ref: chunk.audio_ref.clone(),
                duration_seconds: chunk.duration_seconds,
                synthesized: false,
            });
        }
        let prepared = state
            .speech
            .as_ref()
            .ok_or_else(|| StepError::new(ErrorKind::Internal, "SynthesizeChunk ran before PrepareSpeech"))?;
        let speech = Speech::from_json(&ports.objects.get(&prepared.chunks_ref).await?)?;
        let chunk = speech.chunks.get(input.index as usize).ok_or_else(|| {
            StepError::new(
                ErrorKind::InvalidInput,
                format!("chunk {} of {}", input.index, speech.chunks.len()),
            )
        })?;
        let spec = voice_spec(&state)?;
        // Keyed by what is spoken: audio made before (by a run that failed before recording it)
        // is used as it is, and a second synthesis would overwrite the same object.
        let audio_ref = ObjectKey::chunk_audio(id, &chunk.content_hash(&spec));
        let (audio, synthesized) = match ports.objects.head(&audio_ref).await? {
            Some(meta) if meta.size > 0 => (ports.objects.get(&audio_ref).await?, false),
            _ => {
                let audio = ports.voice.synthesize(&chunk.ssml, &spec).await?;
                ports.objects.put(&audio_ref, audio.clone(), "audio/mpeg").await?;
                (audio, true)
            }
        };
        let info = inspect(&audio)?;
        let record = ChunkSynthesized {
            attempt: input.attempt,
            index: input.index,
            audio_ref: audio_ref.clone(),
            bytes: audio.len() as u64,
            duration_seconds: info.duration_seconds,
        };
        execute(&*ports.events, id, Command::RecordChunk(record), &ports.meta(id, None)).await?;
        Ok(SynthesizeChunkOutput {
            index: input.index,
            audio_ref,
            duration_seconds: info.duration_seconds,
            synthesized,
        })
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

/// Join the chunks' frames into one MP3, store it and append `ConversionCompleted`.
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
        if !missing.is_empty() || state.chunks.is_empty() {
            return Err(StepError::new(ErrorKind::Internal, format!("chunks {missing:?} have no audio yet")));
        }
        let mut parts = Vec::with_capacity(state.chunks.len());
        for chunk in state.chunks.values() {
            parts.push(ports.objects.get(&chunk.audio_ref).await?);
        }
        let joined = stitch(&parts)?;
        drop(parts);
        let audio_ref = ObjectKey::audio(id);
        let bytes = joined.bytes.len() as u64;
        ports.objects.put(&audio_ref, Bytes::from(joined.bytes), AudioFormat::Mp3.content_type()).await?;
        let completed = ConversionCompleted {
            attempt: input.attempt,
            audio_ref,
            bytes,
            duration_seconds: joined.info.duration_seconds,
            format: AudioFormat::Mp3,
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

/// Start the workflow for a requested conversion: the rule that connects `ConversionRequested`
/// on the bus to the state machine. The execution is named after the conversion and attempt, so
/// a repeated delivery starts nothing new.
pub async fn start_requested(
    workflows: &dyn Workflows,
    event: &RecordedEvent,
) -> Result<Option<String>, StepError> {
    if event.event_type != "ConversionRequested" {
        return Ok(None);
    }
    let id = event.stream_id.conversion_id().ok_or_else(|| {
        StepError::new(ErrorKind::InvalidInput, format!("{} is not a conversion stream", event.stream_id))
    })?;
    let name = id.execution_name(1);
    match workflows.start(&name, &ConversionRef::workflow_input(&id, 1)).await {
        Ok(execution) => Ok(Some(execution)),
        Err(e) if e.is_transient() => Err(StepError::new(ErrorKind::Transient, e.to_string())),
        Err(lector_core::ports::WorkflowError::AlreadyExists(_)) => Ok(None),
        Err(e) => Err(StepError::new(ErrorKind::Internal, e.to_string())),
    }
}
