//! The console's JSON API and page, called through the router (no network).

use std::time::Duration as StdDuration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

use crate::common::{client, TestDb};
use longrun::console::Console;
use longrun::definition::RetryPolicy;
use longrun::store::ActivityHistory;
use longrun::{Engine, EngineConfig, JobContext, ProcessDefinition, StartRequest};

/// A request through the router: (status, body as JSON, or as a string when it is not JSON).
async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    user: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    if let Some(u) = user {
        req = req.header("x-longrun-user", u);
    }
    let req = req
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    call(router, "GET", uri, None, None).await
}

fn keys(page: &Value) -> Vec<String> {
    page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["business_key"].as_str().unwrap().to_string())
        .collect()
}

/// 30 instances of `api`: k00..k29 with {"n": i, "group": i % 3}; those with i % 10 == 0 fail
/// their `work` step (an incident), the others wait at `wait`.
async fn setup(db: &TestDb) -> (Engine, axum::Router, Vec<Uuid>) {
    let def = ProcessDefinition::builder("api")
        .retry(RetryPolicy::new(1, "PT0.1S"))
        .service("work", "work")
        .next("wait")
        .receive("wait", "Go")
        .next("done")
        .end("done")
        .build()
        .unwrap();
    let engine = Engine::builder(db.store.clone())
        .config(EngineConfig {
            poll_interval: StdDuration::from_millis(10),
            max_poll_interval: StdDuration::from_millis(50),
            ..EngineConfig::default()
        })
        .handler("work", |job: JobContext| async move {
            if job.variables["n"].as_i64().unwrap() % 10 == 0 {
                return Err(longrun::HandlerError::new("no"));
            }
            Ok(json!({}))
        })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let running = engine.run();
    let mut ids = Vec::new();
    for i in 0..30 {
        // One at a time, so ids (UUIDv7) order as the keys do.
        ids.push(
            engine
                .start(
                    StartRequest::new("api", format!("k{i:02}"))
                        .variables(json!({"n": i, "group": i % 3})),
                )
                .await
                .unwrap(),
        );
    }
    crate::common::eventually("27 wait and 3 have incidents", || async {
        db.count("subscriptions", "").await == 27
            && db
                .scalar("SELECT count(*) FROM {schema}.report_incidents")
                .await
                == 3
    })
    .await;
    running.shutdown().await;
    crate::common::eventually("the projection catches up", || async {
        db.store
            .project_all(&ActivityHistory, chrono::Utc::now, |_| {})
            .await
            .unwrap();
        db.store.projections().await.unwrap()[0].behind == 0
    })
    .await;
    let router = Console::new(client(&db.store)).router();
    (engine, router, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lists_filters_and_pages_instances() {
    let db = TestDb::new().await;
    let (_engine, api, _ids) = setup(&db).await;

    // Pages of 7, newest first, until there is no next: every instance once.
    let mut seen = Vec::new();
    let mut uri = "/api/instances?process=api&limit=7".to_string();
    loop {
        let (status, page) = get(&api, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(keys(&page).len() <= 7);
        seen.extend(keys(&page));
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/instances?process=api&limit=7&after={next}"),
            None => break,
        }
    }
    let want: Vec<String> = (0..30).rev().map(|i| format!("k{i:02}")).collect();
    assert_eq!(seen, want);

    let count = |q: &'static str| {
        let api = api.clone();
        async move {
            let (status, page) = get(&api, &format!("/api/instances?limit=1000&{q}")).await;
            assert_eq!(status, StatusCode::OK, "{q}: {page}");
            keys(&page)
        }
    };
    assert_eq!(
        count("variables=%7B%22group%22%3A1%7D").await.len(),
        10,
        "variables contain group 1"
    );
    assert_eq!(
        count("status=incident").await,
        ["k20", "k10", "k00"],
        "open incidents"
    );
    assert_eq!(count("status=running&step=wait").await.len(), 27);
    assert_eq!(count("business_key=k05").await, ["k05"]);
    assert_eq!(count("process=other").await.len(), 0);
    assert_eq!(count("version=2").await.len(), 0);
    assert_eq!(count("status=completed").await.len(), 0);
    assert_eq!(count("started_after=2100-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(count("started_before=2100-01-01T00:00:00Z").await.len(), 30);

    // Bad input is refused with a message naming it.
    for (q, says) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("version=x", "version"),
        ("status=lost", "unknown status"),
        ("variables=%5B1%5D", "JSON object"),
        ("variables=%7B", "variables: not JSON"),
        ("after=nope", "after"),
        ("started_after=yesterday", "started_after"),
        (
            "started_after=2030-01-01T00:00:00Z&started_before=2020-01-01T00:00:00Z",
            "is not before",
        ),
        ("colour=red", "unknown field"),
    ] {
        let (status, body) = get(&api, &format!("/api/instances?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(says),
            "{q}: {body}"
        );
    }

    // Incidents, paged.
    let (status, page) = get(&api, "/api/incidents?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["incidents"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let (_, rest) = get(&api, &format!("/api/incidents?limit=2&after={next}")).await;
    assert_eq!(rest["incidents"].as_array().unwrap().len(), 1);
    assert!(rest["next"].is_null());
    assert_eq!(rest["incidents"][0]["step"], "work");
    assert_eq!(rest["incidents"][0]["error"], "no");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_record_who_asked_and_refuse_what_does_not_apply() {
    let db = TestDb::new().await;
    let (engine, api, ids) = setup(&db).await;
    let waiting = ids[1];
    // Who asked is checked like any input.
    for by in ["a\0b".to_string(), "x".repeat(1025)] {
        let err = engine
            .act(waiting, longrun::Action::Pause, &by)
            .await
            .unwrap_err();
        assert!(matches!(err, longrun::Error::BadInput(_)), "{err}");
    }
    let incident = ids[10];
    let path = |id: Uuid, action: &str| format!("/api/instances/{id}/{action}");

    let (status, body) = call(
        &api,
        "POST",
        &path(waiting, "pause"),
        Some(json!({})),
        Some("alice"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &api,
        "POST",
        &path(waiting, "pause"),
        Some(json!({})),
        Some("alice"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("paused"), "{body}");
    let (_, page) = get(&api, "/api/instances?status=paused").await;
    assert_eq!(keys(&page), ["k01"]);
    let (status, _) = call(
        &api,
        "POST",
        &path(waiting, "resume"),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Refused before anything is done.
    for (id, action, body, want, says) in [
        (
            waiting,
            "cancel",
            json!({}),
            StatusCode::BAD_REQUEST,
            "needs a reason",
        ),
        (
            waiting,
            "cancel",
            json!({"reason": "  "}),
            StatusCode::BAD_REQUEST,
            "needs a reason",
        ),
        (
            waiting,
            "explode",
            json!({}),
            StatusCode::NOT_FOUND,
            "unknown action",
        ),
        (
            waiting,
            "pause",
            json!({"reason": "x"}),
            StatusCode::BAD_REQUEST,
            "takes no reason",
        ),
        (
            waiting,
            "retry",
            json!({}),
            StatusCode::CONFLICT,
            "incident",
        ),
        (
            incident,
            "retry",
            json!({"variables": [1]}),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            incident,
            "retry",
            json!({"colour": 1}),
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
        (
            Uuid::now_v7(),
            "pause",
            json!({}),
            StatusCode::NOT_FOUND,
            "no instance",
        ),
    ] {
        let (status, got) = call(&api, "POST", &path(id, action), Some(body.clone()), None).await;
        assert_eq!(status, want, "{action} {body}: {got}");
        assert!(
            got["error"].as_str().unwrap().contains(says),
            "{action} {body}: {got}"
        );
    }
    // A POST that is not JSON is refused (a cross-site form cannot send one unasked).
    let req = Request::builder()
        .method("POST")
        .uri(path(waiting, "pause"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("a=1"))
        .unwrap();
    let res = api.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // A retry with variables resolves the incident: the page of incidents shows it no more.
    let (status, _) = call(
        &api,
        "POST",
        &path(incident, "retry"),
        Some(json!({"variables": {"fixed": true}})),
        Some("bob"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = get(&api, "/api/incidents").await;
    let listed: Vec<&str> = page["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["business_key"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["k00", "k20"]);
    // Pages of one, while the projection has not yet read the retry: the retried instance is
    // a candidate that shows nothing, and paging goes on past it.
    let mut paged = Vec::new();
    let mut uri = "/api/incidents?limit=1".to_string();
    for _ in 0..5 {
        let (status, page) = get(&api, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for i in page["incidents"].as_array().unwrap() {
            paged.push(i["business_key"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/incidents?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ["k00", "k20"]);

    // A batch cancel of group 2 (k02, k05, ..., k29: ten, k20 among them with its incident).
    let (status, result) = call(
        &api,
        "POST",
        "/api/batch/cancel",
        Some(json!({"filter": {"process": "api", "variables": {"group": 2}}, "reason": "test", "expected": 10})),
        Some("carol"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result, json!({"matched": 10, "done": 10, "failed": []}));
    let (status, result) = call(
        &api,
        "POST",
        "/api/batch/cancel",
        Some(json!({"filter": {"variables": {"group": 2}}, "reason": "again", "expected": 10})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["done"], 0);
    assert_eq!(
        result["failed"].as_array().unwrap().len(),
        10,
        "already cancelled"
    );
    for (body, says) in [
        (
            json!({"filter": {}, "reason": "x", "expected": 0}),
            "expected",
        ),
        (json!({"filter": {}, "reason": "x"}), "expected"),
        (
            json!({"filter": {"status": "lost"}, "reason": "x", "expected": 1}),
            "unknown status",
        ),
        (json!({"filter": {}, "expected": 1}), "needs a reason"),
        (json!({"reason": "x", "expected": 1}), "filter"),
    ] {
        let (status, got) = call(&api, "POST", "/api/batch/cancel", Some(body.clone()), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {got}");
        assert!(
            got["error"].as_str().unwrap().contains(says),
            "{body}: {got}"
        );
    }

    // Who asked is in each history, and the detail lists it.
    let (status, detail) = get(&api, &format!("/api/instances/{}", ids[2])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["instance"]["status"], "cancelled");
    let cancelled = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["type"] == "InstanceCancelled")
        .unwrap();
    assert_eq!(cancelled["data"]["by"], "console: carol");
    assert_eq!(cancelled["text"], "reason: test (by console: carol)");
    let (_, detail) = get(&api, &format!("/api/instances/{waiting}")).await;
    let texts: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"paused (by console: alice)"), "{texts:?}");
    assert!(texts.contains(&"resumed (by console)"), "{texts:?}");
    assert_eq!(detail["positions"], json!(["wait"]));
    assert_eq!(detail["waiting"][0]["kind"], "message");
    let (_, detail) = get(&api, &format!("/api/instances/{}", ids[0])).await;
    assert_eq!(detail["incidents"][0]["step"], "work");
    assert_eq!(detail["positions"], json!(["work"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_counts_and_diagram_are_served_under_any_prefix() {
    let db = TestDb::new().await;
    let (_engine, console, _ids) = setup(&db).await;
    let app = axum::Router::new().nest_service("/ops", console);
    for uri in ["/ops", "/ops/"] {
        let (status, page) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let page = page.as_str().unwrap();
        assert!(page.contains("<base href=\"/ops/\">"), "{uri}: {page}");
        assert!(page.contains("assets/app.js"));
    }
    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        (
            "vendor/bpmn-navigated-viewer.production.min.js",
            "text/javascript",
        ),
    ] {
        let res = app
            .clone()
            .oneshot(
                Request::get(format!("/ops/assets/{asset}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{asset}");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    let (status, body) = get(&app, "/ops/api/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());

    let (status, list) = get(&app, "/ops/api/processes").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["projection"]["behind"], 0);
    let v = &list["versions"][0];
    assert_eq!(
        (
            v["process"].clone(),
            v["running"].clone(),
            v["incidents"].clone()
        ),
        (json!("api"), json!(30), json!(3))
    );

    let (status, version) = get(&app, "/ops/api/processes/api/1").await;
    assert_eq!(status, StatusCode::OK);
    let steps: Vec<&str> = version["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["work", "wait", "done"]);
    let counts = &version["counts"];
    assert_eq!(
        counts,
        &json!([
            {"step": "wait", "waiting": 27, "incidents": 0, "completed": 0, "cancelled": 0},
            {"step": "work", "waiting": 3, "incidents": 3, "completed": 27, "cancelled": 0},
        ])
    );
    let (status, xml) = get(&app, "/ops/api/processes/api/1/bpmn").await;
    assert_eq!(status, StatusCode::OK);
    let xml = xml.as_str().unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("id=\"work\""),
        "{xml}"
    );
    let (status, _) = get(&app, "/ops/api/processes/api/9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&app, "/ops/api/processes/nope/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn raw(app: &axum::Router, req: Request<Body>) -> axum::response::Response {
    app.clone().oneshot(req).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_guards_hosts_headers_sources_and_batches() {
    let db = TestDb::new().await;
    let (_engine, console, _ids) = setup(&db).await;
    let app = axum::Router::new().nest_service("/ops", console);
    // Security headers on every answer, the page and the API alike.
    for uri in ["/ops/", "/ops/api/processes"] {
        let res = raw(
            &app,
            Request::get(uri)
                .header("host", "localhost:8080")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{uri}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
    // DNS rebinding: a name that is not allowed gets 421; loopback names and listed ones pass.
    let res = raw(
        &app,
        Request::get("/ops/api/processes")
            .header("host", "evil.example:8080")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::MISDIRECTED_REQUEST);
    for host in ["127.0.0.1:9", "[::1]:8080", "LOCALHOST"] {
        let res = raw(
            &app,
            Request::get("/ops/api/processes")
                .header("host", host)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{host}");
    }
    let listed = axum::Router::new().nest_service(
        "/ops",
        Console::new(client(&db.store))
            .allowed_hosts(["ops.example.com"])
            .router(),
    );
    let res = raw(
        &listed,
        Request::get("/ops/api/processes")
            .header("host", "ops.example.com:443")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    // NUL in a parameter is the request's fault.
    for uri in [
        "/ops/api/instances?business_key=a%00b",
        "/ops/api/processes/a%00/1",
    ] {
        let res = raw(&app, Request::get(uri).body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{uri}");
    }
    let (status, got) = call(
        &app,
        "POST",
        &format!("/ops/api/instances/{}/cancel", _ids[1]),
        Some(json!({"reason": "a\u{0}b"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{got}");
    // A stored diagram is plain text under a sandbox: no script in it runs from this origin.
    let res = raw(
        &app,
        Request::get("/ops/api/processes/api/1/bpmn")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    // A batch that would touch more than it says is refused, and touches nothing.
    let (status, got) = call(
        &app,
        "POST",
        "/ops/api/batch/cancel",
        Some(json!({"filter": {"process": "api"}, "reason": "oops", "expected": 5})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{got}");
    assert!(
        got["error"].as_str().unwrap().contains("more than the 5"),
        "{got}"
    );
    assert_eq!(db.count("instances", "WHERE status = 'cancelled'").await, 0);
}

#[tokio::test]
async fn the_task_api_acts_as_the_user_the_host_names() {
    use longrun::definition::UserTask;
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone()).build().unwrap();
    let def = ProcessDefinition::builder("review")
        .user_task(
            "review",
            UserTask::new()
                .candidate_groups(["sales"])
                .field("approved", longrun::expr::Type::Boolean),
        )
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(StartRequest::new("review", "r-1"))
        .await
        .unwrap();
    let app = Console::new(engine.clone()).router();
    let (status, page) = get(&app, "/api/tasks").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let task = page["tasks"][0]["task_id"].as_str().unwrap().to_string();
    // "My groups'" needs to know who asks; so does every action.
    let (status, body) = get(&app, "/api/tasks?view=groups").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/claim"),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/claim"),
        Some(json!({})),
        Some("ann"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["task"]["assignee"], "ann");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/claim"),
        Some(json!({})),
        Some("bob"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("held by ann"),
        "{body}"
    );
    let (_, mine) = call(&app, "GET", "/api/tasks?view=mine", None, Some("ann")).await;
    assert_eq!(mine["tasks"].as_array().unwrap().len(), 1);
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/complete"),
        Some(json!({"variables": {"approved": "yes"}})),
        Some("ann"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/complete"),
        Some(json!({"variables": {"approved": true}})),
        Some("ann"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["task"], Value::Null, "no longer open");
    let (status, _) = get(&app, &format!("/api/tasks/{task}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        "POST",
        &format!("/api/tasks/{task}/fly"),
        Some(json!({})),
        Some("ann"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");
}
