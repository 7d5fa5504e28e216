//! The Polly voice against moto: the request it sends, the voices, the errors, and the
//! lexicons pronunciation rules become. moto answers 8 zero bytes for audio, so these tests
//! check the requests, not the sound (and a whole conversion cannot run on that audio: the
//! revision test plans its units with the functions PrepareSpeech uses).

use aws_sdk_polly::config::Builder;
use lector_aws::PollyVoice;
use lector_aws::polly::SampleRate;
use lector_core::ports::{Voice, VoiceError, VoiceSpec};
use lector_core::pronunciation::{InterpretAs, Pronunciations, Rule};
use lector_core::{VoiceEngine, VoiceId};
use lector_pipeline::Document;
use lector_pipeline::speech::{RuleMarkup, prepare_with, unit_key};
use lector_pipeline::voices::choose_voice;
use lector_testkit::services::moto_config;
use serde_json::json;

use crate::capture::Capture;

async fn voice_with_capture() -> (PollyVoice, Capture) {
    let capture = Capture::default();
    let config = Builder::from(&moto_config().await).interceptor(capture.clone()).build();
    (PollyVoice::new(aws_sdk_polly::Client::from_conf(config)), capture)
}

fn spec(voice: &str, engine: VoiceEngine, language: Option<&str>) -> VoiceSpec {
    VoiceSpec {
        voice: VoiceId::new(voice),
        engine,
        language: language.map(str::to_owned),
        pronunciations: Default::default(),
    }
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

// ---------------------------------------------------------------------------------------------
// Pronunciation rules: a PLS lexicon per rule set, named on every request.

fn rules(ipa: &str) -> Pronunciations {
    Pronunciations::new(vec![
        Rule::Substitute { matches: "K8s".into(), say: "Kubernetes".into() },
        Rule::Ipa { matches: "Lector".into(), phonemes: ipa.into() },
        Rule::SayAs { matches: "NASA".into(), interpret_as: InterpretAs::Characters },
    ])
}

fn synthesis_requests(capture: &Capture) -> Vec<serde_json::Value> {
    capture.requests().into_iter().filter(|r| r.path.ends_with("/v1/speech")).map(|r| r.body).collect()
}

fn lexicon_puts(capture: &Capture) -> Vec<String> {
    capture
        .requests()
        .into_iter()
        .filter_map(|r| r.path.split("/v1/lexicons/").nth(1).map(str::to_owned))
        .collect()
}

/// The units of `html` as PrepareSpeech makes them for Polly, keyed with the rules that touch
/// each one.
fn polly_units(html: &str, rules: &Pronunciations, spec: &VoiceSpec) -> Vec<(String, String)> {
    let limits = VoiceEngine::Standard.limits();
    let mut speech = prepare_with(
        &Document::from_html(html),
        spec.language.as_deref(),
        limits,
        rules,
        RuleMarkup::for_engine(spec.engine),
    )
    .unwrap();
    speech.assign_keys(|u| unit_key(spec, "polly; mp3 22050 Hz", &rules.key_of(&u.text), &u.ssml));
    speech.units.into_iter().map(|u| (u.key, u.ssml)).collect()
}

#[tokio::test]
async fn rules_go_to_polly_as_one_lexicon_per_rule_set_named_on_every_request() {
    let (voice, capture) = voice_with_capture().await;
    let mut spec = spec("Joanna", VoiceEngine::Standard, Some("en-US"));
    spec.pronunciations = rules("ˈlɛktɚ");
    let units = polly_units(
        "<p>We run K8s at NASA. Lector reads it. The sea was calm.</p>",
        &spec.pronunciations,
        &spec,
    );
    for (_, ssml) in &units {
        voice.synthesize(ssml, &spec).await.unwrap();
    }
    let puts = lexicon_puts(&capture);
    assert_eq!(puts.len(), 1, "one PutLexicon for the rule set: {puts:?}");
    let name = puts[0].clone();
    assert!(name.len() <= 20 && name.chars().all(|c| c.is_ascii_alphanumeric()), "{name}");
    let requests = synthesis_requests(&capture);
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request["LexiconNames"], json!([name]), "{request}");
        assert_eq!(request["VoiceId"], "Joanna");
    }
    // Substitutions and IPA are the lexicon's; say-as stays in the SSML.
    assert_eq!(
        requests[0]["Text"],
        "<speak>We run K8s at <say-as interpret-as=\"characters\">NASA</say-as>.</speak>"
    );
    assert_eq!(requests[1]["Text"], "<speak>Lector reads it.</speak>");
    let client = aws_sdk_polly::Client::new(&moto_config().await);
    let stored = client.get_lexicon().name(&name).send().await.unwrap();
    let lexicon = stored.lexicon().and_then(|l| l.content()).unwrap_or_default().to_owned();
    assert!(lexicon.contains("<grapheme>K8s</grapheme><alias>Kubernetes</alias>"), "{lexicon}");
    assert!(lexicon.contains("<grapheme>Lector</grapheme><phoneme>ˈlɛktɚ</phoneme>"), "{lexicon}");
    assert!(lexicon.contains("xml:lang=\"en-US\"") && !lexicon.contains("NASA"), "{lexicon}");

    // Another rule set is another lexicon; rules without substitutions or IPA need none.
    let mut changed = spec.clone();
    changed.pronunciations = rules("ˈlɛktər");
    voice.synthesize("<speak>Lector reads it.</speak>", &changed).await.unwrap();
    let puts = lexicon_puts(&capture);
    assert_eq!(puts.len(), 2);
    assert_ne!(puts[1], name);
    let mut say_as_only = spec.clone();
    say_as_only.pronunciations = Pronunciations::new(vec![Rule::SayAs {
        matches: "NASA".into(),
        interpret_as: InterpretAs::Characters,
    }]);
    voice.synthesize("<speak>Hi.</speak>", &say_as_only).await.unwrap();
    let last = synthesis_requests(&capture).pop().unwrap();
    assert!(last.get("LexiconNames").is_none(), "{last}");
    assert_eq!(lexicon_puts(&capture).len(), 2);
}

