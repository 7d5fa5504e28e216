//! What a deployment names, read from the function's environment: every variable a function
//! needs is required, and all the missing ones are named at once.

use std::collections::HashMap;

pub use lector_aws::settings::ConfigError;
use lector_aws::settings::{BUCKET_VAR, SETTINGS_PATH_VAR, STATE_MACHINE_VAR, TABLE_VAR, require_all};

/// The list of subscriptions' table.
pub use lector_aws::feed_index::FEED_TABLE_VAR;
/// The list projection's table.
pub use lector_aws::index::INDEX_TABLE_VAR;
/// The polling state machine, for the API's polls on demand.
pub use lector_aws::polls::POLL_STATE_MACHINE_VAR;

/// The CloudWatch namespace of the functions' metrics (`Lector/<stack>` in the template).
pub const METRICS_NAMESPACE_VAR: &str = "LECTOR_METRICS_NAMESPACE";
/// The public base address of the API, when it is served under another name than its own
/// (a custom domain). Optional: answers otherwise link to the address they were asked at.
pub const PUBLIC_URL_VAR: &str = "LECTOR_PUBLIC_URL";
/// Set by Lambda: the function's name, the default dimension of its metrics.
pub const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Where variables come from: the process environment, or a map in a test.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self { vars: None }
    }

    /// Only these variables.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { vars: Some(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()) }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// The named variables, or an error naming every one that is missing or empty.
    pub fn require<const N: usize>(&self, names: [&str; N]) -> Result<[String; N], ConfigError> {
        require_all(|name| self.get(name), names)
    }

    /// An optional variable: `None` when unset or empty.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }
}

/// What a workflow step needs: the event log and the objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepConfig {
    pub table: String,
    pub bucket: String,
    pub namespace: String,
}

impl StepConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let [table, bucket, namespace] = env.require([TABLE_VAR, BUCKET_VAR, METRICS_NAMESPACE_VAR])?;
        Ok(Self { table, bucket, namespace })
    }
}

/// The list of subscriptions' table, for the functions that read it.
pub fn feed_table(env: &Env) -> Result<String, ConfigError> {
    let [table] = env.require([FEED_TABLE_VAR])?;
    Ok(table)
}

/// The SSM path of the runtime settings, for the functions that read them.
pub fn settings_path(env: &Env) -> Result<String, ConfigError> {
    let [path] = env.require([SETTINGS_PATH_VAR])?;
    Ok(path)
}

/// What `start-conversion` needs: the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartConfig {
    pub state_machine_arn: String,
    pub namespace: String,
}

impl StartConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let [state_machine_arn, namespace] = env.require([STATE_MACHINE_VAR, METRICS_NAMESPACE_VAR])?;
        Ok(Self { state_machine_arn, namespace })
    }
}

/// What `project-conversions` needs: the log (to fold a stream again after a gap), the list
/// table and the list of subscriptions' table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorConfig {
    pub table: String,
    pub index_table: String,
    pub feed_table: String,
    pub namespace: String,
}

impl ProjectorConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let [table, index_table, feed_table, namespace] =
            env.require([TABLE_VAR, INDEX_TABLE_VAR, FEED_TABLE_VAR, METRICS_NAMESPACE_VAR])?;
        Ok(Self { table, index_table, feed_table, namespace })
    }
}

/// What both API functions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub index_table: String,
    pub settings_path: String,
    pub namespace: String,
    pub public_url: Option<url::Url>,
}

impl ApiConfig {
    pub fn from_env(env: &Env) -> Result<Self, ApiConfigError> {
        let [index_table, settings_path, namespace] =
            env.require([INDEX_TABLE_VAR, SETTINGS_PATH_VAR, METRICS_NAMESPACE_VAR])?;
        let public_url = public_url(env)?;
        Ok(Self { index_table, settings_path, namespace, public_url })
    }
}

/// The API's public address (`LECTOR_PUBLIC_URL`), when set: it must be an http(s) address.
pub fn public_url(env: &Env) -> Result<Option<url::Url>, ApiConfigError> {
    env.optional(PUBLIC_URL_VAR)
        .map(|raw| {
            url::Url::parse(&raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or(ApiConfigError::PublicUrl(raw))
        })
        .transpose()
}

/// Where the `api` function keeps conversions and subscriptions: the event log, the objects,
/// the list of subscriptions and the polling workflow it starts polls on. The preview keeps
/// none and is given none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub table: String,
    pub bucket: String,
    pub feed_table: String,
    pub poll_state_machine_arn: String,
}

impl StoreConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let [table, bucket, feed_table, poll_state_machine_arn] =
            env.require([TABLE_VAR, BUCKET_VAR, FEED_TABLE_VAR, POLL_STATE_MACHINE_VAR])?;
        Ok(Self { table, bucket, feed_table, poll_state_machine_arn })
    }
}

