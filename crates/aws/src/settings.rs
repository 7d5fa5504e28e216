//! Configuration: what a deployment fixes (table, bus, bucket) from the environment, failing
//! fast on anything missing; and what operators change without a deploy (default voice, limits,
//! allowed hosts) from SSM Parameter Store, cached for five minutes.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ssm::Client;
use chrono::{DateTime, Utc};
use lector_core::feed::event::PodcastOwner;
use lector_core::ports::Clock;
use lector_core::{VoiceEngine, VoiceId};
use tokio::sync::Mutex;

use crate::sdk::Failure;

/// The event log's DynamoDB table.
pub const TABLE_VAR: &str = "LECTOR_EVENT_TABLE";
/// The EventBridge bus events are published on.
pub const BUS_VAR: &str = "LECTOR_EVENT_BUS";
/// The S3 bucket of texts, chunks and audio.
pub const BUCKET_VAR: &str = "LECTOR_BUCKET";
/// The conversion state machine's ARN (only for what starts or redrives executions).
pub const STATE_MACHINE_VAR: &str = "LECTOR_STATE_MACHINE_ARN";
/// The SSM path of the runtime settings, such as `/lector/prod/`.
pub const SETTINGS_PATH_VAR: &str = "LECTOR_SETTINGS_PATH";

/// Why the configuration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Every variable that is missing or empty, by name.
    #[error("missing environment variables: {}", .0.join(", "))]
    Missing(Vec<String>),
}

/// What every AWS function of Lector is pointed at. No defaults: a deployment names them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub bus: String,
    pub bucket: String,
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any lookup of variables (the environment, or a map in a test).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let [table, bus, bucket] = require_all(&lookup, [TABLE_VAR, BUS_VAR, BUCKET_VAR])?;
        Ok(Self { table, bus, bucket })
    }
}

/// The named variables, all of them, or an error naming every one that is missing or empty.
pub fn require_all<const N: usize>(
    lookup: impl Fn(&str) -> Option<String>,
    names: [&str; N],
) -> Result<[String; N], ConfigError> {
    let values = names.map(|name| lookup(name).filter(|v| !v.trim().is_empty()));
    let missing: Vec<String> =
        names.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| (*n).to_owned()).collect();
    if !missing.is_empty() {
        return Err(ConfigError::Missing(missing));
    }
    Ok(values.map(Option::unwrap_or_default))
}

/// One variable from the process environment, or an error naming it.
pub fn require_env(name: &str) -> Result<String, ConfigError> {
    let [value] = require_all(|n| std::env::var(n).ok(), [name])?;
    Ok(value)
}

/// Settings operators change without a deploy. A parameter that is absent takes the default
/// written here; one that is present must be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeSettings {
    /// `default-voice`
    pub default_voice: VoiceId,
    /// `default-engine`
    pub default_engine: VoiceEngine,
    /// `allowed-hosts`: hosts fetched even though they resolve to private addresses (a
    /// StringList or a comma-separated String).
    pub allowed_hosts: Vec<String>,
    /// `podcast-owner-name` and `podcast-owner-email`, both or neither: the owner of every
    /// podcast feed whose subscription names none (Apple Podcasts requires one).
    pub podcast_owner: Option<PodcastOwner>,
    /// `websub-secret` (a SecureString): the secret every feed's WebSub secret is derived from.
    /// Without it WebSub is off: no hub is asked and the callback routes refuse pushes.
    pub websub_secret: Option<WebSubSecret>,
}

/// The WebSub secret as read: at least [`WebSubSecret::MIN_CHARS`] characters, and never in a
/// log (its `Debug` shows only its length).
#[derive(Clone, PartialEq, Eq)]
pub struct WebSubSecret(String);

impl WebSubSecret {
    /// The shortest secret accepted (as `lector_pipeline::websub::WebSubConfig` requires).
    pub const MIN_CHARS: usize = 16;

    /// The secret, or `None` when it is shorter than [`Self::MIN_CHARS`].
    pub fn new(secret: &str) -> Option<Self> {
        let secret = secret.trim();
        (secret.chars().count() >= Self::MIN_CHARS).then(|| Self(secret.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebSubSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebSubSecret({} characters)", self.0.chars().count())
    }
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            default_voice: VoiceId::new("Joanna"),
            default_engine: VoiceEngine::Neural,
            allowed_hosts: Vec::new(),
            podcast_owner: None,
            websub_secret: None,
        }
    }
}

/// Why the runtime settings could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Parameter Store could not be reached and nothing was cached yet; retry.
    #[error("SSM Parameter Store unavailable: {0}")]
    Unavailable(String),
    /// A parameter is there but its value is not valid.
    #[error("parameter {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
    /// Parameter Store refused the read (permissions, a bad path).
    #[error("SSM Parameter Store refused the read: {0}")]
    Refused(String),
}

