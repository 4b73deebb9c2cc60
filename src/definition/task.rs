//! User tasks: work a person does, offered to an assignee, candidate users and candidate
//! groups, with due and follow-up dates, a priority, a form and the variables the
//! completion must supply.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{literal_date, lookup, parse_duration_lenient, Output};
use crate::expr::Type;

/// The default priority of a user task (priorities run from 0 to 100).
pub const DEFAULT_PRIORITY: u8 = 50;

/// What a `user_task` step offers and to whom.
///
/// In JSON: `{"id": "review", "type": "user_task", "candidate_groups": ["sales"], "due":
/// "P2D", "fields": {"approved": "boolean"}, "next": "pay"}`.
///
/// People (`assignee`, `candidate_users`, `candidate_groups`) are each a literal name or a
/// variable reference written `=path` (`"=order.owner"`): a string, or for the candidate
/// lists a string or a list of strings; a reference to a missing or null variable offers to
/// no one. Dates (`due`, `follow_up`) are an ISO 8601 duration from the task's creation
/// (`P7D`), an RFC 3339 date-time, or `=path` to a variable holding one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTask {
    /// Who holds the task from the start (nobody: it waits for a claim).
    pub assignee: Option<String>,
    /// Users who may claim it.
    pub candidate_users: Vec<String>,
    /// Groups whose members may claim it.
    pub candidate_groups: Vec<String>,
    /// When it is due.
    pub due: Option<String>,
    /// When someone should look at it again.
    pub follow_up: Option<String>,
    /// From 0 to 100; default 50.
    pub priority: u8,
    /// A form reference for the task list (a key, a path, an id).
    pub form: Option<String>,
    /// The variables a completion must supply, with their types (`string`, `number`,
    /// `boolean`, `object`, `any`). When some are declared, a completion must give each of
    /// them and nothing else; when none are, a completion may set any variables.
    pub fields: BTreeMap<String, Type>,
    /// Where the completion's variables go.
    pub output: Output,
}

/// What a non-interrupting boundary timer on a user task changes about who holds it
/// (escalation): the task is released from its assignee (or given to `assignee`), and its
/// candidate lists are replaced where given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reassign {
    /// The new assignee; none releases the task to its candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The new candidate users, if they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_users: Option<Vec<String>>,
    /// The new candidate groups, if they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_groups: Option<Vec<String>>,
}

/// A person or group name: 1 to 200 bytes, no control characters, no commas (BPMN lists
/// them comma-separated), no spaces at either end.
pub(crate) fn is_person(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.chars().any(|c| c.is_control() || c == ',')
        && s.trim() == s
}

fn is_var_ref(s: &str) -> Option<&str> {
    s.strip_prefix('=').map(str::trim)
}

fn check_people(
    value: &str,
    at: &str,
    report: &mut impl FnMut(String, String),
    var_path: &impl Fn(&str) -> bool,
) {
    match is_var_ref(value) {
        Some(path) if !var_path(path) => {
            report(at.to_string(), format!("invalid variable path \"{path}\""))
        }
        Some(_) => {}
        None if !is_person(value) => report(
            at.to_string(),
            "a user or group name must be 1 to 200 bytes, without control characters, commas or spaces at either end".into(),
        ),
        None => {}
    }
}

fn check_date(
    value: &str,
    at: &str,
    report: &mut impl FnMut(String, String),
    var_path: &impl Fn(&str) -> bool,
) {
    if let Some(path) = is_var_ref(value) {
        if !var_path(path) {
            report(at.to_string(), format!("invalid variable path \"{path}\""));
        }
    } else if value.starts_with('P') || value.starts_with('-') {
        if let Err(e) = super::parse_duration(value) {
            report(at.to_string(), e);
        }
    } else if literal_date(value).is_none() {
        report(
            at.to_string(),
            format!("\"{value}\" is neither an ISO 8601 duration, an RFC 3339 date-time nor a `=variable` reference"),
        );
    }
}

impl UserTask {
    /// Check the settings; `at(field)` names the path of a problem.
    pub(super) fn check(
        &self,
        at: &dyn Fn(&str) -> String,
        report: &mut impl FnMut(String, String),
        var_path: &impl Fn(&str) -> bool,
    ) {
        if let Some(a) = &self.assignee {
            check_people(a, &at("assignee"), report, var_path);
        }
        for (field, list) in [
            ("candidate_users", &self.candidate_users),
            ("candidate_groups", &self.candidate_groups),
        ] {
            if list.len() > 100 {
                report(at(field), "at most 100 names".into());
            }
            for (j, v) in list.iter().enumerate() {
                check_people(v, &format!("{}[{j}]", at(field)), report, var_path);
            }
        }
        if let Some(d) = &self.due {
            check_date(d, &at("due"), report, var_path);
        }
        if let Some(d) = &self.follow_up {
            check_date(d, &at("follow_up"), report, var_path);
        }
        if self.priority > 100 {
            report(at("priority"), "a priority runs from 0 to 100".into());
        }
        if let Some(f) = &self.form {
            if f.is_empty() || f.len() > 1000 || f.chars().any(char::is_control) {
                report(
                    at("form"),
                    "a form reference is 1 to 1,000 bytes without control characters".into(),
                );
            }
        }
        if self.fields.len() > 200 {
            report(at("fields"), "at most 200 fields".into());
        }
        for (name, t) in &self.fields {
            if !var_path(name) || name.contains('.') {
                report(at("fields"), format!("invalid variable name \"{name}\""));
            }
            if *t == Type::Null {
                report(
                    at("fields"),
                    format!("field \"{name}\": use string, number, boolean, object or any"),
                );
            }
        }
    }

