//! Validation of boundary events (part of `ProcessDefinition::validate`).

use std::collections::HashMap;

use super::validate::{is_message_name, is_name, is_var_path, SIGNAL_NAME};
use super::{BoundaryEvent, Step, StepKind, TimerSpec};

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
                if !b.interrupting {
                    report(
                        at("interrupting"),
                        "a boundary signal ends the wait: it is always interrupting".into(),
                    );
                }
            }
            BoundaryEvent::Message(m) => {
                if !is_message_name(m) {
                    report(
                        at("message"),
                        "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                    );
                }
                if !b.interrupting {
                    report(
                        at("interrupting"),
                        "a boundary message ends the wait: it is always interrupting".into(),
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
                    "an interrupting timer leads to `next`; `send` is for non-interrupting timers"
                        .into(),
                );
            }
            if b.assign.is_some() {
                report(at("assign"), "an interrupting timer leads to `next`; `assign` is for non-interrupting timers".into());
            }
            match &b.next {
                None => report(at("next"), "an interrupting timer needs a next step".into()),
                Some(n) if !index.contains_key(n.as_str()) => {
                    unknown = true;
                    report(at("next"), format!("unknown step \"{n}\""))
                }
                Some(_) => {}
            }
        } else {
            // A non-interrupting timer's path runs beside the step, which keeps waiting.
            if let Some(n) = &b.next {
                if !matches!(b.on, BoundaryEvent::Timer(_)) {
                    report(
                        at("next"),
                        "only a non-interrupting timer leads to a path of its own".into(),
                    );
                } else if !index.contains_key(n.as_str()) {
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
                    "a non-interrupting timer needs a path (`next`), a message to send or, on a user task, an `assign`".into(),
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
