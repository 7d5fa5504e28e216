//! SDK configs built with a rustls/ring HTTPS client (the SDK's default client pulls aws-lc,
//! slow to build), and the classification of SDK errors into transient and permanent.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The HTTPS client every Lector client uses.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https()
}

/// The SDK config from the environment (region, credentials: on Lambda, the function's role),
/// optionally pointed at another endpoint (an emulator).
pub async fn load(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// Error codes AWS services use for throttling and for failures on their side.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "SlowDown",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceFailureException",
    "LimitExceededException",
];

/// What went wrong in an SDK call, in the terms the adapters decide on.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// The service's error code, when the service answered.
    pub code: Option<String>,
    /// The whole error chain, for the named error's reason.
    pub message: String,
    /// Whether retrying later can succeed: timeouts, connection failures, throttling, 5xx.
    pub transient: bool,
}

impl Failure {
    pub fn of<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = DisplayErrorContext(err).to_string();
        match err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code().map(str::to_owned);
                let status = ctx.raw().status().as_u16();
                let transient = status >= 500
                    || status == 429
                    || code.as_deref().is_some_and(|c| TRANSIENT_CODES.contains(&c));
                Failure { code, message, transient }
            }
            SdkError::ResponseError(_) | SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                Failure { code: None, message, transient: true }
            }
            _ => Failure { code: None, message, transient: false },
        }
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}
