//! Input and output mappings on a step (BPMN's `zeebe:ioMapping`): inputs add variables to
//! what a handler's job (or a called process) sees; outputs choose what of a result (a job's,
//! a message's, a child's, a task completion's) goes into the instance's variables, instead
//! of merging all of it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lookup;

/// One mapping: `target` gets the value of `source`, which is `=path` (a variable, or a
/// field of the result, by its dot path), `=expression` (in the [`crate::expr`] language,
/// over the result's fields and the variables: `=count(lines)`, `=amount * 2`; an expression
/// that cannot be evaluated gives null, as FEEL has it) or a literal string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// `=path`, or a literal string.
    pub source: String,
    /// The variable name it sets.
    pub target: String,
}

impl Mapping {
    /// `target` gets `source`.
    pub fn new(source: impl Into<String>, target: impl Into<String>) -> Self {
        Mapping {
            source: source.into(),
            target: target.into(),
        }
    }

    /// The value of the source: `=path` looked up in `first`, then in `then`; a missing path
    /// is null. A literal is itself.
    pub fn value(
        &self,
        first: &Map<String, Value>,
        then: &Map<String, Value>,
        now: Option<DateTime<Utc>>,
    ) -> Value {
        match self.source.strip_prefix('=') {
            Some(path) if super::validate::is_var_path(path.trim()) => {
                let path = path.trim();
                lookup(first, path)
                    .or_else(|| lookup(then, path))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            Some(expr) => {
                let mut vars = then.clone();
                vars.extend(first.iter().map(|(k, v)| (k.clone(), v.clone())));
                crate::expr::Expr::parse(expr)
                    .and_then(|e| e.value_at(&vars, now))
                    .unwrap_or(Value::Null)
            }
            None => Value::String(self.source.clone()),
        }
    }

    /// Check the mapping; the error says what is wrong.
    pub(crate) fn check(&self, is_var_path: &impl Fn(&str) -> bool) -> Result<(), String> {
        if let Some(expr) = self.source.strip_prefix('=') {
            if !is_var_path(expr.trim()) {
                if let Err(e) = crate::expr::Expr::parse(expr) {
                    return Err(format!(
                        "source `{}`: column {}: {}",
                        self.source, e.column, e.message
                    ));
                }
            }
        } else if self.source.len() > 1000 {
            return Err("a literal source is at most 1,000 bytes".into());
        }
        if !is_var_path(&self.target) || self.target.contains('.') {
            return Err(format!("invalid target variable \"{}\"", self.target));
        }
        Ok(())
    }
}

/// Apply mappings: each target gets its source's value (from `first`, then `then`);
/// `now` is the engine's clock of the decision, for `now()` and `today()` in expressions.
pub fn map_all(
    mappings: &[Mapping],
    first: &Map<String, Value>,
    then: &Map<String, Value>,
    now: Option<DateTime<Utc>>,
) -> Map<String, Value> {
    mappings
        .iter()
        .map(|m| (m.target.clone(), m.value(first, then, now)))
        .collect()
}
