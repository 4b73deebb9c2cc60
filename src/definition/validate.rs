//! Validation of a definition: every problem is reported with the path where it is.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::validate_boundary::{check_boundaries, check_error_routes, check_output, index_has};
use super::{BoundaryEvent, ProcessDefinition, StepKind, TimerSpec};

/// One problem in a definition, at a path such as `steps[3].next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is, e.g. `steps[3].next`.
    pub path: String,
    /// What is wrong, e.g. `unknown step "shipp_goods"`.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a definition was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is not valid JSON or does not have the definition's shape.
    #[error("not a valid definition document (line {line}, column {column}): {message}")]
    Parse {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The document parsed but breaks the model's rules.
    #[error("{}", join(.0))]
    Invalid(Vec<Problem>),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

pub(super) fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A message name: non-empty, at most 200 bytes, no control characters, no space at either
/// end (modelers name messages in words: `Payment received`), not starting with `signal:`
/// (what signal waits subscribe to).
pub(crate) fn is_message_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.chars().any(char::is_control)
        && s.trim() == s
        && !s.starts_with("signal:")
}

pub(super) const SIGNAL_NAME: &str = "a signal name must be non-empty, at most 200 bytes, without control characters or spaces at either end";

pub(super) fn is_var_path(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|p| !p.is_empty() && is_name(p))
}

impl ProcessDefinition {
    /// Check the definition against the model's rules; the error lists every problem found.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems: Vec<Problem> = Vec::new();
        let mut report = |path: String, message: String| problems.push(Problem { path, message });

