//! Multi-instance steps: a service step, user task, call step or subprocess run once per element of a list
//! variable, all at once or one after another, their results collected in order. Each
//! element's result also goes into the variables as the step's own would (by its output rule;
//! of elements running at once, the last to complete wins), as BPMN engines do.

use serde::{Deserialize, Serialize};

use super::validate::{is_name, is_var_path};
use super::{ProcessDefinition, StepBuilder, StepKind};

/// The most elements one multi-instance step runs for; a longer list fails the instance there
/// (split the work, or call a process per batch).
pub const MAX_ELEMENTS: usize = 1_000;

/// How a step runs once per element of a list (BPMN's multi-instance loop characteristics).
///
/// In JSON: `"multi": {"collection": "order.lines", "element": "line", "output_collection":
/// "fetched", "sequential": false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiInstance {
    /// The variable path of the list, read when the step is entered.
    pub collection: String,
    /// The variable each element's run sees its element under (with `loop_counter`, from 1);
    /// default `element`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// One after another instead of all at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
    /// The variable that gets the list of the elements' results, in the elements' order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_collection: Option<String>,
    /// What of an element's result goes into that list: a field of it (default: all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_element: Option<String>,
    /// A condition checked after each element completes (over the variables and
    /// `completed`, `active` and `total`); when it holds, the elements still running are
    /// withdrawn and the step completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<String>,
}

impl MultiInstance {
    /// Over the list in variable `collection`.
    pub fn over(collection: impl Into<String>) -> Self {
        MultiInstance {
            collection: collection.into(),
            element: None,
            sequential: false,
            output_collection: None,
            output_element: None,
            completion: None,
        }
    }

    /// The variable an element is seen under.
    pub fn element(mut self, name: impl Into<String>) -> Self {
        self.element = Some(name.into());
        self
    }

    /// One element after another.
    pub fn sequential(mut self) -> Self {
        self.sequential = true;
        self
    }

    /// Collect the results (or `field` of each) into variable `name`.
    pub fn collect(mut self, name: impl Into<String>, field: Option<&str>) -> Self {
        self.output_collection = Some(name.into());
        self.output_element = field.map(str::to_string);
        self
    }

    /// Complete early once `condition` holds.
    pub fn until(mut self, condition: impl Into<String>) -> Self {
        self.completion = Some(condition.into());
        self
    }

    /// The variable an element is seen under.
    pub fn element_variable(&self) -> &str {
        self.element.as_deref().unwrap_or("element")
    }
}

impl StepBuilder {
    /// Run this step once per element of a list (see [`MultiInstance`]).
    pub fn for_each(mut self, multi: MultiInstance) -> Self {
        self.last().multi = Some(multi);
        self
    }
}

/// Check the multi-instance settings of every step.
pub(super) fn check_multi(def: &ProcessDefinition, report: &mut impl FnMut(String, String)) {
    for (i, step) in def.steps.iter().enumerate() {
        let Some(m) = &step.multi else { continue };
        let at = |f: &str| format!("steps[{i}].multi.{f}");
        if !matches!(
            step.kind,
            StepKind::Service { .. }
                | StepKind::Send { .. }
                | StepKind::UserTask(_)
                | StepKind::Call { .. }
                | StepKind::Subprocess { .. }
        ) {
            report(
                format!("steps[{i}].multi"),
                format!(
                    "a {} step does not run per element (service, send, user_task, call and subprocess steps do)",
                    step.kind.type_name()
                ),
            );
        }
        // Inside a multi-instance subprocess, each step runs for one element: none of them
        // runs per element again, and no event subprocess listens there.
        if matches!(step.kind, StepKind::Subprocess { .. }) {
            for (j, inner) in def.steps.iter().enumerate() {
                let inside = {
                    let mut at = inner.within.as_deref();
                    let mut found = false;
                    for _ in 0..=super::MAX_NESTING {
                        match at {
                            Some(s) if s == step.id => {
                                found = true;
                                break;
                            }
                            Some(s) => at = def.step(s).and_then(|x| x.within.as_deref()),
                            None => break,
                        }
                    }
                    found
                };
                if inside
                    && (inner.multi.is_some()
                        || matches!(inner.kind, StepKind::EventSubprocess { .. }))
                {
                    report(
                        format!("steps[{j}]"),
                        format!(
                            "step \"{}\" is inside the multi-instance subprocess \"{}\": it cannot run per element or be an event subprocess there",
                            inner.id, step.id
                        ),
                    );
                }
            }
        }
        if !is_var_path(&m.collection) {
            report(
                at("collection"),
                format!("invalid variable path \"{}\"", m.collection),
            );
        }
        for (field, v) in [
            ("element", &m.element),
            ("output_collection", &m.output_collection),
            ("output_element", &m.output_element),
        ] {
            if v.as_deref().is_some_and(|v| !is_name(v) || v.contains('.')) {
                report(
                    at(field),
                    format!("invalid variable name \"{}\"", v.as_deref().unwrap_or("")),
                );
            }
        }
        if let Some(c) = &m.completion {
            if let Err(e) = crate::expr::Expr::parse(c) {
                report(
                    at("completion"),
                    format!("column {}: {}", e.column, e.message),
                );
            }
        }
    }
}

/// A running element's step id: `step#index` (step ids never hold `#`).
pub fn element_id(step: &str, index: usize) -> String {
    format!("{step}#{index}")
}

/// The step and index of an element's id (`None` for a plain step id).
pub fn split_element(id: &str) -> Option<(&str, usize)> {
    let (step, index) = id.split_once('#')?;
    Some((step, index.parse().ok()?))
}