/// How long settings are kept before they are read again.
pub const CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// Runtime settings under one SSM path, read at most once per [`CACHE_TTL`].
pub struct SettingsSource {
    client: Client,
    path: String,
    clock: Arc<dyn Clock>,
    ttl: chrono::Duration,
    cache: Mutex<Option<(DateTime<Utc>, RuntimeSettings)>>,
}

impl std::fmt::Debug for SettingsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsSource")
            .field("path", &self.path)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SettingsSource {
    /// Settings under `path` (a trailing `/` is added when missing).
    pub fn new(client: Client, path: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        let mut path = path.into();
        if !path.ends_with('/') {
            path.push('/');
        }
        Self {
            client,
            path,
            clock,
            ttl: chrono::Duration::from_std(CACHE_TTL).unwrap_or(chrono::Duration::MAX),
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The settings, from the cache while it is fresh. When Parameter Store cannot be reached
    /// the last settings read are kept (and logged as stale) rather than failing the caller.
    pub async fn get(&self) -> Result<RuntimeSettings, SettingsError> {
        let now = self.clock.now();
        let mut cache = self.cache.lock().await;
        if let Some((read_at, settings)) = cache.as_ref()
            && now - *read_at < self.ttl
        {
            return Ok(settings.clone());
        }
        match self.read().await {
            Ok(settings) => {
                *cache = Some((now, settings.clone()));
                Ok(settings)
            }
            Err(SettingsError::Unavailable(reason)) if cache.is_some() => {
                tracing::warn!(path = %self.path, %reason, "SSM unavailable; keeping the settings read before");
                Ok(cache.as_ref().map(|(_, s)| s.clone()).unwrap_or_default())
            }
            Err(e) => Err(e),
        }
    }

    async fn read(&self) -> Result<RuntimeSettings, SettingsError> {
        let mut settings = RuntimeSettings::default();
        let mut owner = OwnerParts::default();
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(&self.path)
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let failure = Failure::of(&e);
                if failure.transient {
                    SettingsError::Unavailable(failure.message)
                } else {
                    SettingsError::Refused(failure.message)
                }
            })?;
            for parameter in page.parameters() {
                let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else { continue };
                let short = name.strip_prefix(&self.path).unwrap_or(name);
                apply(&mut settings, &mut owner, short, name, value)?;
            }
        }
        settings.podcast_owner = owner.finish(&self.path)?;
        Ok(settings)
    }
}

/// The podcast owner's two parameters as read, checked together once all are read.
#[derive(Debug, Default)]
struct OwnerParts {
    name: Option<String>,
    email: Option<String>,
}

impl OwnerParts {
    fn finish(self, path: &str) -> Result<Option<PodcastOwner>, SettingsError> {
        match (self.name, self.email) {
            (None, None) => Ok(None),
            (Some(name), Some(email)) => Ok(Some(PodcastOwner { name, email })),
            (Some(_), None) => Err(SettingsError::Invalid {
                name: format!("{path}podcast-owner-email"),
                reason: "missing, while podcast-owner-name is set: set both or neither".into(),
            }),
            (None, Some(_)) => Err(SettingsError::Invalid {
                name: format!("{path}podcast-owner-name"),
                reason: "missing, while podcast-owner-email is set: set both or neither".into(),
            }),
        }
    }
}

