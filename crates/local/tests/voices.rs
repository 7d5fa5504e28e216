//! The local voices against the Voice port: espeak-ng and Piper (with the voice
//! `scripts/tools.sh piper` installs) honour it the same way, and Piper reads the SSML Lector
//! writes (breaks, sub, say-as, phoneme) into what it speaks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId};
use lector_local::espeak::EspeakVoice;
use lector_local::piper::{PiperOptions, PiperVoice};
use lector_local::voices::EngineRouter;
use lector_testkit::audio::decode_mp3;

const JOE: &str = "en_US-joe-medium";

fn piper_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/piper");
    let needed = [dir.join("lib/libonnxruntime.so"), dir.join("voices").join(format!("{JOE}.onnx"))];
    for file in &needed {
        assert!(
            file.is_file(),
            "the Piper voice is not installed ({} is missing): run `scripts/tools.sh piper` from the workspace root",
            file.display()
        );
    }
    dir
}

fn piper_with(options: PiperOptions) -> PiperVoice {
    let dir = piper_dir();
    PiperVoice::open(&dir.join("lib/libonnxruntime.so"), vec![dir.join("voices")], options)
        .expect("Piper opens")
}

/// Piper with noise scales at 0 (the same input gives the same output) and one session.
fn piper() -> PiperVoice {
    piper_with(PiperOptions { sessions: 1, ..PiperOptions::default().deterministic() })
}

fn spec(voice: &str, engine: VoiceEngine) -> VoiceSpec {
    VoiceSpec {
        voice: VoiceId::new(voice),
        engine,
        language: Some("en-US".into()),
        pronunciations: Default::default(),
    }
}

/// Each local voice with a voice it has.
fn local_voices() -> Vec<(Arc<dyn Voice>, VoiceSpec)> {
    vec![
        (Arc::new(EspeakVoice::new()), spec("en-us", VoiceEngine::Espeak)),
        (Arc::new(piper()), spec(JOE, VoiceEngine::Piper)),
    ]
}

fn seconds(mp3: &[u8]) -> f64 {
    decode_mp3(mp3).seconds()
}

#[tokio::test]
async fn both_local_voices_refuse_ssml_with_nothing_to_say() {
    for (voice, spec) in local_voices() {
        for empty in ["<speak></speak>", "<speak>  <break time=\"1s\"/> . </speak>"] {
            let err = voice.synthesize(empty, &spec).await.unwrap_err();
            assert!(matches!(err, VoiceError::Refused(_)), "{}: {empty}: {err}", spec.engine);
        }
    }
}

#[tokio::test]
async fn both_local_voices_call_an_unknown_voice_unsupported() {
    for (voice, spec) in local_voices() {
        let unknown = VoiceSpec { voice: VoiceId::new("no-such-voice"), ..spec.clone() };
        let err = voice.synthesize("<speak>Hello.</speak>", &unknown).await.unwrap_err();
        assert!(matches!(err, VoiceError::UnsupportedVoice(_)), "{}: {err}", spec.engine);
        assert!(!err.is_transient());
        // A voice of the other engine is not theirs either.
        let other = if spec.engine == VoiceEngine::Piper { VoiceEngine::Espeak } else { VoiceEngine::Piper };
        let err =
            voice.synthesize("<speak>Hello.</speak>", &VoiceSpec { engine: other, ..spec.clone() }).await;
        assert!(matches!(err, Err(VoiceError::UnsupportedVoice(_))), "{}: {err:?}", spec.engine);
    }
}

#[tokio::test]
async fn in_both_local_voices_a_break_lengthens_the_audio_by_about_its_length() {
    for (voice, spec) in local_voices() {
        let plain = voice.synthesize("<speak>One sentence. Another sentence.</speak>", &spec).await.unwrap();
        let paused = voice
            .synthesize("<speak>One sentence. <break time=\"1500ms\"/>Another sentence.</speak>", &spec)
            .await
            .unwrap();
        let added = seconds(&paused) - seconds(&plain);
        assert!((1.0..=2.0).contains(&added), "{}: a 1.5 s break added {added:.2} s", spec.engine);
    }
}

