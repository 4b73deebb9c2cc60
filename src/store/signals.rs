//! Signals: thrown as rows of `signals` (by a signal step's transition or by
//! [`crate::Engine::signal`]) and broadcast in chunks, each chunk one transaction that delivers
//! the signal to the next waiting instances and moves the broadcast's cursor past them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::conn::Conn;
use super::transition::{Applied, Lease, Work};
use super::{Result, Store};
use crate::definition::signal_subscription;
use crate::machine::Input;

/// A signal thrown, and how far its broadcast got.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalView {
    /// The broadcast's id.
    pub signal_id: Uuid,
    /// The signal's name.
    pub name: String,
    /// What receivers get.
    pub payload: Value,
    /// When it was thrown (engine clock).
    pub thrown_at: DateTime<Utc>,
    /// The instance that threw it, if one did.
    pub thrown_by: Option<Uuid>,
    /// Instances that received it so far.
    pub delivered: i64,
    /// When its broadcast finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A signal to throw: (id, name, payload, thrown by).
pub(crate) type Throw = (Uuid, String, Value, Option<Uuid>);

/// One chunk delivered: what its transaction did, and how many instances received the
/// signal (and how many instances it started).
pub(crate) struct Chunk {
    pub(crate) applied: Applied,
    pub(crate) delivered: usize,
    pub(crate) started: usize,
}

/// Write thrown signals (in the transaction that throws them).
pub(crate) async fn throw_in(
    c: &impl Conn,
    q: &super::sql::Queries,
    now: DateTime<Utc>,
    signals: &[Throw],
) -> Result<u64, tokio_postgres::Error> {
    if signals.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = signals.iter().map(|s| s.0).collect();
    let names: Vec<&str> = signals.iter().map(|s| s.1.as_str()).collect();
    let payloads: Vec<&Value> = signals.iter().map(|s| &s.2).collect();
    let at: Vec<DateTime<Utc>> = vec![now; signals.len()];
    let by: Vec<Option<Uuid>> = signals.iter().map(|s| s.3).collect();
    c.exec(&q.signal_insert, &[&ids, &names, &payloads, &at, &by])
        .await
}

impl Store {
    /// Signals thrown, newest first (at most `limit`).
    pub async fn signals(&self, limit: i64) -> Result<Vec<SignalView>> {
        let c = self.client().await?;
        Ok(c.rows(&self.q().signals_list, &[&limit])
            .await?
            .iter()
            .map(|r| SignalView {
                signal_id: r.get("signal_id"),
                name: r.get("name"),
                payload: r.get("payload"),
                thrown_at: r.get("thrown_at"),
                thrown_by: r.get("thrown_by"),
                delivered: r.get("delivered"),
                finished_at: r.get("finished_at"),
            })
            .collect())
    }

    /// Deliver the next chunk (at most `limit` instances) of the oldest open broadcast, in one
    /// transaction: the first chunk also starts the processes that start on the signal. `None`
    /// when no broadcast is open (or every open one is being delivered by another engine).
    pub(crate) async fn broadcast_chunk(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: Option<&Lease>,
    ) -> Result<Option<Chunk>> {
        let q = self.q();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx.rows(&q.signal_next, &[]).await?.pop() else {
            return Ok(None);
        };
        let id: Uuid = row.get("signal_id");
        let name: String = row.get("name");
        let payload: Value = row.get("payload");
        let thrown_at: DateTime<Utc> = row.get("thrown_at");
        let started: bool = row.get("started");
        let after: Uuid = row.get("after_instance");
        let mut works = Vec::new();
        if !started {
            let variables = match &payload {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            for r in tx.rows(&q.definition_by_start_signal, &[&name]).await? {
                works.push(Work::Start {
                    instance_id: Uuid::now_v7(),
                    process: r.get("process_id"),
                    version: r.get("version"),
                    business_key: id.to_string(),
                    variables: variables.clone(),
                    message_id: None,
                    parent: None,
                    start_message: None,
                    trace: None,
                });
            }
        }
        let starts = works.len();
        let subscription = signal_subscription(&name);
        let receivers: Vec<Uuid> = tx
            .rows(
                &q.signal_receivers,
                &[&subscription, &thrown_at, &after, &(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for r in &receivers {
            works.push(Work::Continue {
                instance_id: *r,
                input: Input::Message {
                    message_id: id.to_string(),
                    name: subscription.clone(),
                    payload: payload.clone(),
                },
            });
        }
        let applied = self.apply(&tx, now, works, lease, Vec::new()).await?;
        // An instance that no longer waits by the time its chunk comes (its wait ended
        // otherwise) refuses the signal: it is not counted.
        let delivered = applied.outcomes[starts..]
            .iter()
            .filter(|o| o.is_ok())
            .count();
        let finished = receivers.len() < limit;
        let cursor = receivers.last().copied().unwrap_or(after);
        tx.exec(
            &q.signal_advance,
            &[&id, &cursor, &(delivered as i64), &finished, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Chunk {
            applied,
            delivered,
            started: starts,
        }))
    }
}
