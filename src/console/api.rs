//! The console's JSON API (documented in the module above).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::Console;
use crate::store::{InstanceFilter, Waiting};
use crate::{Action, Error};

pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/api/processes", get(processes))
        .route("/api/processes/{process}/{version}", get(process_version))
        .route("/api/processes/{process}/{version}/bpmn", get(bpmn))
        .route("/api/instances", get(instances))
        .route("/api/instances/{id}", get(instance))
        .route("/api/instances/{id}/{action}", post(act))
        .route("/api/incidents", get(incidents))
        .route("/api/batch/{action}", post(batch))
        .fallback(not_found)
}

/// An error answered as `{"error": "..."}` with a status that says whose fault it is.
pub(super) struct ApiError(pub(super) StatusCode, pub(super) String);

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::BadInput(_) | Error::Definition(_) => StatusCode::BAD_REQUEST,
            Error::InstanceNotFound(_) | Error::ProcessNotFound(_) => StatusCode::NOT_FOUND,
            Error::Rejected { .. }
            | Error::Conflict(_)
            | Error::TaskNotOpen(_)
            | Error::TaskHeld { .. } => StatusCode::CONFLICT,
            // A data exception (class 22: a NUL in a JSON string, say) is the request's fault.
            Error::Postgres(pg) if pg.code().is_some_and(|c| c.code().starts_with("22")) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::warn!(error = %e, "console request failed");
        }
        ApiError(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

pub(super) type ApiResult = std::result::Result<Response, ApiError>;

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page or API path".into())
}

/// The activity projection's lag: the counters are as current as it is.
async fn projection(console: &Console) -> Result<Value, ApiError> {
    let lag = console.store().counts_lag().await?;
    Ok(match lag.updated_at {
        Some(at) => json!({ "behind": lag.behind, "updated_at": at }),
        None => json!({ "behind": null, "updated_at": null }),
    })
}

async fn processes(State(console): State<Console>) -> ApiResult {
    let versions = console.store().version_summaries().await?;
    Ok(
        Json(json!({ "versions": versions, "projection": projection(&console).await? }))
            .into_response(),
    )
}

async fn process_version(
    State(console): State<Console>,
    Path((process, version)): Path<(String, i32)>,
) -> ApiResult {
    let def = console.store().definition(&process, version).await?;
    let summary = console
        .store()
        .version_summaries()
        .await?
        .into_iter()
        .find(|v| v.process == process && v.version == version);
    let steps: Vec<Value> = def
        .steps
        .iter()
        .map(|s| json!({ "id": s.id, "kind": s.kind.type_name() }))
        .collect();
    let counts = console.store().step_counts(&process, version).await?;
    Ok(Json(json!({
        "summary": summary,
        "steps": steps,
        "counts": counts,
        "projection": projection(&console).await?,
    }))
    .into_response())
}

async fn bpmn(
    State(console): State<Console>,
    Path((process, version)): Path<(String, i32)>,
) -> ApiResult {
    let xml = match console.store().definition_source(&process, version).await? {
        Some(xml) => xml,
        None => {
            let def = console.store().definition(&process, version).await?;
            crate::bpmn::export(&def).xml
        }
    };
    // Plain text under a sandbox: opened directly, a document with an XHTML script element
    // would otherwise run it from the console's origin.
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            ),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'",
            ),
        ],
        xml,
    )
        .into_response())
}

/// The instance list's query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    process: Option<String>,
    version: Option<String>,
    status: Option<String>,
    business_key: Option<String>,
    variables: Option<String>,
    started_after: Option<String>,
    started_before: Option<String>,
    step: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

pub(super) fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(super) fn parse_time(
    what: &str,
    s: &Option<String>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    non_empty(s)
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad(format!("{what}: \"{t}\" is not an RFC 3339 time ({e})")))
        })
        .transpose()
}

fn parse_id(what: &str, s: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    s.map(|t| Uuid::parse_str(t).map_err(|_| bad(format!("{what}: \"{t}\" is not an instance id"))))
        .transpose()
}

fn parse_limit(s: &Option<String>) -> Result<i64, ApiError> {
    match non_empty(s) {
        None => Ok(50),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad(format!("limit: \"{t}\" is not a number from 1 to 1000"))),
    }
}

impl ListQuery {
    fn filter(&self) -> Result<InstanceFilter, ApiError> {
        let filter = InstanceFilter {
            process: non_empty(&self.process).map(str::to_string),
            version: non_empty(&self.version)
                .map(|v| {
                    v.parse::<i32>()
                        .map_err(|_| bad(format!("version: \"{v}\" is not a number")))
                })
                .transpose()?,
            status: non_empty(&self.status).map(str::to_string),
            business_key: non_empty(&self.business_key).map(str::to_string),
            variables: non_empty(&self.variables)
                .map(|v| {
                    serde_json::from_str::<Value>(v)
                        .map_err(|e| bad(format!("variables: not JSON ({e})")))
                })
                .transpose()?,
            started_after: parse_time("started_after", &self.started_after)?,
            started_before: parse_time("started_before", &self.started_before)?,
            step: non_empty(&self.step).map(str::to_string),
        };
        filter.check()?;
        Ok(filter)
    }
}

