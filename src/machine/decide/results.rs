//! What a step's result sets in the variables: its output rule or its output mappings, and
//! an error route's code and message variables.

use serde_json::{Map, Value};

use crate::definition::Output;

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
                crate::definition::map_all(&s.outputs, from, &self.scratch.variables)
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
