//! Moving running instances between versions of their process: a dry run that says, for every
//! instance, whether it can move and why not; and the migration itself, one instance per
//! transaction, recorded as a `Migrated` event in its stream.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::{Conn, Error, Result, Store};
use crate::machine::{self, InstanceState, MigrationPlan, Wait};

/// What a migration did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Instances moved (or movable, in a dry run).
    pub moved: Vec<Uuid>,
    /// Instances that cannot move, with the reason.
    pub refused: Vec<Refused>,
}

/// An instance a migration leaves where it is.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    /// The instance.
    pub instance_id: Uuid,
    /// Why it cannot move.
    pub reason: String,
}

impl Store {
    /// Move the running instances of `process` from version `from` to version `to` under
    /// `plan`, or with `dry_run` only say which could move and why the others cannot. Each
    /// instance moves in its own transaction, checked again under its lock; `progress` is
    /// called with the instances looked at so far.
    #[allow(clippy::too_many_arguments)]
    pub async fn migrate_instances(
        &self,
        process: &str,
        from: i32,
        to: i32,
        plan: &MigrationPlan,
        dry_run: bool,
        now: DateTime<Utc>,
        by: &str,
        mut progress: impl FnMut(usize),
    ) -> Result<MigrationReport> {
        if from == to {
            return Err(Error::BadInput(format!(
                "the instances already run on v{to}"
            )));
        }
        let from_def = self.definition(process, from).await?;
        let to_def = self.definition(process, to).await?;
        plan.check(&from_def, &to_def).map_err(Error::BadInput)?;
        let mut report = MigrationReport {
            dry_run,
            ..MigrationReport::default()
        };
        let mut after = Uuid::nil();
        let mut seen = 0;
        loop {
            let ids: Vec<Uuid> = {
                let c = self.client().await?;
                c.rows(
                    &self.q().instances_on_version,
                    &[&process, &from, &after, &100i64],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect()
            };
            let Some(last) = ids.last() else {
                return Ok(report);
            };
            after = *last;
            for id in ids {
                match self
                    .migrate_one(id, &from_def, &to_def, from, to, plan, dry_run, now, by)
                    .await?
                {
                    Ok(()) => report.moved.push(id),
                    Err(reason) => report.refused.push(Refused {
                        instance_id: id,
                        reason,
                    }),
                }
                seen += 1;
            }
            progress(seen);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn migrate_one(
        &self,
        id: Uuid,
        from_def: &crate::definition::Process,
        to_def: &crate::definition::Process,
        from: i32,
        to: i32,
        plan: &MigrationPlan,
        dry_run: bool,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<std::result::Result<(), String>> {
        let q = self.q();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rows = tx.rows(&q.instances_lock, &[&vec![id]]).await?;
        let Some(row) = rows.first() else {
            return Ok(Err("it no longer exists".into()));
        };
        let version: i32 = row.get(2);
        if version != from {
            return Ok(Err(format!("it runs on v{version} now")));
        }
        let mut state: InstanceState = super::transition::state_from(row.get(3), row.get(5))?;
        let seq: i64 = row.get(4);
        let event = match machine::plan_migration(from_def, to_def, from, to, &state, plan, by) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(reason)),
        };
        if dry_run {
            return Ok(Ok(()));
        }
        machine::evolve(&mut state, &event);
        let (step, waiting) = super::transition::describe_wait(&state, None);
        tx.exec(
            &q.events_append,
            &[
                &vec![id],
                &vec![seq + 1],
                &vec![event.type_name().to_string()],
                &vec![Json(&event)],
                &vec![now],
                &machine::EVENT_SCHEMA,
            ],
        )
        .await?;
        let updated = tx
            .exec(
                &q.instances_migrate,
                &[
                    &id,
                    &to,
                    &step,
                    &waiting,
                    &Json(&state.variables),
                    &Json(&state),
                    &(seq + 1),
                    &now,
                    &seq,
                ],
            )
            .await?;
        if updated != 1 {
            return Err(Error::Conflict(format!(
                "instance {id} changed under its lock"
            )));
        }
        // Jobs, timers and subscriptions follow the renamed steps.
        let (mut job_ids, mut job_steps, mut job_handlers) = (Vec::new(), Vec::new(), Vec::new());
        for w in &state.waits {
            if let Wait::Job {
                step,
                job_id,
                handler,
                ..
            } = w
            {
                job_ids.push(*job_id);
                job_steps.push(step.clone());
                job_handlers.push(handler.clone());
            }
        }
        if !job_ids.is_empty() {
            tx.exec(&q.jobs_migrate, &[&job_ids, &job_steps, &job_handlers])
                .await?;
        }
        let timer_ids: Vec<Uuid> = state.timers.iter().map(|t| t.timer_id).collect();
        let timer_steps: Vec<&str> = state.timers.iter().map(|t| t.step.as_str()).collect();
        if !timer_ids.is_empty() && !state.paused {
            tx.exec(&q.timers_migrate, &[&timer_ids, &timer_steps])
                .await?;
        }
        tx.exec(&q.subscriptions_delete_instance, &[&id]).await?;
        if !state.paused {
            let mut subs: Vec<(String, String, String)> = Vec::new();
            for w in &state.waits {
                for (name, key) in state.awaited_messages_at(to_def, w.step()) {
                    subs.push((w.step().to_string(), name, key));
                }
            }
            if !subs.is_empty() {
                let inst = vec![id; subs.len()];
                let steps: Vec<&str> = subs.iter().map(|s| s.0.as_str()).collect();
                let names: Vec<&str> = subs.iter().map(|s| s.1.as_str()).collect();
                let keys: Vec<&str> = subs.iter().map(|s| s.2.as_str()).collect();
                let at = vec![now; subs.len()];
                tx.exec(
                    &q.subscriptions_insert,
                    &[&inst, &steps, &names, &keys, &at],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Ok(()))
    }
}
