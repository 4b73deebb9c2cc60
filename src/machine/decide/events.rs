//! Event subprocesses in a decision: armed while their scope runs, started by their event
//! (ending everything else in the scope first when interrupting), and what follows when they
//! complete.

use std::collections::VecDeque;

use crate::definition::StepKind;

use super::*;

impl Decision<'_> {
    /// Arm the event subprocesses of `scope` (the process's own with `None`): it began to run.
    pub(super) fn arm_events(&mut self, scope: Option<&str>) {
        let ids: Vec<String> = self
            .def
            .event_subprocesses_of(scope)
            .map(|s| s.id.clone())
            .collect();
        for id in ids {
            self.arm_event(&id);
        }
    }

    fn arm_event(&mut self, id: &str) {
        let Some(step) = self.def.step(id) else {
            return;
        };
        self.emit(Event::EventSubprocessArmed {
            step: id.to_string(),
        });
        self.schedule_boundaries(id, step);
    }

    /// Withdraw the armed event subprocesses of `scope`: it ends.
    pub(super) fn disarm_events(&mut self, scope: Option<&str>) {
        let armed: Vec<String> = self
            .scratch
            .waits
            .iter()
            .filter_map(|w| match w {
                Wait::Armed { step }
                    if self
                        .def
                        .step(step)
                        .is_some_and(|s| s.within.as_deref() == scope) =>
                {
                    Some(step.clone())
                }
                _ => None,
            })
            .collect();
        for e in armed {
            self.interrupt(&e, "its scope ended");
            self.cancel_timers(&e);
        }
    }

    /// Whether the event subprocess `id` interrupts its scope.
    fn interrupts(&self, id: &str) -> bool {
        self.def.step(id).is_some_and(|s| match &s.kind {
            StepKind::EventSubprocess { code, .. } => {
                code.is_some() || s.boundary.first().is_some_and(|b| b.interrupting)
            }
            _ => false,
        })
    }

    /// Event subprocess `id`'s event happened (`by` says which): an interrupting one ends
    /// everything else in its scope first. Returns its first step.
    pub(super) fn start_event(
        &mut self,
        id: &str,
        by: &str,
        queue: &mut VecDeque<String>,
    ) -> Option<String> {
        let step = self.def.step(id)?;
        let StepKind::EventSubprocess { start, .. } = &step.kind else {
            return None;
        };
        let start = start.clone();
        let scope = step.within.clone();
        if self.interrupts(id) {
            match &scope {
                Some(s) => self.withdraw_inside(s, by, queue),
                None => {
                    queue.clear();
                    self.withdraw_all(by);
                }
            }
        } else {
            // One run at a time: armed again when it ends.
            self.cancel_timers(id);
        }
        self.emit(Event::EventSubprocessStarted {
            step: id.to_string(),
        });
        Some(start)
    }

    /// Event subprocess `id` completed: its scope completes if nothing else runs in it (after
    /// an interrupting one, nothing does); else a non-interrupting one listens again.
    pub(super) fn after_event(&mut self, id: &str, queue: &mut VecDeque<String>) {
        let scope = self.def.step(id).and_then(|s| s.within.clone());
        let idle = match &scope {
            Some(s) => !self.busy_inside(s, queue),
            None => !self.scratch.branches_run() && queue.is_empty(),
        };
        if idle {
            match scope {
                Some(s) => self.complete_scope(&s, queue),
                None => {
                    self.disarm_events(None);
                    self.emit(Event::InstanceCompleted {
                        step: id.to_string(),
                    });
                }
            }
        } else if !self.interrupts(id) {
            self.arm_event(id);
        }
    }

    /// The armed error event subprocess of `scope` that starts on `code`, if there is one.
    pub(super) fn error_event(&self, scope: Option<&str>, code: &str) -> Option<String> {
        self.def
            .event_subprocesses_of(scope)
            .find(|s| {
                matches!(&s.kind, StepKind::EventSubprocess { code: Some(c), .. } if c == code)
                    && matches!(self.scratch.wait_at(&s.id), Some(Wait::Armed { .. }))
            })
            .map(|s| s.id.clone())
    }
}
