//! Engines and their leases (migration 0022): which engines run, so that those running the same
//! handlers share the buckets (`crate::bucket::shares`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::conn::Conn;
use super::{Result, Store};

/// A running engine (or one that stopped counting: its lease lapsed), for operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineView {
    /// Its name (`EngineConfig::owner`; `jobs.lease_owner` of the jobs it holds).
    pub owner: String,
    /// The handlers it runs, sorted, comma-separated.
    pub handlers: String,
    /// When it first renewed its lease.
    pub started_at: DateTime<Utc>,
    /// When it last renewed it.
    pub seen_at: DateTime<Utc>,
    /// Until when it counts as running.
    pub expires_at: DateTime<Utc>,
    /// Whether it counts as running now (database clock).
    pub live: bool,
    /// How many of the 256 buckets it claims in (0 when not live): its share among the live
    /// engines with the same handlers.
    pub buckets: usize,
}

impl Store {
    /// Renew `owner`'s lease for `lasts` and return the other live engines that run exactly
    /// `handlers` (sorted, comma-separated), by name.
    pub(crate) async fn renew_engine(
        &self,
        owner: &str,
        handlers: &str,
        lasts: std::time::Duration,
    ) -> Result<Vec<String>> {
        let c = self.client().await?;
        let lasts = i64::try_from(lasts.as_millis()).unwrap_or(i64::MAX);
        Ok(
            c.rows(&self.q().engines_renew, &[&owner, &handlers, &lasts])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        )
    }

    /// The engines that renewed a lease in the last hour, live or not, with their share of
    /// the buckets as each computes it.
    pub async fn engines(&self) -> Result<Vec<EngineView>> {
        let c = self.client().await?;
        let mut out: Vec<EngineView> = c
            .rows(&self.q().engines_list, &[])
            .await?
            .iter()
            .map(|r| EngineView {
                owner: r.get("owner"),
                handlers: r.get("handlers"),
                started_at: r.get("started_at"),
                seen_at: r.get("seen_at"),
                expires_at: r.get("expires_at"),
                live: r.get("live"),
                buckets: 0,
            })
            .collect();
        let live: Vec<(String, String)> = out
            .iter()
            .filter(|e| e.live)
            .map(|e| (e.owner.clone(), e.handlers.clone()))
            .collect();
        for e in out.iter_mut().filter(|e| e.live) {
            let group: Vec<String> = live
                .iter()
                .filter(|(_, h)| *h == e.handlers)
                .map(|(o, _)| o.clone())
                .collect();
            e.buckets = crate::bucket::shares(&e.owner, &group).len();
        }
        Ok(out)
    }

    /// The buckets that live in one place, read from the catalog once: one group per partition
    /// in the partitioned layout, one group of all 256 in the plain layout. A claim locks rows
    /// of one group per statement, so it reads one partition (on Citus it would be one shard:
    /// not built, docs/SCALING.md).
    pub async fn bucket_groups(&self) -> Result<Arc<Vec<Vec<i16>>>> {
        self.inner
            .groups
            .get_or_try_init(|| async {
                let c = self.client().await?;
                let groups: Vec<Vec<i16>> = c
                    .rows(&self.q().bucket_groups, &[])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                Ok::<_, super::Error>(Arc::new(groups))
            })
            .await
            .cloned()
    }

    /// `share` split by [`Store::bucket_groups`]: the buckets of each group that are in it,
    /// groups with none left out.
    pub(crate) async fn claim_groups(&self, share: &[i16]) -> Result<Vec<Vec<i16>>> {
        let mut mine = [false; crate::bucket::BUCKETS];
        for &b in share {
            mine[b as usize] = true;
        }
        Ok(self
            .bucket_groups()
            .await?
            .iter()
            .map(|g| {
                g.iter()
                    .copied()
                    .filter(|&b| mine[b as usize])
                    .collect::<Vec<i16>>()
            })
            .filter(|g| !g.is_empty())
            .collect())
    }

    /// Give `owner`'s buckets back at once (an engine that stops).
    pub(crate) async fn leave_engine(&self, owner: &str) -> Result<()> {
        let c = self.client().await?;
        c.exec(&self.q().engines_leave, &[&owner]).await?;
        Ok(())
    }
}
