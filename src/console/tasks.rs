//! The console's task list API: the lists a clerk sees (theirs, their groups', all, overdue),
//! one task with what it needs, and the actions on it, as the user the host's authentication
//! names (the user header) with the groups it names (the groups header).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::{bad, json_body, non_empty, parse_time, ApiError, ApiResult};
use super::Console;
use crate::machine::TaskAction;
use crate::store::TaskQuery;

pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/tasks", get(tasks))
        .route("/api/tasks/{id}", get(task))
        .route("/api/tasks/{id}/{action}", post(act))
}

/// Who the host's authentication says the user is, and their groups.
fn user(console: &Console, headers: &HeaderMap) -> (Option<String>, Vec<String>) {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).replace('\0', ""))
            .unwrap_or_default()
    };
    let name = header(&console.user_header);
    let name = name.trim();
    let groups = header(&console.groups_header)
        .split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .take(100)
        .collect();
    (
        (!name.is_empty()).then(|| name.chars().take(200).collect()),
        groups,
    )
}

async fn me(State(console): State<Console>, headers: HeaderMap) -> ApiResult {
    let (name, groups) = user(&console, &headers);
    Ok(Json(json!({ "user": name, "groups": groups })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskListQuery {
    /// mine, groups, all or overdue.
    view: Option<String>,
    process: Option<String>,
    unassigned: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    due_before: Option<String>,
}

async fn tasks(
    State(console): State<Console>,
    headers: HeaderMap,
    query: Result<Query<TaskListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| bad(e.body_text()))?;
    let (name, groups) = user(&console, &headers);
    let mut query = TaskQuery {
        process: non_empty(&q.process).map(str::to_string),
        unassigned: matches!(non_empty(&q.unassigned), Some("true" | "1")),
        after: non_empty(&q.after).map(str::to_string),
        due_before: parse_time("due_before", &q.due_before)?,
        limit: match non_empty(&q.limit) {
            None => 50,
            Some(t) => t
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| bad(format!("limit: \"{t}\" is not a number from 1 to 500")))?,
        },
        ..TaskQuery::default()
    };
    let need_user = || {
        name.clone().ok_or_else(|| {
            bad("this list is the user's own: the host's authentication names the user in the user header")
        })
    };
    match non_empty(&q.view).unwrap_or("all") {
        "mine" => query.assignee = Some(need_user()?),
        "groups" => {
            query.candidate_user = Some(need_user()?);
            query.candidate_groups = groups;
        }
        "all" => {}
        "overdue" => {
            query.due_before = Some(console.engine().now());
        }
        other => {
            return Err(bad(format!(
                "view: \"{other}\" is not mine, groups, all or overdue"
            )))
        }
    }
    let page = console.engine().tasks(&query).await?;
    Ok(Json(page).into_response())
}

fn task_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(id).map_err(|_| bad(format!("task: \"{id}\" is not a task id")))
}

async fn task(State(console): State<Console>, Path(id): Path<String>) -> ApiResult {
    let id = task_id(&id)?;
    match console.engine().task(id).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("task {id} is not open: it was completed, or its step or instance ended"),
        )),
    }
}

/// The body of a task action.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TaskBody {
    force: bool,
    assignee: Option<String>,
    candidate_users: Option<Vec<String>>,
    candidate_groups: Option<Vec<String>>,
    /// RFC 3339, or "" to clear.
    due_at: Option<String>,
    follow_up_at: Option<String>,
    priority: Option<u8>,
    variables: Option<Map<String, Value>>,
}

fn date(
    what: &str,
    v: &Option<String>,
) -> Result<Option<Option<chrono::DateTime<chrono::Utc>>>, ApiError> {
    match v.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(_) => Ok(Some(parse_time(what, v)?)),
    }
}

async fn act(
    State(console): State<Console>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<TaskBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let id = task_id(&id)?;
    let b = json_body(body)?;
    let (user, _) = user(&console, &headers);
    let Some(user) = user else {
        return Err(bad(
            "a task action is taken by a user: the host's authentication names them in the user header",
        ));
    };
    let action = match name.as_str() {
        "claim" => TaskAction::Claim { force: b.force },
        "unclaim" => TaskAction::Unclaim { force: b.force },
        "assign" => TaskAction::Assign {
            assignee: b.assignee.filter(|a| !a.trim().is_empty()),
            candidate_users: b.candidate_users,
            candidate_groups: b.candidate_groups,
            force: b.force,
        },
        "update" => TaskAction::Update {
            due_at: date("due_at", &b.due_at)?,
            follow_up_at: date("follow_up_at", &b.follow_up_at)?,
            priority: b.priority,
        },
        "complete" => TaskAction::Complete {
            variables: b.variables.unwrap_or_default(),
            force: b.force,
        },
        other => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "unknown task action \"{other}\" (claim, unclaim, assign, update or complete)"
                ),
            ))
        }
    };
    console.engine().act_on_task(id, action, &user).await?;
    tracing::info!(task = %id, action = %name, by = %user, "console task action");
    let after = console.engine().task(id).await?;
    Ok(Json(json!({ "task_id": id, "done": name, "by": user, "task": after })).into_response())
}
