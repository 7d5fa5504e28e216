//! The espeak-ng voice: the OS program run in SSML mode, its WAV encoded to CBR MP3. The local
//! default's implementation of the `Voice` port.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId, VoiceInfo};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::mp3::{Kbps, encode_mono};

/// The voice used when none is named.
pub const DEFAULT_VOICE: &str = "en-us";

/// Why espeak-ng could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EspeakError {
    /// The program is not on this machine.
    #[error("espeak-ng is not installed ({program}): install it with `apt-get install espeak-ng`")]
    NotInstalled { program: String },
    /// The program ran and failed.
    #[error("espeak-ng failed: {0}")]
    Failed(String),
    /// Its output was not the WAV it writes.
    #[error("espeak-ng wrote no usable WAV: {0}")]
    BadWav(String),
}

impl From<EspeakError> for VoiceError {
    fn from(e: EspeakError) -> Self {
        match e {
            // Not transient: retrying cannot install the program.
            EspeakError::NotInstalled { .. } => VoiceError::UnsupportedVoice(e.to_string()),
            EspeakError::Failed(_) | EspeakError::BadWav(_) => VoiceError::Refused(e.to_string()),
        }
    }
}

/// espeak-ng, run as a process for each synthesis.
#[derive(Debug, Clone)]
pub struct EspeakVoice {
    program: PathBuf,
    bitrate: Kbps,
    timeout: Duration,
    /// The voice names the program knows, read once.
    known: Arc<OnceCell<Vec<VoiceInfo>>>,
    /// The program's version line, read once: part of the speech cache key.
    version: Arc<OnceCell<String>>,
}

impl Default for EspeakVoice {
    fn default() -> Self {
        Self::new()
    }
}

impl EspeakVoice {
    /// `espeak-ng` from `PATH`, 48 kbps MP3, two minutes per chunk at most.
    pub fn new() -> Self {
        Self {
            program: PathBuf::from("espeak-ng"),
            bitrate: Kbps::SPEECH,
            timeout: Duration::from_secs(120),
            known: Arc::new(OnceCell::new()),
            version: Arc::new(OnceCell::new()),
        }
    }

