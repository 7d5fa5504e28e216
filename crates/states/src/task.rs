//! Task states' side of the engine: the registry that maps a `Resource` (a Lambda ARN, a
//! substituted `${NameFunctionArn}`, a function name, or `arn:aws:states:::lambda:invoke`
//! with `FunctionName`) to an async Rust handler, and what a handler receives and returns.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::clock::Clock;

/// A task's failure, as a Lambda function's error: a stable error name (`Lector.Transient`)
/// that `Retry` and `Catch` match on, and a cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    /// The error name.
    pub error: String,
    /// The cause (for Lambda functions, usually the error JSON).
    pub cause: String,
}

impl TaskError {
    /// A task error with a name and a cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError { error: error.into(), cause: cause.into() }
    }
}

/// What a handler knows about the call.
#[derive(Clone)]
pub struct TaskContext {
    /// The execution's ARN (`$$.Execution.Id`).
    pub execution_arn: Arc<str>,
    /// The execution's name (`$$.Execution.Name`).
    pub execution_name: Arc<str>,
    /// The state machine's name.
    pub state_machine_name: Arc<str>,
    /// The Task state's name.
    pub state_name: Arc<str>,
    /// The resource the state names.
    pub resource: Arc<str>,
    /// The index of the Map item this task runs for, innermost Map first, if any.
    pub map_item_index: Option<u64>,
    /// How many times this state has been retried so far (`$$.State.RetryCount`).
    pub retry_count: u32,
    /// The `ClientContext` a `lambda:invoke` task passed (base64-encoded JSON), if any.
    pub client_context: Option<Arc<str>>,
    /// The task token of a `.waitForTaskToken` task (`$$.Task.Token`): the task ends when the
    /// engine is sent this token's success or failure.
    pub task_token: Option<Arc<str>>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("execution_arn", &self.execution_arn)
            .field("state_name", &self.state_name)
            .field("map_item_index", &self.map_item_index)
            .field("retry_count", &self.retry_count)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// The attempt number, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.retry_count + 1
    }

    /// The engine's clock (virtual in tests).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sleeps on the engine's clock.
    pub async fn sleep(&self, d: Duration) {
        self.clock.sleep(d).await
    }
}

/// What a handler returned: JSON, or the raw bytes of a Lambda response (their size is what
/// counts against the 256 KiB limit and what `lambda:invoke` reports as `Content-Length`).
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    /// A JSON value (sized as compact JSON).
    Json(Value),
    /// A serialized payload, parsed as JSON by the engine.
    Raw(String),
}

/// A task handler.
pub trait TaskHandler: Send + Sync + 'static {
    /// Runs the task.
    fn invoke(&self, input: Value, ctx: TaskContext) -> BoxFuture<'static, Result<TaskOutput, TaskError>>;
}

struct FnHandler<F>(F);

impl<F, Fut> TaskHandler for FnHandler<F>
where
    F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
{
    fn invoke(&self, input: Value, ctx: TaskContext) -> BoxFuture<'static, Result<TaskOutput, TaskError>> {
        let fut = (self.0)(input, ctx);
        Box::pin(async move { fut.await.map(TaskOutput::Json) })
    }
}

struct RawHandler<F>(F);

impl<F, Fut> TaskHandler for RawHandler<F>
where
    F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, TaskError>> + Send + 'static,
{
    fn invoke(&self, input: Value, ctx: TaskContext) -> BoxFuture<'static, Result<TaskOutput, TaskError>> {
        let fut = (self.0)(input, ctx);
        Box::pin(async move { fut.await.map(TaskOutput::Raw) })
    }
}

/// Maps resources to handlers.
///
/// A handler registered under a Lambda ARN also answers to the function's bare name and to
/// `lambda:invoke` calls naming it (by name, partial or full ARN, with or without a version
/// qualifier); one registered under a function name answers to any ARN of that function.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    handlers: HashMap<String, Arc<dyn TaskHandler>>,
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<&String> = self.handlers.keys().collect();
        keys.sort();
        f.debug_struct("TaskRegistry").field("resources", &keys).finish()
    }
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        TaskRegistry::default()
    }

    /// Registers an async function returning JSON.
    pub fn register<F, Fut>(&mut self, resource: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.register_handler(resource, Arc::new(FnHandler(f)))
    }

    /// Registers an async function returning a serialized payload, as a Lambda runtime does.
    pub fn register_raw<F, Fut>(&mut self, resource: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, TaskError>> + Send + 'static,
    {
        self.register_handler(resource, Arc::new(RawHandler(f)))
    }

    /// Registers a handler object.
    pub fn register_handler(
        &mut self,
        resource: impl Into<String>,
        handler: Arc<dyn TaskHandler>,
    ) -> &mut Self {
        let resource = resource.into();
        let key = match parse_function_ref(&resource) {
            Some(f) => f.name,
            None => resource,
        };
        self.handlers.insert(key, handler);
        self
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// The handler for a resource or function reference.
    pub fn lookup(&self, reference: &str) -> Option<Arc<dyn TaskHandler>> {
        if let Some(h) = self.handlers.get(reference) {
            return Some(h.clone());
        }
        // The common case, a full Lambda ARN, without building a FunctionRef.
        if reference.starts_with("arn:")
            && let Some((_, rest)) = reference.split_once(":function:")
        {
            let name = rest.split(':').next().unwrap_or(rest);
            return self.handlers.get(name).cloned();
        }
        parse_function_ref(reference).and_then(|f| self.handlers.get(&f.name).cloned())
    }
}

/// A reference to a Lambda function: a name, a partial ARN (`123:function:name`) or a full
/// ARN, optionally with a version or alias qualifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    pub name: String,
    pub region: Option<String>,
    pub account: Option<String>,
    pub qualifier: Option<String>,
}

