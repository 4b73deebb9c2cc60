//! A `userTask` as a user task step: Zeebe's `assignmentDefinition`, `taskSchedule`,
//! `priorityDefinition` and `formDefinition`, Camunda 7's `camunda:assignee`,
//! `candidateUsers`, `candidateGroups`, `dueDate`, `followUpDate`, `priority`, `formKey` and
//! `formData` fields, and longrun's own `longrun:due`, `longrun:followUp` and
//! `longrun:fields`.

use std::collections::BTreeMap;

use super::xml::{ext, lr, output_of};
use super::{ImportError, Importer, Xn, CAMUNDA7_NS};
use crate::bpmn::ZEEBE_NS;
use crate::definition::{UserTask, DEFAULT_PRIORITY};
use crate::expr::Type;

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

/// A value that may be an expression: a literal stays; `=path` (FEEL) and `${path}` /
/// `#{path}` (JUEL) become `=path`; any other expression is `Err`.
fn value_of(text: &str) -> Result<String, String> {
    let t = text.trim();
    let inner = if let Some(e) = t.strip_prefix('=') {
        Some(e.trim())
    } else if (t.starts_with("${") || t.starts_with("#{")) && t.ends_with('}') {
        Some(t[2..t.len() - 1].trim())
    } else {
        None
    };
    match inner {
        None => Ok(t.to_string()),
        Some(p) if is_path(p) => Ok(format!("={p}")),
        Some(_) => Err(format!(
            "`{t}` is an expression longrun cannot evaluate here: use a literal or a variable (`=path`)"
        )),
    }
}

/// A list of people: comma-separated literals or references, or a FEEL list of string
/// literals (`=["sales", "support"]`).
fn people_of(text: &str) -> Result<Vec<String>, String> {
    let t = text.trim();
    if let Some(list) = t
        .strip_prefix('=')
        .map(str::trim)
        .and_then(|l| l.strip_prefix('['))
        .and_then(|l| l.strip_suffix(']'))
    {
        return list
            .split(',')
            .map(|item| {
                let item = item.trim();
                item.strip_prefix('"')
                    .and_then(|i| i.strip_suffix('"'))
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{t}`: only a list of quoted names is read"))
            })
            .collect();
    }
    if t.starts_with('=') || t.starts_with("${") || t.starts_with("#{") {
        return Ok(vec![value_of(t)?]);
    }
    Ok(t.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

fn form_field_type(t: &str) -> Type {
    match t {
        "string" | "date" | "enum" => Type::String,
        "long" | "integer" | "double" | "number" => Type::Number,
        "boolean" => Type::Boolean,
        _ => Type::Any,
    }
}

impl<'a> Importer<'a> {
    /// The user task a `userTask` element describes.
    pub(super) fn user_task_of(&self, n: Xn<'a>) -> Result<UserTask, ImportError> {
        let c7 = |a: &str| n.attribute((CAMUNDA7_NS, a));
        let assignment = ext(n, ZEEBE_NS, "assignmentDefinition");
        let schedule = ext(n, ZEEBE_NS, "taskSchedule");
        let z = |x: Option<Xn<'a>>, a: &str| x.and_then(|x| x.attribute(a));
        let fail = |at: Xn, m: String| self.fail::<UserTask>(at, m);
        let mut task = UserTask::new();
        if let Some(a) = z(assignment, "assignee").or(c7("assignee")) {
            match value_of(a) {
                Ok(v) => task.assignee = Some(v),
                Err(e) => return fail(n, format!("assignee: {e}")),
            }
        }
        for (zeebe, camunda, list) in [
            (
                "candidateUsers",
                "candidateUsers",
                &mut task.candidate_users,
            ),
            (
                "candidateGroups",
                "candidateGroups",
                &mut task.candidate_groups,
            ),
        ] {
            if let Some(v) = z(assignment, zeebe).or(c7(camunda)) {
                match people_of(v) {
                    Ok(p) => *list = p,
                    Err(e) => return fail(n, format!("{zeebe}: {e}")),
                }
            }
        }
        for (ours, zeebe, camunda, slot) in [
            ("due", "dueDate", "dueDate", &mut task.due),
            (
                "followUp",
                "followUpDate",
                "followUpDate",
                &mut task.follow_up,
            ),
        ] {
            if let Some(v) = lr(n, ours).or(z(schedule, zeebe)).or(c7(camunda)) {
                match value_of(v) {
                    Ok(v) => *slot = Some(v),
                    Err(e) => return fail(n, format!("{zeebe}: {e}")),
                }
            }
        }
        if let Some(p) = z(ext(n, ZEEBE_NS, "priorityDefinition"), "priority").or(c7("priority")) {
            match p.trim().parse::<u8>() {
                Ok(v) if v <= 100 => task.priority = v,
                _ => {
                    return fail(
                        n,
                        format!(
                            "priority \"{p}\": a number from 0 to 100 (expressions are not read)"
                        ),
                    )
                }
            }
        } else {
            task.priority = DEFAULT_PRIORITY;
        }
        let form = ext(n, ZEEBE_NS, "formDefinition");
        task.form = z(form, "formKey")
            .or(z(form, "formId"))
            .or(z(form, "externalReference"))
            .or(c7("formKey"))
            .or(c7("formRef"))
            .map(str::to_string);
        if let Some(j) = lr(n, "fields") {
            task.fields = serde_json::from_str::<BTreeMap<String, Type>>(j)
                .or_else(|e| fail(n, format!("longrun:fields: {e}")).map(|_| BTreeMap::new()))?;
        } else if let Some(data) = ext(n, CAMUNDA7_NS, "formData") {
            for f in data.children().filter(|c| c.is_element()) {
                if f.tag_name().name() != "formField" {
                    continue;
                }
                let Some(id) = f.attribute("id") else {
                    return fail(f, "a form field needs an id".into());
                };
                task.fields.insert(
                    id.to_string(),
                    form_field_type(f.attribute("type").unwrap_or("")),
                );
            }
        }
        task.output = output_of(n);
        Ok(task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_that_name_a_variable_become_references_and_others_are_refused() {
        assert_eq!(value_of("alice").unwrap(), "alice");
        assert_eq!(value_of("= order.owner").unwrap(), "=order.owner");
        assert_eq!(value_of("${owner}").unwrap(), "=owner");
        assert!(value_of("=if x then y else z").is_err());
        assert_eq!(people_of("sales, support").unwrap(), ["sales", "support"]);
        assert_eq!(people_of("=[\"a\", \"b\"]").unwrap(), ["a", "b"]);
        assert_eq!(people_of("=groups").unwrap(), ["=groups"]);
        assert!(people_of("=[a]").is_err());
    }
}
