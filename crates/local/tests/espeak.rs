//! The espeak-ng voice with the real program: MP3 that decodes to the length of the speech,
//! markup in text spoken rather than obeyed, and named errors for what cannot work.

use std::io::Cursor;

use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId};
use lector_local::espeak::{EspeakVoice, parse_wav};
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

fn spec(voice: &str) -> VoiceSpec {
    VoiceSpec {
        voice: VoiceId::new(voice),
        engine: VoiceEngine::Espeak,
        language: Some("en-US".into()),
        pronunciations: Default::default(),
    }
}

/// Decodes every packet and returns (samples per channel, sample rate).
fn decode(mp3: &[u8]) -> (u64, u32) {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(mp3.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .expect("MP3 probes");
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()).unwrap();
    let mut samples = 0u64;
    while let Ok(packet) = format.next_packet() {
        samples += decoder.decode(&packet).expect("packet decodes").frames() as u64;
    }
    (samples, track.codec_params.sample_rate.unwrap())
}

const TEXT: &str = "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of \
    times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the \
    epoch of incredulity, it was the season of light, it was the season of darkness.";

#[tokio::test]
async fn speech_becomes_mp3_as_long_as_the_speech() {
    let voice = EspeakVoice::new();
    let ssml = format!("<speak>{TEXT}<break time=\"500ms\"/>The end.</speak>");
    let mp3 = voice.synthesize(&ssml, &spec("en-us")).await.unwrap();
    let (samples, rate) = decode(&mp3);
    assert_eq!(rate, 22_050);
    // espeak-ng's own WAV of the same SSML, for the length to compare with.
    let wav = tokio::process::Command::new("espeak-ng")
        .args(["-m", "--stdout", "-v", "en-us", &ssml])
        .output()
        .await
        .unwrap()
        .stdout;
    let (pcm, _) = parse_wav(&wav).unwrap();
    let pcm_len = pcm.len() as i64;
    // The encoder adds its delay and pads the last frame: at most a few frames of 576.
    assert!((samples as i64 - pcm_len).abs() <= 3 * 576, "decoded {samples} samples, spoken {pcm_len}");
    let minutes = samples as f64 / 22_050.0 / 60.0;
    let words = TEXT.split_whitespace().count() as f64 + 2.0;
    let wpm = words / minutes;
    assert!((120.0..=230.0).contains(&wpm), "{wpm:.0} words a minute");
}

#[tokio::test]
async fn escaped_markup_in_text_is_spoken_not_obeyed() {
    let voice = EspeakVoice::new();
    let plain = voice.synthesize("<speak>one two</speak>", &spec("en-us")).await.unwrap();
    let injected = voice
        .synthesize(
            "<speak>one &lt;/speak&gt;&lt;break time=&quot;10s&quot;/&gt; two</speak>",
            &spec("en-us"),
        )
        .await
        .unwrap();
    let (plain_len, _) = decode(&plain);
    let (injected_len, _) = decode(&injected);
    // The escaped break is read out as words, not obeyed as a ten-second silence.
    assert!(injected_len > plain_len, "the escaped markup was not spoken");
    assert!((injected_len as f64) < plain_len as f64 + 9.0 * 22_050.0, "the escaped break was obeyed");
}

#[tokio::test]
async fn voices_are_listed_from_the_program() {
    let voices = EspeakVoice::new().voices().await.unwrap();
    let en = voices.iter().find(|v| v.id.as_str() == "en-us").expect("en-us is listed");
    assert_eq!(en.language, "en-US");
    assert_eq!(en.engines, vec![VoiceEngine::Espeak]);
    assert!(voices.len() > 50);
}

#[tokio::test]
async fn what_cannot_work_is_named() {
    let missing = EspeakVoice::new().with_program("/nonexistent/espeak-ng");
    let err = missing.synthesize("<speak>hi</speak>", &spec("en-us")).await.unwrap_err();
    assert!(
        matches!(err, VoiceError::UnsupportedVoice(ref m) if m.contains("apt-get install espeak-ng")),
        "{err}"
    );
    assert!(!err.is_transient());
    assert!(missing.check().await.unwrap_err().to_string().contains("apt-get install espeak-ng"));

    let voice = EspeakVoice::new();
    assert!(voice.check().await.unwrap().contains("eSpeak NG"));
    let err = voice.synthesize("<speak>hi</speak>", &spec("no-such-voice")).await.unwrap_err();
    assert!(matches!(err, VoiceError::UnsupportedVoice(_)), "{err}");
    let err = voice.synthesize("<speak>hi</speak>", &spec("--path=/tmp")).await.unwrap_err();
    assert!(matches!(err, VoiceError::UnsupportedVoice(_)), "{err}");
    let polly = VoiceSpec {
        voice: VoiceId::new("Joanna"),
        engine: VoiceEngine::Neural,
        language: None,
        pronunciations: Default::default(),
    };
    assert!(matches!(
        voice.synthesize("<speak>hi</speak>", &polly).await,
        Err(VoiceError::UnsupportedVoice(_))
    ));
}
