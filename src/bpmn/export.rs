//! Export: a definition as BPMN 2.0 XML with a computed layout.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::definition::{
    BoundaryEvent, Compensation, Output, ProcessDefinition, StepKind, TimerSpec,
};

use super::*;

/// Escape text for an XML attribute or element.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A shape of the layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    /// Left.
    pub x: f64,
    /// Top.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl Bounds {
    /// Whether two shapes overlap (touching edges do not count).
    pub fn overlaps(&self, o: &Bounds) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Task,
    Event,
    Gateway,
}

impl Shape {
    pub(super) fn size(self) -> (f64, f64) {
        match self {
            Shape::Task => (100.0, 80.0),
            Shape::Event => (36.0, 36.0),
            Shape::Gateway => (50.0, 50.0),
        }
    }
}

/// One flow node of the exported graph.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) id: String,
    /// The element, its attributes and its inner XML (without incoming/outgoing).
    pub(super) tag: &'static str,
    pub(super) attrs: String,
    pub(super) inner: String,
    pub(super) shape: Shape,
    /// For a boundary event: the host it is attached to.
    pub(super) attached_to: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Flow {
    pub(super) id: String,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) condition: Option<String>,
}

/// The exported document and its layout.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The BPMN XML.
    pub xml: String,
    /// Every shape by element id (boundary events sit on their host's lower edge).
    pub shapes: BTreeMap<String, Bounds>,
    /// Which shapes are boundary events (they overlap their host by design).
    pub boundary: Vec<String>,
}

fn timer_xml(t: &TimerSpec) -> String {
    match t {
        TimerSpec::After(d) => format!(
            "<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:timeDuration></bpmn:timerEventDefinition>",
            esc(d)
        ),
        TimerSpec::Cycle(c) => format!(
            "<bpmn:timerEventDefinition><bpmn:timeCycle xsi:type=\"bpmn:tFormalExpression\">{}</bpmn:timeCycle></bpmn:timerEventDefinition>",
            esc(c)
        ),
        TimerSpec::Until(v) => format!(
            "<bpmn:timerEventDefinition><bpmn:timeDate xsi:type=\"bpmn:tFormalExpression\">{}{}</bpmn:timeDate></bpmn:timerEventDefinition>",
            // A literal date as itself; a variable as a FEEL expression.
            if crate::definition::literal_date(v).is_some() { "" } else { "=" },
            esc(v)
        ),
    }
}

fn output_attr(o: &Output) -> String {
    match o {
        Output::Merge => String::new(),
        Output::Variable(v) => format!(" longrun:output=\"{}\"", esc(v)),
    }
}

