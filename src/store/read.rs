//! Read-side queries for the API and the command line.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{Error, Result, Store};

/// An instance's current state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    /// The instance id.
    pub instance_id: Uuid,
    /// The process.
    pub process: String,
    /// The version it runs.
    pub version: i32,
    /// The business key.
    pub business_key: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// Where it waits (or ended).
    pub current_step: Option<String>,
    /// What it waits for, in words.
    pub waiting_for: Option<String>,
    /// The variables.
    pub variables: Value,
    /// The number of events in its stream.
    pub events: i64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// The error it failed with.
    pub error: Option<String>,
    /// What its work is traced under across contexts (none for instances started before
    /// traces were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::machine::Trace>,
}

/// One event of an instance's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Position in the stream.
    pub seq: i64,
    /// The event type.
    pub event_type: String,
    /// The event as JSON, as stored.
    pub data: Value,
    /// The event, read through [`upcast`](crate::machine::upcast) from the schema it was
    /// stored with ([`Event::describe`](crate::machine::Event::describe) puts it in words).
    pub event: crate::machine::Event,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// Something an instance waits for right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waiting {
    /// A message subscription.
    Message {
        /// The receive step.
        step: String,
        /// The message name.
        name: String,
        /// The correlation key.
        key: String,
        /// Since when.
        since: DateTime<Utc>,
    },
    /// A handler job.
    Job {
        /// The job id.
        job_id: Uuid,
        /// The service step.
        step: String,
        /// The handler.
        handler: String,
        /// Claims so far.
        attempts: i32,
        /// The engine holding it, if claimed.
        lease_owner: Option<String>,
    },
}

/// A process version with its instance counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessVersion {
    /// The process id.
    pub process: String,
    /// The version.
    pub version: i32,
    /// When it was deployed.
    pub deployed_at: DateTime<Utc>,
    /// The message that starts it.
    pub start_message: Option<String>,
    /// Running instances.
    pub running: i64,
    /// Completed instances.
    pub completed: i64,
    /// Failed instances.
    pub failed: i64,
    /// Cancelled instances.
    pub cancelled: i64,
    /// Tags naming this version, comma-separated.
    pub tags: String,
}

/// The result of replaying an instance's events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    /// Events replayed.
    pub events: usize,
    /// Where the replayed state differs from the stored one (empty: they agree).
    pub differences: Vec<String>,
}

/// A message that could not be delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// The message id.
    pub message_id: String,
    /// The name.
    pub name: String,
    /// The key.
    pub key: String,
    /// Why it is dead.
    pub reason: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

pub(crate) fn view(r: &tokio_postgres::Row) -> InstanceView {
    let state: Value = r.get("state");
    InstanceView {
        instance_id: r.get("instance_id"),
        process: r.get("process_id"),
        version: r.get("version"),
        business_key: r.get("business_key"),
        status: r.get("status"),
        current_step: r.get("current_step"),
        waiting_for: r.get("waiting_for"),
        variables: r.get("variables"),
        events: r.get("seq"),
        started_at: r.get("started_at"),
        updated_at: r.get("updated_at"),
        ended_at: r.get("ended_at"),
        error: state
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string),
        trace: state
            .get("trace")
            .and_then(|t| serde_json::from_value(t.clone()).ok()),
    }
}

