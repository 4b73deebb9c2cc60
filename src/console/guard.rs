//! What every answer of the console carries, and what every request must pass first: the
//! `Host` allowlist (against DNS rebinding, where a page of another site reaches a console on
//! localhost through a name that resolves to 127.0.0.1), no NUL in the path or query, and the
//! security headers (a content security policy that allows only the console's own scripts and
//! forbids framing, `nosniff`, no referrer).

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, HOST, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Console;

/// The page's policy: its own scripts only (no inline script, no eval), styles inline too
/// (the diagram viewer sets style attributes), images from itself or `data:`, API calls to
/// itself, never in a frame.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'none'; \
frame-ancestors 'none'";

/// Which `Host` values the console answers.
#[derive(Debug, Clone)]
pub(super) enum Hosts {
    /// `localhost`, `127.0.0.1` and `[::1]` on any port, and these names (host or host:port,
    /// lowercase).
    Listed(Vec<String>),
    /// Any: a proxy in front checks it.
    Any,
}

impl Hosts {
    fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let name = match host.strip_prefix('[') {
            Some(rest) => rest
                .split(']')
                .next()
                .map(|h| format!("[{h}]"))
                .unwrap_or_default(),
            None => host.split(':').next().unwrap_or_default().to_string(),
        };
        match self {
            Hosts::Any => true,
            Hosts::Listed(list) => {
                matches!(name.as_str(), "localhost" | "127.0.0.1" | "[::1]")
                    || list.iter().any(|h| *h == host || *h == name)
            }
        }
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

pub(super) async fn guard(State(console): State<Console>, req: Request, next: Next) -> Response {
    if let Some(host) = req.headers().get(HOST) {
        let ok = host
            .to_str()
            .map(|h| console.hosts.allows(h))
            .unwrap_or(false);
        if !ok {
            let shown: String = String::from_utf8_lossy(host.as_bytes())
                .chars()
                .take(100)
                .collect();
            return with_headers(refuse(
                StatusCode::MISDIRECTED_REQUEST,
                format!("this console does not answer for host \"{shown}\" (see Console::allowed_hosts)"),
            ));
        }
    }
    let uri = req.uri();
    let raw = format!("{}?{}", uri.path(), uri.query().unwrap_or(""));
    if raw.to_ascii_lowercase().contains("%00") || raw.contains('\0') {
        return with_headers(refuse(
            StatusCode::BAD_REQUEST,
            "NUL (%00) in the path or query".into(),
        ));
    }
    with_headers(next.run(req).await)
}

fn with_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
