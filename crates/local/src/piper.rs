//! The Piper voice: Piper's VITS voices (`*.onnx` + `*.onnx.json`) run in-process with ONNX
//! Runtime, a sentence per inference, on phonemes from espeak-ng (see [`crate::phonemes`]); the
//! samples are encoded to CBR MP3 like the espeak-ng voice's.
//!
//! ONNX Runtime is not linked: `libonnxruntime.so` is loaded at run time from a path (the PyPI
//! wheel's library, which `scripts/tools.sh piper` puts in `.tools/piper/lib`). Voices are read
//! from folders: every `NAME.onnx` with a `NAME.onnx.json` beside it is a voice named `NAME`; an
//! optional `NAME.lector.json` (`{"gender": ..., "licence": ...}`) says what the voice's own
//! files do not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId, VoiceInfo};
use ort::session::{RunOptions, Session};
use ort::value::Tensor;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, Semaphore};
use unicode_normalization::UnicodeNormalization;

use crate::mp3::{Kbps, encode_mono};
use crate::phonemes::{EspeakPhonemizer, PhonemizeError, Piece, plan, sentence_ipa};
use crate::ssml;

/// The most phoneme ids one inference is given; a longer sentence is cut at a word boundary.
/// About 150 phonemes, seven seconds of speech: an inference's memory grows with its length (the
/// decoder's layers hold the whole utterance; at 400 ids one long sentence took a session's
/// peak from about 420 to 590 MB), and most sentences are shorter.
pub const MAX_IDS: usize = 300;

/// Why the Piper voice cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiperError {
    /// No ONNX Runtime library at the path.
    #[error(
        "ONNX Runtime is not installed at {path}: run `scripts/tools.sh piper` (or point LECTOR_ONNXRUNTIME at a libonnxruntime.so of version 1.17 or newer)"
    )]
    RuntimeMissing { path: String },
    /// The library is there but does not load (another version, another machine).
    #[error("ONNX Runtime at {path} does not load: {reason}")]
    Runtime { path: String, reason: String },
    /// ONNX Runtime was loaded from another file earlier in this process; only one can be.
    #[error("ONNX Runtime is already loaded from {loaded}; it cannot also be loaded from {asked}")]
    RuntimeConflict { loaded: String, asked: String },
    /// No voice in the folders.
    #[error(
        "no Piper voice (NAME.onnx with NAME.onnx.json) in {dirs}: run `scripts/tools.sh piper`, or put a voice in one of these folders"
    )]
    NoVoices { dirs: String },
    /// A voice's files do not read.
    #[error("Piper voice {path}: {reason}")]
    BadVoice { path: String, reason: String },
    /// The model failed to load or to run.
    #[error("Piper model {voice}: {reason}")]
    Model { voice: String, reason: String },
}

impl From<PiperError> for VoiceError {
    fn from(e: PiperError) -> Self {
        match e {
            // Retrying cannot install anything or mend a file.
            PiperError::RuntimeMissing { .. }
            | PiperError::Runtime { .. }
            | PiperError::RuntimeConflict { .. }
            | PiperError::NoVoices { .. }
            | PiperError::BadVoice { .. } => VoiceError::UnsupportedVoice(e.to_string()),
            PiperError::Model { .. } => VoiceError::Refused(e.to_string()),
        }
    }
}

impl From<PhonemizeError> for VoiceError {
    fn from(e: PhonemizeError) -> Self {
        match e {
            PhonemizeError::NotInstalled { .. } | PhonemizeError::UnknownVoice(_) => {
                VoiceError::UnsupportedVoice(e.to_string())
            }
            PhonemizeError::TimedOut(_) => VoiceError::Unavailable(e.to_string()),
            PhonemizeError::Failed(_) => VoiceError::Refused(e.to_string()),
        }
    }
}

/// How the Piper voice speaks and runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PiperOptions {
    /// The voice's variation of sound (`None`: the voice's own, from its `.onnx.json`). 0 makes
    /// the output the same on every run.
    pub noise_scale: Option<f32>,
    /// The variation of phoneme lengths (`None`: the voice's own); 0 for the same output.
    pub noise_w: Option<f32>,
    /// Speaking time: above 1 is slower (`None`: the voice's own).
    pub length_scale: Option<f32>,
    /// Silence after each sentence.
    pub sentence_silence: Duration,
    /// Inferences of one voice that may run at once, each with its own session (and memory).
    pub sessions: usize,
    /// Threads of one inference.
    pub threads: usize,
    pub bitrate: Kbps,
}

impl Default for PiperOptions {
    fn default() -> Self {
        Self {
            noise_scale: None,
            noise_w: None,
            length_scale: None,
            sentence_silence: Duration::from_millis(200),
            sessions: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            threads: 1,
            bitrate: Kbps::SPEECH,
        }
    }
}

