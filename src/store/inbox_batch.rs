//! Delivery of a batch of inbound messages in one transaction (`Store::deliver_many_in`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::super::locks::Locks;
use super::super::transition::Settle;
use super::super::{Applied, Conn, Lease, Result, Store, Work};
use super::{count_delivery, payload_variables, unknown_reason, Delivery, Message};
use crate::machine::Input;

impl Store {
    /// Deliver several messages in the caller's transaction with a handful of statements for
    /// the whole batch: one insert into the inbox, one lock query, one subscription lookup and
    /// one transition batch. Messages that need to see each other's effects (the same name
    /// and key, or the same target instance) are delivered one after another at the end.
    pub(crate) async fn deliver_many_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        msgs: &[&Message],
        default_ttl: Duration,
        lease: Option<&Lease>,
    ) -> Result<(Vec<Delivery>, Applied)> {
        if msgs.len() == 1 {
            let (d, a) = self.deliver_in(c, now, msgs[0], default_ttl, lease).await?;
            return Ok((vec![d], a));
        }
        let q = self.q();
        for m in msgs {
            m.check()?;
        }
        // Later copies of an id within the batch, and pairs seen before, go the slow way.
        let mut seen_ids = HashSet::new();
        let mut seen_pairs = HashSet::new();
        let mut fast = Vec::new();
        let mut slow = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            if seen_ids.insert(m.id.as_str())
                && seen_pairs.insert((m.name.as_str(), m.key.as_str()))
            {
                fast.push(i);
            } else {
                slow.push(i);
            }
        }
        let ids: Vec<&str> = fast.iter().map(|&i| msgs[i].id.as_str()).collect();
        let names: Vec<&str> = fast.iter().map(|&i| msgs[i].name.as_str()).collect();
        let keys: Vec<&str> = fast.iter().map(|&i| msgs[i].key.as_str()).collect();
        let payloads: Vec<&Value> = fast.iter().map(|&i| &msgs[i].payload).collect();
        let received: Vec<DateTime<Utc>> = vec![now; fast.len()];
        let expires: Vec<DateTime<Utc>> = fast
            .iter()
            .map(|&i| now + msgs[i].ttl.unwrap_or(default_ttl))
            .collect();
        let new: HashSet<String> = c
            .rows(
                &q.inbox_insert_many,
                &[&ids, &names, &keys, &payloads, &received, &expires],
            )
            .await?
            .iter()
            .map(|r| r.get("message_id"))
            .collect();
        let mut out: Vec<Option<Delivery>> = vec![None; msgs.len()];
        let mut fresh = Vec::new();
        for &i in &fast {
            if new.contains(&msgs[i].id) {
                fresh.push(i);
            } else {
                slow.push(i); // a duplicate: reported with its first fate below
            }
        }
        Locks::correlations(
            fresh
                .iter()
                .map(|&i| (msgs[i].name.as_str(), msgs[i].key.as_str())),
        )
        .take(self, c)
        .await?;
        let f_names: Vec<&str> = fresh.iter().map(|&i| msgs[i].name.as_str()).collect();
        let f_keys: Vec<&str> = fresh.iter().map(|&i| msgs[i].key.as_str()).collect();
        let waiting: HashMap<(String, String), Uuid> = c
            .rows(
                &q.subscriptions_find_many,
                &[&f_names, &f_keys, &crate::bucket::buckets_of_keys(&f_keys)],
            )
            .await?
            .iter()
            .map(|r| {
                (
                    (r.get("message_name"), r.get("correlation_key")),
                    r.get("instance_id"),
                )
            })
            .collect();

        let mut works = Vec::new();
        let mut settles = Vec::new();
        let mut targets = HashSet::new();
        // Per message name: the processes it starts, and whether any keeps business keys unique.
        let mut starters: HashMap<String, (Vec<(String, i32)>, bool)> = HashMap::new();
        let mut known: HashMap<String, bool> = HashMap::new();
        let mut kept = Vec::new();
        for &i in &fresh {
            let m = msgs[i];
            if let Some(instance_id) = waiting.get(&(m.name.clone(), m.key.clone())) {
                if !targets.insert(*instance_id) {
                    // Two messages for one instance: the second must see the first's effect.
                    slow.push(i);
                    // Its inbox row is in; deliver_in would call it a duplicate, so undo it.
                    c.rows(&q.inbox_forget, &[&m.id, &m.key]).await?;
                    continue;
                }
                works.push(Work::Continue {
                    instance_id: *instance_id,
                    input: Input::Message {
                        message_id: m.id.clone(),
                        name: m.name.clone(),
                        payload: m.payload.clone(),
                    },
                });
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "correlated",
                    instance_id: Some(*instance_id),
                    reason: None,
                });
                out[i] = Some(Delivery::Correlated {
                    instance_id: *instance_id,
                });
                continue;
            }
            if !starters.contains_key(&m.name) {
                let rows = c.rows(&q.definition_by_start_message, &[&m.name]).await?;
                starters.insert(
                    m.name.clone(),
                    (
                        rows.iter()
                            .map(|r| (r.get::<_, String>("process_id"), r.get::<_, i32>("version")))
                            .collect::<Vec<_>>(),
                        rows.iter()
                            .any(|r| r.get::<_, Option<String>>("unique_key").is_some()),
                    ),
                );
            }
            if starters[&m.name].1 {
                // A running instance's key decides: one at a time, the slow way.
                slow.push(i);
                c.rows(&q.inbox_forget, &[&m.id, &m.key]).await?;
                continue;
            }
            if let Some((processes, _)) = starters.get(&m.name).filter(|p| !p.0.is_empty()) {
                let mut ids: Vec<Uuid> = Vec::with_capacity(processes.len());
                for (process, version) in processes {
                    let instance_id = crate::bucket::new_instance_id(&m.key);
                    ids.push(instance_id);
                    works.push(Work::Start {
                        instance_id,
                        process: process.clone(),
                        version: *version,
                        business_key: m.key.clone(),
                        variables: payload_variables(&m.payload),
                        message_id: Some(m.id.clone()),
                        parent: None,
                        start_message: Some(m.name.clone()),
                        trace: m.trace.clone(),
                    });
                }
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "started",
                    instance_id: Some(ids[0]),
                    reason: None,
                });
                let instance_id = ids.remove(0);
                out[i] = Some(Delivery::Started {
                    instance_id,
                    also: ids,
                });
                continue;
            }
            if !known.contains_key(&m.name) {
                let k: bool = c.rows(&q.definition_receives, &[&m.name]).await?[0].get("known");
                known.insert(m.name.clone(), k);
            }
            if known[&m.name] {
                kept.push(i);
                out[i] = Some(Delivery::Buffered {
                    expires_at: now + m.ttl.unwrap_or(default_ttl),
                });
            } else {
                let reason = unknown_reason(&m.name);
                settles.push(Settle {
                    message_id: m.id.clone(),
                    key: m.key.clone(),
                    status: "dead",
                    instance_id: None,
                    reason: Some(reason.clone()),
                });
                out[i] = Some(Delivery::DeadLettered { reason });
            }
        }
        if !kept.is_empty() {
            let ids: Vec<&str> = kept.iter().map(|&i| msgs[i].id.as_str()).collect();
            let keys: Vec<&str> = kept.iter().map(|&i| msgs[i].key.as_str()).collect();
            let buckets = crate::bucket::key_buckets(&keys);
            c.rows(&q.inbox_buffer, &[&ids, &keys, &buckets]).await?;
        }
        let mut applied = self.apply(c, now, works, lease, settles).await?;
        if let Some(Err(_)) = applied.outcomes.iter().find(|o| o.is_err()) {
            let e = applied
                .outcomes
                .drain(..)
                .find_map(|o| o.err())
                .expect("an error");
            return Err(e);
        }
        for d in out.iter().flatten() {
            count_delivery(d);
        }
        slow.sort();
        for i in slow {
            let (d, a) = self.deliver_in(c, now, msgs[i], default_ttl, lease).await?;
            applied.merge(a);
            out[i] = Some(d);
        }
        Ok((
            out.into_iter()
                .map(|d| d.expect("every message has an outcome"))
                .collect(),
            applied,
        ))
    }
}