    /// Check what a completion supplies against the declared fields: each must be there with
    /// its type, and nothing else (when any are declared).
    pub fn check_completion(&self, variables: &Map<String, Value>) -> Result<(), String> {
        if self.fields.is_empty() {
            return Ok(());
        }
        let mut problems = Vec::new();
        for (name, t) in &self.fields {
            match variables.get(name) {
                None => problems.push(format!("\"{name}\" ({t}) is missing")),
                Some(v) if !type_matches(*t, v) => {
                    problems.push(format!("\"{name}\" must be a {t}, not {}", json_type(v)))
                }
                Some(_) => {}
            }
        }
        for name in variables.keys() {
            if !self.fields.contains_key(name) {
                problems.push(format!(
                    "\"{name}\" is not a field of this task (fields: {})",
                    self.fields.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

fn type_matches(t: Type, v: &Value) -> bool {
    match t {
        Type::Number => v.is_number(),
        Type::String => v.is_string(),
        Type::Boolean => v.is_boolean(),
        Type::Object => v.is_object(),
        Type::Any => true,
        Type::Null => v.is_null(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Resolve one name or `=path` reference against the variables: the names it stands for.
pub(crate) fn resolve_people(spec: &str, vars: &Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(path) = is_var_ref(spec) else {
        return Ok(vec![spec.to_string()]);
    };
    let name = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) if is_person(s) => Ok(s.clone()),
            other => Err(format!(
                "variable {path} must hold a user or group name (1 to 200 bytes), not {other}"
            )),
        }
    };
    match lookup(vars, path) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(name).collect(),
        Some(v) => Ok(vec![name(v)?]),
    }
}

/// Resolve a due or follow-up date from the task's creation time `now`.
pub(crate) fn resolve_date(
    spec: &str,
    vars: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, String> {
    if let Some(path) = is_var_ref(spec) {
        return match lookup(vars, path) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("variable {path} is not an RFC 3339 date-time: {e}")),
            Some(other) => Err(format!(
                "variable {path} holds no date-time (found {other})"
            )),
        };
    }
    if let Some(t) = literal_date(spec) {
        return Ok(Some(t));
    }
    let d = parse_duration_lenient(spec)?;
    super::later(now, d).map(Some)
}

impl Default for UserTask {
    fn default() -> Self {
        UserTask::new()
    }
}

impl UserTask {
    /// A task offered to no one yet, priority 50, no dates, any variables on completion.
    pub fn new() -> Self {
        UserTask {
            assignee: None,
            candidate_users: Vec::new(),
            candidate_groups: Vec::new(),
            due: None,
            follow_up: None,
            priority: DEFAULT_PRIORITY,
            form: None,
            fields: BTreeMap::new(),
            output: Output::Merge,
        }
    }

    /// Held by `assignee` (a name or `=path`) from the start.
    pub fn assignee(mut self, assignee: impl Into<String>) -> Self {
        self.assignee = Some(assignee.into());
        self
    }

    /// Offered to these users (names or `=path` references).
    pub fn candidate_users<I, S>(mut self, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.candidate_users = users.into_iter().map(Into::into).collect();
        self
    }

    /// Offered to these groups (names or `=path` references).
    pub fn candidate_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.candidate_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Due after a duration (`P7D`), at a date, or when a variable (`=path`) says.
    pub fn due(mut self, due: impl Into<String>) -> Self {
        self.due = Some(due.into());
        self
    }

    /// To be looked at again after a duration, at a date, or when a variable says.
    pub fn follow_up(mut self, follow_up: impl Into<String>) -> Self {
        self.follow_up = Some(follow_up.into());
        self
    }

    /// Its priority, 0 to 100.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Its form reference.
    pub fn form(mut self, form: impl Into<String>) -> Self {
        self.form = Some(form.into());
        self
    }

    /// A variable the completion must supply, with its type.
    pub fn field(mut self, name: impl Into<String>, ty: Type) -> Self {
        self.fields.insert(name.into(), ty);
        self
    }

    /// The completion's variables go under this one variable (default: merged).
    pub fn output(mut self, variable: impl Into<String>) -> Self {
        self.output = Output::Variable(variable.into());
        self
    }
}

impl super::ProcessBuilder {
    /// A user task: the instance waits until someone completes it.
    pub fn user_task(self, id: impl Into<String>, task: UserTask) -> super::StepBuilder {
        self.push(id, super::StepKind::UserTask(task))
    }
}

impl super::StepBuilder {
    /// Add a user task step.
    pub fn user_task(self, id: impl Into<String>, task: UserTask) -> super::StepBuilder {
        self.inner.user_task(id, task)
    }

    /// An escalation on a user task: a non-interrupting boundary timer that, if the task is
    /// still open when `timer` fires, changes who holds it as `assign` says (release it to
    /// other groups, give it to a supervisor); the instance keeps waiting.
    pub fn escalate(mut self, timer: super::TimerSpec, assign: Reassign) -> Self {
        self.last().boundary.push(super::Boundary {
            on: super::BoundaryEvent::Timer(timer),
            interrupting: false,
            next: None,
            send: None,
            assign: Some(assign),
        });
        self
    }
}
