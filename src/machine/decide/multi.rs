//! Multi-instance steps in a decision: entering one runs an element per item of its list (all
//! at once, or one after another); each element's result is kept in its place; the step
//! completes when every element has, or when its completion condition holds.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::definition::{element_id, lookup, split_element, Step, MAX_ELEMENTS};

use super::*;

impl Decision<'_> {
    /// Enter multi-instance step `step`: its elements are queued (the first one only when
    /// sequential); returns how many were queued.
    pub(super) fn enter_multi(&mut self, step: &Step, queue: &mut VecDeque<String>) -> usize {
        let m = step.multi.as_ref().expect("a multi-instance step");
        let items = match lookup(&self.scratch.variables, &m.collection) {
            Some(Value::Array(items)) if items.len() <= MAX_ELEMENTS => items.clone(),
            Some(Value::Array(items)) => {
                self.emit(Event::InstanceFailed {
                    step: step.id.clone(),
                    error: format!(
                        "{} holds {} elements; a multi-instance step runs for at most {MAX_ELEMENTS}",
                        m.collection,
                        items.len()
                    ),
                });
                return 0;
            }
            other => {
                self.emit(Event::InstanceFailed {
                    step: step.id.clone(),
                    error: format!(
                        "variable {} holds no list (found {})",
                        m.collection,
                        other.map_or("nothing".to_string(), |v| v.to_string())
                    ),
                });
                return 0;
            }
        };
        let n = items.len();
        self.emit(Event::MultiInstanceStarted {
            step: step.id.clone(),
            items,
        });
        if n == 0 {
            self.finish_multi(&step.id, queue);
            return 0;
        }
        // The step's boundary events end all of its elements.
        self.schedule_boundaries(&step.id, step);
        let started = if m.sequential { 1 } else { n };
        queue.extend((0..started).map(|i| element_id(&step.id, i)));
        started
    }

    /// What follows step `step` once it completed with `result`: its next step, or for an
    /// element, the next element (sequential), nothing (others still run), or the step's
    /// next once the last element completed or its completion condition holds.
    pub(super) fn after(
        &mut self,
        step: &str,
        result: &Value,
    ) -> Result<Option<String>, Rejection> {
        let Some((base, index)) = split_element(step) else {
            return self.next_of(step);
        };
        let base = base.to_string();
        let Some(m) = self.def.step(&base).and_then(|s| s.multi.clone()) else {
            // A step inside an element of a multi-instance subprocess: its next, for that
            // element.
            return self.next_of(step);
        };
        let kept = match &m.output_element {
            Some(field) => result.get(field).cloned().unwrap_or(Value::Null),
            None => result.clone(),
        };
        self.emit(Event::ElementCompleted {
            step: base.clone(),
            index,
            result: kept,
        });
        let (done, total) = self
            .scratch
            .multi
            .get(&base)
            .map_or((0, 0), |s| (s.done, s.items.len()));
        let condition_holds = match &m.completion {
            None => false,
            Some(c) => {
                let mut vars = self.scratch.variables.clone();
                let active = if m.sequential { 0 } else { total - done };
                // Also under the names Zeebe and Camunda 7 give them.
                for (names, n) in [
                    (
                        [
                            "completed",
                            "numberOfCompletedInstances",
                            "nrOfCompletedInstances",
                        ],
                        done,
                    ),
                    (["total", "numberOfInstances", "nrOfInstances"], total),
                    (
                        ["active", "numberOfActiveInstances", "nrOfActiveInstances"],
                        active,
                    ),
                ] {
                    for name in names {
                        vars.insert(name.into(), n.into());
                    }
                }
                let verdict = crate::expr::Expr::parse(c)
                    .map_err(|e| e.to_string())
                    .and_then(|e| e.eval_at(&vars, self.ctx.now).map_err(|e| e.to_string()));
                match verdict {
                    Ok(holds) => holds,
                    Err(e) => {
                        self.emit(Event::InstanceFailed {
                            step: base.clone(),
                            error: format!("completion condition `{c}`: {e}"),
                        });
                        return Ok(None);
                    }
                }
            }
        };
        if done >= total || condition_holds {
            let mut queue = VecDeque::new();
            self.withdraw_inside(&base, "its completion condition", &mut queue);
            self.finish_multi(&base, &mut queue);
            return Ok(queue.pop_front());
        }
        Ok(m.sequential.then(|| element_id(&base, done)))
    }

    /// Multi-instance step `step` completes: the output collection is set and the instance
    /// goes on after it.
    fn finish_multi(&mut self, step: &str, queue: &mut VecDeque<String>) {
        let Some(s) = self.def.step(step) else { return };
        let mut set = Map::new();
        if let Some(name) = s.multi.as_ref().and_then(|m| m.output_collection.clone()) {
            let results = self
                .scratch
                .multi
                .get(step)
                .map(|m| m.results.clone())
                .unwrap_or_default();
            set.insert(name, Value::Array(results));
        }
        let next = s.next.clone();
        self.emit(Event::MultiInstanceCompleted {
            step: step.to_string(),
            set,
        });
        self.cancel_timers(step);
        queue.extend(next);
    }
}
