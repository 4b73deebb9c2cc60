//! `decide`: which events an input causes, running the instance forward until every branch
//! waits or ends.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{split_element, BoundaryEvent, Output, Process, StepKind};

use super::*;
use results::{error_variables, key_in, map_output, message_key, not_waiting};

mod compensation;
mod events;
mod forward;
mod milestones;
mod multi;
mod results;
mod scope;
mod task;
mod timers;

/// Decide which events an input causes. Pure: the same arguments give the same events.
pub fn decide(
    def: &Process,
    state: &InstanceState,
    input: &Input,
    ctx: Context,
) -> Result<Vec<Event>, Rejection> {
    let mut d = Decision {
        def,
        ctx,
        scratch: state.clone(),
        out: Vec::new(),
    };
    if state.paused && !matches!(input, Input::Resume { .. } | Input::Cancel { .. }) {
        return Err(Rejection::Paused);
    }
    crate::failpoint::decide(&state.business_key, input);
    let next: Option<String> = match input {
        Input::Fault { job_id, error } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            match job_id.and_then(|j| state.job_wait(j).cloned()) {
                Some(Wait::Job {
                    step,
                    job_id,
                    attempt,
                    ..
                }) => {
                    d.emit(Event::JobFailed {
                        step: step.clone(),
                        job_id,
                        error: error.clone(),
                    });
                    d.cancel_timeouts(&step);
                    d.emit(Event::IncidentRaised {
                        step,
                        job_id,
                        error: error.clone(),
                        attempts: attempt,
                        at: ctx.now,
                    });
                }
                _ => {
                    let step = state
                        .waits
                        .first()
                        .map(|w| w.step().to_string())
                        .unwrap_or_default();
                    d.emit(Event::InstanceFailed {
                        step,
                        error: error.clone(),
                    });
                }
            }
            return Ok(d.out);
        }
        Input::Pause { by } => {
            if state.status != Status::Running || state.compensating.is_some() {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.paused {
                return Err(Rejection::PauseState("paused already"));
            }
            d.emit(Event::InstancePaused { by: by.clone() });
            return Ok(d.out);
        }
        Input::Resume { by } => {
            if !state.paused {
                return Err(Rejection::PauseState("not paused"));
            }
            d.emit(Event::InstanceResumed { by: by.clone() });
            return Ok(d.out);
        }
        Input::Start {
            business_key,
            variables,
            message_id,
            parent,
            start_message,
            trace,
        } => {
            if state.status != Status::New {
                return Err(Rejection::AlreadyStarted);
            }
            let trace = trace
                .clone()
                .unwrap_or_else(|| Trace::new(business_key, ctx.instance_id));
            d.emit(Event::InstanceStarted {
                process: def.process.clone(),
                business_key: business_key.clone(),
                variables: variables.clone(),
                message_id: message_id.clone(),
                parent: parent.clone(),
                trace: Some(trace),
            });
            d.arm_events(None);
            Some(def.first_step_for(start_message.as_deref()).to_string())
        }
        Input::ChildEnded {
            child_id,
            status,
            variables,
            code,
        } => {
            let (step, process) = match state
                .waits
                .iter()
                .find(|w| matches!(w, Wait::Child { child_id: c, .. } if c == child_id))
            {
                Some(Wait::Child { step, process, .. }) => (step.clone(), process.clone()),
                _ => return Err(not_waiting(state, "child")),
            };
            if *status != Status::Completed {
                // A business error the call step routes: that path, at once.
                let route = match (code, def.step(&step).map(|s| &s.kind)) {
                    (Some(code), Some(StepKind::Call { errors, .. })) => {
                        errors.iter().find(|r| &r.code == code)
                    }
                    _ => None,
                };
                if let Some(r) = route {
                    let message = format!("business error {}", r.code);
                    d.emit(Event::BusinessErrorCaught {
                        step: step.clone(),
                        code: r.code.clone(),
                        set: error_variables(r, &message),
                    });
                    d.cancel_timers(&step);
                    d.run_forward(Some(r.next.clone()))?;
                    return Ok(d.out);
                }
                if let Some(code) = code {
                    let message = format!("business error {code}");
                    let mut queue = std::collections::VecDeque::new();
                    if let Some(next) = d.catch_in_scopes(&step, code, &message, &mut queue) {
                        d.run_forward(Some(next))?;
                        return Ok(d.out);
                    }
                }
                let with = code
                    .as_ref()
                    .map(|c| format!(" with business error {c}"))
                    .unwrap_or_default();
                d.emit(Event::InstanceFailed {
                    step,
                    error: format!(
                        "the child instance {child_id} of process {process} ended {}{with}",
                        status.as_str()
                    ),
                });
                return Ok(d.out);
            }
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Call { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            let result = Value::Object(variables.clone());
            let set = d.result_set(&step, output, &result);
            d.emit(Event::ChildCompleted {
                step: step.clone(),
                child_id: *child_id,
                set,
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.after(&step, &result)?
        }
        Input::JobCompleted { job_id, result } => {
            let step = match state.job_wait(*job_id) {
                Some(w) => w.step().to_string(),
                None => return Err(not_waiting(state, "job")),
            };
            if state.compensating.is_some() {
                // A compensation handler finished: on to the next one.
                d.emit(Event::JobCompleted {
                    step: step.clone(),
                    job_id: *job_id,
                    set: Map::new(),
                });
                d.cancel_timers(&step);
                d.emit(Event::StepCompensated { step });
                if d.compensate_next() {
                    let then = state.compensate_then.clone();
                    d.run_forward(then)?;
                }
                return Ok(d.out);
            }
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Service { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            // An element's result is set as the step's would be (the last one wins) and kept
            // in its place for the output collection.
            let set = d.result_set(&step, output, result);
            d.emit(Event::JobCompleted {
                step: step.clone(),
                job_id: *job_id,
                set,
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.after(&step, result)?
        }
        Input::JobFailed {
            job_id,
            error,
            code,
        } => {
            let step = match state.job_wait(*job_id) {
                Some(w) => w.step().to_string(),
                None => return Err(not_waiting(state, "job")),
            };
            d.emit(Event::JobFailed {
                step: step.clone(),
                job_id: *job_id,
                error: error.clone(),
            });
            // A compensation handler's errors are never routed: they are retried, then an
            // incident.
            let route = match (code, def.step(&step).map(|s| &s.kind)) {
                (Some(code), Some(StepKind::Service { errors, .. }))
                    if state.compensating.is_none() =>
                {
                    errors.iter().find(|r| &r.code == code)
                }
                _ => None,
            };
            match route {
                Some(r) => {
                    // A modelled business error: its path, at once, without retries.
                    d.emit(Event::BusinessErrorCaught {
                        step: step.clone(),
                        code: r.code.clone(),
                        set: error_variables(r, error),
                    });
                    d.cancel_timers(&step);
                    // An element's error ends the whole step: the other elements go.
                    if let Some((base, _)) = split_element(&step) {
                        d.interrupt(base, &format!("business error {} at {step}", r.code));
                    }
                    Some(r.next.clone())
                }
                None => {
                    // A business error no step routes: a subprocess around it may.
                    let mut queue = std::collections::VecDeque::new();
                    let caught = match code {
                        Some(code) if state.compensating.is_none() => {
                            d.catch_in_scopes(&step, code, error, &mut queue)
                        }
                        _ => None,
                    };
                    if caught.is_none() {
                        d.attempt_failed(&step, *job_id, error);
                        return Ok(d.out);
                    }
                    caught
                }
            }
        }
        Input::Retry { variables, by } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.incidents.is_empty() {
                return Err(Rejection::NoIncident);
            }
            for (n, incident) in state.incidents.iter().enumerate() {
                let Some(Wait::Job { job_id, .. }) = state.wait_at(&incident.step) else {
                    continue;
                };
                d.emit(Event::IncidentResolved {
                    step: incident.step.clone(),
                    set: if n == 0 {
                        variables.clone().unwrap_or_default()
                    } else {
                        Map::new()
                    },
                    by: by.clone(),
                });
                d.emit(Event::JobRetryScheduled {
                    step: incident.step.clone(),
                    job_id: *job_id,
                    attempt: 1,
                    run_at: ctx.now,
                });
                d.arm_timeout(&incident.step, ctx.now);
            }
            return Ok(d.out);
        }
        Input::Cancel { reason, by } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.compensating.is_some() {
                return Err(Rejection::NotRunning("compensating"));
            }
            d.withdraw_all(&format!("cancelled: {reason}"));
            if state.compensable.is_empty() {
                d.emit(Event::InstanceCancelled {
                    reason: reason.clone(),
                    by: by.clone(),
                });
            } else {
                d.emit(Event::CompensationStarted {
                    reason: reason.clone(),
                    then: None,
                    by: by.clone(),
                    scope: None,
                });
                d.compensate_next();
            }
            return Ok(d.out);
        }
        Input::Task {
            task_id,
            action,
            by,
        } => match d.task_action(state, *task_id, action, by)? {
            task::After::Waits => return Ok(d.out),
            task::After::Forward(next) => next,
        },
        Input::Message {
            message_id,
            name,
            payload,
        } => {
            // The receive step waiting for it; else a waiting step with it as a boundary
            // message; else an event gateway waiting for it.
            if let Some(w) = state
                .waits
                .iter()
                .find(|w| matches!(w, Wait::Message { name: n, .. } if n == name))
            {
                let step = w.step().to_string();
                let output = match def.step(&step).map(|s| &s.kind) {
                    Some(
                        StepKind::Receive { output, .. } | StepKind::WaitSignal { output, .. },
                    ) => output,
                    _ => return Err(Rejection::UnknownStep(step)),
                };
                d.emit(Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: d.result_set(&step, output, payload),
                });
                d.cancel_timers(&step);
                d.next_of(&step)?
            } else {
                let mut found = None;
                for w in &state.waits {
                    let Some(s) = def.step(w.step()) else {
                        continue;
                    };
                    // An event subprocess listens while armed, not while it runs.
                    let event_sub = matches!(s.kind, StepKind::EventSubprocess { .. });
                    if event_sub && !matches!(w, Wait::Armed { .. }) {
                        continue;
                    }
                    if let Some(b) = s.boundary.iter().find(|b| match &b.on {
                        BoundaryEvent::Message(m) => m == name,
                        BoundaryEvent::Signal(s) => {
                            name.strip_prefix("signal:") == Some(s.as_str())
                        }
                        BoundaryEvent::Timer(_) => false,
                    }) {
                        if !b.interrupting && !event_sub {
                            // It runs beside the step, which keeps waiting and listening.
                            let step = w.step().to_string();
                            d.emit(Event::BoundaryMessageReceived {
                                step: step.clone(),
                                message_id: message_id.clone(),
                                name: name.clone(),
                                set: map_output(&Output::Merge, payload),
                            });
                            d.beside(state, &step, b, &format!("message {name}"));
                            // One run of its path at a time: while it runs, the message is
                            // taken (its variables set) but starts no second run.
                            let next = b
                                .next
                                .clone()
                                .filter(|n| !d.path_busy(n, &step))
                                .map(|n| d.carry(&step, n));
                            d.run_forward(next)?;
                            return Ok(d.out);
                        }
                        found = Some((s.id.clone(), false, Output::Merge, b.next.clone()));
                        break;
                    }
                    if let (Wait::Gateway { .. }, StepKind::EventGateway { events, .. }) =
                        (w, &s.kind)
                    {
                        if let Some(e) = events
                            .iter()
                            .find(|e| matches!(&e.on, BoundaryEvent::Message(m) if m == name))
                        {
                            found =
                                Some((s.id.clone(), true, e.output.clone(), Some(e.next.clone())));
                            break;
                        }
                    }
                }
                let Some((step, gateway, output, next)) = found else {
                    return Err(not_waiting(state, "message"));
                };
                let event_sub = matches!(
                    def.step(&step).map(|s| &s.kind),
                    Some(StepKind::EventSubprocess { .. })
                );
                if !gateway && !event_sub {
                    // A boundary message ends the wait another way.
                    d.interrupt(&step, &format!("message {name}"));
                }
                d.emit(Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: map_output(&output, payload),
                });
                d.cancel_timers(&step);
                if event_sub {
                    let by = format!("message {name}");
                    d.start_event(&step, &by, &mut std::collections::VecDeque::new())
                } else {
                    next
                }
            }
        }
        Input::TimerFired { timer_id } => match d.timer_fired(state, *timer_id)? {
            Some(next) => next,
            None => return Ok(d.out),
        },
    };
    d.run_forward(next)?;
    Ok(d.out)
}

/// A decision in progress: the events so far and the state they lead to.
struct Decision<'a> {
    def: &'a Process,
    ctx: Context,
    scratch: InstanceState,
    out: Vec<Event>,
}

impl Decision<'_> {
    fn emit(&mut self, e: Event) {
        evolve(&mut self.scratch, &e);
        let completed = self.completes(&e);
        self.out.push(e);
        if let Some(step) = completed {
            self.reached(&step);
        }
    }

    /// The id for whatever the next event creates.
    fn next_id(&self) -> Uuid {
        derived_id(
            self.ctx.instance_id,
            self.ctx.next_seq + self.out.len() as i64,
        )
    }

    fn next_of(&self, step: &str) -> Result<Option<String>, Rejection> {
        match self.def.step(step) {
            Some(s) => Ok(s.next.clone().map(|n| self.carry(step, n))),
            None => Err(Rejection::UnknownStep(step.to_string())),
        }
    }

    /// The variables step `id` sees: the instance's, with its element's where it runs for
    /// one of a multi-instance step.
    fn vars_for(&self, id: &str) -> std::borrow::Cow<'_, Map<String, Value>> {
        if id.contains('#') {
            let mut v = self.scratch.variables.clone();
            v.extend(self.scratch.element_variables(self.def, id));
            std::borrow::Cow::Owned(v)
        } else {
            std::borrow::Cow::Borrowed(&self.scratch.variables)
        }
    }

    /// Step `to`, reached from runtime id `from`: inside the multi-instance element `from`
    /// runs for, it runs for that element too (`x` from `w#2` is `x#2`).
    fn carry(&self, from: &str, to: String) -> String {
        match self.def.element_scope(from) {
            Some((scope, k)) if split_element(&to).is_none() && self.def.inside(&to, scope) => {
                crate::definition::element_id(&to, k)
            }
            _ => to,
        }
    }

    /// End the wait at `step` without its own event (a boundary event, a cancel); for a
    /// subprocess, everything inside it first.
    fn interrupt(&mut self, step: &str, by: &str) {
        if matches!(self.scratch.wait_at(step), Some(Wait::Scope { .. })) {
            self.withdraw_inside(step, by, &mut std::collections::VecDeque::new());
        }
        self.emit(Event::WaitInterrupted {
            step: step.to_string(),
            by: by.to_string(),
        });
    }

    /// End every branch: each wait is interrupted and every timer cancelled.
    fn withdraw_all(&mut self, by: &str) {
        self.withdraw_all_but(by, None);
    }

    /// End every branch but the subprocesses around step `keep_around` (and their timers).
    fn withdraw_all_but(&mut self, by: &str, keep_around: Option<&str>) {
        let kept = |d: &Self, step: &str| keep_around.is_some_and(|k| d.def.inside(k, step));
        while let Some(step) = self
            .scratch
            .waits
            .iter()
            .map(|w| w.step())
            .find(|s| !kept(self, s))
            .map(str::to_string)
        {
            self.interrupt(&step, by);
        }
        let timer_steps: Vec<String> = self
            .scratch
            .timers
            .iter()
            .filter(|t| !kept(self, &t.step))
            .map(|t| t.step.clone())
            .collect();
        for step in timer_steps {
            self.cancel_timers(&step);
        }
    }
}
