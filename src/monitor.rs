//! Coarse-grained central monitoring across contexts: each context publishes the milestones
//! its processes reach (steps marked with `milestone`) on the outbox topic
//! [`MILESTONES_TOPIC`]; a [`Monitor`] reads them from every context, each with a checkpoint of
//! its own, into a central schema, where they make each trace's end-to-end timeline and, for
//! each [`Flow`] (stages named by milestones), the counts per stage, stage-to-stage durations
//! and the traces stuck longer than a stage's limit (the `report_flow_*` views).
//!
//! Exactly once in effect: a milestone is kept under (context, outbox message id), and a
//! source's checkpoint moves only after the central schema committed; read again after a
//! crash, it is the same row.
//!
//! ```no_run
//! # async fn demo(central: longrun::Store, order: longrun::Store, payment: longrun::Store)
//! # -> longrun::Result<()> {
//! use longrun::monitor::{Flow, Monitor};
//! let monitor = Monitor::new(&central, "central")?
//!     .source("order", &order)?
//!     .source("payment", &payment)?;
//! monitor
//!     .define(&Flow::from_json(r#"{"flow": "order", "stages": [
//!         {"milestone": "order placed", "limit": "PT1H"}, {"milestone": "paid"},
//!         {"milestone": "completed"}]}"#)?)
//!     .await?;
//! monitor.drain().await?; // what every context published so far
//! for stage in central.report("flow_stages", 100).await? {
//!     println!("{stage}");
//! }
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use crate::definition::MILESTONES_TOPIC;
use crate::definition::{is_message_name, parse_duration};
use crate::store::Conn;
use crate::store::{Consumer, Error, OutboxMessage, Result, Store};

/// An end-to-end flow: its stages in order, each a milestone some context reaches, with how
/// long a trace may stay there (ISO 8601) before it counts as stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The flow's name, e.g. `order`.
    pub flow: String,
    /// Its stages, in order.
    pub stages: Vec<Stage>,
}

/// A stage of a [`Flow`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The milestone that marks it, e.g. `paid`.
    pub milestone: String,
    /// How long a trace may stay at this stage (e.g. `PT1H`); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl Flow {
    /// A flow from its JSON document, checked: a name, at least two stages, distinct valid
    /// milestone names, limits that are ISO 8601 durations.
    pub fn from_json(text: &str) -> Result<Flow> {
        let flow: Flow = serde_json::from_str(text)
            .map_err(|e| Error::BadInput(format!("the flow document: {e}")))?;
        flow.check()?;
        Ok(flow)
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::BadInput(format!("flow \"{}\": {m}", self.flow)));
        if !is_message_name(&self.flow) {
            return bad("a flow needs a name (at most 200 bytes)".into());
        }
        if self.stages.len() < 2 {
            return bad("a flow has at least two stages".into());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if !is_message_name(&s.milestone) {
                return bad(format!("stages[{i}].milestone: not a milestone name"));
            }
            if self.stages[..i].iter().any(|o| o.milestone == s.milestone) {
                return bad(format!(
                    "stages[{i}]: \"{}\" is a stage already",
                    s.milestone
                ));
            }
            if let Some(l) = &s.limit {
                if let Err(e) = parse_duration(l) {
                    return bad(format!("stages[{i}].limit \"{l}\": {e}"));
                }
            }
        }
        Ok(())
    }
}

/// What one [`Monitor::step`] or [`Monitor::drain`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    /// Milestones kept for the first time.
    pub kept: u64,
    /// Milestones read again (a redelivery after a crash): nothing changed.
    pub duplicates: u64,
}

/// One milestone of a trace's timeline (see [`Monitor::timeline`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reached {
    /// The context that reached it.
    pub context: String,
    /// The process there.
    pub process: String,
    /// The instance there.
    pub instance_id: Uuid,
    /// Its business key.
    pub business_key: String,
    /// The step marked as the milestone.
    pub step: String,
    /// The milestone.
    pub milestone: String,
    /// When (that context's clock).
    pub reached_at: DateTime<Utc>,
    /// The W3C trace context of the instance.
    pub traceparent: Option<String>,
}

/// Reads the milestones of several contexts into a central schema; see the module docs.
#[derive(Debug, Clone)]
pub struct Monitor {
    central: Store,
    sources: Vec<(String, Consumer)>,
    name: String,
    batch: i64,
}

impl Monitor {
    /// A monitor keeping its view in `central` (a migrated longrun schema); `name` names its
    /// checkpoint in each source (`monitor:<name>`), so two monitors read independently.
    pub fn new(central: &Store, name: &str) -> Result<Monitor> {
        if name.trim().is_empty() {
            return Err(Error::BadInput("a monitor needs a name".into()));
        }
        Ok(Monitor {
            central: central.clone(),
            sources: Vec::new(),
            name: name.to_string(),
            batch: 500,
        })
    }

    /// Also read context `context` (its store).
    pub fn source(mut self, context: &str, store: &Store) -> Result<Monitor> {
        if context.trim().is_empty() || self.sources.iter().any(|(c, _)| c == context) {
            return Err(Error::BadInput(format!(
                "a source needs a name of its own (\"{context}\")"
            )));
        }
        let owner = format!("monitor-{}-{}", std::process::id(), Uuid::new_v4());
        let consumer = store.consumer(
            format!("monitor:{}", self.name),
            vec![MILESTONES_TOPIC.to_string()],
            owner,
        );
        self.sources.push((context.to_string(), consumer));
        Ok(self)
    }