    /// Another program path (a test points it at one that does not exist).
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self.known = Arc::new(OnceCell::new());
        self.version = Arc::new(OnceCell::new());
        self
    }

    /// The voices, listed once per instance.
    async fn known_voices(&self) -> Result<&[VoiceInfo], VoiceError> {
        self.known.get_or_try_init(|| self.list_voices()).await.map(Vec::as_slice)
    }

    async fn list_voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        let out = self
            .command()
            .arg("--voices")
            .output()
            .await
            .map_err(|e| VoiceError::from(self.spawn_error(e)))?;
        if !out.status.success() {
            return Err(EspeakError::Failed(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
        }
        Ok(parse_voices(&String::from_utf8_lossy(&out.stdout)))
    }

    pub fn with_bitrate(mut self, kbps: Kbps) -> Self {
        self.bitrate = kbps;
        self
    }

    /// The program's version line, or [`EspeakError::NotInstalled`]: for checking at start-up.
    pub async fn check(&self) -> Result<String, EspeakError> {
        let out = self.command().arg("--version").output().await.map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(EspeakError::Failed(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    fn spawn_error(&self, e: std::io::Error) -> EspeakError {
        if e.kind() == std::io::ErrorKind::NotFound {
            EspeakError::NotInstalled { program: self.program.display().to_string() }
        } else {
            EspeakError::Failed(format!("cannot run {}: {e}", self.program.display()))
        }
    }

    /// Speaks `ssml` with `voice` and returns the WAV's samples and sample rate.
    async fn speak(&self, ssml: &str, voice: &str) -> Result<(Vec<i16>, u32), VoiceError> {
        let mut cmd = self.command();
        cmd.args(["-m", "--stdin", "--stdout", "-v", voice]).stdin(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| VoiceError::from(self.spawn_error(e)))?;
        let mut stdin =
            child.stdin.take().ok_or_else(|| VoiceError::Refused("espeak-ng has no stdin".into()))?;
        let input = ssml.as_bytes().to_vec();
        // Written beside the reading, so a large chunk cannot fill both pipes and stall.
        let writer = tokio::spawn(async move {
            let written = stdin.write_all(&input).await;
            drop(stdin);
            written
        });
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| VoiceError::Unavailable(format!("espeak-ng took longer than {:?}", self.timeout)))?
            .map_err(|e| VoiceError::Unavailable(format!("espeak-ng: {e}")))?;
        let _ = writer.await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("voice does not exist") {
            return Err(VoiceError::UnsupportedVoice(format!("espeak-ng has no voice '{voice}'")));
        }
        if !out.status.success() {
            // Killed by a signal (out of memory, the machine shutting down): the input was not
            // at fault, so another try can succeed. An exit code is espeak-ng refusing the input.
            if out.status.code().is_none() {
                return Err(VoiceError::Unavailable(format!("espeak-ng was stopped: {}", out.status)));
            }
            return Err(EspeakError::Failed(format!("{}: {}", out.status, stderr.trim())).into());
        }
        parse_wav(&out.stdout).map_err(VoiceError::from)
    }
}

/// Why IPA could not be put into espeak-ng's own phoneme input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpaError {
    /// A symbol this mapping does not know.
    #[error("espeak-ng cannot say the IPA '{ipa}': no espeak-ng phoneme for '{symbol}' (U+{code:04X})")]
    Unmappable { ipa: String, symbol: char, code: u32 },
}

/// IPA symbols (after NFD) and espeak-ng's phoneme mnemonics for them, two-symbol sequences
/// first: the vowels, diphthongs and consonants of English, French and German.
const IPA_TO_ESPEAK: &[(&str, &str)] = &[
    ("eɪ", "eI"),
    ("aɪ", "aI"),
    ("ɔɪ", "OI"),
    ("aʊ", "aU"),
    ("oʊ", "oU"),
    ("əʊ", "@U"),
    ("ɪə", "i@"),
    ("eə", "e@"),
    ("ʊə", "U@"),
    ("ɔʏ", "OY"),
    ("tʃ", "tS"),
    ("dʒ", "dZ"),
    ("ɜː", "3:"),
    ("ɝ", "3:"),
    // ç, after NFD.
    ("c\u{0327}", "C"),
    ("ɪ", "I"),
    ("i", "i"),
    ("ɛ", "E"),
    ("æ", "a"),
    ("ɑ", "A"),
    ("ɒ", "0"),
    ("ɔ", "O"),
    ("ʊ", "U"),
    ("u", "u"),
    ("ʌ", "V"),
    ("ə", "@"),
    ("ɚ", "3"),
    ("ɜ", "3"),
    ("e", "e"),
    ("o", "o"),
    ("a", "a"),
    ("y", "y"),
    ("ʏ", "Y"),
    ("ø", "Y"),
    ("œ", "W"),
    ("ɐ", "6"),
    ("ɨ", "i"),
    ("ɯ", "u"),
    ("ɤ", "o"),
    ("p", "p"),
    ("b", "b"),
    ("t", "t"),
    ("d", "d"),
    ("k", "k"),
    ("g", "g"),
    ("ɡ", "g"),
    ("f", "f"),
    ("v", "v"),
    ("s", "s"),
    ("z", "z"),
    ("h", "h"),
    ("m", "m"),
    ("n", "n"),
    ("l", "l"),
    ("j", "j"),
    ("w", "w"),
    ("c", "c"),
    ("q", "q"),
    ("x", "x"),
    ("θ", "T"),
    ("ð", "D"),
    ("ʃ", "S"),
    ("ʒ", "Z"),
    ("ŋ", "N"),
    ("ɹ", "r"),
    ("r", "r"),
    ("ɾ", "r"),
    ("ʁ", "R"),
    ("ʀ", "R"),
    ("ç", "C"),
    ("ɲ", "n^"),
    ("ʎ", "l^"),
    ("ʔ", "?"),
    ("ɫ", "l"),
    ("ɥ", "j"),
    ("β", "B"),
    ("ɣ", "Q"),
    ("χ", "x"),
    ("ʝ", "j"),
    ("ɟ", "J"),
    ("ʋ", "v"),
    // Stress and length.
    ("ˈ", "'"),
    ("ˌ", ","),
    ("ː", ":"),
    (" ", " "),
    // Nasal vowels: the vowel's mnemonic, then `~`.
    ("\u{0303}", "~"),
    // Marks espeak-ng does without: half-length, syllable breaks, aspiration, ties, syllabic
    // and non-syllabic marks, linking.
    ("ˑ", ""),
    (".", ""),
    ("ʰ", ""),
    ("\u{0361}", ""),
    ("\u{035C}", ""),
    ("\u{0329}", ""),
    ("\u{032F}", ""),
    ("‿", ""),
    ("|", ""),
    ("-", ""),
];

/// IPA as espeak-ng's phoneme mnemonics (what it reads between `[[` and `]]`).
pub fn ipa_to_espeak(ipa: &str) -> Result<String, IpaError> {
    use unicode_normalization::UnicodeNormalization;
    let ipa_nfd: String = ipa.trim().nfd().collect();
    let mut out = String::with_capacity(ipa_nfd.len());
    let mut rest = ipa_nfd.as_str();
    while let Some(c) = rest.chars().next() {
        match IPA_TO_ESPEAK.iter().find(|(from, _)| rest.starts_with(from)) {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                return Err(IpaError::Unmappable { ipa: ipa.to_owned(), symbol: c, code: c as u32 });
            }
        }
    }
    Ok(out)
}

