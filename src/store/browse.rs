//! Read queries for the operations console: counters the activity projection keeps, and
//! instance search with filters and keyset paging. None of them counts rows of `instances`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::read::{view, IncidentView, InstanceView};
use super::{Error, Result, Store};

/// A process version with its counters, for the console's process list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionSummary {
    /// The process id.
    pub process: String,
    /// The version.
    pub version: i32,
    /// When it was deployed.
    pub deployed_at: DateTime<Utc>,
    /// The message that starts it.
    pub start_message: Option<String>,
    /// Running instances (paused ones and those with incidents included).
    pub running: i64,
    /// Completed instances.
    pub completed: i64,
    /// Failed instances.
    pub failed: i64,
    /// Cancelled instances.
    pub cancelled: i64,
    /// Open incidents.
    pub incidents: i64,
    /// Tags naming this version, comma-separated.
    pub tags: String,
}

/// A step's counters (the badges on the console's diagram).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepCount {
    /// The step.
    pub step: String,
    /// Executions open there: instances waiting at the step.
    pub waiting: i64,
    /// Of those, the ones with an open incident.
    pub incidents: i64,
    /// Executions that ended (other than by a cancel or a failure).
    pub completed: i64,
    /// Executions ended by the instance's cancel or failure.
    pub cancelled: i64,
}

/// Which instances to list. Every field narrows the list; none set lists all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceFilter {
    /// Of this process.
    pub process: Option<String>,
    /// On this version.
    pub version: Option<i32>,
    /// `running`, `completed`, `failed`, `cancelled`, `incident` (running with an open
    /// incident) or `paused`.
    pub status: Option<String>,
    /// With this business key.
    pub business_key: Option<String>,
    /// Whose variables contain this JSON object (`{"country": "NL"}`).
    pub variables: Option<Value>,
    /// Started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before.
    pub started_before: Option<DateTime<Utc>>,
    /// At this step (its `current_step`: where it waits, or where one of its waiting
    /// branches does; where it ended, once ended).
    pub step: Option<String>,
}

impl InstanceFilter {
    /// Refuse a filter that cannot match anything sensible: an unknown status, variables that
    /// are not a JSON object.
    pub fn check(&self) -> Result<()> {
        if let Some(s) = &self.status {
            // The stored statuses, and two the console filters by: open incident, paused.
            const MORE: [&str; 2] = ["incident", "paused"];
            if crate::machine::Status::from_stored(s).is_none() && !MORE.contains(&s.as_str()) {
                let all: Vec<&str> = crate::machine::Status::STORED
                    .iter()
                    .map(|s| s.as_str())
                    .chain(MORE)
                    .collect();
                return Err(Error::BadInput(format!(
                    "unknown status \"{s}\" (one of {})",
                    all.join(", ")
                )));
            }
        }
        if let Some(v) = &self.variables {
            if !v.is_object() {
                return Err(Error::BadInput(format!(
                    "variables must be a JSON object to match, not {v}"
                )));
            }
            if super::has_nul(v) {
                return Err(Error::BadInput(
                    "variables contain a NUL character".to_string(),
                ));
            }
        }
        if let (Some(a), Some(b)) = (self.started_after, self.started_before) {
            if a >= b {
                return Err(Error::BadInput(format!(
                    "started_after ({a}) is not before started_before ({b})"
                )));
            }
        }
        Ok(())
    }
}

/// A page of instances, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstancePage {
    /// The instances.
    pub instances: Vec<InstanceView>,
    /// Pass as `after` for the next page; none on the last.
    pub next: Option<Uuid>,
}

/// A page of open incidents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentPage {
    /// The incidents, by instance id.
    pub incidents: Vec<IncidentView>,
    /// Pass as `after` for the next page; none on the last.
    pub next: Option<Uuid>,
}