/// Export a definition as BPMN XML with a computed layout.
pub fn export(def: &ProcessDefinition) -> Exported {
    let mut nodes: Vec<Node> = Vec::new();
    let mut flows: Vec<Flow> = Vec::new();
    let mut messages: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut associations: Vec<(String, String)> = Vec::new();
    let flow = |from: &str, to: &str, condition: Option<String>, flows: &mut Vec<Flow>| {
        let id = format!("flow_{}", flows.len() + 1);
        flows.push(Flow {
            id,
            from: from.to_string(),
            to: to.to_string(),
            condition,
        });
    };
    let message_ref = |name: &str| {
        format!(
            "message_{}",
            name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        )
    };

    // The start event.
    let start_inner = match &def.start {
        Some(s) => {
            messages.entry(s.message.clone()).or_insert(None);
            format!(
                "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                message_ref(&s.message)
            )
        }
        None => String::new(),
    };
    nodes.push(Node {
        id: "start".into(),
        tag: "startEvent",
        attrs: String::new(),
        inner: start_inner,
        shape: Shape::Event,
        attached_to: None,
    });
    if let Some(first) = def.steps.first() {
        flow("start", &first.id, None, &mut flows);
    }

    for step in &def.steps {
        let id = step.id.clone();
        let name = format!(" name=\"{}\"", esc(&step.id));
        let mut node = Node {
            id: id.clone(),
            tag: "task",
            attrs: name.clone(),
            inner: String::new(),
            shape: Shape::Task,
            attached_to: None,
        };
        match &step.kind {
            StepKind::Service {
                handler,
                output,
                timeout,
                retry,
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
                node.inner = format!(
                    "<bpmn:extensionElements><zeebe:taskDefinition type=\"{}\"{retries} /></bpmn:extensionElements>",
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
                    };
                    nodes.push(Node {
                        id: eid.clone(),
                        tag: "intermediateCatchEvent",
                        attrs: output_attr(&e.output),
                        inner,
                        shape: Shape::Event,
                        attached_to: None,
                    });
                    flow(&id, &eid, None, &mut flows);
                    flow(&eid, &e.next, None, &mut flows);
                }
            }
            StepKind::Call {
                process,
                input,
                output,
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
        }
        nodes.push(node);
        if let Some(n) = &step.next {
            flow(&id, n, None, &mut flows);
        }
        // Boundary events on the step.
        for (i, b) in step.boundary.iter().enumerate() {
            let bid = format!("{id}_boundary_{}", i + 1);
            let inner = match &b.on {
                BoundaryEvent::Timer(t) => timer_xml(t),
                BoundaryEvent::Message(m) => {
                    messages.entry(m.clone()).or_insert(None);
                    format!(
                        "<bpmn:messageEventDefinition messageRef=\"{}\" />",
                        message_ref(m)
                    )
                }
            };
            nodes.push(Node {
                id: bid.clone(),
                tag: "boundaryEvent",
                attrs: format!(
                    " attachedToRef=\"{id}\"{}",
                    if b.interrupting {
                        ""
                    } else {
                        " cancelActivity=\"false\""
                    }
                ),
                inner,
                shape: Shape::Event,
                attached_to: Some(id.clone()),
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
                });
                nodes.push(Node {
                    id: eid.clone(),
                    tag: "endEvent",
                    attrs: String::new(),
                    inner: String::new(),
                    shape: Shape::Event,
                    attached_to: None,
                });
                flow(&bid, &sid, None, &mut flows);
                flow(&sid, &eid, None, &mut flows);
            }
        }
        // Business errors routed by a service step.
        if let StepKind::Service { errors: routes, .. } = &step.kind {
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
                    inner: format!("<bpmn:errorEventDefinition errorRef=\"{err_id}\" />"),
                    shape: Shape::Event,
                    attached_to: Some(id.clone()),
                });
                flow(&bid, &r.next, None, &mut flows);
            }
        }
        // Its compensation: a compensation boundary event and the task that undoes it.
        if let Some(c) = &step.compensate {
            let bid = format!("{id}_compensation");
            let hid = format!("{id}_undo");
            nodes.push(Node {
                id: bid.clone(),
                tag: "boundaryEvent",
                attrs: format!(" attachedToRef=\"{id}\""),
                inner: "<bpmn:compensateEventDefinition />".into(),
                shape: Shape::Event,
                attached_to: Some(id.clone()),
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
            });
            associations.push((bid, hid));
        }
    }

    let shapes = super::layout::layout(&nodes, &flows, &associations);

    // The XML.
    let mut incoming: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut outgoing: HashMap<&str, Vec<&str>> = HashMap::new();
    for f in &flows {
        outgoing.entry(&f.from).or_default().push(&f.id);
        incoming.entry(&f.to).or_default().push(&f.id);
    }
    let mut x = String::new();
    let _ = writeln!(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        x,
        "<bpmn:definitions xmlns:bpmn=\"{BPMN_NS}\" xmlns:bpmndi=\"http://www.omg.org/spec/BPMN/20100524/DI\" xmlns:dc=\"http://www.omg.org/spec/DD/20100524/DC\" xmlns:di=\"http://www.omg.org/spec/DD/20100524/DI\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:zeebe=\"{ZEEBE_NS}\" xmlns:longrun=\"{LONGRUN_NS}\" id=\"definitions_{p}\" targetNamespace=\"http://bpmn.io/schema/bpmn\" exporter=\"longrun\" exporterVersion=\"{v}\">",
        p = esc(&def.process),
        v = env!("CARGO_PKG_VERSION")
    );
    let mut process_attrs = String::new();
    if let Some(r) = &def.retry {
        process_attrs += &format!(
            " longrun:retry=\"{}\"",
            esc(&serde_json::to_string(r).expect("serializes"))
        );
    }
    if !def.variables.is_empty() {
        process_attrs += &format!(
            " longrun:variables=\"{}\"",
            esc(&serde_json::to_string(&def.variables).expect("serializes"))
        );
    }
    if let Some(u) = def.unique_business_key {
        process_attrs += &format!(
            " longrun:uniqueBusinessKey=\"{}\"",
            match u {
                crate::definition::UniqueKey::ReturnExisting => "return_existing",
                crate::definition::UniqueKey::Refuse => "refuse",
            }
        );
    }
    let _ = writeln!(
        x,
        "  <bpmn:process id=\"{}\" isExecutable=\"true\"{process_attrs}>",
        esc(&def.process)
    );
    for n in &nodes {
        let _ = write!(x, "    <bpmn:{} id=\"{}\"{}>", n.tag, n.id, n.attrs);
        // The schema's order: extension elements, then incoming and outgoing flows, then
        // event definitions.
        let (ext, rest) = match n.inner.find("</bpmn:extensionElements>") {
            Some(i) if n.inner.starts_with("<bpmn:extensionElements>") => {
                n.inner.split_at(i + "</bpmn:extensionElements>".len())
            }
            _ => ("", n.inner.as_str()),
        };
        x.push_str(ext);
        for f in incoming.get(n.id.as_str()).into_iter().flatten() {
            let _ = write!(x, "<bpmn:incoming>{f}</bpmn:incoming>");
        }
        for f in outgoing.get(n.id.as_str()).into_iter().flatten() {
            let _ = write!(x, "<bpmn:outgoing>{f}</bpmn:outgoing>");
        }
        let _ = writeln!(x, "{rest}</bpmn:{}>", n.tag);
    }
    for f in &flows {
        match &f.condition {
            None => {
                let _ = writeln!(
                    x,
                    "    <bpmn:sequenceFlow id=\"{}\" sourceRef=\"{}\" targetRef=\"{}\" />",
                    f.id, f.from, f.to
                );
            }
            Some(c) => {
                let _ = writeln!(
                    x,
                    "    <bpmn:sequenceFlow id=\"{}\" sourceRef=\"{}\" targetRef=\"{}\"><bpmn:conditionExpression xsi:type=\"bpmn:tFormalExpression\">={}</bpmn:conditionExpression></bpmn:sequenceFlow>",
                    f.id, f.from, f.to, esc(c)
                );
            }
        }
    }
    for (i, (from, to)) in associations.iter().enumerate() {
        let _ = writeln!(
            x,
            "    <bpmn:association id=\"association_{}\" associationDirection=\"One\" sourceRef=\"{from}\" targetRef=\"{to}\" />",
            i + 1
        );
    }
    let _ = writeln!(x, "  </bpmn:process>");
    for (name, key) in &messages {
        match key {
            None => {
                let _ = writeln!(
                    x,
                    "  <bpmn:message id=\"{}\" name=\"{}\" />",
                    message_ref(name),
                    esc(name)
                );
            }
            Some(k) => {
                let _ = writeln!(
                    x,
                    "  <bpmn:message id=\"{}\" name=\"{}\"><bpmn:extensionElements><zeebe:subscription correlationKey=\"={}\" /></bpmn:extensionElements></bpmn:message>",
                    message_ref(name),
                    esc(name),
                    esc(k)
                );
            }
        }
    }
    for code in &errors {
        let _ = writeln!(
            x,
            "  <bpmn:error id=\"error_{}\" name=\"{}\" errorCode=\"{}\" />",
            code.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
            esc(code),
            esc(code)
        );
    }
    // Diagram interchange: a shape per node, an edge per flow and association.
    let _ = writeln!(
        x,
        "  <bpmndi:BPMNDiagram id=\"diagram_{}\">",
        esc(&def.process)
    );
    let _ = writeln!(
        x,
        "    <bpmndi:BPMNPlane id=\"plane_{p}\" bpmnElement=\"{p}\">",
        p = esc(&def.process)
    );
    for n in &nodes {
        let b = shapes[&n.id];
        let _ = writeln!(
            x,
            "      <bpmndi:BPMNShape id=\"{id}_di\" bpmnElement=\"{id}\"><dc:Bounds x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" /></bpmndi:BPMNShape>",
            b.x, b.y, b.w, b.h, id = n.id
        );
    }
    let edge = |x: &mut String, id: &str, from: &Bounds, to: &Bounds, below: bool| {
        let (sx, sy) = if below {
            (from.x + from.w / 2.0, from.y + from.h)
        } else {
            (from.x + from.w, from.y + from.h / 2.0)
        };
        let (tx, ty) = (to.x, to.y + to.h / 2.0);
        let mut points = vec![(sx, sy)];
        if below {
            points.push((sx, ty));
        } else if (sy - ty).abs() > 0.5 {
            let mid = if tx > sx { (sx + tx) / 2.0 } else { sx + 20.0 };
            points.push((mid, sy));
            points.push((mid, ty));
        }
        points.push((tx, ty));
        let _ = write!(
            x,
            "      <bpmndi:BPMNEdge id=\"{id}_di\" bpmnElement=\"{id}\">"
        );
        for (px, py) in points {
            let _ = write!(x, "<di:waypoint x=\"{px}\" y=\"{py}\" />");
        }
        let _ = writeln!(x, "</bpmndi:BPMNEdge>");
    };
    let is_boundary: HashMap<&str, bool> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.attached_to.is_some()))
        .collect();
    for f in &flows {
        edge(
            &mut x,
            &f.id,
            &shapes[&f.from],
            &shapes[&f.to],
            is_boundary[f.from.as_str()],
        );
    }
    for (i, (from, to)) in associations.iter().enumerate() {
        edge(
            &mut x,
            &format!("association_{}", i + 1),
            &shapes[from],
            &shapes[to],
            true,
        );
    }
    let _ = writeln!(x, "    </bpmndi:BPMNPlane>");
    let _ = writeln!(x, "  </bpmndi:BPMNDiagram>");
    let _ = writeln!(x, "</bpmn:definitions>");
    Exported {
        xml: x,
        boundary: nodes
            .iter()
            .filter(|n| n.attached_to.is_some())
            .map(|n| n.id.clone())
            .collect(),
        shapes,
    }
}