    /// How long its hold on each source's checkpoint lasts without a step (default 30 s): a
    /// monitor that died is taken over by another after this. Applies to the sources added
    /// so far.
    pub fn lease(mut self, lease: chrono::Duration) -> Monitor {
        for (_, consumer) in &mut self.sources {
            *consumer = consumer.clone().with_lease(lease);
        }
        self
    }

    /// Declare (or replace) an end-to-end flow.
    pub async fn define(&self, flow: &Flow) -> Result<()> {
        flow.check()?;
        let q = self.central.q();
        let mut c = self.central.client().await?;
        let tx = c.transaction().await?;
        tx.exec(&q.monitor_flow_clear, &[&flow.flow]).await?;
        let positions: Vec<i32> = (0..flow.stages.len() as i32).collect();
        let milestones: Vec<&str> = flow.stages.iter().map(|s| s.milestone.as_str()).collect();
        let limits: Vec<Option<i64>> = flow
            .stages
            .iter()
            .map(|s| {
                s.limit
                    .as_deref()
                    .and_then(|l| parse_duration(l).ok())
                    .map(|d| d.num_seconds().max(1))
            })
            .collect();
        tx.exec(
            &q.monitor_flow_insert,
            &[&flow.flow, &positions, &milestones, &limits],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Read one batch from each source and keep it centrally, then move that source's
    /// checkpoint. A source another holder reads now is skipped this time.
    pub async fn step(&self) -> Result<Collected> {
        let mut got = Collected::default();
        for (context, consumer) in &self.sources {
            let Some(batch) = consumer.poll(Utc::now(), self.batch).await? else {
                continue;
            };
            if batch.is_empty() {
                continue;
            }
            let kept = self.keep(context, &batch).await?;
            consumer.ack(Utc::now(), &batch).await?;
            got.kept += kept;
            got.duplicates += batch.len() as u64 - kept;
        }
        Ok(got)
    }

    /// Read until every source has nothing new, then give the checkpoints' leases up.
    pub async fn drain(&self) -> Result<Collected> {
        let mut total = Collected::default();
        let result = loop {
            match self.step().await {
                Ok(c) if c.kept + c.duplicates == 0 => break Ok(total),
                Ok(c) => {
                    total.kept += c.kept;
                    total.duplicates += c.duplicates;
                }
                Err(e) => break Err(e),
            }
        };
        for (_, consumer) in &self.sources {
            let _ = consumer.release().await;
        }
        result
    }

    /// Keep a batch of context `context`'s milestone messages; how many were new.
    async fn keep(&self, context: &str, batch: &[OutboxMessage]) -> Result<u64> {
        let rows: Vec<Row> = batch.iter().filter_map(row).collect();
        let c = self.central.client().await?;
        let n = c
            .exec(
                &self.central.q().monitor_insert,
                &[
                    &context,
                    &rows.iter().map(|r| r.message_id).collect::<Vec<_>>(),
                    &rows
                        .iter()
                        .map(|r| r.trace_key.as_str())
                        .collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.traceparent).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.process).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.instance_id).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.business_key).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.step).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.milestone).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.reached_at).collect::<Vec<_>>(),
                    &rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
                ],
            )
            .await?;
        Ok(n)
    }

    /// Run until `stop` says true: read every source, then wait a little when nothing came.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        while !*stop.borrow() {
            let got = self.step().await?;
            if got.kept + got.duplicates == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        for (_, consumer) in &self.sources {
            let _ = consumer.release().await;
        }
        Ok(())
    }

    /// The milestones of trace `key` across every context, in order.
    pub async fn timeline(&self, key: &str) -> Result<Vec<Reached>> {
        let c = self.central.client().await?;
        Ok(c.rows(&self.central.q().monitor_timeline, &[&key])
            .await?
            .iter()
            .map(|r| Reached {
                context: r.get("context"),
                process: r.get("process_id"),
                instance_id: r.get("instance_id"),
                business_key: r.get("business_key"),
                step: r.get("step_id"),
                milestone: r.get("milestone"),
                reached_at: r.get("reached_at"),
                traceparent: r.get("traceparent"),
            })
            .collect())
    }
}

/// A milestone message's fields, as the central table keeps them.
struct Row<'a> {
    message_id: Uuid,
    trace_key: String,
    traceparent: Option<&'a str>,
    process: &'a str,
    instance_id: Uuid,
    business_key: &'a str,
    step: &'a str,
    milestone: &'a str,
    reached_at: DateTime<Utc>,
    seq: i64,
}

/// The row of a milestone message; `None` for anything else on the topic.
fn row(m: &OutboxMessage) -> Option<Row<'_>> {
    let p = &m.payload;
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    Some(Row {
        message_id: m.message_id,
        trace_key: m.trace_key.clone().unwrap_or_else(|| m.key.clone()),
        traceparent: m.traceparent.as_deref(),
        process: s("process")?,
        instance_id: s("instance_id")?.parse().ok()?,
        business_key: s("business_key")?,
        step: s("step")?,
        milestone: s("milestone")?,
        reached_at: s("reached_at")?.parse().ok()?,
        seq: m.seq,
    })
}