/// How far the activity projection, which keeps the counters, is behind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountsLag {
    /// Committed events it has not read, counted up to 1,000 (1,000 means at least).
    pub behind: i64,
    /// When it last applied a batch; none if it never ran.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Store {
    /// How far behind the counters are (cheap enough for every page view).
    pub async fn counts_lag(&self) -> Result<CountsLag> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().console_projection_lag).await?;
        Ok(match c.query(&stmt, &[]).await?.first() {
            Some(r) => CountsLag {
                behind: r.get("behind"),
                updated_at: Some(r.get("updated_at")),
            },
            None => CountsLag {
                behind: 0,
                updated_at: None,
            },
        })
    }

    /// Every process version with its instance counters and open incidents. The counts come
    /// from the activity projection's counters: they are as current as the projection.
    pub async fn version_summaries(&self) -> Result<Vec<VersionSummary>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().console_versions).await?;
        Ok(c.query(&stmt, &[])
            .await?
            .iter()
            .map(|r| VersionSummary {
                process: r.get("process_id"),
                version: r.get("version"),
                deployed_at: r.get("deployed_at"),
                start_message: r.get("start_message"),
                running: r.get("running"),
                completed: r.get("completed"),
                failed: r.get("failed"),
                cancelled: r.get("cancelled"),
                incidents: r.get("incidents"),
                tags: r.get("tags"),
            })
            .collect())
    }

    /// The per-step counters of a process version (steps never entered are absent).
    pub async fn step_counts(&self, process: &str, version: i32) -> Result<Vec<StepCount>> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().console_step_counts).await?;
        Ok(c.query(&stmt, &[&process, &version])
            .await?
            .iter()
            .map(|r| StepCount {
                step: r.get("step_id"),
                waiting: r.get("waiting"),
                incidents: r.get("incidents"),
                completed: r.get("completed"),
                cancelled: r.get("cancelled"),
            })
            .collect())
    }

    /// Instances matching `filter`, newest first, `limit` (1 to 1,000) at a time, after the
    /// instance `after` (the `next` of the page before).
    pub async fn search_instances(
        &self,
        filter: &InstanceFilter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<InstancePage> {
        filter.check()?;
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadInput(format!(
                "limit must be 1 to 1000, not {limit}"
            )));
        }
        let (status, incident, paused) = match filter.status.as_deref() {
            Some("incident") => (None, true, false),
            Some("paused") => (None, false, true),
            other => (other, false, false),
        };
        let c = self.client().await?;
        let rows = c
            .query(
                &self.q().console_instances,
                &[
                    &filter.process,
                    &filter.version,
                    &status,
                    &filter.business_key,
                    &filter.variables,
                    &filter.started_after,
                    &filter.started_before,
                    &after,
                    &incident,
                    &paused,
                    &(limit + 1),
                    &filter.step,
                ],
            )
            .await?;
        let mut instances: Vec<InstanceView> = rows.iter().map(view).collect();
        let next = if instances.len() as i64 > limit {
            instances.truncate(limit as usize);
            instances.last().map(|i| i.instance_id)
        } else {
            None
        };
        Ok(InstancePage { instances, next })
    }

    /// Open incidents, `limit` (1 to 1,000) instances at a time after the instance `after`,
    /// optionally of one process. They are found through the activity projection (so a new
    /// incident shows once it has read it) and checked against the instance's current state
    /// (so a retried one is gone at once).
    pub async fn incident_page(
        &self,
        process: Option<&str>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<IncidentPage> {
        if !(1..=1000).contains(&limit) {
            return Err(Error::BadInput(format!(
                "limit must be 1 to 1000, not {limit}"
            )));
        }
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().console_incidents).await?;
        let rows = c.query(&stmt, &[&process, &after, &(limit + 1)]).await?;
        // Candidates in id order; those whose incident is gone have a row without a step.
        let mut candidates: Vec<Uuid> = rows.iter().map(|r| r.get("instance_id")).collect();
        candidates.dedup();
        let last = (candidates.len() as i64 > limit).then(|| candidates[limit as usize - 1]);
        let incidents: Vec<IncidentView> = rows
            .iter()
            .filter(|r| r.get::<_, Option<String>>(4).is_some())
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
            .filter(|i| match last {
                Some(last) => i.instance_id <= last,
                None => true,
            })
            .collect();
        let next = last;
        Ok(IncidentPage { incidents, next })
    }
}

/// Where an instance is: its current state row, the steps it is at and its open incidents,
/// read together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    /// The instance.
    pub instance: InstanceView,
    /// Where each waiting branch waits while it runs; the step it ended at once ended.
    pub steps: Vec<String>,
    /// Its open incidents.
    pub incidents: Vec<IncidentView>,
}

impl Store {
    /// Where an instance is (one read of its row).
    pub async fn position(&self, id: Uuid) -> Result<Position> {
        let c = self.client().await?;
        let stmt = c.prepare_cached(&self.q().instance_get).await?;
        let rows = c.query(&stmt, &[&id]).await?;
        let row = rows.first().ok_or(Error::InstanceNotFound(id))?;
        let instance = view(row);
        let state: crate::machine::InstanceState = serde_json::from_value(row.get("state"))?;
        let mut steps: Vec<String> = state.waits.iter().map(|w| w.step().to_string()).collect();
        if steps.is_empty() {
            steps.extend(instance.current_step.clone());
        }
        let incidents = state
            .incidents
            .into_iter()
            .map(|i| IncidentView {
                instance_id: id,
                process: instance.process.clone(),
                version: instance.version,
                business_key: instance.business_key.clone(),
                step: Some(i.step),
                error: i.error,
                attempts: i.attempts as i32,
                at: i.at,
            })
            .collect();
        Ok(Position {
            instance,
            steps,
            incidents,
        })
    }
}