impl PiperOptions {
    /// Noise scales at 0: the same SSML always gives the same samples (for tests).
    pub fn deterministic(mut self) -> Self {
        self.noise_scale = Some(0.0);
        self.noise_w = Some(0.0);
        self
    }
}

/// A voice's `.onnx.json`, the parts Lector reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PiperConfig {
    pub audio: AudioConfig,
    #[serde(default)]
    pub espeak: Option<EspeakConfig>,
    #[serde(default)]
    pub inference: InferenceConfig,
    #[serde(default)]
    pub phoneme_type: Option<String>,
    /// Phonemes replaced by others before they become ids (usually empty).
    #[serde(default)]
    pub phoneme_map: HashMap<String, Vec<String>>,
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    pub num_speakers: u32,
    #[serde(default)]
    pub language: Option<LanguageConfig>,
    #[serde(default)]
    pub dataset: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    pub sample_rate: u32,
    #[serde(default)]
    pub quality: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    pub voice: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct InferenceConfig {
    #[serde(default = "default_noise_scale")]
    pub noise_scale: f32,
    #[serde(default = "default_length_scale")]
    pub length_scale: f32,
    #[serde(default = "default_noise_w")]
    pub noise_w: f32,
}

fn default_noise_scale() -> f32 {
    0.667
}
fn default_length_scale() -> f32 {
    1.0
}
fn default_noise_w() -> f32 {
    0.8
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            noise_scale: default_noise_scale(),
            length_scale: default_length_scale(),
            noise_w: default_noise_w(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct LanguageConfig {
    pub code: String,
}

/// `NAME.lector.json`: what a voice's own files do not say.
#[derive(Debug, Clone, Default, Deserialize)]
struct VoiceNotes {
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    licence: Option<String>,
}

/// The phoneme ids of a voice: one id list per phoneme (a Unicode scalar, after NFD).
#[derive(Debug, Clone)]
pub struct PhonemeIds {
    ids: HashMap<char, Vec<i64>>,
    map: HashMap<char, Vec<char>>,
    pad: Vec<i64>,
    bos: Vec<i64>,
    eos: Vec<i64>,
    space: Vec<i64>,
}

impl PhonemeIds {
    pub fn from_config(config: &PiperConfig) -> Result<Self, String> {
        let single = |s: &str| {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        let ids: HashMap<char, Vec<i64>> =
            config.phoneme_id_map.iter().filter_map(|(k, v)| Some((single(k)?, v.clone()))).collect();
        let map = config
            .phoneme_map
            .iter()
            .filter_map(|(k, v)| Some((single(k)?, v.iter().filter_map(|p| single(p)).collect())))
            .collect();
        let get = |c: char| ids.get(&c).cloned().ok_or_else(|| format!("its phoneme_id_map has no '{c}'"));
        Ok(Self { pad: get('_')?, bos: get('^')?, eos: get('$')?, space: get(' ')?, map, ids })
    }

    /// The phonemes of `ipa` this voice does not know (after NFD and its phoneme map).
    pub fn unknown(&self, ipa: &str) -> Vec<char> {
        let mut unknown: Vec<char> = self.phonemes(ipa).filter(|c| !self.ids.contains_key(c)).collect();
        unknown.dedup();
        unknown
    }

    fn phonemes<'a>(&'a self, ipa: &'a str) -> impl Iterator<Item = char> + 'a {
        ipa.nfd().flat_map(move |c| match self.map.get(&c) {
            Some(mapped) => mapped.clone(),
            None => vec![c],
        })
    }

    /// The ids of one sentence's IPA, as Piper writes them: `^`, each phoneme followed by the
    /// pad `_`, then `$`. Phonemes the voice does not know are left out. A sentence longer than
    /// [`MAX_IDS`] is cut into several, at spaces where it can be.
    pub fn sentence_ids(&self, ipa: &str) -> Vec<Vec<i64>> {
        let phonemes: Vec<&Vec<i64>> = self.phonemes(ipa).filter_map(|c| self.ids.get(&c)).collect();
        let budget = MAX_IDS.saturating_sub(self.bos.len() + self.pad.len() + self.eos.len()).max(2);
        let mut out = Vec::new();
        let mut start = 0;
        while start < phonemes.len() {
            let mut end = start;
            let mut len = 0;
            let mut last_space = None;
            while end < phonemes.len() {
                let add = phonemes[end].len() + self.pad.len();
                if len + add > budget && end > start {
                    break;
                }
                if *phonemes[end] == self.space && end > start {
                    last_space = Some(end);
                }
                len += add;
                end += 1;
            }
            if end < phonemes.len()
                && let Some(space) = last_space
            {
                end = space + 1;
            }
            let mut ids = self.bos.clone();
            ids.extend(&self.pad);
            for p in &phonemes[start..end] {
                ids.extend(p.iter());
                ids.extend(&self.pad);
            }
            ids.extend(&self.eos);
            out.push(ids);
            start = end;
        }
        out
    }
}

/// ONNX Runtime, loaded once per process.
struct Runtime {
    path: PathBuf,
    env: ort::environment::Environment,
    version: String,
}

static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

fn runtime(path: &Path) -> Result<Arc<Runtime>, PiperError> {
    let mut loaded = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = loaded.as_ref() {
        if rt.path == path {
            return Ok(rt.clone());
        }
        return Err(PiperError::RuntimeConflict {
            loaded: rt.path.display().to_string(),
            asked: path.display().to_string(),
        });
    }
    if !path.is_file() {
        return Err(PiperError::RuntimeMissing { path: path.display().to_string() });
    }
    let fail = |reason: String| PiperError::Runtime { path: path.display().to_string(), reason };
    let env = ort::init_from(path)
        .map_err(|e| fail(e.to_string()))?
        .with_name("lector-piper")
        .with_telemetry(false)
        .build()
        .map_err(|e| fail(e.to_string()))?;
    // "ORT Build Info: git-branch=rel-1.32.0, git-commit-id=..., build type=Release, ...".
    let info = ort::info();
    let version = info
        .split(", ")
        .filter(|part| part.contains("git-branch") || part.contains("git-commit-id"))
        .collect::<Vec<_>>()
        .join(", ");
    let version = if version.is_empty() { info.chars().take(120).collect() } else { version };
    unmap_large_frees();
    let rt = Arc::new(Runtime { path: path.to_path_buf(), env, version: format!("onnxruntime {version}") });
    *loaded = Some(rt.clone());
    Ok(rt)
}

/// Makes glibc give every block of 1 MiB or more a mapping of its own, unmapped when it is freed.
///
/// glibc starts that threshold at 128 KiB but raises it, up to 32 MiB, each time such a block is
/// freed; after the first inference the regions of ONNX Runtime's arena came from the heap of the
/// thread that ran it and stayed there, so shrinking the arena after an inference gave nothing
/// back (664 MB over 2,000 words with two sessions). Over 10,000 words with two sessions: 527
/// and 531 MB peak RSS with the threshold fixed and the arena shrunk after each inference, 618 MB
/// with the arena kept for the session's life, 680 to 760 MB with no arena. The setting is the
/// process's; other allocators than glibc's return large blocks themselves.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn unmap_large_frees() {
    // SAFETY: mallopt takes no pointers; glibc takes its allocator's lock to change the setting.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn unmap_large_frees() {}

/// Sessions of one model, made as they are needed, at most `permits` at once.
struct SessionPool {
    voice: String,
    model: PathBuf,
    threads: usize,
    runtime: Arc<Runtime>,
    workers: Workers,
    permits: Arc<Semaphore>,
}

/// An inference, run on one of the pool's threads with that thread's session (`None` until the
/// thread's first inference makes it).
type Job = Box<dyn FnOnce(&mut Option<Session>) + Send>;

/// The threads that run a voice's inferences, one session each, started as inferences come to
/// overlap (at most the pool's permits). An inference's memory is then allocated and freed by
/// the thread that holds its session, in that thread's malloc arena, rather than by whichever
/// of the runtime's blocking threads ran it, each of which kept the peak of the inferences it
/// had run: one session's peak RSS over 2,000 words went from 732 MB to about 560 MB.
struct Workers {
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
    queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
    started: Mutex<usize>,
    busy: std::sync::atomic::AtomicUsize,
}

impl Workers {
    fn new() -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        Self {
            jobs: Mutex::new(jobs),
            queue: Arc::new(Mutex::new(queue)),
            started: Mutex::new(0),
            busy: Default::default(),
        }
    }

    /// Queue `job`, starting one more thread when every thread is busy; the job counts as busy
    /// until the guard returned is dropped. The threads end when the pool is dropped (the queue
    /// closes).
    fn submit(&self, voice: &str, job: Job) -> Result<Busy<'_>, VoiceError> {
        let busy = self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let guard = Busy(self);
        {
            let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
            if *started < busy {
                let queue = self.queue.clone();
                std::thread::Builder::new()
                    .name(format!("piper-{voice}-{started}"))
                    .spawn(move || {
                        let mut session = None;
                        loop {
                            let job = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(job) = job else { return };
                            // A panic loses this inference (its caller hears so) and the
                            // session, not the thread.
                            let ran =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut session)));
                            if ran.is_err() {
                                session = None;
                            }
                        }
                    })
                    .map_err(|e| VoiceError::Unavailable(format!("no thread for the Piper voice: {e}")))?;
                *started += 1;
            }
        }
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| VoiceError::Unavailable("the Piper voice was shut down".into()))?;
        Ok(guard)
    }
}