async fn instances(
    State(console): State<Console>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let filter = query.filter()?;
    let after = parse_id("after", non_empty(&query.after))?;
    let limit = parse_limit(&query.limit)?;
    let page = console
        .store()
        .search_instances(&filter, after, limit)
        .await?;
    Ok(Json(page).into_response())
}

async fn instance(State(console): State<Console>, Path(id): Path<String>) -> ApiResult {
    let id = parse_id("instance", Some(&id))?.expect("given");
    let store = console.store();
    let position = store.position(id).await?;
    let timers = store.timers_of(id).await?;
    let waiting: Vec<Waiting> = store.waiting(id).await?;
    let history: Vec<Value> = store
        .history(id)
        .await?
        .into_iter()
        .map(|h| {
            json!({
                "seq": h.seq,
                "type": h.event_type,
                "at": h.recorded_at,
                "text": h.event.describe(),
                "data": h.data,
            })
        })
        .collect();
    Ok(Json(json!({
        "instance": position.instance,
        "positions": position.steps,
        "timers": timers,
        "waiting": waiting,
        "incidents": position.incidents,
        "history": history,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    process: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

async fn incidents(
    State(console): State<Console>,
    query: Result<Query<IncidentQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let after = parse_id("after", non_empty(&query.after))?;
    let limit = parse_limit(&query.limit)?;
    let page = console
        .store()
        .incident_page(non_empty(&query.process), after, limit)
        .await?;
    Ok(Json(page).into_response())
}

/// The body of an action.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ActBody {
    reason: Option<String>,
    variables: Option<Value>,
}

fn action(name: &str, body: ActBody) -> Result<Action, ApiError> {
    match name {
        "retry" => Ok(Action::Retry {
            variables: body.variables,
        }),
        "cancel" => {
            let reason = body.reason.unwrap_or_default();
            if reason.trim().is_empty() {
                return Err(bad("a cancel needs a reason"));
            }
            Ok(Action::Cancel { reason })
        }
        "pause" | "resume" if body.reason.is_some() || body.variables.is_some() => {
            Err(bad(format!("{name} takes no reason or variables")))
        }
        "pause" => Ok(Action::Pause),
        "resume" => Ok(Action::Resume),
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown action \"{other}\" (retry, cancel, pause or resume)"),
        )),
    }
}

/// Who asks: the user header the host sets, recorded as `console: <user>`.
fn who(console: &Console, headers: &HeaderMap) -> String {
    let user = headers
        .get(console.user_header.as_ref())
        .map(|v| String::from_utf8_lossy(v.as_bytes()).replace('\0', ""))
        .unwrap_or_default();
    match user.trim() {
        "" => "console".to_string(),
        user => format!("console: {}", user.chars().take(200).collect::<String>()),
    }
}

pub(super) fn json_body<T>(
    body: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| match e.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError(e.status(), e.body_text()),
        _ => bad(e.body_text()),
    })
}

async fn act(
    State(console): State<Console>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<ActBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let id = parse_id("instance", Some(&id))?.expect("given");
    let action = action(&name, json_body(body)?)?;
    console
        .engine()
        .act(id, action, &who(&console, &headers))
        .await?;
    let view = console.store().instance(id).await?;
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    filter: InstanceFilter,
    reason: Option<String>,
    variables: Option<Value>,
    expected: Option<i64>,
}

async fn batch(
    State(console): State<Console>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<BatchBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let body = json_body(body)?;
    let expected = body.expected.ok_or_else(|| {
        bad("a batch states how many instances it expects to touch: \"expected\"")
    })?;
    if !(1..=10_000).contains(&expected) {
        return Err(bad(format!("expected must be 1 to 10000, not {expected}")));
    }
    // One more than expected is read, to know whether the filter matches more.
    let max = expected + 1;
    let template = action(
        &name,
        ActBody {
            reason: body.reason,
            variables: body.variables,
        },
    )?;
    body.filter.check()?;
    // The selection first (so the actions do not move instances in or out of it as it is
    // read), then one action per instance, each in its own transaction.
    let mut ids: Vec<Uuid> = Vec::new();
    let mut after = None;
    while (ids.len() as i64) < max {
        let page = console
            .store()
            .search_instances(&body.filter, after, (max - ids.len() as i64).min(1000))
            .await?;
        ids.extend(page.instances.iter().map(|i| i.instance_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if ids.len() as i64 > expected {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "the filter matches more than the {expected} instances expected; nothing was done (narrow the filter, or state the number)"
            ),
        ));
    }
    let by = who(&console, &headers);
    let mut done = 0;
    let mut failed: Vec<Value> = Vec::new();
    for id in &ids {
        match console.engine().act(*id, template.clone(), &by).await {
            Ok(()) => done += 1,
            Err(e) => failed.push(json!({ "instance_id": id, "error": e.to_string() })),
        }
    }
    tracing::info!(action = %name, by = %by, matched = ids.len(), done, failed = failed.len(), "console batch");
    Ok(Json(json!({ "matched": ids.len(), "done": done, "failed": failed })).into_response())
}
