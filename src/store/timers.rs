//! Firing due timers: in one transaction, take the due rows of instances no other engine holds,
//! feed each instance its `TimerFired`, and commit. A crash before the commit leaves the rows
//! in place; the commit deletes them: a timer fires once, and never before it is due.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::conn::Conn;
use crate::bucket::buckets_of;

use super::{Applied, Lease, Result, Store, Work};
use crate::machine::Input;

/// What one round of firing did.
#[derive(Debug, Default)]
pub(crate) struct Fired {
    pub applied: Applied,
    /// Timers fired.
    pub fired: usize,
    /// Whether more were due than this round took.
    pub more: bool,
    /// When the next timer not yet due is due.
    pub next_due: Option<DateTime<Utc>>,
}

/// A running timer of one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceTimer {
    /// The timer.
    pub timer_id: Uuid,
    /// The step it belongs to.
    pub step: String,
    /// `step`, `boundary` or `timeout`.
    pub kind: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

/// A running timer, for operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerView {
    /// The timer id.
    pub timer_id: Uuid,
    /// Its instance.
    pub instance_id: Uuid,
    /// The instance's process.
    pub process: String,
    /// The instance's business key.
    pub business_key: String,
    /// Its step.
    pub step: String,
    /// `step`, `boundary` or `timeout`.
    pub kind: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
}

impl Store {
    /// Fire up to `limit` due timers. See the module docs.
    pub(crate) async fn fire_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        lease: Option<&Lease>,
        buckets: &[i16],
    ) -> Result<Fired> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let scan = tx.prepare_cached(&self.q().timers_scan).await?;
        let rows = tx.query(&scan, &[&(limit + 1), &buckets]).await?;
        let mut due: Vec<(Uuid, Uuid)> = Vec::new();
        let mut due_at: Vec<DateTime<Utc>> = Vec::new();
        let mut next_due = None;
        for r in &rows {
            let at: DateTime<Utc> = r.get("due_at");
            if at <= now && (due.len() as i64) < limit {
                due.push((r.get("timer_id"), r.get("instance_id")));
                due_at.push(at);
            } else if at > now {
                next_due = Some(at);
                break;
            }
        }
        let more = rows.len() as i64 > limit && next_due.is_none();
        if due.is_empty() {
            tx.commit().await?;
            return Ok(Fired {
                next_due,
                ..Fired::default()
            });
        }
        let (applied, fired) = self.fire_in(&tx, now, &due, lease).await?;
        tx.commit().await?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            for ((timer, instance), at) in due.iter().zip(&due_at) {
                tracing::debug!(
                    timer = %timer,
                    instance = %instance,
                    due = %at,
                    late_ms = (now - *at).num_milliseconds(),
                    "fired a timer"
                );
            }
        }
        Ok(Fired {
            applied,
            fired,
            more,
            next_due,
        })
    }

    /// The timers due now, earliest first (timer, instance): what a round takes one by one
    /// after the round as a whole failed.
    pub(crate) async fn due_timers(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        buckets: &[i16],
    ) -> Result<Vec<(Uuid, Uuid)>> {
        let c = self.client().await?;
        let scan = c.prepare_cached(&self.q().timers_scan).await?;
        Ok(c.query(&scan, &[&limit, &buckets])
            .await?
            .iter()
            .filter(|r| r.get::<_, DateTime<Utc>>(2) <= now)
            .map(|r| (r.get("timer_id"), r.get("instance_id")))
            .collect())
    }

    /// Fire one due timer in a transaction of its own.
    pub(crate) async fn fire_timer(
        &self,
        now: DateTime<Utc>,
        timer: (Uuid, Uuid),
        lease: Option<&Lease>,
    ) -> Result<Applied> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let (applied, _) = self.fire_in(&tx, now, &[timer], lease).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// Set aside a due timer that cannot be fired (its transition panicked or the database
    /// refused what it wrote): the timer is removed and its instance fails with `error`, in one
    /// transaction, so the timer is not taken again. If the instance no longer runs, the timer
    /// goes all the same.
    pub(crate) async fn set_aside_timer(
        &self,
        now: DateTime<Utc>,
        (timer_id, instance_id): (Uuid, Uuid),
        error: String,
        lease: Option<&Lease>,
    ) -> Result<Applied> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.rows_planned(
            &self.q().timers_take,
            &[&vec![timer_id], &now, &buckets_of(&[timer_id])],
        )
        .await?;
        let work = Work::Continue {
            instance_id,
            input: Input::Fault {
                job_id: None,
                error,
            },
        };
        let applied = self.apply(&tx, now, vec![work], lease, Vec::new()).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// Lock the instances of `due` (skipping those another engine holds), take their timers
    /// and fire them in the caller's transaction. Returns what was applied and how many fired.
    async fn fire_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        now: DateTime<Utc>,
        due: &[(Uuid, Uuid)],
        lease: Option<&Lease>,
    ) -> Result<(Applied, usize)> {
        let q = self.q();
        let mut instances: Vec<Uuid> = due.iter().map(|d| d.1).collect();
        instances.sort();
        instances.dedup();
        // One statement per group of buckets (Store::split_by_group).
        let mut locked = std::collections::HashSet::new();
        for part in self
            .split_by_group(tx, buckets_of(&instances).into_iter().zip(instances))
            .await?
        {
            for r in tx
                .rows_planned(
                    &q.instances_try_lock,
                    &[&part.items, &part.buckets, &part.group],
                )
                .await?
            {
                locked.insert(r.get::<_, Uuid>("instance_id"));
            }
        }
        let ids: Vec<Uuid> = due
            .iter()
            .filter(|d| locked.contains(&d.1))
            .map(|d| d.0)
            .collect();
        let taken = tx
            .rows_planned(&q.timers_take, &[&ids, &now, &buckets_of(&ids)])
            .await?;
        for r in &taken {
            metrics::histogram!(crate::telemetry::TIMER_LATENESS)
                .record(crate::telemetry::seconds(r.get("due_at"), now));
        }
        let works: Vec<Work> = taken
            .iter()
            .map(|r| Work::Continue {
                instance_id: r.get("instance_id"),
                input: Input::TimerFired {
                    timer_id: r.get("timer_id"),
                },
            })
            .collect();
        let fired = works.len();
        let applied = self.apply(tx, now, works, lease, Vec::new()).await?;
        for o in &applied.outcomes {
            if let Err(e) = o {
                tracing::debug!(error = %e, "a due timer no longer applied; removed");
            }
        }
        Ok((applied, fired))
    }

    /// Running timers, soonest first.
    pub async fn timers(
        &self,
        process: Option<&str>,
        due_before: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<TimerView>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().timers_list).await?;
        Ok(c.query(&stmt, &[&process, &due_before, &limit])
            .await?
            .iter()
            .map(|r| TimerView {
                timer_id: r.get("timer_id"),
                instance_id: r.get("instance_id"),
                process: r.get("process_id"),
                business_key: r.get("business_key"),
                step: r.get("step_id"),
                kind: r.get("kind"),
                due_at: r.get("due_at"),
            })
            .collect())
    }

    /// One instance's running timers: (timer id, step, kind, due).
    pub async fn timers_of(&self, instance: Uuid) -> Result<Vec<InstanceTimer>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().timers_of_instance).await?;
        Ok(c.query(&stmt, &[&instance])
            .await?
            .iter()
            .map(|r| InstanceTimer {
                timer_id: r.get("timer_id"),
                step: r.get("step_id"),
                kind: r.get("kind"),
                due_at: r.get("due_at"),
            })
            .collect())
    }
}