#[tokio::test]
async fn both_local_voices_list_themselves_with_language_and_gender() {
    let espeak = EspeakVoice::new().voices().await.unwrap();
    let en_us = espeak.iter().find(|v| v.id.as_str() == "en-us").expect("espeak-ng's en-us");
    assert_eq!((en_us.language.as_str(), en_us.engines.as_slice()), ("en-US", &[VoiceEngine::Espeak][..]));
    let piper = piper().voices().await.unwrap();
    let joe = piper.iter().find(|v| v.id.as_str() == JOE).expect("the joe voice");
    assert_eq!(joe.language, "en-US");
    assert_eq!(joe.gender.as_deref(), Some("Male"));
    assert_eq!(joe.engines, vec![VoiceEngine::Piper]);
    let licence = joe.licence.as_deref().expect("a licence note");
    assert!(
        licence.contains("CC0") && licence.contains("lessac") && licence.contains("commercial"),
        "{licence}"
    );
}

#[tokio::test]
async fn piper_speaks_the_same_sentence_to_the_same_bytes_with_noise_at_zero() {
    let voice = piper();
    let spec = spec(JOE, VoiceEngine::Piper);
    let ssml = "<speak>The quick brown fox jumps over the lazy dog.</speak>";
    let first = voice.synthesize(ssml, &spec).await.unwrap();
    let second = voice.synthesize(ssml, &spec).await.unwrap();
    assert_eq!(first, second);
    // About two and a half seconds of speech, at the voice's 22,050 Hz.
    let decoded = decode_mp3(&first);
    assert_eq!(decoded.sample_rate, 22_050);
    assert!((1.5..=4.5).contains(&decoded.seconds()), "{:.2} s", decoded.seconds());
}

#[tokio::test]
async fn piper_reads_sub_phoneme_and_say_as_as_the_ssml_asks() {
    let voice = piper();
    let spec = spec(JOE, VoiceEngine::Piper);
    let say = |ssml: String| {
        let voice = &voice;
        let spec = &spec;
        async move { voice.synthesize(&ssml, spec).await.unwrap() }
    };
    // A sub speaks its alias: the same sound as the alias written out.
    let sub = say("<speak>Visit the <sub alias=\"World Wide Web\">WWW</sub> today.</speak>".into()).await;
    let alias = say("<speak>Visit the World Wide Web today.</speak>".into()).await;
    let www = say("<speak>Visit the WWW today.</speak>".into()).await;
    assert_eq!(sub, alias);
    assert_ne!(sub, www);
    // A phoneme speaks its IPA, not its text: the same sound as a word espeak-ng phonemizes
    // the same way, and another than the element's text.
    let phoneme =
        say("<speak>I like <phoneme alphabet=\"ipa\" ph=\"təmˈeɪɾoʊ\">tomato</phoneme> soup.</speak>".into())
            .await;
    let potato =
        say("<speak>I like <phoneme alphabet=\"ipa\" ph=\"pəˈteɪɾoʊ\">tomato</phoneme> soup.</speak>".into())
            .await;
    assert_ne!(phoneme, potato, "the IPA decides the sound");
    let text = say("<speak>I like tomato soup.</speak>".into()).await;
    assert_eq!(phoneme, text, "espeak-ng's IPA for 'tomato' is təmˈeɪɾoʊ, so the two sound the same");
    // say-as characters spells: six letter names (bˌiːˌeɪˈɛn...) take longer than the word.
    let spelled = say("<speak><say-as interpret-as=\"characters\">banana</say-as></speak>".into()).await;
    let word = say("<speak>banana</speak>".into()).await;
    assert!(seconds(&spelled) > seconds(&word) + 0.25, "{:.2} vs {:.2}", seconds(&spelled), seconds(&word));
}

#[tokio::test]
async fn piper_refuses_phonemes_its_voice_does_not_have_and_malformed_ssml() {
    let voice = piper();
    let spec = spec(JOE, VoiceEngine::Piper);
    let err = voice
        .synthesize("<speak><phoneme alphabet=\"ipa\" ph=\"t\u{1f600}\">x</phoneme></speak>", &spec)
        .await
        .unwrap_err();
    assert!(matches!(&err, VoiceError::Refused(m) if m.contains('\u{1f600}')), "{err}");
    let err = voice.synthesize("<speak>unclosed <s>sentence</speak>", &spec).await.unwrap_err();
    assert!(matches!(err, VoiceError::Refused(_)), "{err}");
}

