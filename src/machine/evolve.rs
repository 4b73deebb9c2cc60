//! `evolve`: one event applied to the state. Total: every event applies to every state.

use serde_json::{Map, Value};

use super::*;

/// Apply one event to the state. Total: every event applies to every state.
pub fn evolve(state: &mut InstanceState, event: &Event) {
    fn end_wait(state: &mut InstanceState, step: &str) {
        state.waits.retain(|w| w.step() != step);
    }
    fn set(state: &mut InstanceState, vars: &Map<String, Value>) {
        for (k, v) in vars {
            state.variables.insert(k.clone(), v.clone());
        }
    }
    match event {
        Event::InstanceStarted {
            business_key,
            variables,
            parent,
            trace,
            ..
        } => {
            state.status = Status::Running;
            state.business_key = business_key.clone();
            state.variables = variables.clone();
            state.parent = parent.clone();
            state.trace = trace.clone();
        }
        Event::JobCreated {
            step,
            job_id,
            handler,
        } => {
            end_wait(state, step);
            state.waits.push(Wait::Job {
                step: step.clone(),
                job_id: *job_id,
                handler: handler.clone(),
                attempt: 1,
            })
        }
        Event::JobRetryScheduled {
            job_id, attempt: n, ..
        } => {
            for w in &mut state.waits {
                if let Wait::Job {
                    job_id: j, attempt, ..
                } = w
                {
                    if j == job_id {
                        *attempt = *n;
                    }
                }
            }
        }
        Event::IncidentRaised {
            step,
            error,
            attempts,
            at,
            ..
        } => {
            state.incidents.retain(|i| &i.step != step);
            state.incidents.push(Incident {
                step: step.clone(),
                error: error.clone(),
                attempts: *attempts,
                at: *at,
            })
        }
        Event::IncidentResolved {
            step, set: vars, ..
        } => {
            set(state, vars);
            state.incidents.retain(|i| &i.step != step);
            state.error = None;
        }
        Event::InstanceCancelled { .. } => {
            state.status = Status::Cancelled;
            state.multi.clear();
            state.waits.clear();
            state.timers.clear();
            state.incidents.clear();
            state.joins.clear();
            state.compensating = None;
            state.compensate_then = None;
            state.compensate_scope = None;
            state.paused = false;
        }
        Event::StepCompensable { step } => state.compensable.push(step.clone()),
        Event::InstancePaused { .. } => state.paused = true,
        Event::InstanceResumed { .. } => state.paused = false,
        Event::CompensationStarted {
            reason,
            then,
            scope,
            ..
        } => {
            state.compensating = Some(reason.clone());
            state.compensate_then = then.clone();
            state.compensate_scope = scope.clone();
            // Inside a subprocess, the subprocesses around the compensate step go on.
            state
                .waits
                .retain(|w| scope.is_some() && matches!(w, Wait::Scope { .. }));
            state.incidents.clear();
            state.joins.clear();
        }
        Event::CompensationFinished { .. } => {
            state.compensating = None;
            state.compensate_then = None;
            state.compensate_scope = None;
        }
        Event::SubprocessEntered { step } => {
            end_wait(state, step);
            state.waits.push(Wait::Scope { step: step.clone() });
        }
        Event::SubprocessCompleted { step } => end_wait(state, step),
        Event::EventSubprocessArmed { step } => {
            end_wait(state, step);
            state.waits.push(Wait::Armed { step: step.clone() });
        }
        Event::EventSubprocessStarted { step } => {
            end_wait(state, step);
            state.waits.push(Wait::Scope { step: step.clone() });
        }
        Event::MultiInstanceStarted { step, items } => {
            end_wait(state, step);
            state.waits.push(Wait::Scope { step: step.clone() });
            state.multi.insert(
                step.clone(),
                MultiState {
                    items: items.clone(),
                    results: vec![Value::Null; items.len()],
                    done: 0,
                },
            );
        }
        Event::ElementCompleted {
            step,
            index,
            result,
        } => {
            if let Some(m) = state.multi.get_mut(step) {
                if let Some(r) = m.results.get_mut(*index) {
                    *r = result.clone();
                }
                m.done += 1;
            }
        }
        Event::MultiInstanceCompleted { step, set: vars } => {
            end_wait(state, step);
            state.multi.remove(step);
            set(state, vars);
        }
        Event::StepCompensated { step } => {
            if let Some(i) = state.compensable.iter().rposition(|s| s == step) {
                state.compensable.remove(i);
            }
        }
        Event::TaskCreated {
            step,
            task_id,
            assignee,
            candidate_users,
            candidate_groups,
            due_at,
            follow_up_at,
            priority,
            form,
            at,
        } => {
            end_wait(state, step);
            state.waits.push(Wait::Task {
                step: step.clone(),
                task_id: *task_id,
                task: OpenTask {
                    assignee: assignee.clone(),
                    candidate_users: candidate_users.clone(),
                    candidate_groups: candidate_groups.clone(),
                    due_at: *due_at,
                    follow_up_at: *follow_up_at,
                    priority: *priority,
                    form: form.clone(),
                    created_at: *at,
                },
            });
        }
        Event::TaskClaimed { task_id, .. }
        | Event::TaskUnclaimed { task_id, .. }
        | Event::TaskAssigned { task_id, .. }
        | Event::TaskUpdated { task_id, .. } => {
            for w in &mut state.waits {
                if let Wait::Task {
                    task_id: t, task, ..
                } = w
                {
                    if t == task_id {
                        change_task(task, event);
                    }
                }
            }
        }
        Event::JobCompleted {
            step, set: vars, ..
        }
        | Event::TaskCompleted {
            step, set: vars, ..
        }
        | Event::MessageCorrelated {
            step, set: vars, ..
        }
        | Event::ChildCompleted {
            step, set: vars, ..
        } => {
            set(state, vars);
            end_wait(state, step);
        }
        Event::BoundaryMessageReceived { set: vars, .. } => set(state, vars),
        Event::JobFailed { error, .. } => state.error = Some(error.clone()),
        Event::BusinessErrorCaught {
            step, set: vars, ..
        } => {
            set(state, vars);
            end_wait(state, step);
            state.error = None;
        }
        Event::JobTimedOut { error, .. } => state.error = Some(error.clone()),
        Event::ErrorThrown { code, .. } => state.error_code = Some(code.clone()),
        Event::InclusiveForked { join, branches, .. } => {
            state
                .join_expected
                .insert(join.clone(), branches.len() as u32);
        }
        Event::MessageSent { .. }
        | Event::MilestoneReached { .. }
        | Event::SignalThrown { .. }
        | Event::BoundaryMessageAwaited { .. }
        | Event::GatewayDecided { .. }
        | Event::ParallelForked { .. }
        | Event::BranchEnded { .. } => {}
        Event::MessageAwaited { step, name, key } => {
            end_wait(state, step);
            state.waits.push(Wait::Message {
                step: step.clone(),
                name: name.clone(),
                key: key.clone(),
            })
        }
        Event::GatewayEntered { step, key } => {
            end_wait(state, step);
            state.waits.push(Wait::Gateway {
                step: step.clone(),
                key: key.clone(),
            })
        }
        Event::ChildStarted {
            step,
            child_id,
            process,
            ..
        } => {
            end_wait(state, step);
            state.waits.push(Wait::Child {
                step: step.clone(),
                child_id: *child_id,
                process: process.clone(),
            })
        }
        Event::StepEntered { step, pass } => {
            state.passes.insert(step.clone(), *pass);
        }
        Event::JoinArrived {
            step,
            arrived,
            expected,
        } => {
            if arrived >= expected {
                state.joins.remove(step);
                state.join_expected.remove(step);
            } else {
                state.joins.insert(step.clone(), *arrived);
            }
        }
        Event::TimerScheduled {
            step,
            timer_id,
            kind,
            due_at,
            remaining,
        } => {
            state.timers.push(ActiveTimer {
                timer_id: *timer_id,
                step: step.clone(),
                kind: *kind,
                due_at: *due_at,
                remaining: *remaining,
            });
            if *kind == TimerKind::Step {
                end_wait(state, step);
                state.waits.push(Wait::Timer {
                    step: step.clone(),
                    timer_id: *timer_id,
                });
            }
        }
        Event::TimerFired {
            step,
            timer_id,
            kind,
        } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
            if *kind == TimerKind::Step {
                end_wait(state, step);
            }
        }
        Event::TimerCancelled { timer_id, .. } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
        }
        Event::WaitInterrupted { step, .. } => {
            end_wait(state, step);
            state.multi.remove(step);
        }
        Event::InstanceCompleted { .. } => {
            state.status = Status::Completed;
            state.multi.clear();
            state.waits.clear();
            state.timers.clear();
            state.joins.clear();
        }
        Event::InstanceFailed { error, .. } => {
            state.status = Status::Failed;
            state.multi.clear();
            state.waits.clear();
            state.error = Some(error.clone());
            state.timers.clear();
        }
        Event::Migrated {
            steps,
            handlers,
            set: vars,
            ..
        } => {
            let rename = |s: &mut String| {
                if let Some(n) = steps.get(s.as_str()) {
                    *s = n.clone();
                }
            };
            for w in &mut state.waits {
                match w {
                    Wait::Job { step, handler, .. } => {
                        rename(step);
                        if let Some(h) = handlers.get(step.as_str()) {
                            *handler = h.clone();
                        }
                    }
                    Wait::Message { step, .. }
                    | Wait::Timer { step, .. }
                    | Wait::Gateway { step, .. }
                    | Wait::Task { step, .. }
                    | Wait::Scope { step }
                    | Wait::Armed { step }
                    | Wait::Child { step, .. } => rename(step),
                }
            }
            for t in &mut state.timers {
                rename(&mut t.step);
            }
            for i in &mut state.incidents {
                rename(&mut i.step);
            }
            for c in &mut state.compensable {
                rename(c);
            }
            state.joins = std::mem::take(&mut state.joins)
                .into_iter()
                .map(|(mut k, v)| {
                    rename(&mut k);
                    (k, v)
                })
                .collect();
            state.join_expected = std::mem::take(&mut state.join_expected)
                .into_iter()
                .map(|(mut k, v)| {
                    rename(&mut k);
                    (k, v)
                })
                .collect();
            state.passes = std::mem::take(&mut state.passes)
                .into_iter()
                .map(|(mut k, v)| {
                    rename(&mut k);
                    (k, v)
                })
                .collect();
            set(state, vars);
        }
    }
}

/// Apply a change of an open task (claim, unclaim, assignment, update) to it.
pub(crate) fn change_task(task: &mut OpenTask, event: &Event) {
    match event {
        Event::TaskClaimed { assignee, .. } => task.assignee = Some(assignee.clone()),
        Event::TaskUnclaimed { .. } => task.assignee = None,
        Event::TaskAssigned {
            assignee,
            candidate_users,
            candidate_groups,
            ..
        } => {
            task.assignee = assignee.clone();
            if let Some(u) = candidate_users {
                task.candidate_users = u.clone();
            }
            if let Some(g) = candidate_groups {
                task.candidate_groups = g.clone();
            }
        }
        Event::TaskUpdated {
            due_at,
            follow_up_at,
            priority,
            ..
        } => {
            task.due_at = *due_at;
            task.follow_up_at = *follow_up_at;
            task.priority = *priority;
        }
        _ => {}
    }
}
