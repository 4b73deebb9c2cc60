//! Embedded subprocesses in a decision: entering one, ending its last branch, catching a
//! business error raised inside (by a route of a subprocess around it, or an error event
//! subprocess), and withdrawing everything inside when it is interrupted.

use std::collections::VecDeque;

use crate::definition::StepKind;

use super::results::error_variables;
use super::*;

impl Decision<'_> {
    /// Whether anything inside subprocess `scope` still runs: a wait, or a step queued to run.
    pub(super) fn busy_inside(&self, scope: &str, queue: &VecDeque<String>) -> bool {
        self.scratch
            .waits
            .iter()
            .any(|w| !matches!(w, Wait::Armed { .. }) && self.def.inside(w.step(), scope))
            || queue.iter().any(|q| self.def.inside(q, scope))
    }

    /// Branch `end` inside subprocess `scope` ended: the subprocess completes when it was the
    /// last one, and the instance goes on after it.
    pub(super) fn end_inside(&mut self, end: &str, scope: &str, queue: &mut VecDeque<String>) {
        if self.busy_inside(scope, queue) {
            self.emit(Event::BranchEnded {
                step: end.to_string(),
            });
        } else {
            self.complete_scope(scope, queue);
        }
    }

    /// Subprocess `scope` completes: its boundary timers go, the instance goes on after it.
    pub(super) fn complete_scope(&mut self, scope: &str, queue: &mut VecDeque<String>) {
        self.disarm_events(Some(scope));
        self.emit(Event::SubprocessCompleted {
            step: scope.to_string(),
        });
        self.cancel_timers(scope);
        let step = self.def.step(scope);
        if crate::definition::split_element(scope).is_some()
            && step.is_some_and(|s| s.multi.is_some())
        {
            // An element of a multi-instance subprocess: its result is the variables.
            let result = serde_json::Value::Object(self.scratch.variables.clone());
            if let Ok(next) = self.after(scope, &result) {
                queue.extend(next);
            }
        } else if step.is_some_and(|s| matches!(s.kind, StepKind::EventSubprocess { .. })) {
            self.after_event(scope, queue);
        } else if let Some(next) = step.and_then(|s| s.next.clone()) {
            queue.push_back(next);
        }
    }

    /// Withdraw everything inside subprocess `scope` (waits, their timers, queued steps),
    /// innermost first; the subprocess's own wait stays.
    pub(super) fn withdraw_inside(&mut self, scope: &str, by: &str, queue: &mut VecDeque<String>) {
        queue.retain(|q| !self.def.inside(q, scope));
        loop {
            let inner = self
                .scratch
                .waits
                .iter()
                .map(|w| w.step())
                .find(|s| self.def.inside(s, scope))
                .map(str::to_string);
            let Some(step) = inner else { break };
            self.interrupt(&step, by);
        }
        let timers: Vec<String> = self
            .scratch
            .timers
            .iter()
            .filter(|t| self.def.inside(&t.step, scope))
            .map(|t| t.step.clone())
            .collect();
        for step in timers {
            self.cancel_timers(&step);
        }
    }

    /// A business error `code` was raised at `step` and nothing there routes it: the
    /// innermost subprocess around it that routes the code catches it (everything inside is
    /// withdrawn); returns the step that follows, or `None` when no subprocess routes it.
    pub(super) fn catch_in_scopes(
        &mut self,
        step: &str,
        code: &str,
        message: &str,
        queue: &mut VecDeque<String>,
    ) -> Option<String> {
        let mut at = self.def.scope_of(step);
        let mut depth = 0;
        let by = format!("business error {code} at {step}");
        while let Some(scope) = at {
            depth += 1;
            if depth > crate::definition::MAX_NESTING {
                return None;
            }
            // An error event subprocess inside the scope comes first, then its own route.
            if let Some(e) = self.error_event(Some(&scope), code) {
                return self.start_event(&e, &by, queue);
            }
            let s = self.def.step(&scope)?;
            if let StepKind::Subprocess { errors, .. } = &s.kind {
                if let Some(r) = errors.iter().find(|r| r.code == code).cloned() {
                    // An element's error ends the whole multi-instance subprocess.
                    let target = match crate::definition::split_element(&scope) {
                        Some((b, _)) if s.multi.is_some() => b.to_string(),
                        _ => scope.clone(),
                    };
                    self.interrupt(&target, &format!("business error {code} at {step}"));
                    queue.retain(|q| !self.def.inside(q, &target));
                    self.emit(Event::BusinessErrorCaught {
                        step: target.clone(),
                        code: code.to_string(),
                        set: error_variables(&r, message),
                    });
                    self.cancel_timers(&target);
                    return Some(self.carry(&target, r.next));
                }
            }
            at = self.def.scope_of(&scope);
        }
        let e = self.error_event(None, code)?;
        self.start_event(&e, &by, queue)
    }

    /// Subprocesses whose every branch ended without completing them (a join inside waits
    /// for a branch that will never come): the instance fails there, naming the joins.
    pub(super) fn stuck_scopes(&mut self) {
        let scopes: Vec<String> = self
            .scratch
            .waits
            .iter()
            .filter(|w| matches!(w, Wait::Scope { .. }))
            .map(|w| w.step().to_string())
            .collect();
        for scope in scopes {
            if self.scratch.status != Status::Running || self.scratch.compensating.is_some() {
                return;
            }
            if self.busy_inside(&scope, &VecDeque::new()) {
                continue;
            }
            let joins: Vec<String> = self
                .scratch
                .joins
                .iter()
                .filter(|(j, _)| self.def.inside(j, &scope))
                .map(|(j, n)| format!("{j} ({n} of {} arrived)", self.def.incoming(j)))
                .collect();
            self.emit(Event::InstanceFailed {
                step: scope.clone(),
                error: format!(
                    "every branch inside subprocess {scope} ended but it cannot complete: joins waiting: {}",
                    if joins.is_empty() { "none".to_string() } else { joins.join(", ") }
                ),
            });
        }
    }
}