/// The SSML with each `<phoneme alphabet="ipa" ph="...">` element replaced by espeak-ng's own
/// phoneme input, `[[...]]`: espeak-ng reads a `phoneme` element's text and ignores its IPA.
pub fn phonemes_for_espeak(ssml: &str) -> Result<String, IpaError> {
    let mut out = String::with_capacity(ssml.len());
    let mut rest = ssml;
    while let Some(open) = rest.find("<phoneme") {
        let after = &rest[open + "<phoneme".len()..];
        let (Some(tag_end), true) = (after.find('>'), after.starts_with([' ', '>', '/'])) else {
            out.push_str(&rest[..open + 1]);
            rest = &rest[open + 1..];
            continue;
        };
        let tag = &after[..tag_end];
        let ph = attribute_value(tag, "ph").unwrap_or_default();
        let (body_end, skip) = if tag.ends_with('/') {
            (tag_end + 1, 0)
        } else {
            match after[tag_end..].find("</phoneme>") {
                Some(close) => (tag_end + close, "</phoneme>".len()),
                None => break,
            }
        };
        out.push_str(&rest[..open]);
        out.push_str("[[");
        out.push_str(&ipa_to_espeak(&unescape(&ph))?);
        out.push_str("]]");
        rest = &after[body_end + skip..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of `name="..."` (or `'...'`) in a tag's attributes, still escaped.
fn attribute_value(tag: &str, name: &str) -> Option<String> {
    let mut search = tag;
    loop {
        let at = search.find(name)?;
        let before_ok = at == 0 || search[..at].ends_with(char::is_whitespace);
        let rest = search[at + name.len()..].trim_start();
        if before_ok && let Some(value) = rest.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let inner = &value[1..];
                return inner.find(quote).map(|end| inner[..end].to_owned());
            }
        }
        search = &search[at + name.len()..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A voice name is passed as an argument: it must not be taken for an option or a path.
fn valid_voice_name(voice: &str) -> bool {
    !voice.is_empty()
        && voice.len() <= 64
        && !voice.starts_with('-')
        && voice.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
}

#[async_trait]
impl Voice for EspeakVoice {
    async fn voices(&self) -> Result<Vec<VoiceInfo>, VoiceError> {
        let out = self
            .command()
            .arg("--voices")
            .output()
            .await
            .map_err(|e| VoiceError::from(self.spawn_error(e)))?;
        if !out.status.success() {
            return Err(EspeakError::Failed(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
        }
        Ok(parse_voices(&String::from_utf8_lossy(&out.stdout)))
    }

    async fn fingerprint(&self, _spec: &VoiceSpec) -> Result<String, VoiceError> {
        let version = self.version.get_or_try_init(|| self.check()).await.map_err(VoiceError::from)?;
        // "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/..." : the data path is not the sound.
        let version = version.split("Data at").next().unwrap_or(version).trim();
        Ok(format!("{version}; {} kbps", self.bitrate.0))
    }

    #[tracing::instrument(skip(self, ssml), fields(voice = %spec.voice, chars = ssml.len()))]
    async fn synthesize(&self, ssml: &str, spec: &VoiceSpec) -> Result<Bytes, VoiceError> {
        if spec.engine != VoiceEngine::Espeak {
            return Err(VoiceError::UnsupportedVoice(format!(
                "the local voice speaks with the espeak engine, not {}",
                spec.engine
            )));
        }
        let voice = spec.voice.as_str();
        if !valid_voice_name(voice) {
            return Err(VoiceError::UnsupportedVoice(format!("'{voice}' is not an espeak-ng voice name")));
        }
        // espeak-ng quietly falls back to another voice for some unknown names; check first.
        let base = voice.split('+').next().unwrap_or(voice);
        if !self.known_voices().await?.iter().any(|v| v.id.as_str().eq_ignore_ascii_case(base)) {
            return Err(VoiceError::UnsupportedVoice(format!(
                "espeak-ng has no voice '{base}' (see the voice list)"
            )));
        }
        // espeak-ng makes a sound of nothing; the port refuses it, as every voice does.
        if crate::ssml::parse(ssml).is_ok_and(|items| !crate::ssml::has_speech(&items)) {
            return Err(VoiceError::Refused("the SSML has nothing to speak".into()));
        }
        let ssml = phonemes_for_espeak(ssml).map_err(|e| VoiceError::Refused(e.to_string()))?;
        let (samples, rate) = self.speak(&ssml, voice).await?;
        let bitrate = self.bitrate;
        let mp3 = tokio::task::spawn_blocking(move || encode_mono(&samples, rate, bitrate))
            .await
            .map_err(|e| VoiceError::Unavailable(format!("MP3 encoding was interrupted: {e}")))?
            .map_err(|e| VoiceError::Refused(e.to_string()))?;
        Ok(Bytes::from(mp3))
    }
}

/// Reads `espeak-ng --voices`: `Pty Language Age/Gender VoiceName File Other Languages`.
pub fn parse_voices(listing: &str) -> Vec<VoiceInfo> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let _priority = cols.next()?;
            let language = cols.next()?;
            let age_gender = cols.next()?;
            let name = cols.next()?;
            let gender = match age_gender.rsplit('/').next() {
                Some("M") => Some("Male".to_string()),
                Some("F") => Some("Female".to_string()),
                _ => None,
            };
            Some(VoiceInfo {
                id: VoiceId::new(language),
                name: name.replace('_', " "),
                language: bcp47(language),
                gender,
                engines: vec![VoiceEngine::Espeak],
                licence: None,
            })
        })
        .collect()
}

/// `en-gb-scotland` → `en-GB-scotland`: the region in upper case, as BCP 47 writes it.
fn bcp47(code: &str) -> String {
    code.split('-')
        .enumerate()
        .map(|(i, part)| if i == 1 && part.len() == 2 { part.to_ascii_uppercase() } else { part.to_string() })
        .collect::<Vec<_>>()
        .join("-")
}

/// The samples and rate of a 16-bit mono PCM WAV. espeak-ng writes to a pipe and cannot go
/// back to fill in sizes, so the data chunk's size is taken as "to the end".
pub fn parse_wav(wav: &[u8]) -> Result<(Vec<i16>, u32), EspeakError> {
    let bad = |why: &str| EspeakError::BadWav(why.to_string());
    if wav.len() < 12 || &wav[..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return Err(bad("not a RIFF WAVE file"));
    }
    let mut pos = 12;
    let mut format = None;
    while pos + 8 <= wav.len() {
        let id = &wav[pos..pos + 4];
        let size = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let f = wav.get(body..body + 16).ok_or_else(|| bad("short fmt chunk"))?;
            let codec = u16::from_le_bytes([f[0], f[1]]);
            let channels = u16::from_le_bytes([f[2], f[3]]);
            let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
            let bits = u16::from_le_bytes([f[14], f[15]]);
            if codec != 1 || channels != 1 || bits != 16 {
                return Err(EspeakError::BadWav(format!(
                    "expected 16-bit mono PCM, got codec {codec}, {channels} channels, {bits} bits"
                )));
            }
            format = Some(rate);
        } else if id == b"data" {
            let rate = format.ok_or_else(|| bad("data before fmt"))?;
            let end = body.saturating_add(size).min(wav.len());
            let data = &wav[body..end];
            let samples = data.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
            return Ok((samples, rate));
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    Err(bad("no data chunk"))
}

/// The voice for a language: the exact espeak-ng voice if there is one, else the language's
/// first voice, else [`DEFAULT_VOICE`].
pub fn voice_for_language(voices: &[VoiceInfo], language: Option<&str>) -> VoiceId {
    let Some(lang) = language.map(str::to_ascii_lowercase) else { return VoiceId::new(DEFAULT_VOICE) };
    let primary = lang.split(['-', '_']).next().unwrap_or("").to_string();
    voices
        .iter()
        .find(|v| v.id.as_str().eq_ignore_ascii_case(&lang))
        .or_else(|| voices.iter().find(|v| v.id.as_str().eq_ignore_ascii_case(&primary)))
        .or_else(|| voices.iter().find(|v| v.id.as_str().split('-').next() == Some(primary.as_str())))
        .map(|v| v.id.clone())
        .unwrap_or_else(|| VoiceId::new(DEFAULT_VOICE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voice_listing_parses() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
                       5  af              --/M      Afrikaans          gmw/af\n \
                       2  en-gb           --/F      English_(Great_Britain) gmw/en               (en 2)\n";
        let voices = parse_voices(listing);
        assert_eq!(voices.len(), 2);
        assert_eq!(voices[1].id.as_str(), "en-gb");
        assert_eq!(voices[1].language, "en-GB");
        assert_eq!(voices[1].name, "English (Great Britain)");
        assert_eq!(voices[1].gender.as_deref(), Some("Female"));
        assert_eq!(voice_for_language(&voices, Some("en-GB")).as_str(), "en-gb");
        assert_eq!(voice_for_language(&voices, Some("af-ZA")).as_str(), "af");
        assert_eq!(voice_for_language(&voices, Some("xx")).as_str(), DEFAULT_VOICE);
    }

    #[test]
    fn wav_with_unknown_sizes_reads_to_the_end() {
        let mut wav = b"RIFF\xff\xff\xff\x7fWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x22\x56\x00\x00\x44\xac\x00\x00\x02\x00\x10\x00data\x00\xf0\xff\x7f".to_vec();
        wav.extend([1, 0, 2, 0, 0xff, 0xff]);
        assert_eq!(parse_wav(&wav).unwrap(), (vec![1, 2, -1], 22_050));
        assert!(parse_wav(b"RIFF").is_err());
    }

    #[test]
    fn ipa_becomes_espeaks_mnemonics() {
        assert_eq!(ipa_to_espeak("ˈlɛktɚ").unwrap(), "'lEkt3");
        assert_eq!(ipa_to_espeak("kəˈmjuːnɪˌkeɪt").unwrap(), "k@'mju:nI,keIt");
        assert_eq!(ipa_to_espeak("ˈθɪŋ ðə dʒʌdʒ").unwrap(), "'TIN D@ dZVdZ");
        // French nasal vowels and uvular r, in either normal form; German ç and ʏ.
        assert_eq!(ipa_to_espeak("bɔ̃ʒuʁ").unwrap(), "bO~ZuR");
        assert_eq!(ipa_to_espeak("b\u{00F5}").unwrap(), "bo~", "a precomposed nasal vowel");
        assert_eq!(ipa_to_espeak("ɪç ʏ").unwrap(), "IC Y");
        assert_eq!(
            ipa_to_espeak("ǃxóõ"),
            Err(IpaError::Unmappable { ipa: "ǃxóõ".into(), symbol: 'ǃ', code: 0x01C3 })
        );
        assert!(ipa_to_espeak("ʘ").unwrap_err().to_string().contains("no espeak-ng phoneme for 'ʘ'"));
    }

    #[test]
    fn phoneme_elements_become_espeaks_phoneme_input_and_nothing_else_changes() {
        let ssml = "<speak>The <phoneme alphabet=\"ipa\" ph=\"ˈlɛktɚ\">Lector</phoneme> app, \
                    <sub alias=\"Kubernetes\">K8s</sub> &amp; <phoneme ph='ɑ̃'>an</phoneme>.</speak>";
        assert_eq!(
            phonemes_for_espeak(ssml).unwrap(),
            "<speak>The [['lEkt3]] app, <sub alias=\"Kubernetes\">K8s</sub> &amp; [[A~]].</speak>"
        );
        let plain = "<speak>No phonemes <phonemes/> here.</speak>";
        assert_eq!(phonemes_for_espeak(plain).unwrap(), plain);
        assert!(phonemes_for_espeak("<speak><phoneme ph=\"ǃ\">x</phoneme></speak>").is_err());
    }

    #[test]
    fn voice_names_cannot_be_options() {
        assert!(valid_voice_name("en-us"));
        assert!(valid_voice_name("en-gb-x-rp"));
        assert!(!valid_voice_name("--path=/etc"));
        assert!(!valid_voice_name("../x"));
        assert!(!valid_voice_name(""));
    }
}
