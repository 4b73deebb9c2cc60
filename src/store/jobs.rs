//! Handler jobs: batched claims under a lease, and fenced, batched completions.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::conn::Conn;
use crate::bucket::buckets_of;

use super::{Applied, Lease, Result, Store, Work};
use crate::machine::Input;

/// A job held by an engine: run the handler, then report the result with the lease token.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job id: the handler's idempotency key.
    pub job_id: Uuid,
    /// The instance waiting for it.
    pub instance_id: Uuid,
    /// The service step.
    pub step_id: String,
    /// The handler name.
    pub handler: String,
    /// The instance variables when the step was entered.
    pub variables: Value,
    /// How many times the job was claimed, this claim included.
    pub attempts: i32,
    /// The fencing token of the claim.
    pub lease_token: Uuid,
    /// The instance's process.
    pub process: String,
    /// The instance's definition version.
    pub version: i32,
    /// The instance's trace (its key and W3C traceparent): the handler's span continues it.
    pub trace: Option<crate::machine::Trace>,
}

/// A handler's result for a claimed job.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub job: ClaimedJob,
    /// The result, or the error's business code (if any) and text.
    pub result: std::result::Result<Value, (Option<String>, String)>,
    /// Set when the result could not be recorded (its transition panicked or the database
    /// refused it): the job's step then gets an incident with this reason instead.
    pub fault: Option<String>,
}

impl Store {
    /// Claim up to `limit` due jobs for `handlers` (and, if `lapsed`, jobs whose lease ran out)
    /// in `buckets` (this engine's share, in any order). A statement locks rows in the buckets of one
    /// partition only ([`Store::bucket_groups`]; on a distributed database a claim with
    /// `FOR UPDATE` must stay on one shard): one statement in the plain layout, one per
    /// partition in the partitioned one, all sent at once on one connection, so a claim costs
    /// one round trip (more only when a group holds more than its part of the batch).
    pub(crate) async fn claim_jobs(
        &self,
        handlers: &[String],
        buckets: &[i16],
        now: DateTime<Utc>,
        limit: i64,
        lease: &Lease,
        lapsed: bool,
    ) -> Result<Vec<ClaimedJob>> {
        if limit <= 0 || buckets.is_empty() || handlers.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups = self.claim_groups(buckets).await?;
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        // Start at a random group (the lease token is random), so that when the batch has
        // room for fewer groups than there are, none always waits behind the others.
        let start = usize::from(lease.token.as_bytes()[0]) % groups.len();
        groups.rotate_left(start);
        let c = self.client().await?;
        let claim = if lapsed {
            &self.q().jobs_claim_lapsed
        } else {
            &self.q().jobs_claim
        };
        let claim = c.prepare_cached(claim).await?;
        // The batch split over the groups, as even as whole jobs allow; a group that filled
        // its part may hold more, and gets what the others left (a few passes at most).
        let mut rows: Vec<tokio_postgres::Row> = Vec::new();
        for _ in 0..4 {
            let left = limit - rows.len() as i64;
            if groups.is_empty() || left <= 0 {
                break;
            }
            groups.truncate(left as usize);
            let n = groups.len() as i64;
            let parts: Vec<i64> = (0..n).map(|i| left / n + i64::from(i < left % n)).collect();
            let claims = groups.iter().zip(&parts).map(|(group, part)| {
                let (c, claim) = (&c, &claim);
                async move {
                    c.query(
                        claim,
                        &[
                            &handlers,
                            &now,
                            part,
                            &lease.token,
                            &lease.owner,
                            &lease.expires_at,
                            group,
                        ],
                    )
                    .await
                }
            });
            let got = futures_util::future::try_join_all(claims).await?;
            let mut full = Vec::new();
            for ((group, part), got) in groups.into_iter().zip(&parts).zip(got) {
                if got.len() as i64 == *part {
                    full.push(group);
                }
                rows.extend(got);
            }
            groups = full;
        }
        metrics::histogram!(crate::telemetry::CLAIM_BATCH).record(rows.len() as f64);
        Ok(rows
            .iter()
            .map(|r| ClaimedJob {
                job_id: r.get("job_id"),
                instance_id: r.get("instance_id"),
                step_id: r.get("step_id"),
                handler: r.get("handler"),
                variables: r.get("variables"),
                attempts: r.get("attempts"),
                lease_token: lease.token,
                process: r.get("process_id"),
                version: r.get("version"),
                trace: match (r.get("trace_key"), r.get("traceparent")) {
                    (Some(key), Some(traceparent)) => {
                        Some(crate::machine::Trace { key, traceparent })
                    }
                    _ => None,
                },
            })
            .collect())
    }

    /// Record a batch of handler results in one transaction. Jobs whose claim was taken over
    /// are fenced out: their results are dropped. Returns what the batch did, including jobs
    /// created already leased under `lease`.
    pub(crate) async fn finish_jobs(
        &self,
        now: DateTime<Utc>,
        finished: Vec<Finished>,
        lease: Option<&Lease>,
    ) -> Result<(Applied, usize)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let ids: Vec<Uuid> = finished.iter().map(|f| f.job.job_id).collect();
        let tokens: Vec<Uuid> = finished.iter().map(|f| f.job.lease_token).collect();
        let held: std::collections::HashSet<Uuid> = tx
            .rows_planned(&self.q().jobs_finish, &[&ids, &tokens, &buckets_of(&ids)])
            .await?
            .iter()
            .map(|r| r.get("job_id"))
            .collect();
        let fenced = finished.len() - held.len();
        let works = finished
            .into_iter()
            .filter(|f| held.contains(&f.job.job_id))
            .map(|f| Work::Continue {
                instance_id: f.job.instance_id,
                input: match (f.fault, f.result) {
                    (Some(error), _) => Input::Fault {
                        job_id: Some(f.job.job_id),
                        error,
                    },
                    (None, Ok(result)) => Input::JobCompleted {
                        job_id: f.job.job_id,
                        result,
                    },
                    (None, Err((code, error))) => Input::JobFailed {
                        job_id: f.job.job_id,
                        error,
                        code,
                    },
                },
            })
            .collect();
        let applied = self.apply(&tx, now, works, lease, Vec::new()).await?;
        tx.commit().await?;
        Ok((applied, fenced))
    }
}
