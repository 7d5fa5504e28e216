//! The Polly voice against moto: the request it sends, the voices, and the errors. moto
//! answers 8 zero bytes for audio, so these tests check the request, not the sound.

use aws_sdk_polly::config::Builder;
use lector_aws::PollyVoice;
use lector_aws::polly::SampleRate;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::{VoiceEngine, VoiceId};
use lector_testkit::services::moto_config;
use serde_json::json;

use crate::capture::Capture;

async fn voice_with_capture() -> (PollyVoice, Capture) {
    let capture = Capture::default();
    let config = Builder::from(&moto_config().await).interceptor(capture.clone()).build();
    (PollyVoice::new(aws_sdk_polly::Client::from_conf(config)), capture)
}

fn spec(voice: &str, engine: VoiceEngine, language: Option<&str>) -> VoiceSpec {
    VoiceSpec { voice: VoiceId::new(voice), engine, language: language.map(str::to_owned) }
}

const SSML: &str = "<speak>Hello, <break time=\"300ms\"/> world &amp; friends.</speak>";

#[tokio::test]
async fn synthesis_asks_for_ssml_as_mp3_with_the_voice_engine_language_and_rate() {
    let (voice, capture) = voice_with_capture().await;
    let audio = voice.synthesize(SSML, &spec("Joanna", VoiceEngine::Standard, Some("en-us"))).await.unwrap();
    assert!(!audio.is_empty());
    let requests = capture.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].path.ends_with("/v1/speech"), "{}", requests[0].path);
    assert_eq!(
        requests[0].body,
        json!({
            "Engine": "standard",
            "LanguageCode": "en-US",
            "OutputFormat": "mp3",
            "SampleRate": "22050",
            "Text": SSML,
            "TextType": "ssml",
            "VoiceId": "Joanna"
        })
    );
}

#[tokio::test]
async fn neural_voices_ask_for_24_khz_and_a_bare_language_is_left_to_the_voice() {
    let (voice, capture) = voice_with_capture().await;
    // moto only takes rates up to 22,050 Hz; Polly's neural voices give 24,000 in MP3.
    let err = voice.synthesize(SSML, &spec("Joanna", VoiceEngine::Neural, Some("en"))).await.unwrap_err();
    assert!(matches!(err, VoiceError::Refused(_)), "moto refuses the rate: {err}");
    let body = &capture.requests()[0].body;
    assert_eq!((body["Engine"].as_str(), body["SampleRate"].as_str()), (Some("neural"), Some("24000")));
    assert!(body.get("LanguageCode").is_none());

    let (voice, capture) = voice_with_capture().await;
    let voice = voice.with_sample_rate(SampleRate::Hz22050);
    voice.synthesize(SSML, &spec("Joanna", VoiceEngine::LongForm, None)).await.unwrap();
    let body = &capture.requests()[0].body;
    assert_eq!((body["Engine"].as_str(), body["SampleRate"].as_str()), (Some("long-form"), Some("22050")));
}

#[tokio::test]
async fn an_unknown_voice_is_unsupported() {
    let (voice, _) = voice_with_capture().await;
    let err = voice.synthesize(SSML, &spec("Nobody", VoiceEngine::Standard, None)).await.unwrap_err();
    assert!(matches!(err, VoiceError::UnsupportedVoice(ref m) if m.contains("Nobody")), "got {err}");
}

#[tokio::test]
async fn the_local_engine_is_not_sent_to_polly() {
    let (voice, capture) = voice_with_capture().await;
    let err = voice.synthesize(SSML, &spec("Joanna", VoiceEngine::Espeak, None)).await.unwrap_err();
    assert!(matches!(err, VoiceError::UnsupportedVoice(_)), "got {err}");
    assert!(capture.requests().is_empty());
}

#[tokio::test]
async fn text_over_the_limit_is_refused_not_retried() {
    let (voice, capture) = voice_with_capture().await;
    let long = format!("<speak>{}</speak>", "word ".repeat(1_000));
    let err = voice.synthesize(&long, &spec("Joanna", VoiceEngine::Standard, None)).await.unwrap_err();
    assert!(matches!(err, VoiceError::Refused(_)), "got {err}");
    assert!(!err.is_transient());
    assert_eq!(capture.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn an_unreachable_service_is_transient() {
    let mut config = moto_config().await.into_builder();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.set_endpoint_url(Some(format!("http://127.0.0.1:{port}")));
    let voice = PollyVoice::new(aws_sdk_polly::Client::new(&config.build()));
    let err = voice.synthesize(SSML, &spec("Joanna", VoiceEngine::Standard, None)).await.unwrap_err();
    assert!(matches!(err, VoiceError::Unavailable(_)), "got {err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn voices_are_listed_with_their_engines() {
    let (voice, _) = voice_with_capture().await;
    let voices = voice.voices().await.unwrap();
    assert!(voices.len() > 20, "moto lists Polly's voices");
    let joanna = voices.iter().find(|v| v.id.as_str() == "Joanna").expect("Joanna");
    assert_eq!(joanna.language, "en-US");
    assert_eq!(joanna.gender.as_deref(), Some("Female"));
    assert!(joanna.engines.contains(&VoiceEngine::Neural) && joanna.engines.contains(&VoiceEngine::Standard));
    assert!(voices.iter().all(|v| !v.engines.contains(&VoiceEngine::Espeak)));
}