impl Store {
    /// One instance.
    pub async fn instance(&self, id: Uuid) -> Result<InstanceView> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().instance_get).await?;
        let rows = c.query(&stmt, &[&id]).await?;
        rows.first().map(view).ok_or(Error::InstanceNotFound(id))
    }

    /// Instances, newest first.
    pub async fn instances(
        &self,
        process: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<InstanceView>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().instances_list).await?;
        let rows = c.query(&stmt, &[&process, &status, &limit]).await?;
        Ok(rows.iter().map(view).collect())
    }

    /// Instance counts by status for a process.
    pub async fn count_by_status(&self, process: &str) -> Result<Vec<(String, i64)>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().instances_count).await?;
        let rows = c.query(&stmt, &[&process]).await?;
        Ok(rows.iter().map(|r| (r.get("status"), r.get("n"))).collect())
    }

    /// One instance's event history.
    pub async fn history(&self, id: Uuid) -> Result<Vec<HistoryEntry>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().events_of_instance).await?;
        let rows = c.query(&stmt, &[&id]).await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get("seq");
                let event_type: String = r.get("event_type");
                let data: Value = r.get("data");
                let event =
                    crate::machine::upcast(r.get("schema_version"), &event_type, data.clone())
                        .map_err(|e| Error::BadInput(format!("event {seq} of {id}: {e}")))?;
                Ok(HistoryEntry {
                    seq,
                    event_type,
                    data,
                    event,
                    recorded_at: r.get("recorded_at"),
                })
            })
            .collect()
    }

    /// Rebuild an instance's state from its events (each upcast from the schema it was stored
    /// with) and compare it with the stored current state: the differences, field by field
    /// (none when they agree).
    pub async fn replay(&self, id: Uuid) -> Result<Replay> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().events_of_instance).await?;
        let rows = c.query(&stmt, &[&id]).await?;
        if rows.is_empty() {
            return Err(Error::InstanceNotFound(id));
        }
        let mut state = crate::machine::InstanceState::default();
        for r in &rows {
            let event =
                crate::machine::upcast(r.get("schema_version"), r.get("event_type"), r.get("data"))
                    .map_err(|e| {
                        Error::BadInput(format!("event {} of {id}: {e}", r.get::<_, i64>("seq")))
                    })?;
            crate::machine::evolve(&mut state, &event);
        }
        let stmt = c.prepare_cached(&self.q().instance_get).await?;
        let row = c.query_one(&stmt, &[&id]).await?;
        let stored = super::stored_state::state_from(row.get("state"), row.get("variables"))?;
        let as_map = |s: &crate::machine::InstanceState| {
            let mut v = serde_json::to_value(s).expect("serializes");
            v["variables"] = Value::Object(s.variables.clone());
            match v {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            }
        };
        let (a, b) = (as_map(&state), as_map(&stored));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let differences = keys
            .into_iter()
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                format!(
                    "{k}: replayed {} but stored {}",
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null)
                )
            })
            .collect();
        Ok(Replay {
            events: rows.len(),
            differences,
        })
    }

    /// What an instance waits for: its subscriptions and jobs.
    pub async fn waiting(&self, id: Uuid) -> Result<Vec<Waiting>> {
        let c = self.client().await?;
        let subs = c
            .prepare_cached(&self.q().subscriptions_of_instance)
            .await?;
        let jobs = c.prepare_cached(&self.q().jobs_of_instance).await?;
        let mut out: Vec<Waiting> = c
            .query(&subs, &[&id])
            .await?
            .iter()
            .map(|r| Waiting::Message {
                step: r.get("step_id"),
                name: r.get("message_name"),
                key: r.get("correlation_key"),
                since: r.get("created_at"),
            })
            .collect();
        out.extend(c.query(&jobs, &[&id]).await?.iter().map(|r| Waiting::Job {
            job_id: r.get("job_id"),
            step: r.get("step_id"),
            handler: r.get("handler"),
            attempts: r.get("attempts"),
            lease_owner: r.get("lease_owner"),
        }));
        Ok(out)
    }

    /// Every process version with instance counts.
    pub async fn definitions(&self) -> Result<Vec<ProcessVersion>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().definitions_list).await?;
        Ok(c.query(&stmt, &[])
            .await?
            .iter()
            .map(|r| ProcessVersion {
                process: r.get("process_id"),
                version: r.get("version"),
                deployed_at: r.get("deployed_at"),
                start_message: r.get("start_message"),
                running: r.get("running"),
                completed: r.get("completed"),
                failed: r.get("failed"),
                cancelled: r.get("cancelled"),
                tags: r.get("tags"),
            })
            .collect())
    }

    /// Dead-lettered messages, newest first.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadLetter>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().inbox_dead_letters).await?;
        Ok(c.query(&stmt, &[&limit])
            .await?
            .iter()
            .map(|r| DeadLetter {
                message_id: r.get("message_id"),
                name: r.get("name"),
                key: r.get("key"),
                reason: r.get("reason"),
                received_at: r.get("received_at"),
            })
            .collect())
    }
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentView {
    /// The instance.
    pub instance_id: Uuid,
    /// Its process.
    pub process: String,
    /// Its version.
    pub version: i32,
    /// Its business key.
    pub business_key: String,
    /// The step.
    pub step: Option<String>,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: i32,
    /// When it was raised.
    pub at: DateTime<Utc>,
}

impl Store {
    /// Open incidents, oldest first.
    pub async fn incidents(&self, process: Option<&str>, limit: i64) -> Result<Vec<IncidentView>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().incidents_list).await?;
        Ok(c.query(&stmt, &[&process, &limit])
            .await?
            .iter()
            .map(|r| IncidentView {
                instance_id: r.get("instance_id"),
                process: r.get("process_id"),
                version: r.get("version"),
                business_key: r.get("business_key"),
                step: r.get("step"),
                error: r.get::<_, Option<String>>(5).unwrap_or_default(),
                attempts: r.get::<_, Option<i32>>(6).unwrap_or_default(),
                at: r.get("since"),
            })
            .collect())
    }
}

