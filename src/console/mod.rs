//! The operations console: an [`axum`] router to mount in your own service (behind your own
//! authentication), serving a page and the JSON API it talks to.
//!
//! ```no_run
//! # async fn mount(engine: longrun::Engine) {
//! let app = axum::Router::new()
//!     .nest_service("/ops", longrun::console::Console::new(engine).router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! The console has no authentication of its own: put the host's in front of it (a
//! middleware layer on the nested router) and have it set the user header
//! ([`Console::user_header`], `x-longrun-user` by default), which actions record in the
//! instance's history as who asked. It only reads through [`Store`] queries and acts through
//! [`Engine::act`]; it writes no SQL of its own.
//!
//! # The JSON API
//! Paths are relative to where the router is mounted. Errors are `{"error": "..."}` with
//! status 400 (bad input), 404 (no such instance or process), 409 (the instance refused the
//! action, e.g. resuming one that is not paused), 415 (a POST body that is not
//! `application/json`) or 500.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `GET api/processes` | `{"versions": [VersionSummary], "projection": {...}}`: every process version with instance counts and open incidents, and the activity projection's lag |
//! | `GET api/processes/{process}/{version}` | `{"summary", "steps": [{"id", "kind"}], "counts": [StepCount], "projection"}`: the badges of one version's diagram |
//! | `GET api/processes/{process}/{version}/bpmn` | the version's BPMN XML as `text/plain`: the document it was deployed from, or its export |
//! | `GET api/instances?process=&version=&status=&business_key=&variables=&step=&started_after=&started_before=&after=&limit=` | [`InstancePage`](crate::store::InstancePage): newest first; `status` is running, completed, failed, cancelled, incident or paused; `variables` a JSON object the variables contain; `step` the step it is at; times in RFC 3339; `after` the `next` of the page before; `limit` 1 to 1000 (default 50) |
//! | `GET api/instances/{id}` | `{"instance", "positions", "timers", "waiting", "incidents", "history"}`: one instance, where it is, what it waits for, and its events with a description each |
//! | `GET api/incidents?process=&after=&limit=` | [`IncidentPage`](crate::store::IncidentPage): open incidents |
//! | `POST api/instances/{id}/{action}` | `action` is retry, cancel, pause or resume; body `{"reason": "..."}` (cancel, required) or `{"variables": {...}}` (retry, optional); answers the instance |
//! | `GET api/me` | `{"user", "groups"}`: who the user and group headers say the user is |
//! | `GET api/tasks?view=&process=&unassigned=&due_before=&after=&limit=` | [`TaskPage`](crate::store::TaskPage): open tasks in due order; `view` is `mine` (held by the user), `groups` (offered to the user or any of their groups), `all` (the default) or `overdue`; `limit` 1 to 500 |
//! | `GET api/tasks/{id}` | [`TaskDetail`](crate::store::TaskDetail): the task, its instance's variables and the fields its completion needs; 404 when it is not open |
//! | `POST api/tasks/{id}/{action}` | `action` is claim, unclaim, assign, update or complete, taken by the user the user header names (400 without one); body `{"force", "assignee", "candidate_users", "candidate_groups", "due_at", "follow_up_at", "priority", "variables"}` as the action needs; 409 when someone else holds the task or it is no longer open |
//! | `GET api/flows` | `{"stages", "durations", "stuck", "contexts"}`: the central monitor's flows in this schema (the `report_flow_*` views; the oldest 100 stuck traces) and the contexts' console links |
//! | `GET api/flows/trace/{key}` | `{"trace_key", "milestones": [Reached](crate::monitor::Reached), "contexts"}`: one trace's milestones across the contexts, in order |
//! | `POST api/batch/{action}` | body `{"filter": InstanceFilter, "reason": "...", "expected": n}`: the action on every instance the filter matches, refused (409) when it matches more than `expected` (1 to 10,000); answers `{"matched", "done", "failed": [{"instance_id", "error"}]}` |
//!
//! POST bodies must be `application/json` (which a cross-site form cannot send without the
//! browser asking first). A batch states how many instances it `expected` (1 to 10,000) and is
//! refused with 409 when the filter matches more, so that a filter typed wrong cannot touch
//! thousands of instances.
//!
//! Every answer carries a `Content-Security-Policy` (the console's own scripts only, no
//! framing: `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`, `X-Frame-Options:
//! DENY` and `Referrer-Policy: no-referrer`. A stored BPMN document is served as `text/plain`
//! under a sandboxing policy, so that no script in it runs from the console's origin. Requests
//! for a `Host` not allowed ([`Console::allowed_hosts`]; loopback names by default) get 421;
//! a NUL in the path or query gets 400.

