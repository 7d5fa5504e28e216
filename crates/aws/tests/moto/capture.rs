//! An interceptor that records each request as the SDK sends it, for request shapes moto
//! does not check (or, for `RedriveExecution`, does not implement).

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde_json::Value;

/// One request: its `X-Amz-Target` (JSON protocols), path and JSON body.
#[derive(Debug, Clone)]
pub struct Captured {
    pub target: Option<String>,
    pub path: String,
    pub body: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    pub fn requests(&self) -> Vec<Captured> {
        self.0.lock().unwrap().clone()
    }
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "Capture"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request
            .body()
            .bytes()
            .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        self.0.lock().unwrap().push(Captured {
            target: request.headers().get("x-amz-target").map(str::to_owned),
            path: request.uri().to_owned(),
            body,
        });
        Ok(())
    }
}
