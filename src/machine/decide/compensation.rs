//! Failed attempts, and compensation of completed steps in reverse order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::definition::later;

use super::*;

impl Decision<'_> {
    /// A handler attempt failed (an error or a timeout): retry under the step's policy, or
    /// raise an incident when the attempts are used up. The step's other timers are cancelled
    /// either way (a retry starts its timeout anew).
    pub(super) fn attempt_failed(&mut self, step: &str, job_id: Uuid, error: &str) {
        let attempt = match self.scratch.job_wait(job_id) {
            Some(Wait::Job { attempt, .. }) => *attempt,
            _ => 1,
        };
        // The attempt's timeout goes; boundary timers of the step keep running.
        self.cancel_timeouts(step);
        match self.def.retry_policy(step) {
            Some(policy) if attempt < policy.max_attempts => {
                let salt = job_id.as_u64_pair().0 ^ u64::from(attempt);
                // wait_after is at most MAX_SPAN; only a clock near the end of time fails here.
                let run_at = later(self.ctx.now, policy.wait_after(attempt, salt))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.emit(Event::JobRetryScheduled {
                    step: step.to_string(),
                    job_id,
                    attempt: attempt + 1,
                    run_at,
                });
                self.arm_timeout(step, run_at);
            }
            _ => self.emit(Event::IncidentRaised {
                step: step.to_string(),
                job_id,
                error: error.to_string(),
                attempts: attempt,
                at: self.ctx.now,
            }),
        }
    }

    /// Remember a completed step whose work may have to be undone.
    pub(super) fn record_compensable(&mut self, step: &str) {
        if self.def.step(step).is_some_and(|s| s.compensate.is_some()) {
            self.emit(Event::StepCompensable {
                step: step.to_string(),
            });
        }
    }

    /// Run the compensations still due, newest first: a message goes out at once; a handler
    /// is a job the instance waits for (returns false then). When none is left: after a cancel
    /// the instance is cancelled (false); after a compensate step it goes on (true).
    pub(super) fn compensate_next(&mut self) -> bool {
        // Inside a subprocess, only its own completed steps are undone.
        let scope = self.scratch.compensate_scope.clone();
        while let Some(step) = self
            .scratch
            .compensable
            .iter()
            .rev()
            .find(|c| scope.as_deref().is_none_or(|s| self.def.inside(c, s)))
            .cloned()
        {
            match self.def.step(&step).and_then(|s| s.compensate.clone()) {
                Some(crate::definition::Compensation::Handler { handler }) => {
                    let job_id = self.next_id();
                    self.emit(Event::JobCreated {
                        step,
                        job_id,
                        handler,
                    });
                    return false;
                }
                Some(crate::definition::Compensation::Send { send, to }) => {
                    let e = self.send_event(&step, &send, to.as_deref(), None, None);
                    self.emit(e);
                    self.emit(Event::StepCompensated { step });
                }
                None => self.emit(Event::StepCompensated { step }),
            }
        }
        match self.scratch.compensate_then.clone() {
            Some(then) => {
                self.emit(Event::CompensationFinished { then });
                true
            }
            None => {
                let reason = self.scratch.compensating.clone().unwrap_or_default();
                self.emit(Event::InstanceCancelled {
                    reason,
                    by: String::new(),
                });
                false
            }
        }
    }
}