/// A job of [`Workers`] not yet answered (or given up by its caller).
struct Busy<'a>(&'a Workers);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl SessionPool {
    fn build(&self) -> Result<Session, PiperError> {
        let fail = |reason: String| PiperError::Model { voice: self.voice.clone(), reason };
        Session::builder(&self.runtime.env)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(self.threads)
            .map_err(|e| fail(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| fail(e.to_string()))?
            // Every sentence has its own length: a memory plan sized for the longest one would
            // keep its peak for the life of the session.
            .with_memory_pattern(false)
            .map_err(|e| fail(e.to_string()))?
            // An arena reuses its memory within an inference (without one, freed tensors left
            // the heap in pieces: 680 to 760 MB over 10,000 words with two sessions, against
            // 618 MB with an arena kept whole); `infer` shrinks it after each inference, and
            // [`unmap_large_frees`] makes what it frees go back to the system.
            .with_execution_providers([ort::ep::CPU::default().with_arena_allocator(true).build()])
            .map_err(|e| fail(e.to_string()))?
            .commit_from_file(&self.model)
            .map_err(|e| fail(e.to_string()))
    }

    /// Runs `work` on a session of its own, off the async threads.
    async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Session) -> Result<R, PiperError> + Send + 'static,
    ) -> Result<R, VoiceError> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| VoiceError::Unavailable("the Piper voice was shut down".into()))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pool = self.clone();
        let job: Job = Box::new(move |slot: &mut Option<Session>| {
            let result = match slot {
                Some(session) => work(session),
                None => pool.build().and_then(|session| work(slot.insert(session))),
            };
            let _ = tx.send(result);
        });
        let _busy = self.workers.submit(&self.voice, job)?;
        rx.await
            .map_err(|_| VoiceError::Unavailable("the Piper inference was interrupted".into()))?
            .map_err(VoiceError::from)
    }
}

