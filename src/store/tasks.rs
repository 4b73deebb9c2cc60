//! The task list: open user tasks as rows (written with the transitions that open, change and
//! end them), read by assignee, candidate user or group, with keyset paging.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::bucket::buckets_of;

use super::conn::Conn;
use super::sql::Queries;
use super::{Error, Result, Store};
use crate::definition::{StepKind, UserTask};
use crate::machine::OpenTask;

/// The most tasks one page holds.
pub const MAX_PAGE: u32 = 500;

/// An open task, as the task list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// The task id.
    pub task_id: Uuid,
    /// The instance that waits for it.
    pub instance_id: Uuid,
    /// Its process.
    pub process: String,
    /// The user task step.
    pub step: String,
    /// The instance's business key.
    pub business_key: String,
    /// Who holds it (none: it waits for a claim).
    pub assignee: Option<String>,
    /// Users who may claim it.
    pub candidate_users: Vec<String>,
    /// Groups whose members may claim it.
    pub candidate_groups: Vec<String>,
    /// From 0 to 100.
    pub priority: i16,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// When to look at it again.
    pub follow_up_at: Option<DateTime<Utc>>,
    /// The form reference.
    pub form: Option<String>,
    /// When it was opened (engine clock).
    pub created_at: DateTime<Utc>,
    /// When it last changed (engine clock).
    pub updated_at: DateTime<Utc>,
}

/// An open task with what a person needs to do it: the instance's version and variables, and
/// the fields the completion must supply (name -> type).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskDetail {
    /// The task.
    #[serde(flatten)]
    pub task: Task,
    /// The instance's process version.
    pub version: i32,
    /// The instance's variables now.
    pub variables: Map<String, Value>,
    /// What a completion must supply: each field's type (`string`, `number`, `boolean`,
    /// `object`, `any`). Empty: any variables.
    pub fields: std::collections::BTreeMap<String, crate::expr::Type>,
}

/// Which open tasks to list: every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskQuery {
    /// Held by this user.
    pub assignee: Option<String>,
    /// Offered to this user by name (a candidate user).
    pub candidate_user: Option<String>,
    /// Offered to any of these groups (a user's groups). With `candidate_user`, tasks
    /// offered to the user or to any of the groups.
    pub candidate_groups: Vec<String>,
    /// Of this process.
    pub process: Option<String>,
    /// Due before this time.
    pub due_before: Option<DateTime<Utc>>,
    /// With a follow-up date before this time.
    pub follow_up_before: Option<DateTime<Utc>>,
    /// At least this priority.
    pub min_priority: u8,
    /// Only tasks nobody holds.
    pub unassigned: bool,
    /// At most this many (1 to 500; 0 means 50).
    pub limit: u32,
    /// The page after this cursor ([`TaskPage::next`] of the page before).
    pub after: Option<String>,
}

/// One page of the task list, in list order: by due date (tasks without one last), then by
/// creation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskPage {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// The cursor of the next page, when this one is full.
    pub next: Option<String>,
}

/// A task to write: its row, for the instance `instance_id` of `process`.
pub(super) struct TaskPut {
    pub(super) task_id: Uuid,
    pub(super) instance_id: Uuid,
    pub(super) process: String,
    pub(super) step: String,
    pub(super) business_key: String,
    pub(super) task: OpenTask,
}

