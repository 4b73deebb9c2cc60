//! Timers in a decision: timeouts, boundary timers, due times (every one checked).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::definition::{
    later, lookup, parse_cycle_lenient as parse_cycle, parse_duration_lenient as parse_duration,
    BoundaryEvent, StepKind, TimerSpec,
};

use super::*;

impl Decision<'_> {
    /// Start the timeout of an attempt that may run from `from`, if the step has one.
    pub(super) fn arm_timeout(&mut self, step: &str, from: DateTime<Utc>) {
        let timeout = match self.def.step(step).map(|s| &s.kind) {
            Some(StepKind::Service {
                timeout: Some(t), ..
            }) => parse_duration(t).and_then(|t| later(from, t)),
            _ => return,
        };
        match timeout {
            Ok(due_at) => {
                let timer_id = self.next_id();
                self.emit(Event::TimerScheduled {
                    step: step.to_string(),
                    timer_id,
                    kind: TimerKind::Timeout,
                    due_at,
                    remaining: 0,
                });
            }
            // A stored definition accepted under an older grammar, or a due time out of range:
            // the instance fails with the reason rather than running without its timeout.
            Err(e) => self.emit(Event::InstanceFailed {
                step: step.to_string(),
                error: format!("the timeout of step {step}: {e}"),
            }),
        }
    }

    pub(super) fn cancel_timeouts(&mut self, step: &str) {
        let ids: Vec<Uuid> = self
            .scratch
            .timers
            .iter()
            .filter(|t| t.step == step && t.kind == TimerKind::Timeout)
            .map(|t| t.timer_id)
            .collect();
        for timer_id in ids {
            self.emit(Event::TimerCancelled {
                step: step.to_string(),
                timer_id,
            });
        }
    }

    /// Cancel every timer of `step` still running.
    pub(super) fn cancel_timers(&mut self, step: &str) {
        let ids: Vec<Uuid> = self
            .scratch
            .timers
            .iter()
            .filter(|t| t.step == step)
            .map(|t| t.timer_id)
            .collect();
        for timer_id in ids {
            self.emit(Event::TimerCancelled {
                step: step.to_string(),
                timer_id,
            });
        }
    }

    /// When a timer spec is due from now, or why it cannot be.
    pub(super) fn due(&self, spec: &TimerSpec) -> Result<(DateTime<Utc>, u32), String> {
        match spec {
            TimerSpec::After(d) => Ok((later(self.ctx.now, parse_duration(d)?)?, 0)),
            TimerSpec::Cycle(c) => {
                let (n, interval) = parse_cycle(c)?;
                Ok((later(self.ctx.now, interval)?, n - 1))
            }
            TimerSpec::Until(date) if crate::definition::literal_date(date).is_some() => {
                Ok((crate::definition::literal_date(date).expect("checked"), 0))
            }
            TimerSpec::Until(path) => match lookup(&self.scratch.variables, path) {
                Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                    .map(|t| (t.with_timezone(&Utc), 0))
                    .map_err(|e| format!("variable {path} is not an RFC 3339 date-time: {e}")),
                other => Err(format!(
                    "variable {path} holds no date-time (found {})",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing".into())
                )),
            },
        }
    }

    /// Schedule a timer, or fail the instance if its due time cannot be computed.
    pub(super) fn schedule(&mut self, step: &str, kind: TimerKind, spec: &TimerSpec) -> bool {
        match self.due(spec) {
            Ok((due_at, remaining)) => {
                let timer_id = self.next_id();
                self.emit(Event::TimerScheduled {
                    step: step.to_string(),
                    timer_id,
                    kind,
                    due_at,
                    remaining,
                });
                true
            }
            Err(error) => {
                self.emit(Event::InstanceFailed {
                    step: step.to_string(),
                    error,
                });
                false
            }
        }
    }

    /// Arm the boundary events of step `id` as it is entered. An element of a multi-instance
    /// step arms none: the step's own boundary events belong to all of its elements.
    pub(super) fn schedule_boundaries(&mut self, id: &str, step: &crate::definition::Step) {
        if crate::definition::split_element(id).is_some() {
            return;
        }
        for (index, b) in step.boundary.iter().enumerate() {
            if self.scratch.status != Status::Running {
                return;
            }
            match &b.on {
                BoundaryEvent::Timer(t) => {
                    self.schedule(&step.id, TimerKind::Boundary { index }, t);
                }
                BoundaryEvent::Message(name) => {
                    let key = match &step.kind {
                        StepKind::Receive { key, .. } => message_key(&self.scratch, key.as_deref()),
                        _ => self.scratch.business_key.clone(),
                    };
                    self.emit(Event::BoundaryMessageAwaited {
                        step: step.id.clone(),
                        name: name.clone(),
                        key,
                    });
                }
                BoundaryEvent::Signal(name) => {
                    // A signal wait is a subscription to `signal:<name>` without a key.
                    self.emit(Event::BoundaryMessageAwaited {
                        step: step.id.clone(),
                        name: crate::definition::signal_subscription(name),
                        key: String::new(),
                    });
                }
            }
        }
    }

    /// A timer fired: what follows (`None`: nothing runs forward).
    pub(super) fn timer_fired(
        &mut self,
        state: &InstanceState,
        timer_id: Uuid,
    ) -> Result<Option<Option<String>>, Rejection> {
        let timer_id = &timer_id;
        let d = self;
        let def = d.def;
        let next = {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            let Some(timer) = state
                .timers
                .iter()
                .find(|t| t.timer_id == *timer_id)
                .cloned()
            else {
                return Err(Rejection::UnknownTimer(*timer_id));
            };
            d.emit(Event::TimerFired {
                step: timer.step.clone(),
                timer_id: *timer_id,
                kind: timer.kind,
            });
            match timer.kind {
                TimerKind::Step => {
                    d.cancel_timers(&timer.step);
                    d.next_of(&timer.step)?
                }
                TimerKind::Timeout => {
                    let job_id = match state.wait_at(&timer.step) {
                        Some(Wait::Job { job_id, .. }) => *job_id,
                        _ => return Err(not_waiting(state, "timeout")),
                    };
                    let after = match def.step(&timer.step).map(|s| &s.kind) {
                        Some(StepKind::Service {
                            timeout: Some(t), ..
                        }) => t.clone(),
                        _ => String::new(),
                    };
                    let error = format!("the handler did not finish within {after}");
                    d.emit(Event::JobTimedOut {
                        step: timer.step.clone(),
                        job_id,
                        error: error.clone(),
                    });
                    d.attempt_failed(&timer.step, job_id, &error);
                    return Ok(None);
                }
                TimerKind::Boundary { index } => {
                    let step_def = def
                        .step(&timer.step)
                        .ok_or_else(|| Rejection::UnknownStep(timer.step.clone()))?;
                    if let StepKind::EventSubprocess { .. } = &step_def.kind {
                        let by = format!("timer {timer_id}");
                        let mut queue = std::collections::VecDeque::new();
                        return Ok(Some(d.start_event(&timer.step, &by, &mut queue)));
                    }
                    if let StepKind::EventGateway { events, .. } = &step_def.kind {
                        // The gateway's timer came first: the other events are withdrawn.
                        let e = events.get(index).ok_or_else(|| {
                            Rejection::UnknownStep(format!("{}.events[{index}]", timer.step))
                        })?;
                        d.interrupt(&timer.step, &format!("timer {timer_id}"));
                        d.cancel_timers(&timer.step);
                        Some(e.next.clone())
                    } else {
                        let b = step_def.boundary.get(index).ok_or_else(|| {
                            Rejection::UnknownStep(format!("{}.boundary[{index}]", timer.step))
                        })?;
                        if b.interrupting {
                            d.interrupt(&timer.step, &format!("timer {timer_id}"));
                            d.cancel_timers(&timer.step);
                            b.next.clone()
                        } else {
                            d.beside(state, &timer.step, b, &format!("timer {timer_id}"));
                            if timer.remaining > 0 {
                                if let BoundaryEvent::Timer(TimerSpec::Cycle(c)) = &b.on {
                                    match parse_cycle(c).and_then(|(_, i)| later(timer.due_at, i)) {
                                        Ok(due_at) => {
                                            let id = d.next_id();
                                            d.emit(Event::TimerScheduled {
                                                step: timer.step.clone(),
                                                timer_id: id,
                                                kind: timer.kind,
                                                due_at,
                                                remaining: timer.remaining - 1,
                                            });
                                        }
                                        Err(error) => d.emit(Event::InstanceFailed {
                                            step: timer.step.clone(),
                                            error: format!(
                                                "the cycle of step {}: {error}",
                                                timer.step
                                            ),
                                        }),
                                    }
                                }
                            }
                            // Its path, if it has one, runs beside the waiting step (one run
                            // at a time: a firing while it still runs starts none).
                            return Ok(b
                                .next
                                .clone()
                                .filter(|n| !d.path_busy(n, &timer.step))
                                .map(Some));
                        }
                    }
                }
            }
        };
        Ok(Some(next))
    }
}

