//! Runtime settings (default voice, limits, allowed hosts) from SSM Parameter Store, read at
//! most once per five minutes per instance, and the guarded fetcher that follows them: a
//! changed `allowed-hosts` parameter takes effect within five minutes, without a deploy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lector_aws::settings::{RuntimeSettings, SettingsError, SettingsSource};
use lector_core::ports::Clock;
use lector_core::{ErrorKind, StepError};
use lector_pipeline::fetch::{AllowList, FetchPolicy, Fetcher};
use lector_pipeline::websub::WebSubConfig;
use tokio::sync::Mutex;
use url::Url;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A settings failure in the step error vocabulary: an unreachable Parameter Store is
/// transient; an invalid parameter is an operator's mistake, named, and not retried.
pub fn settings_error(e: SettingsError) -> StepError {
    let kind = match &e {
        SettingsError::Unavailable(_) => ErrorKind::Transient,
        SettingsError::Invalid { .. } | SettingsError::Refused(_) => ErrorKind::Internal,
    };
    StepError::new(kind, format!("runtime settings: {e}"))
}

/// WebSub as the settings and the API's public address set it up: on when both the
/// `websub-secret` parameter and `LECTOR_PUBLIC_URL` are set (hubs call back at
/// `<public URL>/websub/<feed id>`), off otherwise.
pub fn websub(public_url: Option<&Url>, settings: &RuntimeSettings) -> Option<WebSubConfig> {
    let secret = settings.websub_secret.as_ref()?;
    let Some(base) = public_url else {
        tracing::warn!("websub-secret is set but LECTOR_PUBLIC_URL is not: WebSub stays off");
        return None;
    };
    WebSubConfig::new(base.clone(), secret.expose())
        .inspect_err(|e| tracing::warn!(error = %e, "WebSub stays off"))
        .ok()
}

/// Where settings come from: SSM on Lambda, fixed values in tests.
#[async_trait::async_trait]
pub trait Settings: Send + Sync {
    async fn get(&self) -> Result<RuntimeSettings, SettingsError>;
}

#[async_trait::async_trait]
impl Settings for SettingsSource {
    async fn get(&self) -> Result<RuntimeSettings, SettingsError> {
        SettingsSource::get(self).await
    }
}

#[async_trait::async_trait]
impl Settings for RuntimeSettings {
    async fn get(&self) -> Result<RuntimeSettings, SettingsError> {
        Ok(self.clone())
    }
}

/// The settings under `path`, cached for [`lector_aws::settings::CACHE_TTL`].
pub fn from_ssm(client: aws_sdk_ssm::Client, path: &str) -> SettingsSource {
    SettingsSource::new(client, path, Arc::new(SystemClock))
}

/// The allow list of the settings' `allowed-hosts`.
pub fn allow_list(settings: &RuntimeSettings) -> Result<AllowList, StepError> {
    AllowList::parse(&settings.allowed_hosts.join(",")).map_err(|e| {
        StepError::new(ErrorKind::Internal, format!("runtime settings: allowed-hosts is not valid: {e}"))
    })
}

/// A guarded fetcher per allow list: built again only when the allowed hosts change.
#[derive(Debug, Default)]
pub struct Fetchers {
    current: Mutex<Option<(Vec<String>, Arc<Fetcher>)>>,
}

impl Fetchers {
    pub fn new() -> Self {
        Self::default()
    }

    /// The fetcher for `settings`.
    pub async fn for_settings(&self, settings: &RuntimeSettings) -> Result<Arc<Fetcher>, StepError> {
        let mut current = self.current.lock().await;
        if let Some((hosts, fetcher)) = current.as_ref()
            && *hosts == settings.allowed_hosts
        {
            return Ok(fetcher.clone());
        }
        let policy = FetchPolicy { allow: allow_list(settings)?, ..FetchPolicy::default() };
        let fetcher =
            Arc::new(Fetcher::new(policy).map_err(|e| {
                StepError::new(ErrorKind::Internal, format!("building the HTTP client: {e}"))
            })?);
        *current = Some((settings.allowed_hosts.clone(), fetcher.clone()));
        Ok(fetcher)
    }
}

#[cfg(test)]
mod tests {
    use lector_aws::settings::WebSubSecret;

    use super::*;

    #[test]
    fn websub_is_on_only_with_a_secret_and_a_public_address() {
        let url = Url::parse("https://listen.example/").unwrap();
        let mut settings = RuntimeSettings::default();
        assert!(websub(Some(&url), &settings).is_none(), "no secret");
        settings.websub_secret = WebSubSecret::new("sixteen-chars-at-least");
        assert!(websub(None, &settings).is_none(), "no public address");
        let on = websub(Some(&url), &settings).expect("both set");
        let feed: lector_core::FeedId = "0123456789abcdef".parse().unwrap();
        assert_eq!(on.callback(&feed).as_str(), "https://listen.example/websub/0123456789abcdef");
    }

    #[tokio::test]
    async fn a_fetcher_is_kept_until_the_allowed_hosts_change() {
        let fetchers = Fetchers::new();
        let mut settings = RuntimeSettings::default();
        let a = fetchers.for_settings(&settings).await.unwrap();
        let b = fetchers.for_settings(&settings).await.unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        settings.allowed_hosts = vec!["intranet.example".into(), "10.0.0.0/8".into()];
        let c = fetchers.for_settings(&settings).await.unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(!c.policy().allow.is_empty());
    }

    #[tokio::test]
    async fn an_invalid_allow_list_is_named_and_not_retried() {
        let settings =
            RuntimeSettings { allowed_hosts: vec!["10.0.0.0/99".into()], ..RuntimeSettings::default() };
        let err = Fetchers::new().for_settings(&settings).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.cause.contains("allowed-hosts"), "{err}");
    }

    #[test]
    fn unreachable_settings_are_transient() {
        assert!(settings_error(SettingsError::Unavailable("timeout".into())).kind.is_transient());
        let invalid = settings_error(SettingsError::Invalid {
            name: "/p/default-engine".into(),
            reason: "loud".into(),
        });
        assert_eq!(invalid.kind, ErrorKind::Internal);
        assert!(invalid.cause.contains("/p/default-engine"));
    }
}