#[tokio::test]
async fn the_voice_is_chosen_by_the_articles_language_and_its_lexicon_speaks_it() {
    let (voice, capture) = voice_with_capture().await;
    let voices = voice.voices().await.unwrap();
    let chosen = choose_voice(&voices, VoiceEngine::Standard, &VoiceId::auto(), Some("fr-FR")).unwrap();
    let info = voices.iter().find(|v| v.id == chosen.voice).unwrap();
    assert_eq!(info.language, "fr-FR", "{chosen:?}");
    let mut spec = spec(chosen.voice.as_str(), VoiceEngine::Standard, Some("fr-FR"));
    spec.pronunciations = rules("ˈlɛktœʁ");
    voice.synthesize("<speak>Lector lit le billet.</speak>", &spec).await.unwrap();
    let request = synthesis_requests(&capture).pop().unwrap();
    assert_eq!(request["VoiceId"], chosen.voice.as_str());
    let name = request["LexiconNames"][0].as_str().unwrap().to_owned();
    let client = aws_sdk_polly::Client::new(&moto_config().await);
    let stored = client.get_lexicon().name(&name).send().await.unwrap();
    assert_eq!(
        stored.lexicon_attributes().and_then(|a| a.language_code()).map(|l| l.as_str()),
        Some("fr-FR")
    );
}

#[tokio::test]
async fn a_second_revision_with_one_changed_sentence_sends_one_request() {
    let (voice, capture) = voice_with_capture().await;
    let mut spec = spec("Joanna", VoiceEngine::Standard, Some("en-US"));
    spec.pronunciations = rules("ˈlɛktɚ");
    let first = "<p>The tide came in. Lector read the post. The boats were late.</p><p>K8s ran well.</p>";
    let second = "<p>The tide came in. Lector read the post. The boats were early.</p><p>K8s ran well.</p>";
    // What PrepareSpeech plans: the units whose key has no stored audio, each key once.
    let mut stored = std::collections::HashSet::new();
    for html in [first, second] {
        for (key, ssml) in polly_units(html, &spec.pronunciations, &spec) {
            if stored.insert(key) {
                voice.synthesize(&ssml, &spec).await.unwrap();
            }
        }
    }
    let requests = synthesis_requests(&capture);
    assert_eq!(requests.len(), 4 + 1, "four units, then the one changed sentence");
    assert_eq!(requests[4]["Text"], "<speak>The boats were early.<break time=\"500ms\"/></speak>");
    // A changed rule re-keys only the sentence that holds its word.
    let mut changed = spec.clone();
    changed.pronunciations = rules("ˈlɛktər");
    let again: Vec<_> = polly_units(second, &changed.pronunciations, &changed)
        .into_iter()
        .filter(|(key, _)| !stored.contains(key))
        .collect();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].1, "<speak>Lector read the post.</speak>");
}
