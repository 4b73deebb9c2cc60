//! The page and its assets, embedded in the binary (no Node build to use or build the crate).
//! The bpmn-js viewer is vendored as its authors publish it (console/vendor/bpmn-js, with its
//! license, which asks that its watermark stay visible).

use axum::extract::{OriginalUri, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::Console;

const INDEX: &str = include_str!("../../console/index.html");

/// (path under `assets/`, content type, body).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/app.js"),
    ),
    (
        "tasks.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/tasks.js"),
    ),
    (
        "flows.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/flows.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/app.css"),
    ),
    (
        "vendor/bpmn-navigated-viewer.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../console/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"),
    ),
    (
        "vendor/diagram-js.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/vendor/bpmn-js/diagram-js.css"),
    ),
    (
        "vendor/bpmn-js.css",
        "text/css; charset=utf-8",
        include_bytes!("../../console/vendor/bpmn-js/bpmn-js.css"),
    ),
];

pub(super) fn routes() -> Router<Console> {
    let mut router = Router::new().route("/", get(index));
    for (path, content_type, body) in FILES {
        let vendor = path.starts_with("vendor/");
        router = router.route(
            &format!("/assets/{path}"),
            get(move || async move {
                let cache = if vendor {
                    "public, max-age=86400"
                } else {
                    "no-cache"
                };
                (
                    [
                        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
                        (CACHE_CONTROL, HeaderValue::from_static(cache)),
                    ],
                    *body,
                )
            }),
        );
    }
    router
}

/// The page, with a `<base>` of the path it was asked for (with a trailing slash), so that its
/// relative links resolve under the prefix the host mounted it at, asked for as `/ops` or
/// `/ops/`.
async fn index(State(console): State<Console>, OriginalUri(uri): OriginalUri) -> Response {
    let mut base = uri.path().to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    let base = base
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = INDEX
        .replace("__BASE__", &base)
        .replace("__REFRESH_SECONDS__", &console.refresh_seconds.to_string());
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        page,
    )
        .into_response()
}
