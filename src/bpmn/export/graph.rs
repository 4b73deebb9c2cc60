//! The first half of the export: a definition as BPMN elements (nodes, flows, messages,
//! errors and compensation associations), before layout and XML.

use std::collections::BTreeMap;

use super::*;

/// The BPMN elements of one definition.
pub(super) struct Graph {
    pub(super) nodes: Vec<Node>,
    pub(super) flows: Vec<Flow>,
    /// Message name -> its correlation key expression, if any.
    pub(super) messages: BTreeMap<String, Option<String>>,
    /// Error codes caught somewhere.
    pub(super) errors: Vec<String>,
    /// (boundary compensation event, compensation task).
    pub(super) associations: Vec<(String, String)>,
    /// Signal names thrown or caught.
    pub(super) signals: std::collections::BTreeSet<String>,
}

/// A definition as a graph of BPMN elements: its nodes and flows, the messages and errors
/// they refer to, and the compensation associations.
pub(super) fn graph(def: &ProcessDefinition) -> Graph {
    let mut nodes: Vec<Node> = Vec::new();
    let mut flows: Vec<Flow> = Vec::new();
    let mut messages: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut associations: Vec<(String, String)> = Vec::new();
    let mut signals = std::collections::BTreeSet::new();
    let mut signal_def = |name: &str| {
        signals.insert(name.to_string());
        format!(
            "<bpmn:signalEventDefinition signalRef=\"{}\" />",
            super::signal_ref(name)
        )
    };
    // The event definition of a boundary event or of an event subprocess's start.
    let event_xml = |on: &BoundaryEvent,
                     messages: &mut BTreeMap<String, Option<String>>,
                     signal_def: &mut dyn FnMut(&str) -> String| match on {
        BoundaryEvent::Timer(t) => timer_xml(t),
        BoundaryEvent::Signal(sig) => signal_def(sig),
        BoundaryEvent::Message(m) => {
            messages.entry(m.clone()).or_insert(None);
            format!(
                "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                message_ref(m)
            )
        }
    };
    let flow = |from: &str, to: &str, condition: Option<String>, flows: &mut Vec<Flow>| {
        let id = format!("flow_{}", flows.len() + 1);
        flows.push(Flow {
            id,
            from: from.to_string(),
            to: to.to_string(),
            condition,
        });
    };
    // The start event (plain when the message start begins elsewhere: it gets its own).
    let start_inner = match &def.start {
        Some(s) if s.at.is_none() => {
            messages.entry(s.message.clone()).or_insert(None);
            format!(
                "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                message_ref(&s.message)
            )
        }
        Some(_) => String::new(),
        None if def.start_signal.is_some() => {
            signal_def(def.start_signal.as_deref().expect("checked"))
        }
        None => match &def.start_timer {
            Some(crate::definition::StartTimer::Cycle(c)) => {
                super::timer_xml(&crate::definition::TimerSpec::Cycle(c.clone()))
            }
            Some(crate::definition::StartTimer::Date(d)) => {
                super::timer_xml(&crate::definition::TimerSpec::Until(d.clone()))
            }
            Some(crate::definition::StartTimer::Duration(d)) => {
                super::timer_xml(&crate::definition::TimerSpec::After(d.clone()))
            }
            None => String::new(),
        },
    };
    nodes.push(Node {
        id: "start".into(),
        tag: "startEvent",
        attrs: String::new(),
        inner: start_inner,
        shape: Shape::Event,
        attached_to: None,
        scope: None,
    });
    if let Some(first) = def.steps.first() {
        flow("start", &first.id, None, &mut flows);
        // Further message starts (and a message start of its own step), each a start event.
        let own = def.start.iter().filter(|s| s.at.is_some());
        for (i, s) in own.chain(&def.starts).enumerate() {
            let sid = format!("start_{}", i + 2);
            messages.entry(s.message.clone()).or_insert(None);
            nodes.push(Node {
                id: sid.clone(),
                tag: "startEvent",
                attrs: String::new(),
                inner: format!(
                    "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                    message_ref(&s.message)
                ),
                shape: Shape::Event,
                attached_to: None,
                scope: None,
            });
            flow(&sid, s.at.as_deref().unwrap_or(&first.id), None, &mut flows);
        }
    }

    for step in &def.steps {
        let first_node = nodes.len();
        let id = step.id.clone();
        let name = format!(" name=\"{}\"", esc(&step.id));
        let mut node = Node {
            id: id.clone(),
            tag: "task",
            attrs: name.clone(),
            inner: String::new(),
            shape: Shape::Task,
            attached_to: None,
            scope: None,
        };
        match &step.kind {
            StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                headers,
                ..
            } => {
                node.tag = "serviceTask";
                node.attrs += &output_attr(output);
                if let Some(t) = timeout {
                    node.attrs += &format!(" longrun:timeout=\"{}\"", esc(t));
                }
                let retries = retry
                    .as_ref()
                    .map(|r| {
                        node.attrs += &format!(
                            " longrun:retry=\"{}\"",
                            esc(&serde_json::to_string(r).expect("serializes"))
                        );
                        format!(" retries=\"{}\"", r.max_attempts)
                    })
                    .unwrap_or_default();
                let headers = if headers.is_empty() {
                    String::new()
                } else {
                    format!(
                        "<zeebe:taskHeaders>{}</zeebe:taskHeaders>",
                        headers
                            .iter()
                            .map(|(k, v)| format!(
                                "<zeebe:header key=\"{}\" value=\"{}\" />",
                                esc(k),
                                esc(v)
                            ))
                            .collect::<String>()
                    )
                };
                node.inner = format!(
                    "<bpmn:extensionElements><zeebe:taskDefinition type=\"{}\"{retries} />{headers}</bpmn:extensionElements>",
                    esc(handler)
                );
            }
            StepKind::Send {
                message,
                to,
                key,
                payload,
            } => {
                node.tag = "sendTask";
                messages.entry(message.clone()).or_insert(None);
                node.attrs += &format!(" messageRef=\"{}\"", message_ref(message));
                if let Some(t) = to {
                    node.attrs += &format!(" longrun:to=\"{}\"", esc(t));
                }
                if let Some(k) = key {
                    node.attrs += &format!(" longrun:key=\"{}\"", esc(k));
                }
                if let Some(p) = payload {
                    node.attrs += &format!(" longrun:payload=\"{}\"", esc(&p.join(",")));
                }
            }
            StepKind::Receive {
                message,
                key,
                output,
            } => {
                node.tag = "receiveTask";
                let slot = messages.entry(message.clone()).or_insert(None);
                if slot.is_none() {
                    *slot = key.clone();
                }
                node.attrs += &format!(" messageRef=\"{}\"", message_ref(message));
                if let Some(k) = key {
                    node.attrs += &format!(" longrun:key=\"{}\"", esc(k));
                }
                node.attrs += &output_attr(output);
            }
            StepKind::Timer { timer } => {
                node.tag = "intermediateCatchEvent";
                node.shape = Shape::Event;
                node.inner = timer_xml(timer);
            }
            StepKind::Exclusive { routes, default } => {
                node.tag = "exclusiveGateway";
                node.shape = Shape::Gateway;
                for r in routes {
                    flow(&id, &r.next, Some(r.when.clone()), &mut flows);
                }
                if let Some(d) = default {
                    flow(&id, d, None, &mut flows);
                    node.attrs += &format!(" default=\"flow_{}\"", flows.len());
                }
            }
            StepKind::Parallel { branches } => {
                node.tag = "parallelGateway";
                node.shape = Shape::Gateway;
                for b in branches {
                    flow(&id, b, None, &mut flows);
                }
            }
            StepKind::Join => {
                node.tag = "parallelGateway";
                node.shape = Shape::Gateway;
            }
            StepKind::Inclusive { routes, default } => {
                node.tag = "inclusiveGateway";
                node.shape = Shape::Gateway;
                for r in routes {
                    flow(&id, &r.next, Some(r.when.clone()), &mut flows);
                }
                if let Some(d) = default {
                    flow(&id, d, None, &mut flows);
                    node.attrs += &format!(" default=\"flow_{}\"", flows.len());
                }
            }
            StepKind::InclusiveJoin => {
                node.tag = "inclusiveGateway";
                node.shape = Shape::Gateway;
            }
            StepKind::EventGateway { key, events } => {
                node.tag = "eventBasedGateway";
                node.shape = Shape::Gateway;
                if let Some(k) = key {
                    node.attrs += &format!(" longrun:key=\"{}\"", esc(k));
                }
                for (i, e) in events.iter().enumerate() {
                    let eid = format!("{id}_event_{}", i + 1);
                    let inner = match &e.on {
                        BoundaryEvent::Message(m) => {
                            let slot = messages.entry(m.clone()).or_insert(None);
                            if slot.is_none() {
                                *slot = key.clone();
                            }
                            format!(
                                "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                                message_ref(m)
                            )
                        }
                        BoundaryEvent::Timer(t) => timer_xml(t),
                        BoundaryEvent::Signal(sig) => signal_def(sig),
                    };
                    nodes.push(Node {
                        id: eid.clone(),
                        tag: "intermediateCatchEvent",
                        attrs: output_attr(&e.output),
                        inner,
                        shape: Shape::Event,
                        attached_to: None,
                        scope: None,
                    });
                    flow(&id, &eid, None, &mut flows);
                    flow(&eid, &e.next, None, &mut flows);
                }
            }
            StepKind::Call {
                process,
                input,
                output,
                ..
            } => {
                node.tag = "callActivity";
                node.attrs += &output_attr(output);
                if let Some(i) = input {
                    node.attrs += &format!(" longrun:payload=\"{}\"", esc(&i.join(",")));
                }
                node.inner = format!(
                    "<bpmn:extensionElements><zeebe:calledElement processId=\"{}\" propagateAllChildVariables=\"false\" /></bpmn:extensionElements>",
                    esc(process)
                );
            }
            StepKind::Compensate => {
                node.tag = "intermediateThrowEvent";
                node.shape = Shape::Event;
                node.inner = "<bpmn:compensateEventDefinition />".into();
            }
            StepKind::End => {
                node.tag = "endEvent";
                node.shape = Shape::Event;
            }
            StepKind::Terminate => {
                node.tag = "endEvent";
                node.shape = Shape::Event;
                node.inner = "<bpmn:terminateEventDefinition />".into();
            }
            StepKind::Error { code } => {
                node.tag = "endEvent";
                node.shape = Shape::Event;
                if !errors.contains(code) {
                    errors.push(code.clone());
                }
                node.inner = format!(
                    "<bpmn:errorEventDefinition errorRef=\"error_{}\" />",
                    code.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
            }
            StepKind::Signal { signal } => {
                node.tag = "intermediateThrowEvent";
                node.shape = Shape::Event;
                node.inner = signal_def(signal);
            }
            StepKind::WaitSignal { signal, output } => {
                node.tag = "intermediateCatchEvent";
                node.shape = Shape::Event;
                node.attrs += &output_attr(output);
                node.inner = signal_def(signal);
            }
            StepKind::Subprocess { start, .. } => {
                node.tag = "subProcess";
                // Its own plain start event, inside it, leading to its first step.
                let sid = format!("{id}_start");
                nodes.push(Node {
                    id: sid.clone(),
                    tag: "startEvent",
                    attrs: String::new(),
                    inner: String::new(),
                    shape: Shape::Event,
                    attached_to: None,
                    scope: Some(id.clone()),
                });
                flow(&sid, start, None, &mut flows);
            }
            StepKind::EventSubprocess { start, code } => {
                node.tag = "subProcess";
                node.attrs += " triggeredByEvent=\"true\"";
                // Its start event carries its event.
                let (inner, interrupting) = match (step.boundary.first(), code) {
                    (Some(b), _) => (
                        event_xml(&b.on, &mut messages, &mut signal_def),
                        b.interrupting,
                    ),
                    (None, code) => {
                        let code = code.clone().unwrap_or_default();
                        if !errors.contains(&code) {
                            errors.push(code.clone());
                        }
                        (
                            format!(
                                "<bpmn:errorEventDefinition errorRef=\"error_{}\" />",
                                code.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                            ),
                            true,
                        )
                    }
                };
                let sid = format!("{id}_start");
                nodes.push(Node {
                    id: sid.clone(),
                    tag: "startEvent",
                    attrs: if interrupting {
                        String::new()
                    } else {
                        " isInterrupting=\"false\"".into()
                    },
                    inner,
                    shape: Shape::Event,
                    attached_to: None,
                    scope: Some(id.clone()),
                });
                flow(&sid, start, None, &mut flows);
            }
            StepKind::UserTask(t) => {
                node.tag = "userTask";
                let (attrs, inner) = super::task::user_task(t);
                node.attrs += &attrs;
                node.inner = inner;
            }
        }
        if !step.inputs.is_empty() || !step.outputs.is_empty() {
            let mapping = |tag: &str, m: &crate::definition::Mapping| {
                format!(
                    "<zeebe:{tag} source=\"{}\" target=\"{}\" />",
                    esc(&m.source),
                    esc(&m.target)
                )
            };
            let io = format!(
                "<zeebe:ioMapping>{}{}</zeebe:ioMapping>",
                step.inputs
                    .iter()
                    .map(|m| mapping("input", m))
                    .collect::<String>(),
                step.outputs
                    .iter()
                    .map(|m| mapping("output", m))
                    .collect::<String>()
            );
            node.inner = if node.inner.contains("</bpmn:extensionElements>") {
                node.inner.replacen(
                    "</bpmn:extensionElements>",
                    &format!("{io}</bpmn:extensionElements>"),
                    1,
                )
            } else {
                format!(
                    "<bpmn:extensionElements>{io}</bpmn:extensionElements>{}",
                    node.inner
                )
            };
        }
        if let Some(m) = &step.multi {
            node.inner += &super::task::loop_characteristics(m);
        }
        if let Some(m) = &step.milestone {
            node.attrs += &format!(" longrun:milestone=\"{}\"", esc(m));
        }
        nodes.push(node);
        if let Some(n) = &step.next {
            flow(&id, n, None, &mut flows);
        }
        // Boundary events on the step.
        let boundary = match step.kind {
            // An event subprocess's one entry is the event of its start.
            StepKind::EventSubprocess { .. } => &[][..],
            _ => step.boundary.as_slice(),
        };
        for (i, b) in boundary.iter().enumerate() {
            let bid = format!("{id}_boundary_{}", i + 1);
            let inner = event_xml(&b.on, &mut messages, &mut signal_def);
            nodes.push(Node {
                id: bid.clone(),
                tag: "boundaryEvent",
                attrs: format!(
                    " attachedToRef=\"{id}\"{}{}",
                    if b.interrupting {
                        ""
                    } else {
                        " cancelActivity=\"false\""
                    },
                    b.assign
                        .as_ref()
                        .map(|a| format!(
                            " longrun:assign=\"{}\"",
                            esc(&serde_json::to_string(a).expect("serializes"))
                        ))
                        .unwrap_or_default()
                ),
                inner,
                shape: Shape::Event,
                attached_to: Some(id.clone()),
                scope: None,
            });
            if let Some(n) = &b.next {
                flow(&bid, n, None, &mut flows);
            }
            if let Some((m, to)) = &b.send {
                messages.entry(m.clone()).or_insert(None);
                let sid = format!("{bid}_send");
                let eid = format!("{bid}_end");
                nodes.push(Node {
                    id: sid.clone(),
                    tag: "intermediateThrowEvent",
                    attrs: to
                        .as_ref()
                        .map(|t| format!(" longrun:to=\"{}\"", esc(t)))
                        .unwrap_or_default(),
                    inner: format!(
                        "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                        message_ref(m)
                    ),
                    shape: Shape::Event,
                    attached_to: None,
                    scope: None,
                });
                nodes.push(Node {
                    id: eid.clone(),
                    tag: "endEvent",
                    attrs: String::new(),
                    inner: String::new(),
                    shape: Shape::Event,
                    attached_to: None,
                    scope: None,
                });
                flow(&bid, &sid, None, &mut flows);
                flow(&sid, &eid, None, &mut flows);
            }
        }
        // Business errors routed by a service, call or subprocess step.
        if let StepKind::Service { errors: routes, .. }
        | StepKind::Call { errors: routes, .. }
        | StepKind::Subprocess { errors: routes, .. } = &step.kind
        {
            for (i, r) in routes.iter().enumerate() {
                let bid = format!("{id}_error_{}", i + 1);
                let err_id = format!(
                    "error_{}",
                    r.code.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                if !errors.contains(&r.code) {
                    errors.push(r.code.clone());
                }
                nodes.push(Node {
                    id: bid.clone(),
                    tag: "boundaryEvent",
                    attrs: format!(" attachedToRef=\"{id}\""),
                    inner: format!(
                        "<bpmn:errorEventDefinition errorRef=\"{err_id}\"{}{} />",
                        r.code_variable
                            .as_ref()
                            .map(|v| format!(" longrun:errorCodeVariable=\"{}\"", esc(v)))
                            .unwrap_or_default(),
                        r.message_variable
                            .as_ref()
                            .map(|v| format!(" longrun:errorMessageVariable=\"{}\"", esc(v)))
                            .unwrap_or_default()
                    ),
                    shape: Shape::Event,
                    attached_to: Some(id.clone()),
                    scope: None,
                });
                flow(&bid, &r.next, None, &mut flows);
            }
        }
        // Its compensation: a compensation boundary event and the task that undoes it.
        if let Some(c) = &step.compensate {
            super::task::compensation(step, c, &mut nodes, &mut messages, &mut associations);
        }
        // What was made for the step lies where the step does (a subprocess's own start
        // event inside it).
        for n in &mut nodes[first_node..] {
            if n.scope.is_none() {
                n.scope = step.within.clone();
            }
        }
    }

    Graph {
        nodes,
        flows,
        messages,
        errors,
        associations,
        signals,
    }
}
