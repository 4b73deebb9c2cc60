//! User tasks in a decision: opening one as its step is entered, the actions people take on
//! it, and an escalation timer's reassignment.

use serde_json::Map;
use uuid::Uuid;

use crate::definition::{resolve_date, resolve_people, Reassign, StepKind, UserTask};

use super::*;

/// What follows a task action: the instance keeps waiting, or goes on from a step.
pub(super) enum After {
    Waits,
    Forward(Option<String>),
}

fn people(specs: &[String], vars: &Map<String, Value>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for s in specs {
        for p in resolve_people(s, vars)? {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn one_person(spec: &Option<String>, vars: &Map<String, Value>) -> Result<Option<String>, String> {
    match spec {
        None => Ok(None),
        Some(s) => Ok(resolve_people(s, vars)?.into_iter().next()),
    }
}

impl Decision<'_> {
    /// Open the task of a user task step (or fail the instance when its people or dates
    /// cannot be resolved from the variables).
    pub(super) fn open_task(&mut self, id: &str, t: &UserTask) -> bool {
        // An element's people and dates may refer to its element.
        let mut with_element;
        let mut vars = &self.scratch.variables;
        if crate::definition::split_element(id).is_some() {
            with_element = vars.clone();
            with_element.extend(self.scratch.element_variables(self.def, id));
            vars = &with_element;
        }
        let now = self.ctx.now;
        let resolved = (|| -> Result<Event, String> {
            Ok(Event::TaskCreated {
                step: id.to_string(),
                task_id: self.next_id(),
                assignee: one_person(&t.assignee, vars).map_err(|e| format!("assignee: {e}"))?,
                candidate_users: people(&t.candidate_users, vars)
                    .map_err(|e| format!("candidate users: {e}"))?,
                candidate_groups: people(&t.candidate_groups, vars)
                    .map_err(|e| format!("candidate groups: {e}"))?,
                due_at: match &t.due {
                    Some(d) => resolve_date(d, vars, now).map_err(|e| format!("due: {e}"))?,
                    None => None,
                },
                follow_up_at: match &t.follow_up {
                    Some(d) => resolve_date(d, vars, now).map_err(|e| format!("follow-up: {e}"))?,
                    None => None,
                },
                priority: t.priority,
                form: t.form.clone(),
                at: now,
            })
        })();
        match resolved {
            Ok(e) => {
                self.emit(e);
                true
            }
            Err(error) => {
                self.emit(Event::InstanceFailed {
                    step: id.to_string(),
                    error: format!("the task of step {id}: {error}"),
                });
                false
            }
        }
    }

    /// An escalation: a non-interrupting boundary timer's `assign` on a waiting task.
    pub(super) fn reassign(&mut self, step: &str, a: &Reassign, by: String) {
        let Some(Wait::Task { task_id, .. }) = self.scratch.wait_at(step).cloned() else {
            return;
        };
        let vars = &self.scratch.variables;
        let resolved = (|| -> Result<Event, String> {
            Ok(Event::TaskAssigned {
                step: step.to_string(),
                task_id,
                assignee: one_person(&a.assignee, vars)?,
                candidate_users: a
                    .candidate_users
                    .as_ref()
                    .map(|u| people(u, vars))
                    .transpose()?,
                candidate_groups: a
                    .candidate_groups
                    .as_ref()
                    .map(|g| people(g, vars))
                    .transpose()?,
                by,
            })
        })();
        match resolved {
            Ok(e) => self.emit(e),
            Err(error) => self.emit(Event::InstanceFailed {
                step: step.to_string(),
                error: format!("the escalation of step {step}: {error}"),
            }),
        }
    }

    /// Someone acts on an open task.
    pub(super) fn task_action(
        &mut self,
        state: &InstanceState,
        task_id: Uuid,
        action: &TaskAction,
        by: &str,
    ) -> Result<After, Rejection> {
        // An ended instance has no open task: the task is what the caller asked about.
        let Some((step, task)) = state.task(task_id) else {
            return Err(Rejection::TaskNotOpen(task_id));
        };
        let step = step.to_string();
        let bad = |problem: String| Rejection::TaskInput { task_id, problem };
        if by.is_empty() {
            return Err(bad("who acts on a task must be named".into()));
        }
        let held_by_other = |force: bool| -> Result<(), Rejection> {
            match &task.assignee {
                Some(a) if a != by && !force => Err(Rejection::TaskHeld {
                    task_id,
                    assignee: a.clone(),
                }),
                _ => Ok(()),
            }
        };
        match action {
            TaskAction::Claim { force } => {
                held_by_other(*force)?;
                if task.assignee.as_deref() != Some(by) {
                    self.emit(Event::TaskClaimed {
                        step,
                        task_id,
                        assignee: by.to_string(),
                        previous: task.assignee.clone(),
                        by: by.to_string(),
                    });
                }
                Ok(After::Waits)
            }
            TaskAction::Unclaim { force } => {
                held_by_other(*force)?;
                if let Some(previous) = task.assignee.clone() {
                    self.emit(Event::TaskUnclaimed {
                        step,
                        task_id,
                        previous,
                        by: by.to_string(),
                    });
                }
                Ok(After::Waits)
            }
            TaskAction::Assign {
                assignee,
                candidate_users,
                candidate_groups,
                force,
            } => {
                held_by_other(*force)?;
                for name in assignee
                    .iter()
                    .chain(candidate_users.iter().flatten())
                    .chain(candidate_groups.iter().flatten())
                {
                    if !crate::definition::is_person(name) {
                        return Err(bad(format!(
                            "\"{name}\" is not a valid user or group name (1 to 200 bytes, no control characters or spaces at either end)"
                        )));
                    }
                }
                self.emit(Event::TaskAssigned {
                    step,
                    task_id,
                    assignee: assignee.clone(),
                    candidate_users: candidate_users.clone(),
                    candidate_groups: candidate_groups.clone(),
                    by: by.to_string(),
                });
                Ok(After::Waits)
            }
            TaskAction::Update {
                due_at,
                follow_up_at,
                priority,
            } => {
                let priority = priority.unwrap_or(task.priority);
                if priority > 100 {
                    return Err(bad("a priority runs from 0 to 100".into()));
                }
                self.emit(Event::TaskUpdated {
                    step,
                    task_id,
                    due_at: due_at.unwrap_or(task.due_at),
                    follow_up_at: follow_up_at.unwrap_or(task.follow_up_at),
                    priority,
                    by: by.to_string(),
                });
                Ok(After::Waits)
            }
            TaskAction::Complete { variables, force } => {
                held_by_other(*force)?;
                let def = match self.def.step(&step).map(|s| &s.kind) {
                    Some(StepKind::UserTask(t)) => t,
                    _ => return Err(Rejection::UnknownStep(step)),
                };
                def.check_completion(variables).map_err(bad)?;
                let result = Value::Object(variables.clone());
                let set = self.result_set(&step, &def.output, &result);
                self.emit(Event::TaskCompleted {
                    step: step.clone(),
                    task_id,
                    set,
                    by: by.to_string(),
                });
                self.cancel_timers(&step);
                Ok(After::Forward(self.after(&step, &result)?))
            }
        }
    }
}
