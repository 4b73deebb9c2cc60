//! Operator actions and timers fired on demand.

use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::store::{Error, Result, Work};

impl Engine {
    /// Retry the step of an instance's open incident, after setting `variables` (a JSON
    /// object) if given: the job runs again with the same id, from attempt 1.
    pub async fn retry(&self, instance: Uuid, variables: Option<Value>) -> Result<()> {
        self.act(instance, Action::Retry { variables }, "").await
    }

    /// Cancel a running instance: its job, subscriptions and timers are withdrawn and it
    /// ends as `cancelled`, with the reason in its history (after its compensations, if
    /// completed steps declare them).
    pub async fn cancel(&self, instance: Uuid, reason: &str) -> Result<()> {
        let reason = reason.to_string();
        self.act(instance, Action::Cancel { reason }, "").await
    }

    /// Pause a running instance: it makes no progress until [`Engine::resume`](crate::Engine::resume). Its job,
    /// timers and subscriptions are withdrawn; messages for it wait in the inbox (within
    /// their time to live), timers that fall due wait, and a handler already running has its
    /// result dropped (the job runs again after the resume).
    pub async fn pause(&self, instance: Uuid) -> Result<()> {
        self.act(instance, Action::Pause, "").await
    }

    /// Resume a paused instance: what was withdrawn comes back, and messages that arrived and
    /// timers that fell due meanwhile are taken at once.
    pub async fn resume(&self, instance: Uuid) -> Result<()> {
        self.act(instance, Action::Resume, "").await
    }

    /// An operator's action on one instance, recorded in its history with `by`, who asked
    /// (a user name from the host's authentication, `cli:alice`, ...; empty if unknown). The
    /// same as [`Engine::retry`](crate::Engine::retry), [`Engine::cancel`](crate::Engine::cancel), [`Engine::pause`](crate::Engine::pause) and
    /// [`Engine::resume`](crate::Engine::resume), which record no one.
    pub async fn act(&self, instance: Uuid, action: Action, by: &str) -> Result<()> {
        if by.contains('\0') || by.len() > 1024 {
            return Err(Error::BadInput(
                "who asked must be at most 1,024 bytes without NUL characters".into(),
            ));
        }
        let by = by.to_string();
        let input = match action {
            Action::Retry { variables } => {
                if let Some(v) = &variables {
                    self.check_variables("the retry's variables", v)?;
                }
                let variables = match variables {
                    None => None,
                    Some(Value::Object(m)) => Some(m),
                    Some(other) => {
                        return Err(Error::BadInput(format!(
                            "variables must be a JSON object, not {other}"
                        )))
                    }
                };
                crate::machine::Input::Retry { variables, by }
            }
            Action::Cancel { reason } => crate::machine::Input::Cancel { reason, by },
            Action::Pause => crate::machine::Input::Pause { by },
            Action::Resume => crate::machine::Input::Resume { by },
        };
        self.act_grouped(super::acts::Act::Instance { instance, input })
            .await
    }

    pub(super) async fn apply_input(
        &self,
        instance: Uuid,
        input: crate::machine::Input,
    ) -> Result<()> {
        let store = &self.inner.store;
        let mut client = store.client().await?;
        let now = self.now();
        let lease = self.lease(now);
        let tx = client.transaction().await?;
        let mut applied = store
            .apply(
                &tx,
                now,
                vec![Work::Continue {
                    instance_id: instance,
                    input,
                }],
                lease.as_ref(),
                Vec::new(),
            )
            .await?;
        applied.outcomes.pop().expect("one outcome per work")?;
        tx.commit().await?;
        self.after_commit(applied).await;
        Ok(())
    }

    /// Fire every timer due now on the engine's clock, in batches, each batch one transaction
    /// (the timer worker does this by itself; tests with a [`ManualClock`] call it after
    /// moving the clock). Returns how many fired.
    pub async fn fire_due_timers(&self) -> Result<usize> {
        let mut total = 0;
        loop {
            let f = self.fire_round().await?;
            total += f.fired;
            if !f.more {
                return Ok(total);
            }
        }
    }

    pub(crate) async fn fire_round(&self) -> Result<crate::store::Fired> {
        let now = self.now();
        let lease = self.lease(now);
        let mut f = self
            .inner
            .store
            .fire_due_timers(
                now,
                self.inner.config.claim_batch,
                lease.as_ref(),
                &self.owned_buckets(),
            )
            .await?;
        let applied = std::mem::take(&mut f.applied);
        self.after_commit(applied).await;
        Ok(f)
    }
}