fn task_of(r: &Row) -> Task {
    Task {
        task_id: r.get("task_id"),
        instance_id: r.get("instance_id"),
        process: r.get("process_id"),
        step: r.get("step_id"),
        business_key: r.get("business_key"),
        assignee: r.get("assignee"),
        candidate_users: r.get("candidate_users"),
        candidate_groups: r.get("candidate_groups"),
        priority: r.get("priority"),
        due_at: r.get("due_at"),
        follow_up_at: r.get("follow_up_at"),
        form: r.get("form_key"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

/// The order key of a row, as a cursor: `due~created~id` (microseconds; `inf` for no due).
fn cursor_of(r: &Row) -> String {
    let due: chrono::DateTime<Utc> = match r.try_get::<_, DateTime<Utc>>("due_key") {
        Ok(d) => d,
        // 'infinity' does not convert to a chrono time.
        Err(_) => {
            return format!(
                "inf~{}~{}",
                micros(r.get("created_at")),
                r.get::<_, Uuid>("task_id")
            )
        }
    };
    format!(
        "{}~{}~{}",
        micros(due),
        micros(r.get("created_at")),
        r.get::<_, Uuid>("task_id")
    )
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The (due key, created, id) a cursor stands for; the due key is `None` for infinity.
fn parse_cursor(c: &str) -> Result<(Option<DateTime<Utc>>, DateTime<Utc>, Uuid)> {
    let bad = || Error::BadInput(format!("invalid task list cursor \"{c}\""));
    let mut parts = c.split('~');
    let (Some(due), Some(created), Some(id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let time = |s: &str| {
        s.parse::<i64>()
            .ok()
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or_else(bad)
    };
    let due = if due == "inf" { None } else { Some(time(due)?) };
    Ok((due, time(created)?, id.parse().map_err(|_| bad())?))
}

impl Store {
    /// A page of open tasks (see [`TaskQuery`]).
    pub async fn tasks(&self, query: &TaskQuery) -> Result<TaskPage> {
        let limit = match query.limit {
            0 => 50,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(Error::BadInput(format!(
                    "a page holds at most {MAX_PAGE} tasks, not {n}"
                )))
            }
        };
        if query.min_priority > 100 {
            return Err(Error::BadInput("a priority runs from 0 to 100".into()));
        }
        let c = self.client().await?;
        let q = self.q();
        let (due, created, id) = match &query.after {
            Some(cursor) => parse_cursor(cursor)?,
            None => {
                // Before every task: 0001-01-01.
                let start = DateTime::from_timestamp(-62_135_596_800, 0).expect("in range");
                (Some(start), start, Uuid::nil())
            }
        };
        let rows = self
            .task_rows(&c, q, query, due, created, id, limit)
            .await?;
        let next = (rows.len() == limit as usize)
            .then(|| rows.last().map(cursor_of))
            .flatten();
        Ok(TaskPage {
            tasks: rows.iter().map(task_of).collect(),
            next,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn task_rows(
        &self,
        c: &impl Conn,
        q: &Queries,
        query: &TaskQuery,
        due: Option<DateTime<Utc>>,
        created: DateTime<Utc>,
        id: Uuid,
        limit: u32,
    ) -> Result<Vec<Row>> {
        let limit = i64::from(limit);
        let priority = i16::from(query.min_priority);
        // The due key of the cursor: infinity (no due date) travels as NULL, which the
        // statements read as 'infinity'.
        let due_sql = due;
        let base: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &query.process,
            &query.due_before,
            &query.follow_up_before,
            &priority,
            &query.unassigned,
            &due_sql,
            &created,
            &id,
            &limit,
        ];
        let rows = if query.candidate_user.is_some() || !query.candidate_groups.is_empty() {
            let mut kinds = Vec::new();
            let mut names = Vec::new();
            if let Some(u) = &query.candidate_user {
                kinds.push("user".to_string());
                names.push(u.clone());
            }
            for g in &query.candidate_groups {
                kinds.push("group".to_string());
                names.push(g.clone());
            }
            let mut params = base.to_vec();
            params.push(&kinds);
            params.push(&names);
            let mut rows = c.rows(&q.tasks_page_candidates, &params).await?;
            if let Some(a) = &query.assignee {
                rows.retain(|r| r.get::<_, Option<String>>("assignee").as_ref() == Some(a));
            }
            rows
        } else if let Some(a) = &query.assignee {
            let mut params = base.to_vec();
            params.push(a);
            c.rows(&q.tasks_page_assignee, &params).await?
        } else {
            c.rows(&q.tasks_page, &base).await?
        };
        Ok(rows)
    }

    /// One open task with its instance's variables and the fields its completion must supply;
    /// `None` when it is not open.
    pub async fn task(&self, task_id: Uuid) -> Result<Option<TaskDetail>> {
        let c = self.client().await?;
        let Some(r) = c.rows(&self.q().task_get, &[&task_id]).await?.pop() else {
            return Ok(None);
        };
        let task = task_of(&r);
        let version: i32 = r.get("version");
        let Json(variables): Json<Map<String, Value>> = r.get("variables");
        let def = self.definition(&task.process, version).await?;
        let fields = match def.step(&task.step).map(|s| &s.kind) {
            Some(StepKind::UserTask(UserTask { fields, .. })) => fields.clone(),
            _ => Default::default(),
        };
        Ok(Some(TaskDetail {
            task,
            version,
            variables,
            fields,
        }))
    }

    /// The instance an open task belongs to.
    pub(crate) async fn task_instance_in(
        &self,
        c: &impl Conn,
        task_id: Uuid,
    ) -> Result<Option<Uuid>> {
        Ok(c.rows(&self.q().task_instance, &[&task_id])
            .await?
            .first()
            .map(|r| r.get(0)))
    }
}

/// Write the batch's task changes: removed tasks go (with their candidate rows), new and
/// changed ones are upserted and their candidate rows written again.
pub(super) async fn write_tasks(
    c: &impl Conn,
    q: &Queries,
    now: DateTime<Utc>,
    put: &[TaskPut],
    removed: &[Uuid],
) -> Result<u64, tokio_postgres::Error> {
    let mut n = 0;
    if !removed.is_empty() {
        n += c
            .exec_planned(&q.tasks_delete, &[&removed, &buckets_of(removed)])
            .await?;
    }
    if put.is_empty() {
        return Ok(n);
    }
    let id: Vec<Uuid> = put.iter().map(|p| p.task_id).collect();
    let inst: Vec<Uuid> = put.iter().map(|p| p.instance_id).collect();
    let process: Vec<&str> = put.iter().map(|p| p.process.as_str()).collect();
    let step: Vec<&str> = put.iter().map(|p| p.step.as_str()).collect();
    let key: Vec<&str> = put.iter().map(|p| p.business_key.as_str()).collect();
    let assignee: Vec<Option<&str>> = put.iter().map(|p| p.task.assignee.as_deref()).collect();
    let users: Vec<Json<&Vec<String>>> =
        put.iter().map(|p| Json(&p.task.candidate_users)).collect();
    let groups: Vec<Json<&Vec<String>>> =
        put.iter().map(|p| Json(&p.task.candidate_groups)).collect();
    let priority: Vec<i16> = put.iter().map(|p| i16::from(p.task.priority)).collect();
    let due: Vec<Option<DateTime<Utc>>> = put.iter().map(|p| p.task.due_at).collect();
    let follow: Vec<Option<DateTime<Utc>>> = put.iter().map(|p| p.task.follow_up_at).collect();
    let form: Vec<Option<&str>> = put.iter().map(|p| p.task.form.as_deref()).collect();
    let created: Vec<DateTime<Utc>> = put.iter().map(|p| p.task.created_at).collect();
    let updated: Vec<DateTime<Utc>> = vec![now; put.len()];
    n += c
        .exec(
            &q.tasks_put,
            &[
                &id, &inst, &process, &step, &key, &assignee, &users, &groups, &priority, &due,
                &follow, &form, &created, &updated,
            ],
        )
        .await?;
    n += c
        .exec_planned(&q.task_candidates_clear, &[&id, &buckets_of(&id)])
        .await?;
    let mut kinds = Vec::new();
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for p in put {
        for (kind, list) in [
            ("user", &p.task.candidate_users),
            ("group", &p.task.candidate_groups),
        ] {
            for name in list {
                kinds.push(kind);
                names.push(name.as_str());
                ids.push(p.task_id);
            }
        }
    }
    if !ids.is_empty() {
        n += c
            .exec_planned(
                &q.task_candidates_insert,
                &[&kinds, &names, &ids, &buckets_of(&ids)],
            )
            .await?;
    }
    Ok(n)
}
