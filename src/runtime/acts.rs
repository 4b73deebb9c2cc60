//! Operator actions and task actions from many callers, grouped: while the engine's workers
//! run, concurrent calls share one transaction (group commit), each in a savepoint of its own,
//! so that one refused or failing action changes nothing of its own and fails no other. An
//! action that failed for a reason worth retrying (a conflict), or a group whose commit
//! failed, is done again alone, as without the engine running.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch, Mutex};
use uuid::Uuid;

use super::*;
use crate::machine::TaskAction;
use crate::store::{Applied, Result, Work};

/// One caller's action.
#[derive(Debug, Clone)]
pub(crate) enum Act {
    /// An operator's input to an instance (retry, cancel, pause, resume).
    Instance {
        instance: Uuid,
        input: crate::machine::Input,
    },
    /// An action on a task, by a named user.
    Task {
        task_id: Uuid,
        action: TaskAction,
        by: String,
    },
}

/// An action and where its outcome goes.
pub(crate) type ActCall = (Act, oneshot::Sender<Result<()>>);

impl Engine {
    /// Do `act` in a group with other callers' while the workers run; alone otherwise.
    pub(super) async fn act_grouped(&self, act: Act) -> Result<()> {
        if let Some(local) = self.local() {
            let (tx, rx) = oneshot::channel();
            if local.acts.send((act.clone(), tx)).is_ok() {
                if let Ok(result) = rx.await {
                    return result;
                }
            }
        }
        self.act_alone(act).await
    }

    /// One action in a transaction of its own, retried a few times on a conflict.
    pub(super) async fn act_alone(&self, act: Act) -> Result<()> {
        match act {
            Act::Instance { instance, input } => self.apply_input(instance, input).await,
            Act::Task {
                task_id,
                action,
                by,
            } => self.task_alone(task_id, action, &by).await,
        }
    }

    /// One action inside the group's transaction.
    async fn act_in(
        &self,
        c: &impl crate::store::Conn,
        now: chrono::DateTime<chrono::Utc>,
        act: Act,
        lease: Option<&crate::store::Lease>,
    ) -> Result<Applied> {
        match act {
            Act::Instance { instance, input } => {
                let work = Work::Continue {
                    instance_id: instance,
                    input,
                };
                let mut applied = self
                    .inner
                    .store
                    .apply(c, now, vec![work], lease, Vec::new())
                    .await?;
                applied.outcomes.pop().expect("one outcome per work")?;
                Ok(applied)
            }
            Act::Task {
                task_id,
                action,
                by,
            } => self.task_in(c, now, task_id, action, &by, lease).await,
        }
    }

    /// A group of actions in one transaction. Returns each action's outcome, `None` for those
    /// to do again alone; all `None` if the transaction itself failed.
    async fn act_group(&self, acts: &[Act]) -> Vec<Option<Result<()>>> {
        let again = || acts.iter().map(|_| None).collect();
        let Ok(mut client) = self.inner.store.client().await else {
            return again();
        };
        let now = self.now();
        let lease = self.lease(now);
        let Ok(mut tx) = client.transaction().await else {
            return again();
        };
        let mut outcomes = Vec::with_capacity(acts.len());
        let mut applied = Vec::new();
        for act in acts {
            let Ok(sp) = tx.savepoint("act").await else {
                return again();
            };
            match self.act_in(&sp, now, act.clone(), lease.as_ref()).await {
                Ok(a) => {
                    if sp.commit().await.is_err() {
                        return again();
                    }
                    applied.push(a);
                    outcomes.push(Some(Ok(())));
                }
                Err(e) => {
                    if sp.rollback().await.is_err() {
                        return again();
                    }
                    outcomes.push(if e.is_retryable() { None } else { Some(Err(e)) });
                }
            }
        }
        if tx.commit().await.is_err() {
            return again();
        }
        for a in applied {
            self.after_commit(a).await;
        }
        outcomes
    }
}

/// Group concurrent operator and task actions into one transaction each round.
pub(super) async fn group_acts(
    engine: Engine,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<ActCall>>>,
    mut stop: watch::Receiver<bool>,
) {
    let max = engine.inner.config.completion_batch;
    loop {
        let Some(batch) = workers::next_batch(&rx, max, &mut stop).await else {
            return;
        };
        let (acts, replies): (Vec<Act>, Vec<_>) = batch.into_iter().unzip();
        let outcomes = if acts.len() == 1 {
            vec![None]
        } else {
            guard::caught(async { Ok::<_, crate::store::Error>(engine.act_group(&acts).await) })
                .await
                .unwrap_or_else(|_| acts.iter().map(|_| None).collect())
        };
        for ((act, reply), outcome) in acts.into_iter().zip(replies).zip(outcomes) {
            let outcome = match outcome {
                Some(o) => o,
                None => guard::caught(engine.act_alone(act)).await,
            };
            let _ = reply.send(outcome);
        }
    }
}
