//! The flat JSON form of steps, boundary events and gateway events (`type` plus the fields
//! that type uses), and the conversions to and from the typed model with their checks.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::json_events::RawBoundary;
use super::*;

mod event;
mod to_raw;

/// The flat JSON form of a step.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ErrorRoute>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    boundary: Vec<RawBoundary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compensate: Option<Compensation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    events: Vec<GatewayEvent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<Mapping>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<Mapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    candidate_users: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    candidate_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    follow_up: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    form: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, crate::expr::Type>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multi: Option<MultiInstance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    milestone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interrupting: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(r: RawStep) -> Result<Self, String> {
        if r.kind == "event_subprocess" {
            return r.event_subprocess();
        }
        if r.interrupting.is_some() {
            return Err(format!(
                "step \"{}\" has no field `interrupting` (event_subprocess steps do)",
                r.id
            ));
        }
        let id = r.id;
        let boundary = r
            .boundary
            .into_iter()
            .map(Boundary::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("step \"{id}\": {e}"))?;
        if !boundary.is_empty()
            && !matches!(
                r.kind.as_str(),
                "service" | "receive" | "user_task" | "wait_signal" | "call" | "subprocess"
            )
        {
            return Err(format!(
                "step \"{id}\" of type \"{}\" cannot have boundary events (only service, receive, user_task, wait_signal, call and subprocess steps wait)",
                r.kind
            ));
        }
        if r.kind != "user_task" {
            if boundary.iter().any(|b| b.assign.is_some()) {
                return Err(format!(
                    "step \"{id}\" of type \"{}\": only a user task's boundary timers `assign`",
                    r.kind
                ));
            }
            for (name, present) in [
                ("assignee", r.assignee.is_some()),
                ("candidate_users", !r.candidate_users.is_empty()),
                ("candidate_groups", !r.candidate_groups.is_empty()),
                ("due", r.due.is_some()),
                ("follow_up", r.follow_up.is_some()),
                ("priority", r.priority.is_some()),
                ("form", r.form.is_some()),
                ("fields", !r.fields.is_empty()),
            ] {
                if present {
                    return Err(format!(
                        "step \"{id}\" of type \"{}\" has no field `{name}` (user_task steps do)",
                        r.kind
                    ));
                }
            }
        }
        if r.compensate.is_some() && !matches!(r.kind.as_str(), "service" | "send") {
            return Err(format!(
                "step \"{id}\" of type \"{}\" cannot have `compensate` (only service and send steps do something to undo)",
                r.kind
            ));
        }
        if !r.headers.is_empty() && r.kind != "service" {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `headers`",
                r.kind
            ));
        }
        if r.timeout.is_some() && r.kind != "service" {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `timeout`",
                r.kind
            ));
        }
        if (r.duration.is_some() || r.until.is_some()) && r.kind != "timer" {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `duration` or `until`",
                r.kind
            ));
        }
        for (name, present, kinds) in [
            (
                "routes",
                !r.routes.is_empty(),
                &["exclusive", "inclusive"][..],
            ),
            (
                "default",
                r.default.is_some(),
                &["exclusive", "inclusive"][..],
            ),
            ("branches", !r.branches.is_empty(), &["parallel"][..]),
            ("events", !r.events.is_empty(), &["event_gateway"][..]),
            ("process", r.process.is_some(), &["call"][..]),
            ("start", r.start.is_some(), &["subprocess"][..]),
        ] {
            if present && !kinds.contains(&r.kind.as_str()) {
                return Err(format!(
                    "step \"{id}\" of type \"{}\" has no field `{name}`",
                    r.kind
                ));
            }
        }
        if matches!(
            r.kind.as_str(),
            "exclusive" | "inclusive" | "parallel" | "event_gateway"
        ) {
            if r.next.is_some() {
                return Err(format!(
                    "step \"{id}\" of type \"{}\" has no `next`: its {} say where to go",
                    r.kind,
                    match r.kind.as_str() {
                        "exclusive" | "inclusive" => "routes and default",
                        "parallel" => "branches",
                        _ => "events",
                    }
                ));
            }
            if !boundary.is_empty() || r.compensate.is_some() {
                return Err(format!(
                    "step \"{id}\" of type \"{}\" cannot have boundary events or `compensate`",
                    r.kind
                ));
            }
        }
        let field = |name: &str, v: Option<String>| -> Result<String, String> {
            v.ok_or_else(|| format!("step \"{id}\" of type \"{}\" needs `{name}`", r.kind))
        };
        let unused = |name: &str, present: bool| -> Result<(), String> {
            if present {
                Err(format!(
                    "step \"{id}\" of type \"{}\" has no field `{name}`",
                    r.kind
                ))
            } else {
                Ok(())
            }
        };
        if !r.errors.is_empty() && !matches!(r.kind.as_str(), "service" | "call" | "subprocess") {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `errors` (service, call and subprocess steps route errors)",
                r.kind
            ));
        }
        if !r.inputs.is_empty() && !matches!(r.kind.as_str(), "service" | "call") {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `inputs` (service and call steps do)",
                r.kind
            ));
        }
        if !r.outputs.is_empty()
            && !matches!(
                r.kind.as_str(),
                "service" | "receive" | "call" | "user_task"
            )
        {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `outputs` (service, receive, call and user_task steps do)",
                r.kind
            ));
        }
        if r.code.is_some() && r.kind != "error" {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `code`",
                r.kind
            ));
        }
        if r.signal.is_some() && !matches!(r.kind.as_str(), "signal" | "wait_signal") {
            return Err(format!(
                "step \"{id}\" of type \"{}\" has no field `signal`",
                r.kind
            ));
        }
        // Timer and end steps take none of the fields of the other kinds.
        let no_message_fields = || -> Result<(), String> {
            for (n, p) in [
                ("handler", r.handler.is_some()),
                ("message", r.message.is_some()),
                ("to", r.to.is_some()),
                ("key", r.key.is_some()),
                ("payload", r.payload.is_some()),
                ("output", r.output.is_some()),
            ] {
                unused(n, p)?;
            }
            Ok(())
        };
        let kind = match r.kind.as_str() {
            "service" => {
                unused("message", r.message.is_some())?;
                unused("to", r.to.is_some())?;
                unused("key", r.key.is_some())?;
                unused("payload", r.payload.is_some())?;
                StepKind::Service {
                    handler: field("handler", r.handler)?,
                    output: Output::from_raw(r.output),
                    timeout: r.timeout,
                    retry: r.retry,
                    errors: r.errors,
                    headers: r.headers,
                }
            }
            "timer" => {
                no_message_fields()?;
                let timer = match (r.duration, r.until) {
                    (Some(d), None) => TimerSpec::After(d),
                    (None, Some(u)) => TimerSpec::Until(u),
                    _ => {
                        return Err(format!(
                            "step \"{id}\" of type \"timer\" needs exactly one of `duration`, `until`"
                        ))
                    }
                };
                StepKind::Timer { timer }
            }
            "send" => {
                unused("handler", r.handler.is_some())?;
                unused("output", r.output.is_some())?;
                StepKind::Send {
                    message: field("message", r.message)?,
                    to: r.to,
                    key: r.key,
                    payload: r.payload,
                }
            }
            "receive" => {
                unused("handler", r.handler.is_some())?;
                unused("to", r.to.is_some())?;
                unused("payload", r.payload.is_some())?;
                StepKind::Receive {
                    message: field("message", r.message)?,
                    key: r.key,
                    output: Output::from_raw(r.output),
                }
            }
            "compensate" => {
                no_message_fields()?;
                StepKind::Compensate
            }
            "end" => {
                no_message_fields()?;
                StepKind::End
            }
            "terminate" => {
                no_message_fields()?;
                StepKind::Terminate
            }
            "exclusive" => {
                no_message_fields()?;
                StepKind::Exclusive {
                    routes: r.routes,
                    default: r.default,
                }
            }
            "inclusive" => {
                no_message_fields()?;
                StepKind::Inclusive {
                    routes: r.routes,
                    default: r.default,
                }
            }
            "inclusive_join" => {
                no_message_fields()?;
                StepKind::InclusiveJoin
            }
            "parallel" => {
                no_message_fields()?;
                StepKind::Parallel {
                    branches: r.branches,
                }
            }
            "join" => {
                no_message_fields()?;
                StepKind::Join
            }
            "event_gateway" => {
                for (n, p) in [
                    ("handler", r.handler.is_some()),
                    ("message", r.message.is_some()),
                    ("to", r.to.is_some()),
                    ("payload", r.payload.is_some()),
                    ("output", r.output.is_some()),
                ] {
                    unused(n, p)?;
                }
                StepKind::EventGateway {
                    key: r.key,
                    events: r.events,
                }
            }
            "call" => {
                for (n, p) in [
                    ("handler", r.handler.is_some()),
                    ("message", r.message.is_some()),
                    ("to", r.to.is_some()),
                    ("key", r.key.is_some()),
                ] {
                    unused(n, p)?;
                }
                StepKind::Call {
                    process: field("process", r.process)?,
                    input: r.payload,
                    output: Output::from_raw(r.output),
                    errors: r.errors,
                }
            }
            "error" => {
                no_message_fields()?;
                StepKind::Error {
                    code: field("code", r.code)?,
                }
            }
            "signal" => {
                no_message_fields()?;
                StepKind::Signal {
                    signal: field("signal", r.signal)?,
                }
            }
            "wait_signal" => {
                for (n, p) in [
                    ("handler", r.handler.is_some()),
                    ("message", r.message.is_some()),
                    ("to", r.to.is_some()),
                    ("key", r.key.is_some()),
                    ("payload", r.payload.is_some()),
                ] {
                    unused(n, p)?;
                }
                StepKind::WaitSignal {
                    signal: field("signal", r.signal)?,
                    output: Output::from_raw(r.output),
                }
            }
            "user_task" => {
                for (n, p) in [
                    ("handler", r.handler.is_some()),
                    ("message", r.message.is_some()),
                    ("to", r.to.is_some()),
                    ("key", r.key.is_some()),
                    ("payload", r.payload.is_some()),
                ] {
                    unused(n, p)?;
                }
                StepKind::UserTask(UserTask {
                    assignee: r.assignee,
                    candidate_users: r.candidate_users,
                    candidate_groups: r.candidate_groups,
                    due: r.due,
                    follow_up: r.follow_up,
                    priority: r.priority.unwrap_or(DEFAULT_PRIORITY),
                    form: r.form,
                    fields: r.fields,
                    output: Output::from_raw(r.output),
                })
            }
            "subprocess" => {
                no_message_fields()?;
                StepKind::Subprocess {
                    start: field("start", r.start)?,
                    errors: r.errors,
                }
            }
            other => {
                return Err(format!(
                "step \"{id}\": unknown type \"{other}\" (expected service, send, receive, user_task, signal, wait_signal, timer, exclusive, inclusive, inclusive_join, parallel, join, event_gateway, call, subprocess, event_subprocess, compensate, end, error or terminate)"
            ))
            }
        };
        Ok(Step {
            id,
            kind,
            next: r.next,
            boundary,
            compensate: r.compensate,
            inputs: r.inputs,
            outputs: r.outputs,
            within: r.within,
            multi: r.multi,
            milestone: r.milestone,
        })
    }
}
