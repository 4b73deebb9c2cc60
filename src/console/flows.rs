//! The console's overview across contexts: the end-to-end flows the central monitor keeps in
//! this schema (stages with their traces now, stage-to-stage durations, the stuck traces), one
//! trace's timeline, and where each context's own console is.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::api::ApiResult;
use super::Console;
use crate::monitor::Monitor;

pub(super) fn routes() -> Router<Console> {
    Router::new()
        .route("/api/flows", get(flows))
        .route("/api/flows/trace/{key}", get(trace))
}

/// Every flow's stages, durations and (the oldest 100) stuck traces, and the contexts' links.
async fn flows(State(console): State<Console>) -> ApiResult {
    let store = console.store();
    Ok(Json(json!({
        "stages": store.report("flow_stages", 1000).await?,
        "durations": store.report("flow_durations", 1000).await?,
        "stuck": store.report("flow_stuck", 100).await?,
        "contexts": links(&console),
    }))
    .into_response())
}

/// One trace's milestones across the contexts, in order.
async fn trace(State(console): State<Console>, Path(key): Path<String>) -> ApiResult {
    let monitor = Monitor::new(console.store(), "console")?;
    Ok(Json(json!({
        "trace_key": key,
        "milestones": monitor.timeline(&key).await?,
        "contexts": links(&console),
    }))
    .into_response())
}

fn links(console: &Console) -> serde_json::Map<String, serde_json::Value> {
    console
        .contexts
        .iter()
        .map(|(name, url)| (name.clone(), json!(url)))
        .collect()
}