/// One voice found in a folder.
#[derive(Debug, Clone)]
pub struct FoundVoice {
    pub info: VoiceInfo,
    pub model: PathBuf,
    pub config_path: PathBuf,
    pub config: Arc<PiperConfig>,
}

impl FoundVoice {
    /// The espeak-ng voice its phonemes come from.
    pub fn espeak_voice(&self) -> &str {
        self.config.espeak.as_ref().map_or("en-us", |e| e.voice.as_str())
    }
}

/// Reads the voice whose model is `model` (`NAME.onnx`).
pub fn read_voice(model: &Path) -> Result<FoundVoice, PiperError> {
    let bad = |reason: String| PiperError::BadVoice { path: model.display().to_string(), reason };
    let name = model
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".onnx"))
        .ok_or_else(|| bad("not a NAME.onnx file".into()))?;
    let config_path = model.with_file_name(format!("{name}.onnx.json"));
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| bad(format!("{}: {e}", config_path.display())))?;
    let config: PiperConfig =
        serde_json::from_str(&text).map_err(|e| bad(format!("{}: {e}", config_path.display())))?;
    if let Some(kind) = config.phoneme_type.as_deref().filter(|k| *k != "espeak") {
        return Err(bad(format!("phoneme_type '{kind}' is not supported (only espeak)")));
    }
    PhonemeIds::from_config(&config).map_err(bad)?;
    let notes_path = model.with_file_name(format!("{name}.lector.json"));
    let notes: VoiceNotes = match std::fs::read_to_string(&notes_path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| bad(format!("{}: {e}", notes_path.display())))?,
        Err(_) => VoiceNotes::default(),
    };
    let language = match (&config.language, &config.espeak) {
        (Some(l), _) => bcp47(&l.code),
        (None, Some(e)) => bcp47(&e.voice),
        (None, None) => "und".to_owned(),
    };
    let title = config.dataset.as_deref().map(|d| {
        let mut chars = d.chars();
        let first = chars.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
        first + chars.as_str()
    });
    let display = match (title, config.audio.quality.as_deref()) {
        (Some(t), Some(q)) => format!("{t} ({q})"),
        (Some(t), None) => t,
        (None, _) => name.to_owned(),
    };
    Ok(FoundVoice {
        info: VoiceInfo {
            id: VoiceId::new(name),
            name: display,
            language,
            gender: notes.gender,
            engines: vec![VoiceEngine::Piper],
            licence: notes.licence,
        },
        model: model.to_path_buf(),
        config_path,
        config: Arc::new(config),
    })
}

/// `en_US` → `en-US`, `en-us` → `en-US`: BCP 47's hyphen, the region in capitals.
fn bcp47(code: &str) -> String {
    code.split(['_', '-'])
        .enumerate()
        .map(|(i, part)| if i == 1 && part.len() == 2 { part.to_ascii_uppercase() } else { part.to_owned() })
        .collect::<Vec<_>>()
        .join("-")
}