#[tokio::test]
async fn pipers_fingerprint_changes_with_what_changes_its_sound() {
    let spec = spec(JOE, VoiceEngine::Piper);
    let still = piper().fingerprint(&spec).await.unwrap();
    assert!(
        still.contains(JOE) && still.contains("model sha256") && still.contains("onnxruntime"),
        "{still}"
    );
    assert_eq!(still, piper().fingerprint(&spec).await.unwrap());
    let lively = piper_with(PiperOptions::default()).fingerprint(&spec).await.unwrap();
    assert_ne!(still, lively, "the noise scales are in it");
}

#[tokio::test]
async fn the_router_sends_each_engine_to_its_voice_and_lists_them_all() {
    let router = EngineRouter::new()
        .route(&[VoiceEngine::Espeak], Arc::new(EspeakVoice::new()))
        .route(&[VoiceEngine::Piper], Arc::new(piper()));
    assert_eq!(router.engines(), vec![VoiceEngine::Espeak, VoiceEngine::Piper]);
    let voices = router.voices().await.unwrap();
    assert!(voices.iter().any(|v| v.id.as_str() == JOE && v.engines == [VoiceEngine::Piper]));
    assert!(voices.iter().any(|v| v.id.as_str() == "en-us" && v.engines == [VoiceEngine::Espeak]));
    let ssml = "<speak>Hello there.</speak>";
    let direct = piper().synthesize(ssml, &spec(JOE, VoiceEngine::Piper)).await.unwrap();
    let routed = router.synthesize(ssml, &spec(JOE, VoiceEngine::Piper)).await.unwrap();
    assert_eq!(direct, routed);
    assert!(router.fingerprint(&spec("en-us", VoiceEngine::Espeak)).await.unwrap().contains("1.5"));
    let err = router.synthesize(ssml, &spec("Joanna", VoiceEngine::Neural)).await.unwrap_err();
    assert!(
        matches!(&err, VoiceError::UnsupportedVoice(m) if m.contains("neural") && m.contains("piper")),
        "{err}"
    );
}

/// A contiguous run of `part` inside `whole`.
fn holds(whole: &[i64], part: &[i64]) -> bool {
    !part.is_empty() && whole.windows(part.len()).any(|w| w == part)
}

#[tokio::test]
async fn piper_speaks_a_pronunciation_rules_ipa_in_place_of_the_words_phonemes() {
    let piper = piper();
    let voice = VoiceId::new(JOE);
    // The SSML the pipeline writes for an IPA rule on "Lector".
    let ruled = "<speak>The <phoneme alphabet=\"ipa\" ph=\"ˈlɛktɚ\">Lector</phoneme> app reads.</speak>";
    let plain = "<speak>The Lector app reads.</speak>";
    let with_rule = piper.sentence_ids(ruled, &voice).await.unwrap();
    let without = piper.sentence_ids(plain, &voice).await.unwrap();
    assert_eq!((with_rule.len(), without.len()), (1, 1), "one sentence each");
    // The rule's IPA as the voice's ids, without the sentence's start and end: `^`, pad, then
    // each phoneme and its pad, then `$`.
    let rule_ids = piper.ipa_ids("ˈlɛktɚ", &voice).unwrap();
    let inner = &rule_ids[0][2..rule_ids[0].len() - 1];
    assert!(holds(&with_rule[0], inner), "the rule's phonemes go in as they are");
    assert!(!holds(&without[0], inner), "espeak-ng says the word otherwise");
    // The sentence starts the same way either way: the "ð" of espeak-ng's "The".
    assert_eq!(with_rule[0][..4], without[0][..4]);
    assert_ne!(with_rule, without, "the rule changed the phonemes");
    // An IPA symbol the voice has no id for is refused, named.
    let unknown = "<speak><phoneme alphabet=\"ipa\" ph=\"☃\">x</phoneme></speak>";
    let err = piper.sentence_ids(unknown, &voice).await.unwrap_err();
    assert!(matches!(&err, VoiceError::Refused(m) if m.contains('☃')), "{err}");
}
