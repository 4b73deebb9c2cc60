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

/// One group's share of a batch ([`Store::split_by_group`]).
pub(crate) struct Part<T> {
    /// The group's buckets, which a statement names so that it reads one partition (and a
    /// distributed database routes it to one shard); `None` where all buckets are one group.
    pub group: Option<Vec<i16>>,
    /// The bucket of each item.
    pub buckets: Vec<i16>,
    /// The items, in the order given.
    pub items: Vec<T>,
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

    /// The buckets that live in one place, read from the catalog once: one group per shard of
    /// `jobs` where Citus distributes it, one group per partition in the partitioned layout,
    /// one group of all 256 in the plain layout. A statement that locks rows takes those of one
    /// group at a time, so it reads one partition, or is routed to one shard (Citus refuses a
    /// `FOR UPDATE` that spans shards). The Citus reading is not run here (docs/SCALING.md).
    pub async fn bucket_groups(&self) -> Result<Arc<Vec<Vec<i16>>>> {
        if let Some(groups) = self.inner.groups.get() {
            return Ok(groups.clone());
        }
        let c = self.client().await?;
        self.bucket_groups_in(&c).await
    }

    /// [`Store::bucket_groups`] read on `c` the first time (the caller's transaction: taking a
    /// second connection from the pool while holding one could wait for ever).
    pub(crate) async fn bucket_groups_in(&self, c: &impl Conn) -> Result<Arc<Vec<Vec<i16>>>> {
        self.inner
            .groups
            .get_or_try_init(|| async {
                let q = self.q();
                let citus: bool = c.rows(&q.citus_present, &[]).await?[0].get(0);
                let read = async |sql: &str| -> Result<Vec<Vec<i16>>> {
                    Ok(c.rows(sql, &[]).await?.iter().map(|r| r.get(0)).collect())
                };
                let mut groups = Vec::new();
                if citus {
                    groups = read(&q.bucket_groups_citus).await?;
                }
                if groups.is_empty() {
                    groups = read(&q.bucket_groups).await?;
                }
                Ok::<_, super::Error>(Arc::new(groups))
            })
            .await
            .cloned()
    }

    /// `items` split by the group of their bucket ([`Store::bucket_groups`]): for each group
    /// that has any, in the groups' order, the bucket of each of its items and the items, in
    /// the order given. A statement that locks the rows of a batch runs once per part, one
    /// after the other; as every batch is split the same way and each statement locks in one
    /// order, concurrent batches still lock in one order (group, then the statement's).
    pub(crate) async fn split_by_group<T>(
        &self,
        c: &impl Conn,
        items: impl IntoIterator<Item = (i16, T)>,
    ) -> Result<Vec<Part<T>>> {
        let groups = self.bucket_groups_in(c).await?;
        let several = groups.len() > 1;
        Ok(crate::bucket::split_by_group(&groups, items)
            .into_iter()
            .map(|(buckets, items)| Part {
                group: several
                    .then(|| groups.iter().find(|g| g.contains(&buckets[0])).cloned())
                    .flatten(),
                buckets,
                items,
            })
            .collect())
    }

    /// The groups to run a statement over all buckets in, one group at a time: `None` for the
    /// one group of all buckets (the plain layout), each group's buckets otherwise.
    pub(crate) async fn each_group(&self) -> Result<Vec<Option<Vec<i16>>>> {
        Ok(match self.bucket_groups().await?.as_slice() {
            [] | [_] => vec![None],
            many => many.iter().cloned().map(Some).collect(),
        })
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
