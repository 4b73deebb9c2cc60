//! `decide`: which events an input causes, running the instance forward until every branch
//! waits or ends.
use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{
    later, lookup, parse_cycle_lenient as parse_cycle, parse_duration_lenient as parse_duration,
    BoundaryEvent, Output, Process, StepKind, TimerSpec,
};

use super::*;

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
        } => {
            if state.status != Status::New {
                return Err(Rejection::AlreadyStarted);
            }
            d.emit(Event::InstanceStarted {
                process: def.process.clone(),
                business_key: business_key.clone(),
                variables: variables.clone(),
                message_id: message_id.clone(),
                parent: parent.clone(),
            });
            Some(def.first_step().id.clone())
        }
        Input::ChildEnded {
            child_id,
            status,
            variables,
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
                d.emit(Event::InstanceFailed {
                    step,
                    error: format!(
                        "the child instance {child_id} of process {process} ended {}",
                        status.as_str()
                    ),
                });
                return Ok(d.out);
            }
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Call { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            d.emit(Event::ChildCompleted {
                step: step.clone(),
                child_id: *child_id,
                set: map_output(output, &Value::Object(variables.clone())),
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.next_of(&step)?
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
            d.emit(Event::JobCompleted {
                step: step.clone(),
                job_id: *job_id,
                set: map_output(output, result),
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.next_of(&step)?
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
                    });
                    d.cancel_timers(&step);
                    Some(r.next.clone())
                }
                None => {
                    d.attempt_failed(&step, *job_id, error);
                    return Ok(d.out);
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
                });
                d.compensate_next();
            }
            return Ok(d.out);
        }
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
                    Some(StepKind::Receive { output, .. }) => output,
                    _ => return Err(Rejection::UnknownStep(step)),
                };
                d.emit(Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: map_output(output, payload),
                });
                d.cancel_timers(&step);
                d.next_of(&step)?
            } else {
                let mut found = None;
                for w in &state.waits {
                    let Some(s) = def.step(w.step()) else {
                        continue;
                    };
                    if let Some(b) = s
                        .boundary
                        .iter()
                        .find(|b| matches!(&b.on, BoundaryEvent::Message(m) if m == name))
                    {
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
                if !gateway {
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
                next
            }
        }
        Input::TimerFired { timer_id } => {
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
                    return Ok(d.out);
                }
                TimerKind::Boundary { index } => {
                    let step_def = def
                        .step(&timer.step)
                        .ok_or_else(|| Rejection::UnknownStep(timer.step.clone()))?;
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
                            if let Some((message, to)) = &b.send {
                                let e =
                                    d.send_event(&timer.step, message, to.as_deref(), None, None);
                                d.emit(e);
                            }
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
                            return Ok(d.out);
                        }
                    }
                }
            }
        }
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
        self.out.push(e);
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
            Some(s) => Ok(s.next.clone()),
            None => Err(Rejection::UnknownStep(step.to_string())),
        }
    }

    /// End the wait at `step` without its own event (a boundary event, a cancel).
    fn interrupt(&mut self, step: &str, by: &str) {
        self.emit(Event::WaitInterrupted {
            step: step.to_string(),
            by: by.to_string(),
        });
    }

    /// End every branch: each wait is interrupted and every timer cancelled.
    fn withdraw_all(&mut self, by: &str) {
        let steps: Vec<String> = self
            .scratch
            .waits
            .iter()
            .map(|w| w.step().to_string())
            .collect();
        for step in &steps {
            self.interrupt(step, by);
        }
        let timer_steps: Vec<String> = self.scratch.timers.iter().map(|t| t.step.clone()).collect();
        for step in timer_steps {
            self.cancel_timers(&step);
        }
    }

    /// A handler attempt failed (an error or a timeout): retry under the step's policy, or
    /// raise an incident when the attempts are used up. The step's other timers are cancelled
    /// either way (a retry starts its timeout anew).
    fn attempt_failed(&mut self, step: &str, job_id: Uuid, error: &str) {
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
    fn record_compensable(&mut self, step: &str) {
        if self.def.step(step).is_some_and(|s| s.compensate.is_some()) {
            self.emit(Event::StepCompensable {
                step: step.to_string(),
            });
        }
    }

    /// Run the compensations still due, newest first: a message goes out at once; a handler
    /// is a job the instance waits for (returns false then). When none is left: after a cancel
    /// the instance is cancelled (false); after a compensate step it goes on (true).
    fn compensate_next(&mut self) -> bool {
        while let Some(step) = self.scratch.compensable.last().cloned() {
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

    /// Start the timeout of an attempt that may run from `from`, if the step has one.
    fn arm_timeout(&mut self, step: &str, from: DateTime<Utc>) {
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

    fn cancel_timeouts(&mut self, step: &str) {
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
    fn cancel_timers(&mut self, step: &str) {
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

    fn send_event(
        &self,
        step: &str,
        message: &str,
        to: Option<&str>,
        key: Option<&str>,
        payload: Option<&Vec<String>>,
    ) -> Event {
        let vars = &self.scratch.variables;
        let payload = match payload {
            None => Value::Object(vars.clone()),
            Some(names) => Value::Object(
                names
                    .iter()
                    .map(|v| (v.clone(), lookup(vars, v).cloned().unwrap_or(Value::Null)))
                    .collect(),
            ),
        };
        Event::MessageSent {
            step: step.to_string(),
            message_id: self.next_id(),
            name: message.to_string(),
            kind: if to.is_some() {
                MessageKind::Command
            } else {
                MessageKind::Event
            },
            to: to.map(str::to_string),
            key: message_key(&self.scratch, key),
            payload,
        }
    }

    /// When a timer spec is due from now, or why it cannot be.
    fn due(&self, spec: &TimerSpec) -> Result<(DateTime<Utc>, u32), String> {
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
    fn schedule(&mut self, step: &str, kind: TimerKind, spec: &TimerSpec) -> bool {
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

    /// Enter steps from `next` on until every branch waits or ends.
    fn run_forward(&mut self, next: Option<String>) -> Result<(), Rejection> {
        let def = self.def;
        let mut queue: VecDeque<String> = next.into_iter().collect();
        // A definition is validated, so every path can end; the bound guards against a loop
        // of steps that never wait.
        let mut budget = def.steps.len() * 4 + 16;
        let mut last = None;
        while let Some(id) = queue.pop_front() {
            if self.scratch.status != Status::Running {
                return Ok(());
            }
            budget -= 1;
            if budget == 0 {
                self.emit(Event::InstanceFailed {
                    step: id,
                    error: "the process loops without ever waiting".into(),
                });
                return Ok(());
            }
            let step = def
                .step(&id)
                .ok_or_else(|| Rejection::UnknownStep(id.clone()))?;
            if def.on_cycle(&id) {
                let pass = self.scratch.passes.get(&id).copied().unwrap_or(0) + 1;
                self.emit(Event::StepEntered {
                    step: id.clone(),
                    pass,
                });
            }
            last = Some(id.clone());
            match &step.kind {
                StepKind::Service {
                    handler, timeout, ..
                } => {
                    let job_id = self.next_id();
                    self.emit(Event::JobCreated {
                        step: id.clone(),
                        job_id,
                        handler: handler.clone(),
                    });
                    if let Some(t) = timeout {
                        if !self.schedule(&id, TimerKind::Timeout, &TimerSpec::After(t.clone())) {
                            return Ok(());
                        }
                    }
                    self.schedule_boundaries(step);
                }
                StepKind::Send {
                    message,
                    to,
                    key,
                    payload,
                } => {
                    let e = self.send_event(
                        &id,
                        message,
                        to.as_deref(),
                        key.as_deref(),
                        payload.as_ref(),
                    );
                    self.emit(e);
                    self.record_compensable(&id);
                    queue.extend(step.next.clone());
                }
                StepKind::Receive { message, key, .. } => {
                    let key = message_key(&self.scratch, key.as_deref());
                    self.emit(Event::MessageAwaited {
                        step: id.clone(),
                        name: message.clone(),
                        key,
                    });
                    self.schedule_boundaries(step);
                }
                StepKind::Timer { timer } => {
                    self.schedule(&id, TimerKind::Step, timer);
                }
                StepKind::Compensate => {
                    // Undoing the work ends every other branch first.
                    queue.clear();
                    self.withdraw_all(&format!("compensation at step {id}"));
                    self.emit(Event::CompensationStarted {
                        reason: format!("step {id}"),
                        then: step.next.clone(),
                        by: String::new(),
                    });
                    if !self.compensate_next() {
                        return Ok(());
                    }
                    queue.extend(step.next.clone());
                }
                StepKind::Exclusive { routes, default } => {
                    let mut taken = None;
                    for (index, r) in routes.iter().enumerate() {
                        let verdict = match def.condition(&id, index) {
                            Some(Ok(e)) => {
                                e.eval(&self.scratch.variables).map_err(|e| e.to_string())
                            }
                            Some(Err(e)) => Err(e.clone()),
                            None => Err("the route has no condition".to_string()),
                        };
                        match verdict {
                            Ok(true) => {
                                taken = Some((Some(r.when.clone()), r.next.clone()));
                                break;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                self.emit(Event::InstanceFailed {
                                    step: id.clone(),
                                    error: format!("condition `{}`: {e}", r.when),
                                });
                                return Ok(());
                            }
                        }
                    }
                    let Some((condition, next)) =
                        taken.or_else(|| default.clone().map(|d| (None, d)))
                    else {
                        self.emit(Event::InstanceFailed {
                            step: id.clone(),
                            error: "no route's condition holds and the gateway has no default"
                                .into(),
                        });
                        return Ok(());
                    };
                    self.emit(Event::GatewayDecided {
                        step: id.clone(),
                        condition,
                        next: next.clone(),
                    });
                    queue.push_back(next);
                }
                StepKind::Parallel { branches } => {
                    self.emit(Event::ParallelForked {
                        step: id.clone(),
                        branches: branches.clone(),
                    });
                    queue.extend(branches.iter().cloned());
                }
                StepKind::Join => {
                    let arrived = self.scratch.joins.get(&id).copied().unwrap_or(0) + 1;
                    let expected = def.incoming(&id) as u32;
                    self.emit(Event::JoinArrived {
                        step: id.clone(),
                        arrived,
                        expected,
                    });
                    if arrived >= expected {
                        queue.extend(step.next.clone());
                    }
                }
                StepKind::EventGateway { key, events } => {
                    let key = message_key(&self.scratch, key.as_deref());
                    self.emit(Event::GatewayEntered {
                        step: id.clone(),
                        key: key.clone(),
                    });
                    for (index, e) in events.iter().enumerate() {
                        match &e.on {
                            BoundaryEvent::Message(name) => {
                                self.emit(Event::BoundaryMessageAwaited {
                                    step: id.clone(),
                                    name: name.clone(),
                                    key: key.clone(),
                                })
                            }
                            BoundaryEvent::Timer(t) => {
                                if !self.schedule(&id, TimerKind::Boundary { index }, t) {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
                StepKind::Call { process, input, .. } => {
                    let vars = &self.scratch.variables;
                    let variables = match input {
                        None => vars.clone(),
                        Some(names) => names
                            .iter()
                            .map(|v| (v.clone(), lookup(vars, v).cloned().unwrap_or(Value::Null)))
                            .collect(),
                    };
                    let child_id = self.next_id();
                    self.emit(Event::ChildStarted {
                        step: id.clone(),
                        child_id,
                        process: process.clone(),
                        variables,
                    });
                    self.schedule_boundaries(step);
                }
                StepKind::End => {
                    if self.scratch.waits.is_empty() && queue.is_empty() {
                        self.emit(Event::InstanceCompleted { step: id.clone() })
                    } else {
                        self.emit(Event::BranchEnded { step: id.clone() })
                    }
                }
            }
        }
        // Every branch ended, yet the instance did not: a join waits for a branch that will
        // never come. Fail it rather than leave it stuck without a word.
        if self.scratch.status == Status::Running
            && self.scratch.waits.is_empty()
            && self.scratch.compensating.is_none()
        {
            let waiting: Vec<String> = self
                .scratch
                .joins
                .iter()
                .map(|(j, n)| format!("{j} ({n} of {} arrived)", self.def.incoming(j)))
                .collect();
            self.emit(Event::InstanceFailed {
                step: last.unwrap_or_default(),
                error: format!(
                    "every branch ended but the instance cannot go on: joins waiting: {}",
                    if waiting.is_empty() {
                        "none".to_string()
                    } else {
                        waiting.join(", ")
                    }
                ),
            });
        }
        Ok(())
    }

    fn schedule_boundaries(&mut self, step: &crate::definition::Step) {
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
            }
        }
    }
}

fn not_waiting(state: &InstanceState, what: &'static str) -> Rejection {
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
fn message_key(state: &InstanceState, path: Option<&str>) -> String {
    match path {
        None => state.business_key.clone(),
        Some(p) => match lookup(&state.variables, p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    }
}

fn map_output(output: &Output, result: &Value) -> Map<String, Value> {
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
