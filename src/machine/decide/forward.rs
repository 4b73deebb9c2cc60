//! Running an instance forward from a step until every branch waits or ends.

use std::collections::VecDeque;

use serde_json::{Map, Value};

use crate::definition::{lookup, BoundaryEvent, StepKind, TimerSpec};

use super::*;

impl Decision<'_> {
    /// The indices of the routes of gateway `id` whose conditions hold (only the first with
    /// `first_only`), or `None` once the instance has failed on a condition that cannot be
    /// evaluated.
    fn routes_that_hold(
        &mut self,
        id: &str,
        routes: &[crate::definition::Route],
        first_only: bool,
    ) -> Option<Vec<usize>> {
        let mut held = Vec::new();
        for (index, r) in routes.iter().enumerate() {
            let vars = self.vars_for(id);
            let verdict = match self.def.condition(id, index) {
                Some(Ok(e)) => e.eval_at(&vars, self.ctx.now).map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.clone()),
                None => Err("the route has no condition".to_string()),
            };
            match verdict {
                Ok(true) => {
                    held.push(index);
                    if first_only {
                        break;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    self.emit(Event::InstanceFailed {
                        step: id.to_string(),
                        error: format!("condition `{}`: {e}", r.when),
                    });
                    return None;
                }
            }
        }
        Some(held)
    }

    pub(super) fn send_event(
        &self,
        step: &str,
        message: &str,
        to: Option<&str>,
        key: Option<&str>,
        payload: Option<&Vec<String>>,
    ) -> Event {
        let vars = self.vars_for(step);
        let payload = match payload {
            None => Value::Object(vars.clone().into_owned()),
            Some(names) => Value::Object(
                names
                    .iter()
                    .map(|v| (v.clone(), lookup(&vars, v).cloned().unwrap_or(Value::Null)))
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
            key: key_in(&vars, &self.scratch.business_key, key),
            payload,
        }
    }

    /// Enter steps from `next` on until every branch waits or ends.
    pub(super) fn run_forward(&mut self, next: Option<String>) -> Result<(), Rejection> {
        let def = self.def;
        // Where the input's step runs for an element, so does what follows it.
        let from = self
            .out
            .iter()
            .filter_map(|e| e.step())
            .find(|s| s.contains('#'))
            .map(str::to_string);
        let next = match (next, from) {
            (Some(n), Some(f)) => Some(self.carry(&f, n)),
            (n, _) => n,
        };
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
            if step.multi.is_some() && crate::definition::split_element(&id).is_none() {
                // Its elements run instead (and may be many: each gets its turn).
                budget += self.enter_multi(step, &mut queue);
                continue;
            }
            // What this step queues runs for the element it runs for.
            let queued = queue.len();
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
                    self.schedule_boundaries(&id, step);
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
                    // An element of a multi-instance send completes as it sends.
                    match split_element(&id) {
                        Some(_) if step.multi.is_some() => {
                            queue.extend(self.after(&id, &Value::Null)?)
                        }
                        _ => queue.extend(step.next.clone()),
                    }
                }
                StepKind::Receive { message, key, .. } => {
                    // By the instance's variables: an inbound message names its instance by
                    // key, not the element that waits.
                    let key = message_key(&self.scratch, key.as_deref());
                    self.emit(Event::MessageAwaited {
                        step: id.clone(),
                        name: message.clone(),
                        key,
                    });
                    self.schedule_boundaries(&id, step);
                }
                StepKind::Timer { timer } => {
                    self.schedule(&id, TimerKind::Step, timer);
                }
                StepKind::UserTask(t) => {
                    if self.open_task(&id, t) {
                        self.schedule_boundaries(&id, step);
                    }
                }
                StepKind::Signal { signal } => {
                    self.emit(Event::SignalThrown {
                        step: id.clone(),
                        signal_id: self.next_id(),
                        name: signal.clone(),
                    });
                    queue.extend(step.next.clone());
                }
                StepKind::Subprocess { start, .. } => {
                    self.emit(Event::SubprocessEntered { step: id.clone() });
                    self.schedule_boundaries(&id, step);
                    self.arm_events(Some(&id));
                    queue.push_back(start.clone());
                }
                StepKind::EventSubprocess { .. } => {
                    // Validation lets no flow lead here: only its event starts it.
                    return Err(Rejection::UnknownStep(id));
                }
                StepKind::WaitSignal { signal, .. } => {
                    self.emit(Event::MessageAwaited {
                        step: id.clone(),
                        name: crate::definition::signal_subscription(signal),
                        key: String::new(),
                    });
                    self.schedule_boundaries(&id, step);
                }
                StepKind::Compensate => {
                    // Undoing the work ends every other branch first (but the subprocesses
                    // around the step, whose own steps are the ones undone).
                    queue.clear();
                    self.withdraw_all_but(&format!("compensation at step {id}"), Some(&id));
                    self.emit(Event::CompensationStarted {
                        reason: format!("step {id}"),
                        then: step.next.clone(),
                        by: String::new(),
                        scope: def.scope_of(&id),
                    });
                    if !self.compensate_next() {
                        return Ok(());
                    }
                    queue.extend(step.next.clone());
                }
                StepKind::Exclusive { routes, default } => {
                    let Some(held) = self.routes_that_hold(&id, routes, true) else {
                        return Ok(());
                    };
                    let taken = held
                        .first()
                        .map(|&i| (Some(routes[i].when.clone()), routes[i].next.clone()));
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
                StepKind::Inclusive { routes, default } => {
                    let Some(held) = self.routes_that_hold(&id, routes, false) else {
                        return Ok(());
                    };
                    let mut taken: Vec<String> =
                        held.iter().map(|&i| routes[i].next.clone()).collect();
                    if taken.is_empty() {
                        taken.extend(default.clone());
                    }
                    let join = def
                        .inclusive_join(&id)
                        .map(|j| self.carry(&id, j.to_string()));
                    let (false, Some(join)) = (taken.is_empty(), join) else {
                        self.emit(Event::InstanceFailed {
                            step: id.clone(),
                            error: "no route's condition holds and the gateway has no default"
                                .into(),
                        });
                        return Ok(());
                    };
                    self.emit(Event::InclusiveForked {
                        step: id.clone(),
                        branches: taken.clone(),
                        join,
                    });
                    queue.extend(taken);
                }
                StepKind::InclusiveJoin => {
                    let arrived = self.scratch.joins.get(&id).copied().unwrap_or(0) + 1;
                    let expected = self
                        .scratch
                        .join_expected
                        .get(&id)
                        .copied()
                        .unwrap_or_else(|| def.incoming(&id) as u32);
                    self.emit(Event::JoinArrived {
                        step: id.clone(),
                        arrived,
                        expected,
                    });
                    if arrived >= expected {
                        queue.extend(step.next.clone());
                    }
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
                            // Refused by validation.
                            BoundaryEvent::Signal(_) => {}
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
                    let mut variables = variables;
                    variables.extend(self.scratch.element_variables(def, &id));
                    if !step.inputs.is_empty() {
                        let vars = &self.scratch.variables;
                        variables.extend(crate::definition::map_all(
                            &step.inputs,
                            vars,
                            &Map::new(),
                            Some(self.ctx.now),
                        ));
                    }
                    let child_id = self.next_id();
                    self.emit(Event::ChildStarted {
                        step: id.clone(),
                        child_id,
                        process: process.clone(),
                        variables,
                    });
                    self.schedule_boundaries(&id, step);
                }
                StepKind::Error { code } => {
                    let message = format!("business error {code}");
                    if let Some(next) = self.catch_in_scopes(&id, code, &message, &mut queue) {
                        queue.push_back(next);
                        continue;
                    }
                    // Every other branch ends too; the instance fails with the code.
                    queue.clear();
                    self.withdraw_all(&format!("error {code} at {id}"));
                    self.emit(Event::ErrorThrown {
                        step: id.clone(),
                        code: code.clone(),
                    });
                    self.emit(Event::InstanceFailed {
                        step: id.clone(),
                        error: format!("business error {code}"),
                    });
                }
                StepKind::Terminate if step.within.is_some() => {
                    // Inside a subprocess, it ends that subprocess (everything in it).
                    let scope = def.scope_of(&id).unwrap_or_default();
                    self.withdraw_inside(&scope, &format!("terminated at {id}"), &mut queue);
                    self.complete_scope(&scope, &mut queue);
                }
                StepKind::Terminate => {
                    // Every other branch ends here: its waits and timers go, and what was
                    // queued to run is not run.
                    queue.clear();
                    self.withdraw_all(&format!("terminated at {id}"));
                    self.emit(Event::InstanceCompleted { step: id.clone() })
                }
                StepKind::End if step.within.is_some() => {
                    let scope = def.scope_of(&id).unwrap_or_default();
                    self.end_inside(&id, &scope, &mut queue);
                }
                StepKind::End => {
                    if !self.scratch.branches_run() && queue.is_empty() {
                        self.disarm_events(None);
                        self.emit(Event::InstanceCompleted { step: id.clone() })
                    } else {
                        self.emit(Event::BranchEnded { step: id.clone() })
                    }
                }
            }
            // A step that completes as it is entered reaches its milestone now.
            if matches!(
                step.kind,
                StepKind::Send { .. }
                    | StepKind::Signal { .. }
                    | StepKind::Exclusive { .. }
                    | StepKind::Inclusive { .. }
                    | StepKind::Parallel { .. }
                    | StepKind::End
                    | StepKind::Terminate
                    | StepKind::Compensate
                    | StepKind::Error { .. }
            ) {
                self.reached(&id);
            }
            if id.contains('#') {
                for i in queued.min(queue.len())..queue.len() {
                    let q = std::mem::take(&mut queue[i]);
                    queue[i] = self.carry(&id, q);
                }
            }
        }
        self.stuck_scopes();
        // Every branch ended, yet the instance did not: a join waits for a branch that will
        // never come. Fail it rather than leave it stuck without a word.
        if self.scratch.status == Status::Running
            && !self.scratch.branches_run()
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
}
