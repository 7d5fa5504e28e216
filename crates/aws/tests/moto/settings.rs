//! Settings from moto's SSM Parameter Store, cached for five minutes on an injected clock.

use std::sync::{Arc, Mutex};

use aws_sdk_ssm::types::ParameterType;
use chrono::{DateTime, Duration, Utc};
use lector_aws::settings::{RuntimeSettings, SettingsError, SettingsSource, WebSubSecret};
use lector_core::feed::event::PodcastOwner;
use lector_core::ports::Clock;
use lector_core::{VoiceEngine, VoiceId};
use lector_testkit::services::{moto_config, unique_name};

#[derive(Debug)]
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

async fn put(client: &aws_sdk_ssm::Client, name: &str, value: &str, kind: ParameterType) {
    client.put_parameter().name(name).value(value).r#type(kind).overwrite(true).send().await.unwrap();
}

#[tokio::test]
async fn settings_are_read_from_the_path_and_cached_for_five_minutes() {
    let client = aws_sdk_ssm::Client::new(&moto_config().await);
    let path = format!("/{}/", unique_name("lector"));
    put(&client, &format!("{path}default-voice"), "Matthew", ParameterType::String).await;
    put(&client, &format!("{path}default-engine"), "long-form", ParameterType::String).await;
    put(&client, &format!("{path}allowed-hosts"), "intranet.example,127.0.0.1", ParameterType::StringList)
        .await;
    put(&client, &format!("{path}podcast-owner-name"), "Lector Radio", ParameterType::String).await;
    put(&client, &format!("{path}podcast-owner-email"), "radio@lector.example", ParameterType::String).await;
    // A SecureString, read decrypted.
    put(&client, &format!("{path}websub-secret"), "hub-secret-of-the-stack", ParameterType::SecureString)
        .await;
    let clock = Arc::new(TestClock(Mutex::new(DateTime::from_timestamp(1_750_000_000, 0).unwrap())));
    let source = SettingsSource::new(client.clone(), path.trim_end_matches('/'), clock.clone());

    let settings = source.get().await.unwrap();
    assert_eq!(
        settings,
        RuntimeSettings {
            default_voice: VoiceId::new("Matthew"),
            default_engine: VoiceEngine::LongForm,
            allowed_hosts: vec!["intranet.example".into(), "127.0.0.1".into()],
            podcast_owner: Some(PodcastOwner {
                name: "Lector Radio".into(),
                email: "radio@lector.example".into()
            }),
            websub_secret: WebSubSecret::new("hub-secret-of-the-stack"),
        }
    );

    put(&client, &format!("{path}default-voice"), "Joanna", ParameterType::String).await;
    clock.advance(Duration::minutes(4) + Duration::seconds(59));
    assert_eq!(source.get().await.unwrap().default_voice, VoiceId::new("Matthew"), "still cached");
    clock.advance(Duration::seconds(1));
    assert_eq!(
        source.get().await.unwrap().default_voice,
        VoiceId::new("Joanna"),
        "read again after five minutes"
    );
}

#[tokio::test]
async fn an_invalid_parameter_is_named() {
    let client = aws_sdk_ssm::Client::new(&moto_config().await);
    let path = format!("/{}/", unique_name("lector"));
    put(&client, &format!("{path}default-engine"), "loud", ParameterType::String).await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let err = SettingsSource::new(client, &path, clock).get().await.unwrap_err();
    assert_eq!(
        err,
        SettingsError::Invalid {
            name: format!("{path}default-engine"),
            reason:
                "unknown voice engine 'loud': expected one of standard, neural, long-form, generative, espeak"
                    .into()
        }
    );
}

#[tokio::test]
async fn an_empty_path_gives_the_defaults() {
    let client = aws_sdk_ssm::Client::new(&moto_config().await);
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let settings =
        SettingsSource::new(client, format!("/{}", unique_name("empty")), clock).get().await.unwrap();
    assert_eq!(settings, RuntimeSettings::default());
}

/// Turns every answer into a 503 while switched on: Parameter Store being down.
#[derive(Debug, Clone, Default)]
struct Outage(Arc<std::sync::atomic::AtomicBool>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for Outage {
    fn name(&self) -> &'static str {
        "Outage"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            let response = context.response_mut();
            *response.status_mut() = aws_smithy_runtime_api::http::StatusCode::try_from(503)?;
            *response.body_mut() =
                aws_smithy_types::body::SdkBody::from(r#"{"__type":"ServiceUnavailable"}"#);
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_outage_keeps_the_settings_read_before_and_fails_only_when_there_are_none() {
    let outage = Outage::default();
    let config = aws_sdk_ssm::config::Builder::from(&moto_config().await)
        .interceptor(outage.clone())
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_ssm::Client::from_conf(config);
    let path = format!("/{}/", unique_name("lector"));
    put(&client, &format!("{path}default-voice"), "Ruth", ParameterType::String).await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));

    outage.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let cold = SettingsSource::new(client.clone(), &path, clock.clone());
    assert!(matches!(cold.get().await, Err(SettingsError::Unavailable(_))), "nothing to fall back on");

    outage.0.store(false, std::sync::atomic::Ordering::SeqCst);
    let source = SettingsSource::new(client, &path, clock.clone());
    assert_eq!(source.get().await.unwrap().default_voice, VoiceId::new("Ruth"));
    outage.0.store(true, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::minutes(10));
    assert_eq!(
        source.get().await.unwrap().default_voice,
        VoiceId::new("Ruth"),
        "stale settings beat no settings"
    );
}

#[tokio::test]
async fn a_podcast_owner_without_an_email_is_named() {
    let client = aws_sdk_ssm::Client::new(&moto_config().await);
    let path = format!("/{}/", unique_name("lector"));
    put(&client, &format!("{path}podcast-owner-name"), "Lector Radio", ParameterType::String).await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let err = SettingsSource::new(client, &path, clock).get().await.unwrap_err();
    assert!(
        matches!(&err, SettingsError::Invalid { name, .. } if *name == format!("{path}podcast-owner-email")),
        "{err:?}"
    );
    assert!(err.to_string().contains("set both or neither"), "{err}");
}
