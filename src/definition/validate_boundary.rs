//! Validation of boundary events, error routes and outputs (part of
//! `ProcessDefinition::validate`).

use std::collections::HashMap;

use super::validate::{is_message_name, is_name, is_var_path, SIGNAL_NAME};
use super::{BoundaryEvent, Output, Step, StepKind, TimerSpec};

/// Check the boundary events of step `i`, reporting each problem with its path; whether one
/// leads to a step that does not exist.
pub(super) fn check_boundaries(
    i: usize,
    step: &Step,
    index: &HashMap<&str, usize>,
    report: &mut impl FnMut(String, String),
) -> bool {
    let mut unknown = false;
    for (j, b) in step.boundary.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].boundary[{j}].{f}");
        match &b.on {
            BoundaryEvent::Timer(t) => {
                let field = match t {
                    TimerSpec::After(_) => "after",
                    TimerSpec::Until(_) => "until",
                    TimerSpec::Cycle(_) => "cycle",
                };
                if let Err(e) = t.check() {
                    report(at(field), e);
                }
            }
            BoundaryEvent::Signal(name) => {
                if !is_message_name(name) {
                    report(at("signal"), SIGNAL_NAME.into());
                }
            }
            BoundaryEvent::Message(m) => {
                if !is_message_name(m) {
                    report(
                        at("message"),
                        "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                    );
                }
                if let StepKind::Receive { message, .. } = &step.kind {
                    if message == m {
                        report(at("message"), format!("the step itself waits for \"{m}\""));
                    }
                }
            }
        }
        if b.interrupting {
            if matches!(b.on, BoundaryEvent::Timer(TimerSpec::Cycle(_))) {
                report(
                    at("cycle"),
                    "an interrupting timer fires once; a cycle needs \"interrupting\": false"
                        .into(),
                );
            }
            if b.send.is_some() {
                report(
                    at("send"),
                    "an interrupting boundary event leads to `next`; `send` is for non-interrupting ones"
                        .into(),
                );
            }
            if b.assign.is_some() {
                report(at("assign"), "an interrupting boundary event leads to `next`; `assign` is for non-interrupting ones".into());
            }
            match &b.next {
                None => report(
                    at("next"),
                    "an interrupting boundary event needs a next step".into(),
                ),
                Some(n) if !index.contains_key(n.as_str()) => {
                    unknown = true;
                    report(at("next"), format!("unknown step \"{n}\""))
                }
                Some(_) => {}
            }
        } else {
            // A non-interrupting timer's path runs beside the step, which keeps waiting.
            if let Some(n) = &b.next {
                if !index.contains_key(n.as_str()) {
                    unknown = true;
                    report(at("next"), format!("unknown step \"{n}\""));
                }
            }
            if let Some(a) = &b.assign {
                let held = super::UserTask {
                    assignee: a.assignee.clone(),
                    candidate_users: a.candidate_users.clone().unwrap_or_default(),
                    candidate_groups: a.candidate_groups.clone().unwrap_or_default(),
                    ..Default::default()
                };
                let at_assign = |f: &str| at(&format!("assign.{f}"));
                held.check(&at_assign, report, &is_var_path);
            }
            match &b.send {
                None if b.assign.is_some() || b.next.is_some() => {}
                None => report(
                    at("send"),
                    "a non-interrupting boundary event needs a path (`next`), a message to send or, on a user task, an `assign`".into(),
                ),
                Some((m, to)) => {
                    if !is_message_name(m) {
                        report(
                            at("send"),
                            "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                        );
                    }
                    if to.as_deref().is_some_and(|t| !is_name(t)) {
                        report(
                            at("to"),
                            "a recipient must be non-empty, without spaces".into(),
                        );
                    }
                }
            }
        }
    }
    unknown
}

pub(super) fn index_has(steps: &[super::Step], id: &str) -> bool {
    steps.iter().any(|s| s.id == id)
}

/// The codes and variables of a step's error routes.
pub(super) fn check_error_routes(
    errors: &[super::ErrorRoute],
    i: usize,
    report: &mut impl FnMut(String, String),
) {
    for (j, e) in errors.iter().enumerate() {
        if !is_name(&e.code) {
            report(
                format!("steps[{i}].errors[{j}].code"),
                "an error code must be non-empty, without spaces".into(),
            );
        }
        check_error_variables(e, &format!("steps[{i}].errors[{j}]"), report);
    }
}

fn check_error_variables(
    e: &super::ErrorRoute,
    path: &str,
    report: &mut impl FnMut(String, String),
) {
    for (field, v) in [
        ("code_variable", &e.code_variable),
        ("message_variable", &e.message_variable),
    ] {
        if let Some(v) = v {
            check_output(
                &Output::Variable(v.clone()),
                &format!("{path}.{field}"),
                report,
            );
        }
    }
}

pub(super) fn check_output(output: &Output, path: &str, report: &mut impl FnMut(String, String)) {
    if let Output::Variable(v) = output {
        if !is_name(v) || v.contains('.') {
            report(path.to_string(), format!("invalid variable name \"{v}\""));
        }
    }
}