impl Store {
    /// Where an instance is and why, in plain words: what it waits for and since when, its
    /// timers, an open incident, a pause; or how it ended.
    pub async fn explain(&self, id: Uuid) -> Result<Vec<String>> {
        let view = self.instance(id).await?;
        let state: crate::machine::InstanceState = {
            let c = self.client().await?;
            let stmt = c.prepare_cached(&self.q().instance_get).await?;
            let row = c.query_one(&stmt, &[&id]).await?;
            serde_json::from_value(row.get("state"))?
        };
        let mut lines = vec![format!(
            "instance {} of {} v{} (key {}) is {}",
            view.instance_id, view.process, view.version, view.business_key, view.status
        )];
        if view.status != "running" {
            lines.push(format!(
                "it ended at step {} at {}{}",
                view.current_step.as_deref().unwrap_or("?"),
                view.ended_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default(),
                view.error.map(|e| format!(": {e}")).unwrap_or_default()
            ));
            return Ok(lines);
        }
        if state.paused {
            lines.push("it is paused by an operator: nothing moves it until it is resumed".into());
        }
        for i in &state.incidents {
            lines.push(format!(
                "it has an open incident at step {}: \"{}\" after {} attempts, since {}; an operator can retry or cancel it",
                i.step, i.error, i.attempts, i.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
        if let Some(reason) = &state.compensating {
            lines.push(format!("it is undoing completed steps ({reason})"));
        }
        for w in self.waiting(id).await? {
            match w {
                Waiting::Message {
                    step,
                    name,
                    key,
                    since,
                } => lines.push(format!(
                    "at step {step} it waits for message {name} with key {key} since {}",
                    since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                )),
                Waiting::Job {
                    step,
                    handler,
                    attempts,
                    lease_owner,
                    ..
                } => lines.push(format!(
                    "at step {step} it waits for handler {handler} ({}{})",
                    if attempts == 0 {
                        "not claimed yet".to_string()
                    } else {
                        format!("claimed {attempts} times")
                    },
                    lease_owner
                        .map(|o| format!(", held by {o}"))
                        .unwrap_or_default()
                )),
            }
        }
        for w in &state.waits {
            if let crate::machine::Wait::Child {
                step,
                child_id,
                process,
            } = w
            {
                lines.push(format!(
                    "at step {step} it waits for its child instance {child_id} of process {process} to end"
                ));
            }
        }
        for (join, arrived) in &state.joins {
            lines.push(format!(
                "{arrived} branch(es) arrived at join {join}; it goes on when the others do"
            ));
        }
        for t in &state.timers {
            lines.push(format!(
                "a {} timer at step {} is due at {}",
                match t.kind {
                    crate::machine::TimerKind::Step => "timer-step",
                    crate::machine::TimerKind::Boundary { .. } => "boundary",
                    crate::machine::TimerKind::Timeout => "timeout",
                },
                t.step,
                t.due_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
        if lines.len() == 1 {
            lines.push("nothing can move it: no message, job or timer waits for it (stuck)".into());
        }
        Ok(lines)
    }
}

impl Store {
    /// The columns of a reporting view, in order.
    pub async fn report_columns(&self, name: &str) -> Result<Vec<String>> {
        if !super::sql::REPORTS.contains(&name) {
            return Err(Error::BadInput(format!("unknown report \"{name}\"")));
        }
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(include_str!("../../sql/reporting/report_columns.sql"))
            .await?;
        let view = format!("report_{name}");
        Ok(c.query(&stmt, &[&self.schema(), &view])
            .await?
            .iter()
            .map(|r| r.get("attname"))
            .collect())
    }

    /// The rows of the `old_instances` view older than `age` (running instances started
    /// longer ago), oldest first, as JSON objects.
    pub async fn report_older_than(&self, age: chrono::Duration, limit: i64) -> Result<Vec<Value>> {
        let sql = super::sql::render(
            include_str!("../../sql/reporting/old_instances.sql"),
            self.schema(),
        );
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        let interval = format!("{} seconds", age.num_seconds());
        c.query(&stmt, &[&limit, &interval])
            .await?
            .iter()
            .map(|r| Ok(serde_json::from_str(r.get::<_, &str>("doc"))?))
            .collect()
    }

    /// The rows of a reporting view (see `sql/migrations/0003_reporting.sql`), as JSON objects.
    pub async fn report(&self, name: &str, limit: i64) -> Result<Vec<Value>> {
        let sql = super::sql::report_query(self.schema(), name).ok_or_else(|| {
            Error::BadInput(format!(
                "unknown report \"{name}\" (one of: {})",
                super::sql::REPORTS.join(", ")
            ))
        })?;
        let c = self.client().await?;
        let stmt = c.prepare_cached(&sql).await?;
        c.query(&stmt, &[&limit])
            .await?
            .iter()
            .map(|r| Ok(serde_json::from_str(r.get::<_, &str>("doc"))?))
            .collect()
    }
}

/// A one-line summary in plain words of an event given as its stored JSON (as in
/// [`HistoryEntry::data`]): [`Event::describe`](crate::machine::Event::describe) of the event
/// it reads as, or the JSON itself when it is not one this build knows.
pub fn describe_event(data: &Value) -> String {
    match serde_json::from_value::<crate::machine::Event>(data.clone()) {
        Ok(event) => event.describe(),
        Err(_) => data.to_string(),
    }
}