pub(crate) fn parse_function_ref(s: &str) -> Option<FunctionRef> {
    let parts: Vec<&str> = s.split(':').collect();
    let valid_name =
        |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match parts.as_slice() {
        ["arn", _partition, "lambda", region, account, "function", name, rest @ ..]
            if rest.len() <= 1 && valid_name(name) =>
        {
            Some(FunctionRef {
                name: name.to_string(),
                region: Some(region.to_string()),
                account: Some(account.to_string()),
                qualifier: rest.first().map(|q| q.to_string()),
            })
        }
        [account, "function", name, rest @ ..] if rest.len() <= 1 && valid_name(name) => Some(FunctionRef {
            name: name.to_string(),
            region: None,
            account: Some(account.to_string()),
            qualifier: rest.first().map(|q| q.to_string()),
        }),
        [name] if valid_name(name) => {
            Some(FunctionRef { name: name.to_string(), region: None, account: None, qualifier: None })
        }
        [name, qualifier] if valid_name(name) && !qualifier.is_empty() => Some(FunctionRef {
            name: name.to_string(),
            region: None,
            account: None,
            qualifier: Some(qualifier.to_string()),
        }),
        _ => None,
    }
}

/// How the engine calls a `Resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceKind {
    /// A Lambda ARN (or a name / placeholder standing for a function): the effective
    /// parameters are the event, the function's response is the result.
    Function,
    /// `arn:aws:states:::lambda:invoke` (and its `.waitForTaskToken` pattern): `FunctionName`
    /// and `Payload` come from the parameters; the result wraps the payload in the Lambda
    /// `Invoke` response.
    LambdaInvoke,
    /// Another service integration, `arn:aws:states:::<service>:<action>[.pattern]`.
    Service { service: String, action: String },
}

pub(crate) fn resource_kind(resource: &str) -> ResourceKind {
    if let Some(rest) = resource
        .strip_prefix("arn:aws:states:::")
        .or_else(|| resource.strip_prefix("arn:").and_then(|r| r.split_once(":states:::")).map(|(_, r)| r))
    {
        let (service, action) = rest.split_once(':').unwrap_or((rest, ""));
        if service == "lambda" && matches!(action, "invoke" | "invoke.waitForTaskToken") {
            return ResourceKind::LambdaInvoke;
        }
        return ResourceKind::Service { service: service.to_string(), action: action.to_string() };
    }
    ResourceKind::Function
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> TaskRegistry {
        let mut r = TaskRegistry::new();
        r.register("arn:aws:lambda:us-east-1:111111111111:function:fetch", |v, _| async move { Ok(v) });
        r.register("stitch", |v, _| async move { Ok(v) });
        r.register("${PlaceholderArn}", |v, _| async move { Ok(v) });
        r
    }

    #[test]
    fn a_function_answers_to_every_form_of_its_name() {
        let r = noop();
        for reference in [
            "arn:aws:lambda:us-east-1:111111111111:function:fetch",
            "arn:aws:lambda:eu-west-1:222222222222:function:fetch:$LATEST",
            "111111111111:function:fetch",
            "fetch",
            "fetch:live",
            "arn:aws:lambda:us-east-1:111111111111:function:stitch",
            "${PlaceholderArn}",
        ] {
            assert!(r.lookup(reference).is_some(), "{reference}");
        }
        assert!(r.lookup("other").is_none());
        assert!(r.lookup("arn:aws:lambda:us-east-1:1:function:other").is_none());
    }

    #[test]
    fn resources_are_classified() {
        assert_eq!(resource_kind("arn:aws:states:::lambda:invoke"), ResourceKind::LambdaInvoke);
        assert_eq!(
            resource_kind("arn:aws:states:::lambda:invoke.waitForTaskToken"),
            ResourceKind::LambdaInvoke
        );
        assert_eq!(
            resource_kind("arn:aws:states:::lambda:invoke.sync"),
            ResourceKind::Service { service: "lambda".into(), action: "invoke.sync".into() }
        );
        assert_eq!(resource_kind("arn:aws:lambda:us-east-1:1:function:f"), ResourceKind::Function);
        assert_eq!(
            resource_kind("arn:aws:states:::sqs:sendMessage"),
            ResourceKind::Service { service: "sqs".into(), action: "sendMessage".into() }
        );
    }
}