/// Every voice in `dirs`, by name; a name found twice is the first folder's. Voices whose files
/// do not read are left out with a warning.
pub fn find_voices(dirs: &[PathBuf]) -> Vec<FoundVoice> {
    let mut found: Vec<FoundVoice> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut models: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "onnx") && p.is_file())
            .collect();
        models.sort();
        for model in models {
            match read_voice(&model) {
                Ok(voice) if !found.iter().any(|f| f.info.id == voice.info.id) => found.push(voice),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping a Piper voice"),
            }
        }
    }
    found
}

/// A voice ready to speak: its files read, its sessions made as they are needed.
struct LoadedVoice {
    found: FoundVoice,
    ids: PhonemeIds,
    pool: Arc<SessionPool>,
    fingerprint: OnceCell<String>,
}

/// [`Voice`] on Piper voices.
pub struct PiperVoice {
    runtime: Arc<Runtime>,
    dirs: Vec<PathBuf>,
    options: PiperOptions,
    phonemizer: EspeakPhonemizer,
    loaded: Mutex<HashMap<VoiceId, Arc<LoadedVoice>>>,
    espeak_version: OnceCell<String>,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice")
            .field("runtime", &self.runtime.path)
            .field("dirs", &self.dirs)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PiperVoice {
    /// Loads ONNX Runtime from `runtime` and offers the voices of `dirs`; fails when the
    /// library does not load or no folder has a voice.
    pub fn open(runtime_path: &Path, dirs: Vec<PathBuf>, options: PiperOptions) -> Result<Self, PiperError> {
        if find_voices(&dirs).is_empty() {
            return Err(PiperError::NoVoices {
                dirs: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            });
        }
        let runtime = runtime(runtime_path)?;
        Ok(Self {
            runtime,
            dirs,
            options,
            phonemizer: EspeakPhonemizer::default(),
            loaded: Mutex::new(HashMap::new()),
            espeak_version: OnceCell::new(),
        })
    }

    /// Another espeak-ng for phonemes (a test points it at one that does not exist).
    pub fn with_phonemizer(mut self, phonemizer: EspeakPhonemizer) -> Self {
        self.phonemizer = phonemizer;
        self
    }

    pub fn options(&self) -> &PiperOptions {
        &self.options
    }

    /// The ONNX Runtime version in use.
    pub fn runtime_version(&self) -> &str {
        &self.runtime.version
    }

    fn voice(&self, id: &VoiceId) -> Result<Arc<LoadedVoice>, VoiceError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(voice) = loaded.get(id) {
            return Ok(voice.clone());
        }
        let found = find_voices(&self.dirs).into_iter().find(|v| &v.info.id == id).ok_or_else(|| {
            VoiceError::UnsupportedVoice(format!("there is no Piper voice '{id}' (see the voice list)"))
        })?;
        let ids = PhonemeIds::from_config(&found.config).map_err(|reason| {
            VoiceError::from(PiperError::BadVoice { path: found.model.display().to_string(), reason })
        })?;
        let pool = Arc::new(SessionPool {
            voice: id.to_string(),
            model: found.model.clone(),
            threads: self.options.threads.max(1),
            runtime: self.runtime.clone(),
            workers: Workers::new(),
            permits: Arc::new(Semaphore::new(self.options.sessions.max(1))),
        });
        let voice = Arc::new(LoadedVoice { found, ids, pool, fingerprint: OnceCell::new() });
        loaded.insert(id.clone(), voice.clone());
        Ok(voice)
    }

    fn scales(&self, config: &PiperConfig) -> [f32; 3] {
        let own = config.inference;
        [
            self.options.noise_scale.unwrap_or(own.noise_scale),
            self.options.length_scale.unwrap_or(own.length_scale),
            self.options.noise_w.unwrap_or(own.noise_w),
        ]
    }

    /// The phoneme ids of each sentence of an SSML document, in order, as they go to the model
    /// (IPA from a `<phoneme>`, as pronunciation rules write it, goes in as it is).
    pub async fn sentence_ids(
        &self,
        ssml_text: &str,
        voice_id: &VoiceId,
    ) -> Result<Vec<Vec<i64>>, VoiceError> {
        let (_, batches) = self.batches(ssml_text, voice_id).await?;
        Ok(batches
            .into_iter()
            .filter_map(|b| match b {
                Batch::Ids(ids) => Some(ids),
                Batch::Silence(_) => None,
            })
            .collect())
    }

    /// The phoneme ids of `ipa` alone, as one sentence of the voice would have them.
    pub fn ipa_ids(&self, ipa: &str, voice_id: &VoiceId) -> Result<Vec<Vec<i64>>, VoiceError> {
        Ok(self.voice(voice_id)?.ids.sentence_ids(ipa))
    }