mod api;
mod assets;
mod flows;
mod guard;
mod tasks;

use std::sync::Arc;

use axum::Router;

use crate::{Engine, Store};

/// The console, ready to be turned into a router: [`Console::router`].
#[derive(Clone)]
pub struct Console {
    engine: Engine,
    user_header: Arc<str>,
    groups_header: Arc<str>,
    refresh_seconds: u32,
    hosts: guard::Hosts,
    contexts: Arc<Vec<(String, String)>>,
}

impl Console {
    /// A console over an engine (it needs no handlers and need not run: actions are applied
    /// by it, and the engines that run pick up what follows).
    pub fn new(engine: Engine) -> Console {
        Console {
            engine,
            user_header: Arc::from("x-longrun-user"),
            groups_header: Arc::from("x-longrun-groups"),
            refresh_seconds: 5,
            hosts: guard::Hosts::Listed(Vec::new()),
            contexts: Arc::new(Vec::new()),
        }
    }

    /// Where the console of context `name` is (e.g. `https://payment.example.com/ops/`): the
    /// flows page links each milestone of a trace into its context's console, for the
    /// fine-grained view.
    pub fn context(mut self, name: &str, url: &str) -> Console {
        Arc::make_mut(&mut self.contexts).push((name.to_string(), url.to_string()));
        self
    }

    /// The `Host` values the console answers besides `localhost`, `127.0.0.1` and `[::1]`
    /// (any port): names (`ops.example.com`) or names with a port (`ops.example.com:8443`).
    /// Any other host gets 421, so that a page of another site cannot reach a console on a
    /// private address through a name of its own that resolves there (DNS rebinding).
    pub fn allowed_hosts<I, S>(mut self, hosts: I) -> Console
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let extra = hosts.into_iter().map(|h| h.as_ref().to_ascii_lowercase());
        self.hosts = match self.hosts {
            guard::Hosts::Listed(mut list) => {
                list.extend(extra);
                guard::Hosts::Listed(list)
            }
            guard::Hosts::Any => guard::Hosts::Any,
        };
        self
    }

    /// Answer any `Host` (when a proxy in front already checks it).
    pub fn any_host(mut self) -> Console {
        self.hosts = guard::Hosts::Any;
        self
    }

    /// The request header naming who asks for an action (set it in the host's
    /// authentication layer; the default is `x-longrun-user`). Without it, actions are
    /// recorded as by `console`.
    pub fn user_header(mut self, name: &str) -> Console {
        self.user_header = Arc::from(name.to_ascii_lowercase());
        self
    }

    /// The request header naming the user's groups, comma-separated (set it in the host's
    /// authentication layer; the default is `x-longrun-groups`): the task list's "my groups"
    /// view shows the tasks offered to any of them.
    pub fn groups_header(mut self, name: &str) -> Console {
        self.groups_header = Arc::from(name.to_ascii_lowercase());
        self
    }

    /// How often the pages refresh their figures, in seconds (default 5, at least 1).
    pub fn refresh_seconds(mut self, seconds: u32) -> Console {
        self.refresh_seconds = seconds.max(1);
        self
    }

    /// The router: the page at `/`, its assets, and the JSON API under `api/`. Mount it under
    /// any prefix with [`Router::nest_service`] (which answers both `/ops` and `/ops/`;
    /// [`Router::nest`] answers only `/ops`); the page finds its assets and API relative to
    /// the path it was asked for.
    pub fn router(self) -> Router {
        assets::routes()
            .merge(tasks::routes())
            .merge(flows::routes())
            .merge(api::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                guard::guard,
            ))
            .with_state(self)
    }

    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }
}
