//! What changed between two versions of a process: steps added, removed and changed, field by
//! field, in the JSON document's terms.

use serde::Serialize;
use serde_json::Value;

use super::ProcessDefinition;

/// The differences between two definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DefinitionDiff {
    /// Steps only in the new one.
    pub added: Vec<String>,
    /// Steps only in the old one.
    pub removed: Vec<String>,
    /// Steps in both whose fields differ: the step and one line per field.
    pub changed: Vec<(String, Vec<String>)>,
    /// Process-level fields that differ (`start`, `retry`, `variables`, the first step).
    pub process: Vec<String>,
}

impl DefinitionDiff {
    /// Whether the two are the same model.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.process.is_empty()
    }
}

fn fields(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Compare fields of two JSON objects: one line per field that differs.
fn compare(a: &serde_json::Map<String, Value>, b: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) => Some(format!("{k}: {x} -> {y}")),
            (Some(x), None) => Some(format!("{k}: {x} -> (none)")),
            (None, Some(y)) => Some(format!("{k}: (none) -> {y}")),
            (None, None) => None,
        })
        .collect()
}

/// The differences from `old` to `new`.
pub fn diff(old: &ProcessDefinition, new: &ProcessDefinition) -> DefinitionDiff {
    let mut d = DefinitionDiff::default();
    let (a, b) = (
        fields(serde_json::to_value(old).expect("serializes")),
        fields(serde_json::to_value(new).expect("serializes")),
    );
    for key in ["start", "retry", "variables"] {
        let (x, y) = (a.get(key), b.get(key));
        if x != y {
            let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
            d.process.push(format!("{key}: {} -> {}", show(x), show(y)));
        }
    }
    if old.steps.first().map(|s| &s.id) != new.steps.first().map(|s| &s.id) {
        d.process.push(format!(
            "first step: {} -> {}",
            old.steps.first().map_or("", |s| &s.id),
            new.steps.first().map_or("", |s| &s.id)
        ));
    }
    for s in &old.steps {
        match new.step(&s.id) {
            None => d.removed.push(s.id.clone()),
            Some(n) if n != s => {
                let x = fields(serde_json::to_value(s).expect("serializes"));
                let y = fields(serde_json::to_value(n).expect("serializes"));
                d.changed.push((s.id.clone(), compare(&x, &y)));
            }
            Some(_) => {}
        }
    }
    for s in &new.steps {
        if old.step(&s.id).is_none() {
            d.added.push(s.id.clone());
        }
    }
    d
}