    /// The samples of one SSML document, at the voice's sample rate.
    pub async fn samples(&self, ssml_text: &str, voice_id: &VoiceId) -> Result<(Vec<i16>, u32), VoiceError> {
        let (voice, batches) = self.batches(ssml_text, voice_id).await?;
        let rate = voice.found.config.audio.sample_rate;
        let scales = self.scales(&voice.found.config);
        let speaker = voice.found.config.num_speakers > 1;
        let samples = voice
            .pool
            .run(move |session| {
                let mut out: Vec<i16> = Vec::new();
                for batch in batches {
                    match batch {
                        Batch::Silence(d) => {
                            out.extend(std::iter::repeat_n(0, (d.as_secs_f64() * f64::from(rate)) as usize))
                        }
                        Batch::Ids(ids) => out.extend(to_pcm(&infer(session, ids, scales, speaker)?)),
                    }
                }
                Ok(out)
            })
            .await?;
        Ok((samples, rate))
    }

    /// What to synthesize for one SSML document: sentences as phoneme ids, and silences.
    async fn batches(
        &self,
        ssml_text: &str,
        voice_id: &VoiceId,
    ) -> Result<(Arc<LoadedVoice>, Vec<Batch>), VoiceError> {
        let voice = self.voice(voice_id)?;
        let items = ssml::parse(ssml_text).map_err(|e| VoiceError::Refused(e.to_string()))?;
        if !ssml::has_speech(&items) {
            return Err(VoiceError::Refused("the SSML has nothing to speak".into()));
        }
        let plan = plan(&items);
        for piece in &plan.pieces {
            if let Piece::Sentence(parts) = piece {
                for part in parts {
                    if let crate::phonemes::Part::Ipa(ipa) = part {
                        let unknown = voice.ids.unknown(ipa);
                        if !unknown.is_empty() {
                            return Err(VoiceError::Refused(format!(
                                "the phonemes '{ipa}' have symbols the voice {voice_id} does not know: {}",
                                unknown.iter().collect::<String>()
                            )));
                        }
                    }
                }
            }
        }
        let group_ipa = self.phonemizer.ipa(voice.found.espeak_voice(), &plan.groups).await?;
        let mut batches: Vec<Batch> = Vec::new();
        for piece in &plan.pieces {
            match piece {
                Piece::Sentence(parts) => {
                    let ipa = sentence_ipa(parts, &group_ipa);
                    for ids in voice.ids.sentence_ids(&ipa) {
                        batches.push(Batch::Ids(ids));
                    }
                    batches.push(Batch::Silence(self.options.sentence_silence));
                }
                Piece::Silence(d) => batches.push(Batch::Silence(*d)),
            }
        }
        Ok((voice, batches))
    }

    async fn voice_fingerprint(&self, voice: &LoadedVoice) -> Result<String, VoiceError> {
        let espeak = self.espeak_version.get_or_try_init(|| self.phonemizer.version()).await?;
        let model_hash = voice
            .fingerprint
            .get_or_try_init(|| async {
                let model = voice.found.model.clone();
                let config = voice.found.config_path.clone();
                tokio::task::spawn_blocking(move || -> Result<String, VoiceError> {
                    Ok(format!("model sha256 {}, config sha256 {}", sha256_of(&model)?, sha256_of(&config)?))
                })
                .await
                .map_err(|e| VoiceError::Unavailable(format!("hashing the model was interrupted: {e}")))?
            })
            .await?;
        let [noise, length, noise_w] = self.scales(&voice.found.config);
        Ok(format!(
            "piper {}: {model_hash}; noise {noise} {noise_w}, length {length}, sentence silence {} ms; {}; {espeak}; {} kbps",
            voice.found.info.id,
            self.options.sentence_silence.as_millis(),
            self.runtime.version,
            self.options.bitrate.0
        ))
    }
}

enum Batch {
    Ids(Vec<i64>),
    Silence(Duration),
}

fn sha256_of(path: &Path) -> Result<String, VoiceError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| VoiceError::UnsupportedVoice(format!("cannot read {}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .map_err(|e| VoiceError::UnsupportedVoice(format!("cannot read {}: {e}", path.display())))?;
    Ok(hex::encode(&hasher.finalize()[..16]))
}

/// One inference: phoneme ids in, samples (-1..1) out.
fn infer(
    session: &mut Session,
    ids: Vec<i64>,
    scales: [f32; 3],
    speaker: bool,
) -> Result<Vec<f32>, PiperError> {
    let fail = |reason: String| PiperError::Model { voice: "piper".into(), reason };
    let n = ids.len();
    let input = Tensor::from_array(([1usize, n], ids.into_boxed_slice())).map_err(|e| fail(e.to_string()))?;
    let lengths =
        Tensor::from_array(([1usize], vec![n as i64].into_boxed_slice())).map_err(|e| fail(e.to_string()))?;
    let scales = Tensor::from_array(([3usize], scales.to_vec().into_boxed_slice()))
        .map_err(|e| fail(e.to_string()))?;
    // The arena's regions are freed when the inference ends: a session between sentences holds
    // its weights, not the peak of its longest sentence.
    let mut options = RunOptions::new().map_err(|e| fail(e.to_string()))?;
    options.set("memory.enable_memory_arena_shrinkage", "cpu:0").map_err(|e| fail(e.to_string()))?;
    let outputs = if speaker {
        let sid =
            Tensor::from_array(([1usize], vec![0i64].into_boxed_slice())).map_err(|e| fail(e.to_string()))?;
        session.run_with_options(
            ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid],
            &options,
        )
    } else {
        session.run_with_options(
            ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales],
            &options,
        )
    }
    .map_err(|e| fail(e.to_string()))?;
    if outputs.len() == 0 {
        return Err(fail("the model gave no output".into()));
    }
    let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(|e| fail(e.to_string()))?;
    Ok(audio.to_vec())
}

