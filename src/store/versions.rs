//! Moving running instances between versions of their process: a dry run that says, for every
//! instance, whether it can move and why not; and the migration itself, one instance per
//! transaction, recorded as a `Migrated` event in its stream.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::transition::record;
use super::write::{write, Effects};
use super::{Conn, Error, Result, Store};
use crate::definition::Process;
use crate::machine::{self, MigrationPlan};

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
                .map(|r| r.get("instance_id"))
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

    /// Move one instance, under its lock, through the one writer every transition uses:
    /// the `Migrated` event, its version and state, and its jobs, timers and subscriptions
    /// (planned by `machine::effects`).
    #[allow(clippy::too_many_arguments)]
    async fn migrate_one(
        &self,
        id: Uuid,
        from_def: &Arc<Process>,
        to_def: &Arc<Process>,
        from: i32,
        to: i32,
        plan: &MigrationPlan,
        dry_run: bool,
        now: DateTime<Utc>,
        by: &str,
    ) -> Result<std::result::Result<(), String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut slots = HashMap::new();
        self.load_slots(&tx, now, &[id], &mut slots).await?;
        let Some(slot) = slots.get_mut(&id) else {
            return Ok(Err("it no longer exists".into()));
        };
        if slot.version != from {
            return Ok(Err(format!("it runs on v{} now", slot.version)));
        }
        let event = match machine::plan_migration(from_def, to_def, from, to, &slot.state, plan, by)
        {
            Ok(e) => e,
            Err(reason) => return Ok(Err(reason)),
        };
        if dry_run {
            return Ok(Ok(()));
        }
        slot.def = to_def.clone();
        slot.version = to;
        let mut fx = Effects::default();
        record(id, slot, event, now, None, &mut fx, &mut Vec::new());
        write(&tx, self.q(), now, None, &slots, &fx).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }
}

/// Jobs and timers that follow their steps into another version: (id, step[, handler]).
pub(super) async fn write_moves(
    c: &impl super::conn::Conn,
    q: &super::sql::Queries,
    jobs: &[(Uuid, String, String)],
    timers: &[(Uuid, String)],
) -> Result<u64, tokio_postgres::Error> {
    let mut n = 0;
    if !jobs.is_empty() {
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.0).collect();
        let steps: Vec<&str> = jobs.iter().map(|j| j.1.as_str()).collect();
        let handlers: Vec<&str> = jobs.iter().map(|j| j.2.as_str()).collect();
        let b = crate::bucket::buckets_of(&ids);
        n += c
            .exec_planned(&q.jobs_migrate, &[&ids, &steps, &handlers, &b])
            .await?;
    }
    if !timers.is_empty() {
        let ids: Vec<Uuid> = timers.iter().map(|t| t.0).collect();
        let steps: Vec<&str> = timers.iter().map(|t| t.1.as_str()).collect();
        let b = crate::bucket::buckets_of(&ids);
        n += c
            .exec_planned(&q.timers_migrate, &[&ids, &steps, &b])
            .await?;
    }
    Ok(n)
}
