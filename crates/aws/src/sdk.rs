//! SDK configs built with a rustls/ring HTTPS client (the SDK's default client pulls aws-lc,
//! slow to build), and the classification of SDK errors into transient and permanent.

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The Amazon Trust Services root certificates, which every AWS service endpoint's certificate
/// chains to (<https://www.amazontrust.com/repository/>).
pub const AMAZON_TRUST_SERVICES_PEM: &str = include_str!("amazon-trust-services.pem");

/// Which certificate authorities an SDK client's HTTPS connections trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The machine's trust store: for commands a person runs, where a proxy or a private CA
    /// the machine trusts must keep working.
    System,
    /// The five Amazon Trust Services roots, compiled in: for the Lambda functions, which talk
    /// to AWS endpoints only. With the system store each cold start would read and parse the
    /// platform's ~140 roots (4 ms, then 0.4 ms per further client).
    ///
    /// The SDK's HTTPS client also builds a throwaway connector (its trust store parsed again)
    /// for every SDK client constructed, only to surface a system store that cannot be read.
    /// Compiled-in roots cannot fail that way, so this client skips it: the one connector is
    /// built by the first request and shared by every client of the config.
    AmazonTrustServices,
}

/// The HTTPS client every Lector SDK client uses: one per config, shared by its clients.
pub fn http_client(trust: Trust) -> SharedHttpClient {
    let builder =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    match trust {
        Trust::System => builder.build_https(),
        Trust::AmazonTrustServices => SharedHttpClient::new(ConnectorOnFirstRequest(
            builder
                .tls_context(
                    TlsContext::builder()
                        .with_trust_store(TrustStore::empty().with_pem_certificate(AMAZON_TRUST_SERVICES_PEM))
                        .build()
                        .expect("a trust store of PEM certificates is a valid TLS context"),
                )
                .build_https(),
        )),
    }
}

/// An HTTPS client whose connectors are built when a request needs one, not also once per SDK
/// client at its construction ([`Trust::AmazonTrustServices`]).
#[derive(Debug)]
struct ConnectorOnFirstRequest(SharedHttpClient);

impl HttpClient for ConnectorOnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// The SDK config from the environment (region, credentials: on Lambda, the function's role),
/// optionally pointed at another endpoint (an emulator), its connections trusting the machine's
/// certificate authorities.
pub async fn load(endpoint_url: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client(Trust::System));
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The SDK config of a Lambda function: [`Trust::AmazonTrustServices`], and the region and the
/// role's credentials from the variables Lambda sets (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), where they always are. The default chains
/// would also build the profile, web-identity (an STS client), container and instance-metadata
/// providers at every cold start, none of which a function can use.
pub async fn load_in_lambda() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client(Trust::AmazonTrustServices))
        .region(EnvironmentVariableRegionProvider::new())
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .load()
        .await
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

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn the_lambda_trust_store_is_the_five_amazon_trust_services_roots() {
        let certs = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the bundle is PEM");
        let names = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(certs.len(), names.len());
        for (cert, name) in certs.iter().zip(names) {
            assert!(cert.windows(name.len()).any(|w| w == name.as_bytes()), "{name} is not in its place");
        }
    }

    /// The wrapped client of [`Trust::AmazonTrustServices`], counting what the SDK asks of it.
    #[derive(Debug)]
    struct Counting {
        inner: SharedHttpClient,
        validations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        ) -> SharedHttpConnector {
            self.inner.http_connector(settings, components)
        }

        fn validate_base_client_config(
            &self,
            components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder,
            cfg: &aws_smithy_types::config_bag::ConfigBag,
        ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
            self.validations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.validate_base_client_config(components, cfg)
        }
    }

    fn config_with(http: SharedHttpClient) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(http)
            .build()
    }

    #[test]
    fn constructing_clients_builds_no_connector_on_the_lambda_trust_store() {
        let validations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counting = || Counting {
            inner: aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                .build_https(),
            validations: validations.clone(),
        };
        // The SDK's own client is validated (its connector built and dropped) per SDK client...
        let plain = config_with(SharedHttpClient::new(counting()));
        let _ = aws_sdk_dynamodb::Client::new(&plain);
        let per_client = validations.swap(0, std::sync::atomic::Ordering::SeqCst);
        assert!(per_client >= 1, "the SDK validates its HTTP client when a client is built");
        // ...and the Lambda one passes no validation on, whatever the number of clients.
        let lambda =
            config_with(SharedHttpClient::new(ConnectorOnFirstRequest(SharedHttpClient::new(counting()))));
        let _ = aws_sdk_dynamodb::Client::new(&lambda);
        let _ = aws_sdk_dynamodb::Client::new(&lambda);
        assert_eq!(validations.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_client_trusting_amazon_trust_services_connects_with_its_first_request() {
        // The connector is built from the compiled-in roots when the first request needs it (a
        // certificate rustls cannot take would panic there); the request then fails to connect
        // to a closed port, as a dispatch failure, which the adapters retry.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = closed.local_addr().expect("its address").port();
        drop(closed);
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .endpoint_url(format!("https://127.0.0.1:{port}"))
            .http_client(http_client(Trust::AmazonTrustServices))
            .build();
        let client = aws_sdk_dynamodb::Client::new(&config);
        let err = client.list_tables().send().await.expect_err("nothing listens there");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "{}", DisplayErrorContext(&err));
        let failure = Failure::of(&err);
        assert!(failure.transient, "{}", failure.message);
    }
}