fn apply(
    settings: &mut RuntimeSettings,
    owner: &mut OwnerParts,
    short: &str,
    full: &str,
    value: &str,
) -> Result<(), SettingsError> {
    let invalid = |reason: String| SettingsError::Invalid { name: full.to_owned(), reason };
    match short {
        "default-voice" => {
            let voice = value.trim();
            if voice.is_empty() {
                return Err(invalid("empty voice".into()));
            }
            settings.default_voice = VoiceId::new(voice);
        }
        "default-engine" => {
            settings.default_engine = value.trim().parse().map_err(|e| invalid(format!("{e}")))?
        }
        "allowed-hosts" => {
            settings.allowed_hosts = value
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
        }
        "podcast-owner-name" => {
            let name = value.trim();
            if name.is_empty() || name.len() > 255 {
                return Err(invalid("a name of 1 to 255 characters".into()));
            }
            owner.name = Some(name.to_owned());
        }
        "podcast-owner-email" => {
            let email = value.trim();
            let at = email.find('@');
            if at.is_none_or(|i| i == 0 || i == email.len() - 1)
                || email.contains(char::is_whitespace)
                || email.len() > 255
            {
                return Err(invalid(format!("'{email}' is not an email address")));
            }
            owner.email = Some(email.to_owned());
        }
        "websub-secret" => {
            // The value is never part of the error.
            settings.websub_secret = Some(WebSubSecret::new(value).ok_or_else(|| {
                invalid(format!("a secret of at least {} characters", WebSubSecret::MIN_CHARS))
            })?);
        }
        other => tracing::debug!(parameter = other, "unknown settings parameter ignored"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_missing_variable_is_named() {
        let env = HashMap::from([(BUS_VAR, "lector"), (BUCKET_VAR, " ")]);
        let err = Config::from_lookup(|n| env.get(n).map(|v| (*v).to_owned())).unwrap_err();
        assert_eq!(err, ConfigError::Missing(vec![TABLE_VAR.to_owned(), BUCKET_VAR.to_owned()]));
        assert_eq!(err.to_string(), "missing environment variables: LECTOR_EVENT_TABLE, LECTOR_BUCKET");

        let env = HashMap::from([(TABLE_VAR, "events"), (BUS_VAR, "lector"), (BUCKET_VAR, "audio")]);
        let config = Config::from_lookup(|n| env.get(n).map(|v| (*v).to_owned())).unwrap();
        assert_eq!(config, Config { table: "events".into(), bus: "lector".into(), bucket: "audio".into() });
    }

    #[test]
    fn parameters_are_checked() {
        let mut s = RuntimeSettings::default();
        let o = &mut OwnerParts::default();
        apply(&mut s, o, "default-voice", "/p/default-voice", " Matthew ").unwrap();
        apply(&mut s, o, "allowed-hosts", "/p/allowed-hosts", "Intranet.example, ,127.0.0.1").unwrap();
        apply(&mut s, o, "default-engine", "/p/default-engine", "long-form").unwrap();
        assert_eq!((&s.default_voice, s.default_engine), (&VoiceId::new("Matthew"), VoiceEngine::LongForm));
        assert_eq!(s.allowed_hosts, ["intranet.example", "127.0.0.1"]);
        assert!(matches!(
            apply(&mut s, o, "default-voice", "/p/default-voice", " "),
            Err(SettingsError::Invalid { name, .. }) if name == "/p/default-voice"
        ));
        assert!(apply(&mut s, o, "default-engine", "/p/default-engine", "loud").is_err());
    }

    #[test]
    fn the_websub_secret_must_be_long_and_is_never_shown() {
        let mut s = RuntimeSettings::default();
        let o = &mut OwnerParts::default();
        let err = apply(&mut s, o, "websub-secret", "/p/websub-secret", "short-secret").unwrap_err();
        assert!(matches!(&err, SettingsError::Invalid { name, .. } if name == "/p/websub-secret"), "{err}");
        assert!(!err.to_string().contains("short-secret"), "{err}");
        assert_eq!(s.websub_secret, None);
        apply(&mut s, o, "websub-secret", "/p/websub-secret", " a-secret-of-28-characters!! ").unwrap();
        let secret = s.websub_secret.as_ref().expect("set");
        assert_eq!(secret.expose(), "a-secret-of-28-characters!!");
        assert!(!format!("{s:?}").contains("a-secret"), "{s:?}");
    }

    #[test]
    fn the_podcast_owner_is_both_parameters_or_neither() {
        let mut s = RuntimeSettings::default();
        let mut o = OwnerParts::default();
        apply(&mut s, &mut o, "podcast-owner-name", "/p/podcast-owner-name", " Ada Lovelace ").unwrap();
        apply(&mut s, &mut o, "podcast-owner-email", "/p/podcast-owner-email", "ada@example.org").unwrap();
        assert_eq!(
            o.finish("/p/").unwrap(),
            Some(PodcastOwner { name: "Ada Lovelace".into(), email: "ada@example.org".into() })
        );
        assert_eq!(OwnerParts::default().finish("/p/").unwrap(), None);
        let half = OwnerParts { name: Some("Ada".into()), email: None }.finish("/p/").unwrap_err();
        assert!(
            matches!(&half, SettingsError::Invalid { name, .. } if name == "/p/podcast-owner-email"),
            "{half:?}"
        );
        let half = OwnerParts { name: None, email: Some("a@b".into()) }.finish("/p/").unwrap_err();
        assert!(matches!(&half, SettingsError::Invalid { name, .. } if name == "/p/podcast-owner-name"));
        let mut o = OwnerParts::default();
        for bad in ["ada", "@example.org", "ada@", "ada @example.org"] {
            let err =
                apply(&mut s, &mut o, "podcast-owner-email", "/p/podcast-owner-email", bad).unwrap_err();
            assert!(err.to_string().contains("not an email address"), "{bad}: {err}");
        }
        assert!(apply(&mut s, &mut o, "podcast-owner-name", "/p/podcast-owner-name", "  ").is_err());
    }
}