        if !is_ident(&self.process) {
            report(
                "process".into(),
                format!(
                    "invalid process id \"{}\" (lowercase letters, digits and _, starting with a letter, at most 63)",
                    self.process
                ),
            );
        }
        if let Some(start) = &self.start {
            if !is_message_name(&start.message) {
                report(
                    "start.message".into(),
                    "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                );
            }
        }
        if let Some(sig) = &self.start_signal {
            if !is_message_name(sig) {
                report("start_signal".into(), SIGNAL_NAME.into());
            }
            if self.start.is_some() || self.start_timer.is_some() {
                report(
                    "start_signal".into(),
                    "a process starts on a message, a signal or a timer, not more than one".into(),
                );
            }
        }
        if let Some(t) = &self.start_timer {
            if self.start.is_some() {
                report(
                    "start_timer".into(),
                    "a process starts on a message or on a timer, not both".into(),
                );
            }
            if let Err(e) = t.schedule(chrono::Utc::now()) {
                report("start_timer".into(), e);
            }
        }
        if let Some(r) = &self.retention {
            if let Err(e) = self.retention_period() {
                report("retention".into(), format!("\"{r}\": {e}"));
            }
        }
        if self.steps.is_empty() {
            report("steps".into(), "a process needs at least one step".into());
        }
        for (i, s) in self.steps.iter().enumerate() {
            if s.milestone.as_deref().is_some_and(|m| !is_message_name(m)) {
                report(
                    format!("steps[{i}].milestone"),
                    "a milestone name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                );
            }
            if s.milestone.is_some()
                && matches!(
                    s.kind,
                    super::StepKind::Join
                        | super::StepKind::InclusiveJoin
                        | super::StepKind::EventSubprocess { .. }
                )
            {
                report(
                    format!("steps[{i}].milestone"),
                    format!(
                        "a {} step is not a milestone: mark the step after it",
                        s.kind.type_name()
                    ),
                );
            }
        }
        if self.steps.len() > super::MAX_STEPS {
            report(
                "steps".into(),
                format!(
                    "{} steps; at most {} are accepted",
                    self.steps.len(),
                    super::MAX_STEPS
                ),
            );
            return Err(Error::Invalid(problems));
        }
        if let Some(Err((field, e))) = self.retry.as_ref().map(|r| r.check()) {
            report(format!("retry.{field}"), e);
        }

        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = |f: &str| format!("steps[{i}].{f}");
            if !is_ident(&step.id) {
                report(
                    at("id"),
                    format!(
                        "invalid step id \"{}\" (lowercase letters, digits and _, starting with a letter)",
                        step.id
                    ),
                );
            } else if let Some(first) = index.insert(&step.id, i) {
                report(
                    at("id"),
                    format!(
                        "duplicate step id \"{}\" (first at steps[{first}])",
                        step.id
                    ),
                );
                index.insert(&step.id, first);
            }
            for (field, list) in [("inputs", &step.inputs), ("outputs", &step.outputs)] {
                for (j, m) in list.iter().enumerate() {
                    if let Err(e) = m.check(&is_var_path) {
                        report(format!("steps[{i}].{field}[{j}]"), e);
                    }
                }
            }
            match &step.compensate {
                Some(super::Compensation::Handler { handler }) if !is_name(handler) => report(
                    at("compensate.handler"),
                    "a handler name must be non-empty, without spaces".into(),
                ),
                Some(super::Compensation::Send { send, to }) => {
                    if !is_message_name(send) {
                        report(
                            at("compensate.send"),
                            "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                        );
                    }
                    if to.as_deref().is_some_and(|t| !is_name(t)) {
                        report(
                            at("compensate.to"),
                            "a recipient must be non-empty, without spaces".into(),
                        );
                    }
                }
                _ => {}
            }
            match &step.kind {
                StepKind::Service {
                    handler,
                    output,
                    timeout,
                    retry,
                    errors,
                    headers,
                } => {
                    if headers.len() > 64 {
                        report(at("headers"), "at most 64 headers".into());
                    }
                    for (k, v) in headers {
                        if k.trim().is_empty() || k.len() > 200 || v.len() > 4096 {
                            report(
                                at("headers"),
                                format!("header \"{}\": a key is non-empty and at most 200 bytes, a value at most 4 KiB", k.chars().take(40).collect::<String>()),
                            );
                        }
                    }
                    check_error_routes(errors, i, &mut report);
                    if let Some(Err((field, e))) = retry.as_ref().map(|r| r.check()) {
                        report(format!("steps[{i}].retry.{field}"), e);
                    }
                    if !is_name(handler) {
                        report(
                            at("handler"),
                            "a handler name must be non-empty, without spaces".into(),
                        );
                    }
                    check_output(output, &at("output"), &mut report);
                    if let Some(t) = timeout {
                        if let Err(e) = super::parse_duration(t) {
                            report(at("timeout"), e);
                        }
                    }
                }
                StepKind::Timer { timer } => match timer {
                    TimerSpec::Cycle(_) => report(
                        at("duration"),
                        "a timer step waits once; a cycle belongs on a non-interrupting boundary timer".into(),
                    ),
                    t => {
                        if let Err(e) = t.check() {
                            let field = if matches!(t, TimerSpec::Until(_)) { "until" } else { "duration" };
                            report(at(field), e);
                        }
                    }
                },
                StepKind::Send {
                    message,
                    to,
                    key,
                    payload,
                } => {
                    if !is_message_name(message) {
                        report(
                            at("message"),
                            "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                        );
                    }
                    if let Some(to) = to {
                        if !is_name(to) {
                            report(
                                at("to"),
                                "a recipient must be non-empty, without spaces".into(),
                            );
                        }
                    }
                    if let Some(key) = key {
                        if !is_var_path(key) {
                            report(at("key"), format!("invalid variable path \"{key}\""));
                        }
                    }
                    for (j, v) in payload.iter().flatten().enumerate() {
                        if !is_var_path(v) {
                            report(
                                format!("steps[{i}].payload[{j}]"),
                                format!("invalid variable path \"{v}\""),
                            );
                        }
                    }
                }
                StepKind::Receive {
                    message,
                    key,
                    output,
                } => {
                    if !is_message_name(message) {
                        report(
                            at("message"),
                            "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into(),
                        );
                    }
                    if let Some(key) = key {
                        if !is_var_path(key) {
                            report(at("key"), format!("invalid variable path \"{key}\""));
                        }
                    }
                    check_output(output, &at("output"), &mut report);
                }
                StepKind::Exclusive { routes, default } | StepKind::Inclusive { routes, default } => {
                    if matches!(step.kind, StepKind::Inclusive { .. }) {
                        if routes.is_empty() {
                            report(at("routes"), "an inclusive gateway needs at least one route".into());
                        } else if super::process::inclusive_join_of(self, i).is_none() {
                            report(at("routes"), "the routes of an inclusive gateway must all lead to one inclusive_join (which waits for the branches it started)".into());
                        }
                    }
                    if routes.is_empty() && default.is_none() {
                        report(
                            at("routes"),
                            "an exclusive gateway needs at least one route or a default (a merge has only the default)".into(),
                        );
                    }
                    for (j, r) in routes.iter().enumerate() {
                        match crate::expr::Expr::parse(&r.when)
                            .and_then(|e| e.check(&self.variables))
                        {
                            Ok(()) => {}
                            Err(e) => report(
                                format!("steps[{i}].routes[{j}].when"),
                                format!("column {}: {}", e.column, e.message),
                            ),
                        }
                        if !index_has(&self.steps, &r.next) {
                            report(
                                format!("steps[{i}].routes[{j}].next"),
                                format!("unknown step \"{}\"", r.next),
                            );
                        }
                    }
                    if let Some(d) = default {
                        if !index_has(&self.steps, d) {
                            report(at("default"), format!("unknown step \"{d}\""));
                        }
                    }
                }
                StepKind::Parallel { branches } => {
                    if branches.len() < 2 {
                        report(at("branches"), "a parallel fork needs at least two branches".into());
                    }
                    for (j, b) in branches.iter().enumerate() {
                        if !index_has(&self.steps, b) {
                            report(format!("steps[{i}].branches[{j}]"), format!("unknown step \"{b}\""));
                        } else if branches[..j].contains(b) {
                            report(format!("steps[{i}].branches[{j}]"), format!("branch \"{b}\" is listed twice"));
                        }
                    }
                }
                StepKind::InclusiveJoin => {}
                StepKind::Join => {
                    if self.incoming(&step.id) < 2 {
                        report(at("id"), "a join needs at least two paths leading to it".into());
                    }
                }
                StepKind::EventGateway { key, events } => {
                    if events.len() < 2 {
                        report(at("events"), "an event gateway waits for at least two events".into());
                    }
                    if let Some(key) = key {
                        if !is_var_path(key) {
                            report(at("key"), format!("invalid variable path \"{key}\""));
                        }
                    }
                    for (j, e) in events.iter().enumerate() {
                        let at = |f: &str| format!("steps[{i}].events[{j}].{f}");
                        match &e.on {
                            BoundaryEvent::Message(m) => {
                                if !is_message_name(m) {
                                    report(at("message"), "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into());
                                } else if events[..j].iter().any(|o| o.on == e.on) {
                                    report(at("message"), format!("message \"{m}\" is listed twice"));
                                }
                            }
                            BoundaryEvent::Timer(t) => {
                                if let Err(err) = t.check() {
                                    report(at(if matches!(t, TimerSpec::Until(_)) { "until" } else { "after" }), err);
                                }
                            }
                            BoundaryEvent::Signal(_) => report(at("signal"), "an event gateway waits for messages and timers".into()),
                        }
                        check_output(&e.output, &at("output"), &mut report);
                        if !index_has(&self.steps, &e.next) {
                            report(at("next"), format!("unknown step \"{}\"", e.next));
                        }
                    }
                }
                StepKind::Error { code } => {
                    if !is_name(code) {
                        report(at("code"), "an error code must be non-empty, without spaces".into());
                    }
                }
                StepKind::Call { process, input, output, errors } => {
                    check_error_routes(errors, i, &mut report);
                    if !is_ident(process) {
                        report(at("process"), format!("invalid process id \"{process}\""));
                    } else if *process == self.process {
                        report(
                            at("process"),
                            "a process cannot call itself (each instance would wait for a new one, without end)".into(),
                        );
                    }
                    for (j, v) in input.iter().flatten().enumerate() {
                        if !is_var_path(v) {
                            report(format!("steps[{i}].payload[{j}]"), format!("invalid variable path \"{v}\""));
                        }
                    }
                    check_output(output, &at("output"), &mut report);
                }
                StepKind::UserTask(t) => {
                    t.check(&at, &mut report, &is_var_path);
                    check_output(&t.output, &at("output"), &mut report);
                }
                StepKind::Signal { signal } => {
                    if !is_message_name(signal) {
                        report(at("signal"), SIGNAL_NAME.into());
                    }
                }
                StepKind::WaitSignal { signal, output } => {
                    if !is_message_name(signal) {
                        report(at("signal"), SIGNAL_NAME.into());
                    }
                    check_output(output, &at("output"), &mut report);
                }
                StepKind::Subprocess { errors, .. } => {
                    check_error_routes(errors, i, &mut report);
                }
                StepKind::End
                | StepKind::Terminate
                | StepKind::Compensate
                | StepKind::EventSubprocess { .. } => {}
            }
        }
        for path in self.variables.keys() {
            if !is_var_path(path) {
                report(
                    format!("variables.{path}"),
                    format!("invalid variable path \"{path}\""),
                );
            }
        }

        let mut structural_problems = false;
        for (i, step) in self.steps.iter().enumerate() {
            structural_problems |= step.targets().iter().any(|n| !index.contains_key(n));
            let routed = matches!(
                step.kind,
                StepKind::Exclusive { .. }
                    | StepKind::Inclusive { .. }
                    | StepKind::Parallel { .. }
                    | StepKind::EventGateway { .. }
                    | StepKind::EventSubprocess { .. }
            );
            match (&step.kind, &step.next) {
                (StepKind::End | StepKind::Terminate | StepKind::Error { .. }, Some(_)) => report(
                    format!("steps[{i}].next"),
                    "an end step has no next step".into(),
                ),
                (_, Some(_)) if routed => report(
                    format!("steps[{i}].next"),
                    format!(
                        "a {} step has no next step: its targets say where to go",
                        step.kind.type_name()
                    ),
                ),
                (StepKind::End | StepKind::Terminate | StepKind::Error { .. }, None) => {}
                (_, None) if routed => {}
                (_, None) => report(
                    format!("steps[{i}].next"),
                    format!("a {} step needs a next step", step.kind.type_name()),
                ),
                (_, Some(next)) if !index.contains_key(next.as_str()) => report(
                    format!("steps[{i}].next"),
                    format!("unknown step \"{next}\""),
                ),
                (_, Some(next)) if *next == step.id => report(
                    format!("steps[{i}].next"),
                    "a step cannot lead to itself".into(),
                ),
                _ => {}
            }
            if let StepKind::Service { errors, .. }
            | StepKind::Call { errors, .. }
            | StepKind::Subprocess { errors, .. } = &step.kind
            {
                for (j, e) in errors.iter().enumerate() {
                    if !index.contains_key(e.next.as_str()) {
                        structural_problems = true;
                        report(
                            format!("steps[{i}].errors[{j}].next"),
                            format!("unknown step \"{}\"", e.next),
                        );
                    }
                }
            }
            // An event subprocess's event is checked with its scope.
            if !matches!(step.kind, StepKind::EventSubprocess { .. }) {
                structural_problems |= check_boundaries(i, step, &index, &mut report);
            }
        }
        structural_problems |= super::subprocess::check_scopes(self, &index, &mut report);
        super::multi::check_multi(self, &mut report);
        super::signals::check_starts(self, &index, &mut report);

        let mut report = |path: String, message: String| problems.push(Problem { path, message });
        // Every step must be reachable from the first, and the first must reach an end.
        if !structural_problems && !self.steps.is_empty() {
            let mut seen = HashSet::new();
            // Event subprocesses are reached by their events, a start's own step by it.
            let mut todo: Vec<usize> = std::iter::once(0)
                .chain(self.steps.iter().enumerate().filter_map(|(i, s)| {
                    matches!(s.kind, StepKind::EventSubprocess { .. }).then_some(i)
                }))
                .chain(
                    self.start
                        .iter()
                        .chain(&self.starts)
                        .filter_map(|s| s.at.as_deref().and_then(|a| index.get(a).copied())),
                )
                .collect();
            let mut reaches_end = false;
            while let Some(i) = todo.pop() {
                if !seen.insert(i) {
                    continue;
                }
                let step = &self.steps[i];
                if matches!(
                    step.kind,
                    StepKind::End | StepKind::Terminate | StepKind::Error { .. }
                ) {
                    reaches_end = true;
                }
                todo.extend(
                    step.targets()
                        .into_iter()
                        .filter_map(|n| index.get(n).copied()),
                );
            }
            if !reaches_end {
                report(
                    "steps".into(),
                    "no path from the first step reaches an end step".into(),
                );
            }
            for (i, step) in self.steps.iter().enumerate() {
                if !seen.contains(&i) {
                    report(
                        format!("steps[{i}]"),
                        format!("step \"{}\" cannot be reached from the first step", step.id),
                    );
                }
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(problems))
        }
    }
}
