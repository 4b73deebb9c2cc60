//! Handlers: the user's code that runs service steps and receives outbox messages.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;
use uuid::Uuid;

use super::Engine;
use crate::store::OutboxMessage;

/// What a service-step handler is given.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job id: the idempotency key for whatever the handler does. A job may run more than
    /// once (at-least-once), always with the same id.
    pub job_id: Uuid,
    /// The instance.
    pub instance_id: Uuid,
    /// The service step.
    pub step: String,
    /// The instance variables when the step was entered.
    pub variables: Value,
    /// Which claim this is, starting at 1.
    pub attempt: i32,
    /// The step's static settings from the definition (BPMN task headers); empty if none.
    pub headers: std::collections::BTreeMap<String, String>,
}

/// A handler's failure: a technical one (retried under the step's policy) or a named
/// business error (`CardExpired`), which takes the step's modelled error path at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    message: String,
    code: Option<String>,
}

impl HandlerError {
    /// A technical failure with this text.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            code: None,
        }
    }

    /// A business error named `code`: if the step routes that code (`errors`), the instance
    /// takes that path without retries; otherwise it counts as a technical failure.
    pub fn business(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            code: Some(code.into()),
        }
    }

    /// The text.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The business error code, if it is one.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(e: E) -> Self {
        HandlerError::new(e.to_string())
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs a service step. Implemented for every `Fn(JobContext) -> impl Future<Output =
/// Result<Value, HandlerError>>`.
pub trait Handler: Send + Sync + 'static {
    /// Run the step; the result is mapped into the instance variables.
    fn call(&self, job: JobContext) -> BoxFuture<Result<Value, HandlerError>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
{
    fn call(&self, job: JobContext) -> BoxFuture<Result<Value, HandlerError>> {
        Box::pin(self(job))
    }
}

/// Receives outbox messages in-process. Implemented for every `Fn(Engine, OutboxMessage) ->
/// impl Future<Output = Result<(), HandlerError>>`; the engine is the one running the
/// subscriber, for sending replies. Delivery is at least once: deduplicate by `message_id`
/// (replies with an id derived from it are deduplicated by the engine's inbox).
pub trait Subscriber: Send + Sync + 'static {
    /// Handle one message; an error makes it (and those after it) be delivered again.
    fn call(&self, engine: Engine, message: OutboxMessage) -> BoxFuture<Result<(), HandlerError>>;
}

impl<F, Fut> Subscriber for F
where
    F: Fn(Engine, OutboxMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn call(&self, engine: Engine, message: OutboxMessage) -> BoxFuture<Result<(), HandlerError>> {
        Box::pin(self(engine, message))
    }
}
