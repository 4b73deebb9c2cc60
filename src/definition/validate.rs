//! Validation of a definition: every problem is reported with the path where it is.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{BoundaryEvent, Output, ProcessDefinition, StepKind, TimerSpec};

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

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

fn is_var_path(s: &str) -> bool {
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
            if !is_name(&start.message) {
                report(
                    "start.message".into(),
                    "a message name must be non-empty, without spaces".into(),
                );
            }
        }
        if self.steps.is_empty() {
            report("steps".into(), "a process needs at least one step".into());
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
            match &step.compensate {
                Some(super::Compensation::Handler { handler }) if !is_name(handler) => report(
                    at("compensate.handler"),
                    "a handler name must be non-empty, without spaces".into(),
                ),
                Some(super::Compensation::Send { send, to }) => {
                    if !is_name(send) {
                        report(
                            at("compensate.send"),
                            "a message name must be non-empty, without spaces".into(),
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
                } => {
                    for (j, e) in errors.iter().enumerate() {
                        if !is_name(&e.code) {
                            report(format!("steps[{i}].errors[{j}].code"), "an error code must be non-empty, without spaces".into());
                        }
                    }
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
                    if !is_name(message) {
                        report(
                            at("message"),
                            "a message name must be non-empty, without spaces".into(),
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
                    if !is_name(message) {
                        report(
                            at("message"),
                            "a message name must be non-empty, without spaces".into(),
                        );
                    }
                    if let Some(key) = key {
                        if !is_var_path(key) {
                            report(at("key"), format!("invalid variable path \"{key}\""));
                        }
                    }
                    check_output(output, &at("output"), &mut report);
                }
                StepKind::End | StepKind::Compensate => {}
            }
        }

        let mut structural_problems = false;
        for (i, step) in self.steps.iter().enumerate() {
            structural_problems |= step.next.as_deref().is_some_and(|n| !index.contains_key(n));
            match (&step.kind, &step.next) {
                (StepKind::End, Some(_)) => report(
                    format!("steps[{i}].next"),
                    "an end step has no next step".into(),
                ),
                (StepKind::End, None) => {}
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
            if let StepKind::Service { errors, .. } = &step.kind {
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
                    BoundaryEvent::Message(m) => {
                        if !is_name(m) {
                            report(
                                at("message"),
                                "a message name must be non-empty, without spaces".into(),
                            );
                        }
                        if !b.interrupting {
                            report(
                                at("interrupting"),
                                "a boundary message ends the wait: it is always interrupting"
                                    .into(),
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
                        report(at("cycle"), "an interrupting timer fires once; a cycle needs \"interrupting\": false".into());
                    }
                    if b.send.is_some() {
                        report(at("send"), "an interrupting timer leads to `next`; `send` is for non-interrupting timers".into());
                    }
                    match &b.next {
                        None => {
                            report(at("next"), "an interrupting timer needs a next step".into())
                        }
                        Some(n) if !index.contains_key(n.as_str()) => {
                            structural_problems = true;
                            report(at("next"), format!("unknown step \"{n}\""))
                        }
                        Some(_) => {}
                    }
                } else {
                    if b.next.is_some() {
                        report(
                            at("next"),
                            "a non-interrupting timer keeps the step waiting; it has no next step"
                                .into(),
                        );
                    }
                    match &b.send {
                        None => report(
                            at("send"),
                            "a non-interrupting timer needs a message to send".into(),
                        ),
                        Some((m, to)) => {
                            if !is_name(m) {
                                report(
                                    at("send"),
                                    "a message name must be non-empty, without spaces".into(),
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
        }

        let mut report = |path: String, message: String| problems.push(Problem { path, message });
        // Every step must be reachable from the first, and the first must reach an end.
        if !structural_problems && !self.steps.is_empty() {
            let mut seen = HashSet::new();
            let mut todo = vec![0usize];
            let mut reaches_end = false;
            while let Some(i) = todo.pop() {
                if !seen.insert(i) {
                    continue;
                }
                let step = &self.steps[i];
                if matches!(step.kind, StepKind::End) {
                    reaches_end = true;
                }
                let errors: &[super::ErrorRoute] = match &step.kind {
                    StepKind::Service { errors, .. } => errors,
                    _ => &[],
                };
                let targets = step
                    .next
                    .iter()
                    .chain(step.boundary.iter().filter_map(|b| b.next.as_ref()))
                    .chain(errors.iter().map(|e| &e.next));
                todo.extend(targets.filter_map(|n| index.get(n.as_str()).copied()));
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

fn check_output(output: &Output, path: &str, report: &mut impl FnMut(String, String)) {
    if let Output::Variable(v) = output {
        if !is_name(v) || v.contains('.') {
            report(path.to_string(), format!("invalid variable name \"{v}\""));
        }
    }
}