/// Samples in -1..1 to 16-bit PCM, each sentence scaled to a peak just under full scale (as
/// Piper does; a near-silent one is not blown up).
pub fn to_pcm(audio: &[f32]) -> Vec<i16> {
    let peak = audio.iter().fold(0.0f32, |m, s| if s.is_finite() { m.max(s.abs()) } else { m }).max(0.01);
    let scale = 0.95 * f32::from(i16::MAX) / peak;
    audio
        .iter()
        .map(|s| {
            if s.is_finite() { (s * scale).clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16 } else { 0 }
        })
        .collect()
}

#[async_trait]
impl Voice for PiperVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        Ok(find_voices(&self.dirs).into_iter().map(|v| v.info).collect())
    }

    async fn fingerprint(&self, spec: &VoiceSpec) -> Result<String, VoiceError> {
        let voice = self.voice(&spec.voice)?;
        self.voice_fingerprint(&voice).await
    }

    #[tracing::instrument(skip(self, ssml), fields(voice = %spec.voice, chars = ssml.len()))]
    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        if spec.engine != VoiceEngine::Piper {
            return Err(VoiceError::UnsupportedVoice(format!(
                "the Piper voice speaks with the piper engine, not {}",
                spec.engine
            )));
        }
        let (samples, rate) = self.samples(ssml, &spec.voice).await?;
        let bitrate = self.options.bitrate;
        let mp3 = tokio::task::spawn_blocking(move || encode_mono(&samples, rate, bitrate))
            .await
            .map_err(|e| VoiceError::Unavailable(format!("MP3 encoding was interrupted: {e}")))?
            .map_err(|e| VoiceError::Refused(e.to_string()))?;
        Ok(Bytes::from(mp3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice config with a handful of phonemes, ids as Piper numbers them.
    fn config(extra: &str) -> PiperConfig {
        serde_json::from_str(&format!(
            r#"{{"audio": {{"sample_rate": 22050, "quality": "medium"}},
                "espeak": {{"voice": "en-us"}},
                "phoneme_type": "espeak",
                "phoneme_id_map": {{"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10],
                    "c": [16], "h": [20], "ə": [59], "ˈ": [120], "̧": [140], "ʊ": [100]}},
                "num_speakers": 1, "dataset": "joe", "language": {{"code": "en_US"}} {extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_sentence_is_bos_each_phoneme_with_a_pad_then_eos() {
        let ids = PhonemeIds::from_config(&config("")).unwrap();
        assert_eq!(
            ids.sentence_ids("hˈə, h."),
            vec![vec![1, 0, 20, 0, 120, 0, 59, 0, 8, 0, 3, 0, 20, 0, 10, 0, 2]]
        );
    }

    #[test]
    fn phonemes_are_decomposed_and_unknown_ones_left_out() {
        let ids = PhonemeIds::from_config(&config("")).unwrap();
        // "ç" is "c" and a combining cedilla after NFD, as Piper's phonemizer splits it.
        assert_eq!(ids.sentence_ids("ç"), vec![vec![1, 0, 16, 0, 140, 0, 2]]);
        assert_eq!(ids.sentence_ids("hxə"), vec![vec![1, 0, 20, 0, 59, 0, 2]]);
        assert_eq!(ids.unknown("hxəq"), vec!['x', 'q']);
        assert!(ids.unknown("çhə").is_empty());
    }

    #[test]
    fn the_voices_phoneme_map_applies_before_ids() {
        let ids = PhonemeIds::from_config(&config(r#", "phoneme_map": {"o": ["ə", "ʊ"]}"#)).unwrap();
        assert_eq!(ids.sentence_ids("ho"), vec![vec![1, 0, 20, 0, 59, 0, 100, 0, 2]]);
    }

    #[test]
    fn a_sentence_too_long_for_one_inference_is_cut_at_spaces() {
        let ids = PhonemeIds::from_config(&config("")).unwrap();
        let word = "həhəhə";
        let text = vec![word; 200].join(" ");
        let parts = ids.sentence_ids(&text);
        assert!(parts.len() > 1, "{} parts", parts.len());
        let mut phonemes = 0;
        for part in &parts {
            assert!(part.len() <= MAX_IDS, "{}", part.len());
            assert_eq!((part[0], part[part.len() - 1]), (1, 2), "each part is a sentence of its own");
            // Cut after a space: no part but the last ends in the middle of a word.
            phonemes += (part.len() - 3) / 2;
        }
        assert_eq!(phonemes, text.chars().count(), "nothing is lost or repeated");
        for part in &parts[..parts.len() - 1] {
            assert_eq!(part[part.len() - 3], 3, "ends with a space: {:?}", &part[part.len() - 6..]);
        }
    }

    #[test]
    fn a_config_without_the_special_symbols_is_refused() {
        let mut c = config("");
        c.phoneme_id_map.remove("^");
        assert!(PhonemeIds::from_config(&c).unwrap_err().contains('^'));
    }

    #[test]
    fn samples_are_scaled_to_a_peak_below_full_scale() {
        let pcm = to_pcm(&[0.0, 0.5, -0.25, f32::NAN]);
        assert_eq!(pcm, vec![0, 31_128, -15_564, 0]);
        // Near silence is not blown up to full scale.
        assert!(to_pcm(&[0.001])[0].abs() < 4_000);
    }

    fn write_voice(dir: &Path, name: &str, extra: &str, notes: Option<&str>) {
        std::fs::write(dir.join(format!("{name}.onnx")), b"not read here").unwrap();
        let json = serde_json::to_string(
            &serde_json::from_str::<serde_json::Value>(&format!(
                r#"{{"audio": {{"sample_rate": 22050, "quality": "low"}}, "espeak": {{"voice": "fr"}},
                "phoneme_id_map": {{"_": [0], "^": [1], "$": [2], " ": [3]}} {extra}}}"#
            ))
            .unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.onnx.json")), json).unwrap();
        if let Some(notes) = notes {
            std::fs::write(dir.join(format!("{name}.lector.json")), notes).unwrap();
        }
    }

    #[test]
    fn voices_are_found_in_folders_with_language_gender_and_licence() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write_voice(
            first.path(),
            "fr_FR-anne-low",
            r#", "dataset": "anne", "language": {"code": "fr_FR"}"#,
            Some(r#"{"gender": "Female", "licence": "non-commercial use only"}"#),
        );
        // No language block: the espeak voice says it.
        write_voice(first.path(), "plain", "", None);
        // The same name in a later folder is not offered twice.
        write_voice(second.path(), "plain", r#", "dataset": "other""#, None);
        // Not a voice: no config beside it, or a phoneme type Lector does not speak.
        std::fs::write(second.path().join("lonely.onnx"), b"x").unwrap();
        write_voice(second.path(), "text-voice", r#", "phoneme_type": "text""#, None);

        let voices =
            find_voices(&[first.path().to_path_buf(), second.path().to_path_buf(), "/nonexistent".into()]);
        let infos: Vec<&VoiceInfo> = voices.iter().map(|v| &v.info).collect();
        assert_eq!(infos.len(), 2, "{infos:#?}");
        assert_eq!(infos[0].id.as_str(), "fr_FR-anne-low");
        assert_eq!(infos[0].name, "Anne (low)");
        assert_eq!(infos[0].language, "fr-FR");
        assert_eq!(infos[0].gender.as_deref(), Some("Female"));
        assert_eq!(infos[0].licence.as_deref(), Some("non-commercial use only"));
        assert_eq!(infos[0].engines, vec![VoiceEngine::Piper]);
        assert_eq!(
            (infos[1].id.as_str(), infos[1].name.as_str(), infos[1].language.as_str()),
            ("plain", "plain", "fr")
        );
        assert_eq!((infos[1].gender.as_ref(), infos[1].licence.as_ref()), (None, None));
        assert_eq!(voices[0].espeak_voice(), "fr");

        let err = read_voice(&second.path().join("text-voice.onnx")).unwrap_err();
        assert!(matches!(&err, PiperError::BadVoice { reason, .. } if reason.contains("text")), "{err}");
    }

    #[test]
    fn opening_names_what_is_missing() {
        let empty = tempfile::tempdir().unwrap();
        let err = PiperVoice::open(
            Path::new("/nonexistent/libonnxruntime.so"),
            vec![empty.path().into()],
            PiperOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PiperError::NoVoices { .. }), "{err}");
        assert!(err.to_string().contains("scripts/tools.sh piper"));
        write_voice(empty.path(), "v", "", None);
        let err = PiperVoice::open(
            Path::new("/nonexistent/libonnxruntime.so"),
            vec![empty.path().into()],
            PiperOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, PiperError::RuntimeMissing { .. }), "{err}");
        assert!(matches!(VoiceError::from(err), VoiceError::UnsupportedVoice(_)));
    }
}
