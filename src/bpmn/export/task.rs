//! A user task as BPMN: Zeebe's `userTask` extension elements, with longrun's own
//! attributes for what Zeebe cannot say (a due date as a duration, declared fields); and the
//! loop characteristics of a multi-instance step; a step's compensation.

use super::*;
use crate::definition::{Compensation, UserTask, DEFAULT_PRIORITY};

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

/// A step's compensation: a compensation boundary event on it and the task that undoes it,
/// joined by an association.
pub(super) fn compensation(
    step: &crate::definition::Step,
    c: &Compensation,
    nodes: &mut Vec<Node>,
    messages: &mut std::collections::BTreeMap<String, Option<String>>,
    associations: &mut Vec<(String, String)>,
) {
    let id = step.id.clone();
    let bid = format!("{id}_compensation");
    let hid = format!("{id}_undo");
    nodes.push(Node {
        id: bid.clone(),
        tag: "boundaryEvent",
        attrs: format!(" attachedToRef=\"{id}\""),
        inner: "<bpmn:compensateEventDefinition />".into(),
        shape: Shape::Event,
        attached_to: Some(id.clone()),
        scope: None,
    });
    let (tag, attrs, inner) = match c {
        Compensation::Handler { handler } => (
            "serviceTask",
            String::new(),
            format!(
                "<bpmn:extensionElements><zeebe:taskDefinition type=\"{}\" /></bpmn:extensionElements>",
                esc(handler)
            ),
        ),
        Compensation::Send { send, to } => {
            messages.entry(send.clone()).or_insert(None);
            (
                "sendTask",
                format!(
                    " messageRef=\"{}\"{}",
                    message_ref(send),
                    to.as_ref()
                        .map(|t| format!(" longrun:to=\"{}\"", esc(t)))
                        .unwrap_or_default()
                ),
                String::new(),
            )
        }
    };
    nodes.push(Node {
        id: hid.clone(),
        tag,
        attrs: format!(
            " name=\"undo {}\" isForCompensation=\"true\"{attrs}",
            esc(&step.id)
        ),
        inner,
        shape: Shape::Task,
        attached_to: None,
        scope: None,
    });
    associations.push((bid, hid));
}
