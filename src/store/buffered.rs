//! Messages that came before their instances waited for them: taken for a whole batch at
//! once, at the end of its transitions (see `Store::apply`), or dead-lettered when their time
//! to live runs out first.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::conn::Conn;
use super::locks::Locks;
use super::transition::Slot;
use super::{Result, Store};
use crate::machine::Status;

/// The instances of a batch still running that wait for some of the (name, key) pairs they
/// started to wait for, each once (an instance that ran twice has its pairs merged), in batch
/// order.
pub(super) fn still_waiting(
    slots: &HashMap<Uuid, Slot>,
    waiting: Vec<(Uuid, Vec<(String, String)>)>,
) -> Vec<(Uuid, Vec<(String, String)>)> {
    let mut merged: Vec<(Uuid, Vec<(String, String)>)> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    for (id, pending) in waiting {
        let Some(slot) = slots.get(&id) else {
            continue;
        };
        if slot.state.status != Status::Running {
            continue;
        }
        let i = *at.entry(id).or_insert_with(|| {
            merged.push((id, Vec::new()));
            merged.len() - 1
        });
        let still = slot.state.awaited_messages(&slot.def);
        let p = &mut merged[i].1;
        p.extend(pending);
        p.retain(|m| still.contains(m));
        p.sort();
        p.dedup();
    }
    merged.retain(|(_, p)| !p.is_empty());
    merged
}

impl Store {
    /// Messages that arrived before their instance waited for them, taken for every instance
    /// of the batch that started to wait in it: one statement locks every (name, key) pair
    /// (sorted), one reads the oldest unexpired buffered messages of each pair, as many as it
    /// has waiters. A waiter takes the first of its pairs with a message left, in batch order,
    /// so a message goes to one instance only. Returns (instance, message id, (name, key),
    /// payload).
    pub(super) async fn take_buffered(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        waiting: &[(Uuid, Vec<(String, String)>)],
        taken_before: &[String],
    ) -> Result<Vec<(Uuid, String, (String, String), Value)>> {
        let mut pairs: std::collections::BTreeMap<(&str, &str), i32> = Default::default();
        for (_, pending) in waiting {
            for (name, key) in pending {
                *pairs.entry((name.as_str(), key.as_str())).or_default() += 1;
            }
        }
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        Locks::correlations(pairs.keys().copied())
            .take(self, c)
            .await?;
        // One statement per group of the keys' buckets (Store::split_by_group).
        let parts = self
            .split_by_group(
                c,
                pairs.iter().map(|(&(n, k), &count)| {
                    (crate::bucket::bucket_of_key(k) as i16, (n, k, count))
                }),
            )
            .await?;
        type Columns<'a> = (Vec<&'a str>, Vec<&'a str>, Vec<i32>);
        let columns: Vec<Columns> = parts
            .iter()
            .map(|part| {
                (
                    part.items.iter().map(|p| p.0).collect(),
                    part.items.iter().map(|p| p.1).collect(),
                    part.items.iter().map(|p| p.2).collect(),
                )
            })
            .collect();
        let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 6]> = parts
            .iter()
            .zip(&columns)
            .map(|(part, (names, keys, counts))| {
                [
                    names as _,
                    keys as _,
                    counts as _,
                    &now as _,
                    &taken_before as _,
                    &part.group as _,
                ]
            })
            .collect();
        // Sent at once, in the groups' order, which is the order PostgreSQL runs them in.
        let rows: Vec<_> = futures_util::future::try_join_all(
            params
                .iter()
                .map(|p| c.rows(&self.q().inbox_take_buffered, p)),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<(String, String), std::collections::VecDeque<(String, Value)>> =
            HashMap::new();
        for row in rows {
            found
                .entry((row.get("name"), row.get("key")))
                .or_default()
                .push_back((row.get("message_id"), row.get("payload")));
        }
        let mut taken = Vec::new();
        for (id, pending) in waiting {
            for pair in pending {
                if let Some((message_id, payload)) = found.get_mut(pair).and_then(|q| q.pop_front())
                {
                    taken.push((*id, message_id, pair.clone(), payload));
                    break;
                }
            }
        }
        Ok(taken)
    }

    /// Dead-letter up to `limit` buffered messages whose time to live ran out. Returns how many.
    pub async fn expire_buffered(&self, now: DateTime<Utc>, limit: i64) -> Result<u64> {
        self.expire_buffered_in(now, limit, &crate::bucket::all_buckets())
            .await
    }

    /// [`Store::expire_buffered`] in `buckets` (an engine's share), one statement per group
    /// of buckets that live in one partition ([`Store::bucket_groups`]), all sent at once.
    pub(crate) async fn expire_buffered_in(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        buckets: &[i16],
    ) -> Result<u64> {
        let groups = self.claim_groups(buckets).await?;
        let c = self.client().await?;
        let expire = c.prepare_cached(&self.q().inbox_expire).await?;
        let each = groups.iter().map(|group| {
            let (c, expire) = (&c, &expire);
            async move { c.execute(expire, &[&now, &limit, group]).await }
        });
        Ok(futures_util::future::try_join_all(each)
            .await?
            .into_iter()
            .sum())
    }
}
