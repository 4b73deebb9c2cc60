//! What callers hand an engine: start requests and operator actions, and the checks on them.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::store::{Error, Result};

/// What an operator asks of one instance: see [`Engine::act`](crate::Engine::act).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Retry the step of its open incident, after setting these variables (a JSON object).
    Retry {
        /// Variables to set first.
        variables: Option<Value>,
    },
    /// Cancel it, with a reason (its completed steps are compensated first).
    Cancel {
        /// Why, recorded in its history.
        reason: String,
    },
    /// Pause it.
    Pause,
    /// Resume it.
    Resume,
}

/// A request to start an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct StartRequest {
    /// The process id.
    pub process: String,
    /// A specific version; `None`: the latest (or the tagged one).
    pub version: Option<i32>,
    /// A tag naming the version (used when `version` is `None`).
    pub tag: Option<String>,
    /// The business key.
    pub business_key: String,
    /// The initial variables: a JSON object (or null for none).
    pub variables: Value,
    /// Makes the start idempotent: the instance id is derived from the process and this key,
    /// so a second start with the same key (a retried request, say) returns the instance the
    /// first made, whatever its state, and writes nothing. At most 1,000 bytes.
    pub idempotency_key: Option<String>,
    /// The trace the instance continues (e.g. the caller's HTTP request's); `None`: a new
    /// one under the business key.
    pub trace: Option<crate::machine::Trace>,
}

impl StartRequest {
    /// Start the latest version of `process` with `business_key` and no variables.
    pub fn new(process: impl Into<String>, business_key: impl Into<String>) -> Self {
        StartRequest {
            process: process.into(),
            version: None,
            tag: None,
            business_key: business_key.into(),
            variables: Value::Object(Map::new()),
            idempotency_key: None,
            trace: None,
        }
    }

    /// Continuing this trace: its key and W3C `traceparent` (see [`Message::trace`](crate::Message::trace)).
    pub fn trace(mut self, key: impl Into<String>, traceparent: impl Into<String>) -> Self {
        self.trace = Some(crate::machine::Trace {
            key: key.into(),
            traceparent: traceparent.into(),
        });
        self
    }

    /// With an idempotency key (see [`StartRequest::idempotency_key`]).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// With these variables (a JSON object).
    pub fn variables(mut self, variables: Value) -> Self {
        self.variables = variables;
        self
    }

    /// Of this version.
    pub fn version(mut self, version: i32) -> Self {
        self.version = Some(version);
        self
    }

    /// Of the version this tag names (see [`Store::tag`](crate::Store::tag)).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }
}

/// The first integer in `v` whose magnitude is beyond 2^53 (where f64, which conditions and
/// JavaScript use, stops holding every integer), as written.
pub(super) fn inexact_integer(v: &Value) -> Option<String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match v {
        Value::Number(n) => {
            let beyond = if let Some(i) = n.as_i64() {
                i.unsigned_abs() > EXACT as u64
            } else if let Some(u) = n.as_u64() {
                u > EXACT as u64
            } else {
                // Parsed as a float: an integer literal too long for 64 bits lands here too.
                n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() > EXACT)
            };
            beyond.then(|| n.to_string())
        }
        Value::Array(a) => a.iter().find_map(inexact_integer),
        Value::Object(m) => m.values().find_map(inexact_integer),
        _ => None,
    }
}

/// The namespace of idempotent starts' derived instance ids (UUID v5 of the schema, process
/// and idempotency key).
pub(super) const IDEMPOTENT_STARTS: Uuid =
    Uuid::from_u128(0x6c6f_6e67_7275_6e00_8000_0000_0000_0001);

pub(super) fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1000 || key.chars().any(char::is_control) {
        return Err(Error::BadInput(
            "an idempotency key is 1 to 1,000 bytes without control characters".into(),
        ));
    }
    Ok(())
}

/// A business key is kept in an indexed column and shown to operators: at most 1,000 bytes
/// (like a message's correlation key), without NUL or other control characters.
pub(super) fn check_business_key(key: &str) -> Result<()> {
    if key.len() > 1000 || key.chars().any(char::is_control) {
        return Err(Error::BadInput(
            "invalid business key: at most 1,000 bytes, without NUL or other control characters"
                .into(),
        ));
    }
    Ok(())
}