/// The API's configuration and its function's stores', or one error: every missing variable
/// of both named at once, then (as [`ApiConfig::from_env`] does) a public URL that is not one.
pub fn api_and_stores<S>(
    api: Result<ApiConfig, ApiConfigError>,
    stores: Result<S, ConfigError>,
) -> Result<(ApiConfig, S), ApiConfigError> {
    match (api, stores) {
        (Ok(api), Ok(stores)) => Ok((api, stores)),
        (Err(ApiConfigError::Missing(ConfigError::Missing(mut names))), Err(ConfigError::Missing(more))) => {
            names.extend(more);
            Err(ApiConfigError::Missing(ConfigError::Missing(names)))
        }
        (Err(ApiConfigError::PublicUrl(_)), Err(missing)) | (Ok(_), Err(missing)) => Err(missing.into()),
        (Err(e), Ok(_)) => Err(e),
    }
}

/// Why the API's configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiConfigError {
    #[error(transparent)]
    Missing(#[from] ConfigError),
    #[error("{PUBLIC_URL_VAR} '{0}' is not an http(s) address")]
    PublicUrl(String),
}

/// The function's name as Lambda gives it, or `name` outside Lambda.
pub fn function_name(env: &Env, name: &str) -> String {
    env.optional(FUNCTION_NAME_VAR).unwrap_or_else(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let env = Env::from_pairs([(TABLE_VAR, "events"), (BUCKET_VAR, "  ")]);
        let err = StepConfig::from_env(&env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("missing environment variables: {BUCKET_VAR}, {METRICS_NAMESPACE_VAR}")
        );
        let none = Env::from_pairs([]);
        let text =
            api_and_stores(ApiConfig::from_env(&none), StoreConfig::from_env(&none)).unwrap_err().to_string();
        for var in [
            TABLE_VAR,
            INDEX_TABLE_VAR,
            BUCKET_VAR,
            FEED_TABLE_VAR,
            POLL_STATE_MACHINE_VAR,
            SETTINGS_PATH_VAR,
            METRICS_NAMESPACE_VAR,
        ] {
            assert!(text.contains(var), "{var} not named in {text}");
        }
    }

    #[test]
    fn the_api_stores_are_configured_apart_and_missing_variables_come_first() {
        let preview = [
            (INDEX_TABLE_VAR, "conversions"),
            (SETTINGS_PATH_VAR, "/lector/dev/"),
            (METRICS_NAMESPACE_VAR, "L"),
        ];
        let config = ApiConfig::from_env(&Env::from_pairs(preview)).expect("the preview's variables suffice");
        assert_eq!(config.index_table, "conversions");
        let stores = StoreConfig::from_env(&Env::from_pairs(preview)).unwrap_err();
        let store_vars = vec![
            TABLE_VAR.to_owned(),
            BUCKET_VAR.to_owned(),
            FEED_TABLE_VAR.to_owned(),
            POLL_STATE_MACHINE_VAR.to_owned(),
        ];
        assert_eq!(stores, ConfigError::Missing(store_vars.clone()));
        // Missing variables first, all of them; then a bad public URL.
        let bad_url = Env::from_pairs(preview.into_iter().chain([(PUBLIC_URL_VAR, "ftp://x")]));
        assert_eq!(
            api_and_stores(ApiConfig::from_env(&bad_url), StoreConfig::from_env(&bad_url)).unwrap_err(),
            ApiConfigError::Missing(ConfigError::Missing(store_vars))
        );
        let stores = [
            (TABLE_VAR, "events"),
            (BUCKET_VAR, "objects"),
            (FEED_TABLE_VAR, "feeds"),
            (POLL_STATE_MACHINE_VAR, "arn:aws:states:us-east-1:1:stateMachine:poll-feeds"),
        ];
        let only_url =
            Env::from_pairs(preview.into_iter().chain(stores).chain([(PUBLIC_URL_VAR, "ftp://x")]));
        assert_eq!(
            api_and_stores(ApiConfig::from_env(&only_url), StoreConfig::from_env(&only_url)).unwrap_err(),
            ApiConfigError::PublicUrl("ftp://x".into())
        );
    }

    #[test]
    fn a_public_url_must_be_an_address() {
        let base = [
            (INDEX_TABLE_VAR, "conversions"),
            (SETTINGS_PATH_VAR, "/lector/dev/"),
            (METRICS_NAMESPACE_VAR, "Lector/dev"),
        ];
        let config = ApiConfig::from_env(&Env::from_pairs(base)).unwrap();
        assert_eq!(config.public_url, None);
        let with = |url| Env::from_pairs(base.into_iter().chain([(PUBLIC_URL_VAR, url)]));
        let config = ApiConfig::from_env(&with("https://listen.example/")).unwrap();
        assert_eq!(config.public_url.map(String::from).as_deref(), Some("https://listen.example/"));
        assert_eq!(
            ApiConfig::from_env(&with("ftp://x")).unwrap_err(),
            ApiConfigError::PublicUrl("ftp://x".into())
        );
    }
}
