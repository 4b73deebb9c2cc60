//! User tasks: the task list and what people do with tasks (claim, release, assign, change
//! dates or priority, complete). Each action is a transition of the task's instance, recorded
//! as an event with who did it.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::*;
use crate::machine::{Input, Rejection, TaskAction};
use crate::store::{Conn, Error, Result, TaskDetail, TaskPage, TaskQuery, Work};

impl Engine {
    /// A page of open tasks (see [`TaskQuery`]; [`TaskPage::next`] is the cursor of the next).
    pub async fn tasks(&self, query: &TaskQuery) -> Result<TaskPage> {
        self.inner.store.tasks(query).await
    }

    /// One open task with its instance's variables and the fields its completion must
    /// supply; `None` when it is not open (completed, or withdrawn).
    pub async fn task(&self, task_id: Uuid) -> Result<Option<TaskDetail>> {
        self.inner.store.task(task_id).await
    }

    /// `user` takes the task. Refused ([`Error::TaskHeld`]) while someone else holds it; a
    /// claim by whoever holds it already changes nothing.
    pub async fn claim(&self, task_id: Uuid, user: &str) -> Result<()> {
        self.act_on_task(task_id, TaskAction::Claim { force: false }, user)
            .await
    }

    /// `user` releases the task they hold to its candidates.
    pub async fn unclaim(&self, task_id: Uuid, user: &str) -> Result<()> {
        self.act_on_task(task_id, TaskAction::Unclaim { force: false }, user)
            .await
    }

    /// `by` gives the task to `assignee` (a delegation; `None` releases it). Refused while
    /// someone other than `by` holds it (an operator uses [`Engine::act_on_task`] with
    /// `force`).
    pub async fn assign(&self, task_id: Uuid, assignee: Option<&str>, by: &str) -> Result<()> {
        let action = TaskAction::Assign {
            assignee: assignee.map(str::to_string),
            candidate_users: None,
            candidate_groups: None,
            force: false,
        };
        self.act_on_task(task_id, action, by).await
    }

    /// `user` completes the task with `variables` (a JSON object, checked against the task's
    /// declared fields); the instance goes on. Refused while someone else holds it, when the
    /// variables do not match, or when the task is no longer open ([`Error::TaskNotOpen`]:
    /// of two concurrent completions, one wins and the other gets this).
    pub async fn complete(&self, task_id: Uuid, user: &str, variables: Value) -> Result<()> {
        let variables = self.task_variables(variables)?;
        let action = TaskAction::Complete {
            variables,
            force: false,
        };
        self.act_on_task(task_id, action, user).await
    }

    /// Any action on a task, by `by` (a user name from the host's authentication). While the
    /// engine's workers run, concurrent actions (these and operator actions) share one
    /// transaction, each in a savepoint of its own, so each caller still gets its own outcome;
    /// otherwise each is a transaction of its own.
    pub async fn act_on_task(&self, task_id: Uuid, action: TaskAction, by: &str) -> Result<()> {
        check_by(by)?;
        self.act_grouped(super::acts::Act::Task {
            task_id,
            action,
            by: by.to_string(),
        })
        .await
    }

    /// A task action in a transaction of its own, retried a few times on a conflict.
    pub(super) async fn task_alone(
        &self,
        task_id: Uuid,
        action: TaskAction,
        by: &str,
    ) -> Result<()> {
        let store = &self.inner.store;
        for attempt in 1.. {
            let mut client = store.client().await?;
            let now = self.now();
            let lease = self.lease(now);
            let tx = client.transaction().await?;
            let result = self
                .task_in(&tx, now, task_id, action.clone(), by, lease.as_ref())
                .await;
            match result {
                Ok(applied) => {
                    tx.commit().await?;
                    self.after_commit(applied).await;
                    return Ok(());
                }
                Err(e) if e.is_retryable() && attempt < 5 => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// An action on a task in the caller's transaction: it happens if and only if the caller
    /// commits. On [`Error::Conflict`] the caller should roll back and retry.
    pub async fn act_on_task_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        task_id: Uuid,
        action: TaskAction,
        by: &str,
    ) -> Result<()> {
        check_by(by)?;
        let c = self.inner.store.caller_tx(tx).await?;
        let applied = self
            .task_in(&c, self.now(), task_id, action, by, None)
            .await?;
        if applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some() {
            self.inner.store.notify(Some(tx)).await?;
        }
        Ok(())
    }

    pub(super) async fn task_in(
        &self,
        c: &impl Conn,
        now: chrono::DateTime<chrono::Utc>,
        task_id: Uuid,
        action: TaskAction,
        by: &str,
        lease: Option<&crate::store::Lease>,
    ) -> Result<crate::store::Applied> {
        if let TaskAction::Complete { variables, .. } = &action {
            self.check_variables(
                "the completion's variables",
                &Value::Object(variables.clone()),
            )?;
        }
        let store = &self.inner.store;
        let Some(instance_id) = store.task_instance_in(c, task_id).await? else {
            return Err(Error::TaskNotOpen(task_id));
        };
        let work = Work::Continue {
            instance_id,
            input: Input::Task {
                task_id,
                action,
                by: by.to_string(),
            },
        };
        let mut applied = store.apply(c, now, vec![work], lease, Vec::new()).await?;
        match applied.outcomes.pop().expect("one outcome per work") {
            Ok(()) => Ok(applied),
            Err(Error::Rejected { rejection, .. }) => Err(match rejection {
                // Completed or withdrawn between the lookup and the lock.
                Rejection::TaskNotOpen(t) => Error::TaskNotOpen(t),
                Rejection::TaskHeld { task_id, assignee } => Error::TaskHeld { task_id, assignee },
                Rejection::TaskInput { task_id, problem } => {
                    Error::BadInput(format!("task {task_id}: {problem}"))
                }
                other => Error::Rejected {
                    instance: instance_id,
                    rejection: other,
                },
            }),
            Err(e) => Err(e),
        }
    }

    fn task_variables(&self, variables: Value) -> Result<Map<String, Value>> {
        match variables {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Map::new()),
            other => Err(Error::BadInput(format!(
                "a completion's variables must be a JSON object, not {other}"
            ))),
        }
    }
}

fn check_by(by: &str) -> Result<()> {
    if by.is_empty() || by.contains('\0') || by.len() > 1024 {
        return Err(Error::BadInput(
            "who acts on a task must be named: 1 to 1,024 bytes without NUL characters".into(),
        ));
    }
    Ok(())
}
