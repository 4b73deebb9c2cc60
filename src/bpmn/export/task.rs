//! A user task as BPMN: Zeebe's `userTask` extension elements, with longrun's own
//! attributes for what Zeebe cannot say (a due date as a duration, declared fields); and the
//! loop characteristics of a multi-instance step.

use super::*;
use crate::definition::{UserTask, DEFAULT_PRIORITY};

/// The attributes and extension elements of a user task's node.
pub(super) fn user_task(t: &UserTask) -> (String, String) {
    let mut attrs = output_attr(&t.output);
    let mut schedule = String::new();
    for (zeebe, ours, value) in [
        ("dueDate", "due", &t.due),
        ("followUpDate", "followUp", &t.follow_up),
    ] {
        match value {
            // Zeebe takes a date or an expression; a duration is longrun's.
            Some(v) if v.starts_with('P') => {
                attrs += &format!(" longrun:{ours}=\"{}\"", esc(v));
            }
            Some(v) => schedule += &format!(" {zeebe}=\"{}\"", esc(v)),
            None => {}
        }
    }
    if !t.fields.is_empty() {
        attrs += &format!(
            " longrun:fields=\"{}\"",
            esc(&serde_json::to_string(&t.fields).expect("serializes"))
        );
    }
    let mut inner = String::from("<bpmn:extensionElements><zeebe:userTask />");
    let mut assignment = String::new();
    if let Some(a) = &t.assignee {
        assignment += &format!(" assignee=\"{}\"", esc(a));
    }
    if !t.candidate_users.is_empty() {
        assignment += &format!(" candidateUsers=\"{}\"", esc(&t.candidate_users.join(",")));
    }
    if !t.candidate_groups.is_empty() {
        assignment += &format!(
            " candidateGroups=\"{}\"",
            esc(&t.candidate_groups.join(","))
        );
    }
    if !assignment.is_empty() {
        inner += &format!("<zeebe:assignmentDefinition{assignment} />");
    }
    if !schedule.is_empty() {
        inner += &format!("<zeebe:taskSchedule{schedule} />");
    }
    if t.priority != DEFAULT_PRIORITY {
        inner += &format!("<zeebe:priorityDefinition priority=\"{}\" />", t.priority);
    }
    if let Some(f) = &t.form {
        inner += &format!("<zeebe:formDefinition formKey=\"{}\" />", esc(f));
    }
    inner += "</bpmn:extensionElements>";
    (attrs, inner)
}

/// A multi-instance step's loop characteristics, as Zeebe writes them.
pub(super) fn loop_characteristics(m: &crate::definition::MultiInstance) -> String {
    let mut attrs = format!(" inputCollection=\"={}\"", esc(&m.collection));
    if let Some(e) = &m.element {
        attrs += &format!(" inputElement=\"{}\"", esc(e));
    }
    if let Some(c) = &m.output_collection {
        attrs += &format!(" outputCollection=\"{}\"", esc(c));
    }
    if let Some(e) = &m.output_element {
        attrs += &format!(" outputElement=\"={}\"", esc(e));
    }
    format!(
        "<bpmn:multiInstanceLoopCharacteristics{}><bpmn:extensionElements><zeebe:loopCharacteristics{attrs} /></bpmn:extensionElements>{}</bpmn:multiInstanceLoopCharacteristics>",
        if m.sequential { " isSequential=\"true\"" } else { "" },
        m.completion
            .as_ref()
            .map(|c| format!(
                "<bpmn:completionCondition xsi:type=\"bpmn:tFormalExpression\">={}</bpmn:completionCondition>",
                esc(c)
            ))
            .unwrap_or_default()
    )
}
