//! What a step's result sets in the variables: its output rule or its output mappings, and
//! an error route's code and message variables; the key a message uses, and the rejection of an input nothing waits for.

use serde_json::{Map, Value};

use crate::definition::{lookup, Output};
use crate::machine::{InstanceState, Rejection, Status};

use super::Decision;

impl Decision<'_> {
    /// What a step's result (a job's, a message's, a child's, a completion's) sets: its
    /// output mappings when it has any, else its output rule.
    pub(super) fn result_set(
        &self,
        step: &str,
        output: &Output,
        result: &Value,
    ) -> Map<String, Value> {
        match self.def.step(step) {
            Some(s) if !s.outputs.is_empty() => {
                let empty = Map::new();
                let from = match result {
                    Value::Object(m) => m,
                    _ => &empty,
                };
                crate::definition::map_all(
                    &s.outputs,
                    from,
                    &self.scratch.variables,
                    Some(self.ctx.now),
                )
            }
            _ => map_output(output, result),
        }
    }
}

/// The variables an error route sets when taken: its code and message variables.
pub(super) fn error_variables(
    route: &crate::definition::ErrorRoute,
    message: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(v) = &route.code_variable {
        m.insert(v.clone(), Value::String(route.code.clone()));
    }
    if let Some(v) = &route.message_variable {
        m.insert(v.clone(), Value::String(message.to_string()));
    }
    m
}

pub(super) fn map_output(output: &Output, result: &Value) -> Map<String, Value> {
    match output {
        Output::Merge => match result {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        },
        Output::Variable(v) => {
            let mut m = Map::new();
            m.insert(v.clone(), result.clone());
            m
        }
    }
}

pub(super) fn not_waiting(state: &InstanceState, what: &'static str) -> Rejection {
    match (&state.status, state.waits.first()) {
        (Status::Running, Some(_)) => Rejection::NotWaitingFor {
            waiting_at: state
                .waits
                .iter()
                .map(|w| w.step())
                .collect::<Vec<_>>()
                .join(", "),
            what,
        },
        (s, _) => Rejection::NotRunning(s.as_str()),
    }
}

/// The key a send or receive step uses: a variable rendered as text, or the business key.
pub(super) fn message_key(state: &InstanceState, path: Option<&str>) -> String {
    key_in(&state.variables, &state.business_key, path)
}

/// The key a send or receive step uses, read from `vars` (the instance's, with an element's
/// where it runs for one).
pub(super) fn key_in(vars: &Map<String, Value>, business_key: &str, path: Option<&str>) -> String {
    match path {
        None => business_key.to_string(),
        Some(p) => match lookup(vars, p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    }
}