impl Decision<'_> {
    /// What a non-interrupting boundary event of waiting step `step` does besides its path:
    /// the message it sends, the reassignment of the step's tasks (each element's, on a
    /// multi-instance user task).
    pub(super) fn beside(
        &mut self,
        state: &InstanceState,
        step: &str,
        b: &crate::definition::Boundary,
        by: &str,
    ) {
        if let Some((message, to)) = &b.send {
            let e = self.send_event(step, message, to.as_deref(), None, None);
            self.emit(e);
        }
        if let Some(a) = &b.assign {
            let tasks: Vec<String> = state
                .waits
                .iter()
                .map(|w| w.step())
                .filter(|s| *s == step || split_element(s).is_some_and(|(b, _)| b == step))
                .map(str::to_string)
                .collect();
            for t in tasks {
                self.reassign(&t, a, by.to_string());
            }
        }
    }

    /// Whether the path from `from` (a non-interrupting boundary event's, on `attached`) still
    /// runs: some step it can reach, short of `attached`, holds a wait. A path runs once at a
    /// time, since a step holds one wait.
    pub(super) fn path_busy(&self, from: &str, attached: &str) -> bool {
        let attached = split_element(attached).map_or(attached, |(b, _)| b);
        let mut seen = std::collections::HashSet::new();
        let mut todo = vec![from];
        while let Some(id) = todo.pop() {
            if id == attached || !seen.insert(id) {
                continue;
            }
            if let Some(s) = self.def.step(id) {
                todo.extend(s.targets());
            }
        }
        self.scratch.waits.iter().any(|w| {
            let s = w.step();
            seen.contains(split_element(s).map_or(s, |(b, _)| b))
        })
    }
}
