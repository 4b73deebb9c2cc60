//! BPMN 2.0 export: any definition as a BPMN XML document the Camunda Modeler and bpmn-js
//! open, with a layered layout (shapes and edges) computed here.
//!
//! The mapping follows Camunda 8's conventions where they exist (`zeebe:taskDefinition` for a
//! service step's handler, `zeebe:subscription` for a message's correlation key,
//! `zeebe:calledElement` for a call activity, FEEL-style `=` conditions) and puts what BPMN has
//! no place for (a send step's recipient, an output variable, a timeout) in attributes of
//! longrun's own namespace, [`LONGRUN_NS`].
//!
//! | step | BPMN |
//! |---|---|
//! | service | `serviceTask` with `zeebe:taskDefinition type=HANDLER` |
//! | send | `sendTask` with `messageRef` (`longrun:to`, `longrun:key`, `longrun:payload`) |
//! | receive | `receiveTask` with `messageRef`; the message's `zeebe:subscription correlationKey` |
//! | timer | `intermediateCatchEvent` with a `timerEventDefinition` |
//! | exclusive | `exclusiveGateway`, conditions on its outgoing flows, `default` |
//! | parallel, join | `parallelGateway` |
//! | event_gateway | `eventBasedGateway` followed by one `intermediateCatchEvent` per event |
//! | call | `callActivity` with `zeebe:calledElement processId=PROCESS` |
//! | compensate | `intermediateThrowEvent` with a `compensateEventDefinition` |
//! | end | `endEvent` |
//! | boundary timer / message | `boundaryEvent` (`cancelActivity="false"` when not interrupting; a reminder's message is an `intermediateThrowEvent` after it) |
//! | compensate (on a step) | a compensation `boundaryEvent`, an `association` to a task marked `isForCompensation` |
//! | errors (on a service step) | an error `boundaryEvent` per code, with its `error` element |

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;

use crate::definition::{
    BoundaryEvent, Compensation, Output, ProcessDefinition, StepKind, TimerSpec,
};

/// longrun's own BPMN extension namespace.
pub const LONGRUN_NS: &str = "https://github.com/longrun-rs/longrun/bpmn";
const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";

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
enum Shape {
    Task,
    Event,
    Gateway,
}

impl Shape {
    fn size(self) -> (f64, f64) {
        match self {
            Shape::Task => (100.0, 80.0),
            Shape::Event => (36.0, 36.0),
            Shape::Gateway => (50.0, 50.0),
        }
    }
}

/// One flow node of the exported graph.
#[derive(Debug, Clone)]
struct Node {
    id: String,
    /// The element, its attributes and its inner XML (without incoming/outgoing).
    tag: &'static str,
    attrs: String,
    inner: String,
    shape: Shape,
    /// For a boundary event: the host it is attached to.
    attached_to: Option<String>,
}

#[derive(Debug, Clone)]
struct Flow {
    id: String,
    from: String,
    to: String,
    condition: Option<String>,
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

    let shapes = layout(&nodes, &flows, &associations);

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

/// A layered layout: each node's column is its longest distance from the start along
/// forward flows (flows that close a loop are left out), rows fill each column top down;
/// boundary events sit on their host's lower edge, and what follows them starts a row below.
fn layout(
    nodes: &[Node],
    flows: &[Flow],
    associations: &[(String, String)],
) -> BTreeMap<String, Bounds> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for f in flows {
        succ[index[f.from.as_str()]].push(index[f.to.as_str()]);
    }
    // A boundary event leads on from its host's column; a compensation task hangs below.
    for (i, n) in nodes.iter().enumerate() {
        if let Some(h) = &n.attached_to {
            succ[index[h.as_str()]].push(i);
        }
    }
    for (from, to) in associations {
        succ[index[from.as_str()]].push(index[to.as_str()]);
    }
    // Back edges by depth-first search from the start (and from anything unreached).
    let mut state = vec![0u8; nodes.len()]; // 0 new, 1 on stack, 2 done
    let mut back = std::collections::HashSet::new();
    let mut order = Vec::new();
    for root in 0..nodes.len() {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((v, i)) = stack.pop() {
            if i < succ[v].len() {
                stack.push((v, i + 1));
                let w = succ[v][i];
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                order.push(v);
            }
        }
    }
    // Longest path over forward edges, in topological order.
    order.reverse();
    let mut column = vec![0usize; nodes.len()];
    for &v in &order {
        for &w in &succ[v] {
            if !back.contains(&(v, w)) {
                let step = usize::from(nodes[w].attached_to.is_none());
                column[w] = column[w].max(column[v] + step);
            }
        }
    }
    // Rows: in discovery order (breadth first from the start) within each column.
    let mut row = vec![usize::MAX; nodes.len()];
    let mut used: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([0usize]);
    let mut seen = vec![false; nodes.len()];
    seen[0] = true;
    let mut visit = Vec::new();
    while let Some(v) = queue.pop_front() {
        visit.push(v);
        for &w in &succ[v] {
            if !seen[w] {
                seen[w] = true;
                queue.push_back(w);
            }
        }
    }
    visit.extend((0..nodes.len()).filter(|i| !seen[*i]));
    let (col_w, row_h) = (160.0, 130.0);
    let mut shapes = BTreeMap::new();
    for &v in &visit {
        if nodes[v].attached_to.is_some() {
            continue;
        }
        let c = column[v];
        let r = used.entry(c).or_insert(0);
        row[v] = *r;
        *r += 1;
        let (w, h) = nodes[v].shape.size();
        // Centred in a 100 x 80 cell.
        let x = 100.0 + c as f64 * col_w + (100.0 - w) / 2.0;
        let y = 80.0 + row[v] as f64 * row_h + (80.0 - h) / 2.0;
        shapes.insert(nodes[v].id.clone(), Bounds { x, y, w, h });
    }
    // Boundary events along the host's lower edge.
    let mut on_host: HashMap<&str, usize> = HashMap::new();
    for n in nodes {
        if let Some(h) = &n.attached_to {
            let host = shapes[h.as_str()];
            let k = on_host.entry(h.as_str()).or_insert(0);
            let b = Bounds {
                x: host.x + 6.0 + *k as f64 * 30.0,
                y: host.y + host.h - 18.0,
                w: 36.0,
                h: 36.0,
            };
            *k += 1;
            shapes.insert(n.id.clone(), b);
        }
    }
    shapes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every construct of the model in one definition.
    fn everything() -> ProcessDefinition {
        use crate::definition::{RetryPolicy, TimerSpec};
        ProcessDefinition::builder("everything")
            .start_on_message("Go")
            .retry(RetryPolicy::new(3, "PT1S"))
            .parallel("fork", ["charge", "gw"])
            .service("charge", "charge_card")
            .output("charge")
            .timeout("PT30S")
            .on_error("CardDeclined", "declined")
            .compensate(Compensation::Handler {
                handler: "refund".into(),
            })
            .next("join")
            .event_gateway("gw")
            .key("orderId")
            .on_message("Paid", "join")
            .output("payment")
            .on_timer("PT1H", "join")
            .join("join")
            .call("check", "credit_check")
            .payload(["amount"])
            .output("credit")
            .exclusive("route")
            .when("credit.score >= 600 && amount < 1000", "wait_ship")
            .otherwise("cool_off")
            .receive("wait_ship", "Shipped")
            .key("orderId")
            .timeout_after("P14D", "undo")
            .remind(TimerSpec::After("P7D".into()), "Reminder", Some("customer"))
            .or_message("Lost", "undo")
            .send("notify", "Done")
            .to("mail")
            .compensate(Compensation::Send {
                send: "Retract".into(),
                to: Some("mail".into()),
            })
            .end("done")
            .wait_for("cool_off", "PT1H")
            .next("wait_ship")
            .end("declined")
            .compensate_all("undo")
            .end("undone")
            .build()
            .unwrap()
    }

    fn order() -> ProcessDefinition {
        ProcessDefinition::from_json(include_str!("../examples/definitions/order.json")).unwrap()
    }

    #[test]
    fn camunda_7_external_tasks_and_plain_starts_import() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:c7="http://camunda.org/schema/1.0/bpmn" id="d">
  <process id="Invoice_7" isExecutable="true">
    <startEvent id="Start"><outgoing>f1</outgoing></startEvent>
    <serviceTask id="Pay" c7:type="external" c7:topic="pay_invoice"><incoming>f1</incoming><outgoing>f2</outgoing></serviceTask>
    <endEvent id="End"><incoming>f2</incoming></endEvent>
    <sequenceFlow id="f1" sourceRef="Start" targetRef="Pay" />
    <sequenceFlow id="f2" sourceRef="Pay" targetRef="End" />
  </process>
</definitions>"#;
        let def = import(xml).unwrap();
        assert_eq!(def.process, "invoice_7");
        assert!(def.start.is_none());
        assert!(
            matches!(&def.steps[0].kind, StepKind::Service { handler, .. } if handler == "pay_invoice")
        );
        assert_eq!(def.steps[0].next.as_deref(), Some("end"));
    }

    #[test]
    fn feel_equality_becomes_double_equals() {
        assert_eq!(
            feel_condition("status = \"gold\" and amount >= 10"),
            "status == \"gold\" and amount >= 10"
        );
        assert_eq!(
            feel_condition("a != 1 or b <= 2 or c == 3"),
            "a != 1 or b <= 2 or c == 3"
        );
        assert_eq!(feel_condition("note = 'a=b'"), "note == 'a=b'");
    }

    #[test]
    fn export_then_import_gives_the_same_model() {
        for def in [order(), everything()] {
            let xml = export(&def).xml;
            let back = import(&xml).unwrap_or_else(|e| panic!("{}: {e}\n{xml}", def.process));
            assert_eq!(back, def);
        }
    }

    #[test]
    fn a_literal_time_date_is_a_date_not_a_variable() {
        let with = |date: &str| {
            let mut def = ProcessDefinition::builder("dated")
                .wait_until("hold", "holdUntil")
                .end("done")
                .build()
                .unwrap();
            let xml = export(&def).xml.replace("=holdUntil", date);
            def = import(&xml).map_err(|e| e.to_string())?;
            match &def.steps[0].kind {
                StepKind::Timer { timer } => Ok::<TimerSpec, String>(timer.clone()),
                other => panic!("{other:?}"),
            }
        };
        // It used to become a variable path named "2026-12-24T10:00:00Z", and the instance
        // failed when it got there.
        assert_eq!(
            with("2026-12-24T10:00:00Z"),
            Ok(TimerSpec::Until("2026-12-24T10:00:00Z".into()))
        );
        assert_eq!(
            with("=date and time(\"2026-12-24T10:00:00+01:00\")"),
            Ok(TimerSpec::Until("2026-12-24T10:00:00+01:00".into()))
        );
        assert_eq!(with("=holdUntil"), Ok(TimerSpec::Until("holdUntil".into())));
        assert!(with("next tuesday")
            .unwrap_err()
            .contains("neither an ISO 8601 date-time"));
        // And it runs: the timer is due at that date.
        let def = import(
            &export(
                &ProcessDefinition::builder("d")
                    .wait_until("hold", "x")
                    .end("done")
                    .build()
                    .unwrap(),
            )
            .xml
            .replace("=x", "2026-12-24T10:00:00Z"),
        )
        .unwrap();
        let start = crate::machine::Input::Start {
            business_key: "k".into(),
            variables: Default::default(),
            message_id: None,
            parent: None,
        };
        let ctx = crate::machine::Context {
            instance_id: uuid::Uuid::from_u128(1),
            next_seq: 1,
            now: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let events = crate::machine::decide(
            &crate::definition::compile(def.clone()),
            &crate::machine::InstanceState::default(),
            &start,
            ctx,
        )
        .unwrap();
        assert!(events.iter().any(|e| matches!(e, crate::machine::Event::TimerScheduled { due_at, .. } if due_at.to_rfc3339() == "2026-12-24T10:00:00+00:00")), "{events:?}");
        // Export writes it back as a literal.
        assert!(export(&def)
            .xml
            .contains(">2026-12-24T10:00:00Z</bpmn:timeDate>"));
    }

    #[test]
    fn elements_outside_the_subset_are_refused_with_their_location() {
        let xml: String = export(&order())
            .xml
            .lines()
            .map(|l| {
                if l.contains("<bpmn:receiveTask id=\"wait_card\"") {
                    l.replace("bpmn:receiveTask", "bpmn:userTask")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let e = import(&xml).unwrap_err();
        assert!(e.element.starts_with("userTask \"wait_card\""), "{e}");
        assert!(e.line > 1 && e.column > 1, "{e}");
        assert!(e.message.contains("not supported"), "{e}");
        let e = import("<bpmn:definitions xmlns:bpmn=\"x\"").unwrap_err();
        assert!(e.message.contains("not well-formed"), "{e}");
    }

    #[test]
    fn every_node_has_a_shape_its_flows_and_no_shapes_overlap() {
        for def in [order(), everything()] {
            let e = export(&def);
            let doc = roxmltree::Document::parse(&e.xml).expect("well-formed XML");
            let bpmn = |n: &roxmltree::Node| n.tag_name().namespace() == Some(BPMN_NS);
            let process = doc
                .descendants()
                .find(|n| bpmn(n) && n.tag_name().name() == "process")
                .unwrap();
            let flows: Vec<_> = process
                .children()
                .filter(|n| bpmn(n) && n.tag_name().name() == "sequenceFlow")
                .collect();
            for node in process.children().filter(|n| {
                bpmn(n)
                    && n.is_element()
                    && !matches!(n.tag_name().name(), "sequenceFlow" | "association")
            }) {
                let id = node.attribute("id").unwrap();
                assert!(e.shapes.contains_key(id), "{id} has a shape");
                // Every flow node lists its incoming and outgoing flows.
                for f in &flows {
                    let listed = |tag: &str| {
                        node.children()
                            .any(|c| c.tag_name().name() == tag && c.text() == f.attribute("id"))
                    };
                    if f.attribute("sourceRef") == Some(id) {
                        assert!(listed("outgoing"), "{id} lists {:?}", f.attribute("id"));
                    }
                    if f.attribute("targetRef") == Some(id) {
                        assert!(listed("incoming"), "{id} lists {:?}", f.attribute("id"));
                    }
                }
            }
            let plain: Vec<(&String, &Bounds)> = e
                .shapes
                .iter()
                .filter(|(id, _)| !e.boundary.contains(id))
                .collect();
            for (i, (a, ba)) in plain.iter().enumerate() {
                for (b, bb) in &plain[i + 1..] {
                    assert!(!ba.overlaps(bb), "{a} and {b} overlap: {ba:?} {bb:?}");
                }
            }
            // Extension elements come first, event definitions after the flows (the schema's
            // order).
            for node in process.children().filter(|n| n.is_element()) {
                let names: Vec<&str> = node
                    .children()
                    .filter(|c| c.is_element())
                    .map(|c| c.tag_name().name())
                    .collect();
                if let Some(i) = names.iter().position(|n| *n == "extensionElements") {
                    assert_eq!(i, 0, "{names:?}");
                }
                let last_flow = names
                    .iter()
                    .rposition(|n| matches!(*n, "incoming" | "outgoing"));
                let first_def = names.iter().position(|n| n.ends_with("EventDefinition"));
                if let (Some(f), Some(d)) = (last_flow, first_def) {
                    assert!(f < d, "{names:?}");
                }
            }
            // Boundary events sit on their host's edge.
            for b in &e.boundary {
                let host = plain
                    .iter()
                    .find(|(_, h)| h.overlaps(&e.shapes[b]))
                    .map(|(id, _)| id.as_str());
                assert!(host.is_some(), "{b} sits on a host");
            }
        }
    }
}

/// Why a BPMN document was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {element}: {message}")]
pub struct ImportError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The element (tag and id, e.g. `userTask "Activity_1"`).
    pub element: String,
    /// What is wrong.
    pub message: String,
}

const CAMUNDA7_NS: &str = "http://camunda.org/schema/1.0/bpmn";

type Xn<'a> = roxmltree::Node<'a, 'a>;

fn fail<T>(
    doc: &roxmltree::Document,
    node: Xn,
    message: impl Into<String>,
) -> Result<T, ImportError> {
    let pos = doc.text_pos_at(node.range().start);
    Err(ImportError {
        line: pos.row,
        column: pos.col,
        element: match node.attribute("id") {
            Some(id) => format!("{} \"{id}\"", node.tag_name().name()),
            None => node.tag_name().name().to_string(),
        },
        message: message.into(),
    })
}

fn is_bpmn(n: &Xn, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(BPMN_NS) && n.tag_name().name() == name
}

fn child<'a>(n: Xn<'a>, name: &str) -> Option<Xn<'a>> {
    n.children().find(|c| is_bpmn(c, name))
}

fn ext<'a>(n: Xn<'a>, ns: &str, name: &str) -> Option<Xn<'a>> {
    n.descendants().find(|c| {
        c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name
    })
}

fn lr<'a>(n: Xn<'a>, attr: &str) -> Option<&'a str> {
    n.attribute((LONGRUN_NS, attr))
}

/// A FEEL-style expression (`=orderId`) as a bare variable path or condition.
/// A BPMN `timeDate`: a literal ISO 8601 date-time (`2026-12-24T10:00:00Z`), or an
/// expression: `=deadline` (a variable) or `=date and time("2026-12-24T10:00:00Z")`.
fn time_date(text: &str) -> Option<TimerSpec> {
    let text = text.trim();
    match text.strip_prefix('=') {
        None => crate::definition::literal_date(text).map(|_| TimerSpec::Until(text.to_string())),
        Some(expr) => {
            let expr = expr.trim();
            let inner = expr
                .strip_prefix("date and time(")
                .and_then(|r| r.strip_suffix(')'))
                .map(|q| q.trim().trim_matches(|c| c == '"' || c == '\''));
            match inner {
                Some(date) => crate::definition::literal_date(date)
                    .map(|_| TimerSpec::Until(date.to_string())),
                None if !expr.is_empty()
                    && expr
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
                {
                    Some(TimerSpec::Until(expr.to_string()))
                }
                None => None,
            }
        }
    }
}

fn feel(s: &str) -> String {
    s.trim()
        .strip_prefix('=')
        .unwrap_or(s.trim())
        .trim()
        .to_string()
}

/// A FEEL condition in longrun's expression language: FEEL writes equality as `=`, longrun as
/// `==` (other operators, `and`, `or`, `not`, literals and paths are the same).
fn feel_condition(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '=' => {
                let prev = i.checked_sub(1).map(|j| chars[j]);
                let next = chars.get(i + 1).copied();
                if matches!(prev, Some('!' | '<' | '>' | '=')) || next == Some('=') {
                    out.push('=');
                } else {
                    out.push_str("==");
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// Import a BPMN 2.0 document (as the Camunda Modeler or [`export`] writes it) for the subset
/// longrun runs. Anything outside it is refused with its `line:column` and element; nothing
/// is half-read.
pub fn import(xml: &str) -> Result<ProcessDefinition, ImportError> {
    use crate::definition::{
        Boundary, ErrorRoute, GatewayEvent, RetryPolicy, Route, StartTrigger, Step,
    };
    let max = crate::definition::MAX_DOCUMENT_BYTES;
    if xml.len() > max {
        return Err(ImportError {
            line: 1,
            column: 1,
            element: "document".into(),
            message: format!(
                "the document is {} bytes; at most {max} are accepted",
                xml.len()
            ),
        });
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| ImportError {
        line: e.pos().row,
        column: e.pos().col,
        element: "document".into(),
        message: format!("not well-formed XML: {e}"),
    })?;
    let root = doc.root_element();
    // longrun's own export puts each key on its element; other modelers put it on the message.
    let ours = root.attribute("exporter") == Some("longrun");
    if !is_bpmn(&root, "definitions") {
        return fail(&doc, root, "not a BPMN 2.0 document (no bpmn:definitions)");
    }
    let processes: Vec<Xn> = root.children().filter(|c| is_bpmn(c, "process")).collect();
    let process = match processes
        .iter()
        .find(|p| p.children().any(|c| is_bpmn(&c, "startEvent")))
    {
        Some(p) => *p,
        None => return fail(&doc, root, "no process with a start event"),
    };
    let messages: HashMap<&str, (&str, Option<String>)> = root
        .children()
        .filter(|c| is_bpmn(c, "message"))
        .filter_map(|m| {
            let key = ext(m, ZEEBE_NS, "subscription")
                .and_then(|s| s.attribute("correlationKey"))
                .map(feel)
                .filter(|_| !ours);
            Some((m.attribute("id")?, (m.attribute("name")?, key)))
        })
        .collect();
    let error_codes: HashMap<&str, &str> = root
        .children()
        .filter(|c| is_bpmn(c, "error"))
        .filter_map(|e| {
            Some((
                e.attribute("id")?,
                e.attribute("errorCode").or(e.attribute("name"))?,
            ))
        })
        .collect();
    let message_of = |n: Xn, r: Option<&str>| -> Result<(String, Option<String>), ImportError> {
        let Some(r) = r else {
            return fail(&doc, n, "needs a message (messageRef)");
        };
        match messages.get(r) {
            Some((name, key)) => Ok((name.to_string(), key.clone())),
            None => fail(&doc, n, format!("refers to an unknown message \"{r}\"")),
        }
    };
    let id_of = |n: Xn| -> Result<String, ImportError> {
        let raw = n.attribute("id").unwrap_or("");
        let id: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if id.is_empty() || !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            return fail(&doc, n, "an element id must start with a letter");
        }
        Ok(id)
    };

    // Flows.
    struct F<'a> {
        id: &'a str,
        from: &'a str,
        to: &'a str,
        condition: Option<String>,
    }
    let mut flows: Vec<F> = Vec::new();
    let mut nodes: Vec<Xn> = Vec::new();
    let mut associations: Vec<(&str, &str)> = Vec::new();
    for c in process.children().filter(|c| c.is_element()) {
        if c.tag_name().namespace() != Some(BPMN_NS) {
            continue;
        }
        match c.tag_name().name() {
            "sequenceFlow" => flows.push(F {
                id: c.attribute("id").unwrap_or(""),
                from: c.attribute("sourceRef").unwrap_or(""),
                to: c.attribute("targetRef").unwrap_or(""),
                condition: child(c, "conditionExpression").and_then(|e| e.text()).map(feel),
            }),
            "association" => associations.push((
                c.attribute("sourceRef").unwrap_or(""),
                c.attribute("targetRef").unwrap_or(""),
            )),
            "extensionElements" | "documentation" | "laneSet" | "textAnnotation" => {}
            "startEvent" | "endEvent" | "serviceTask" | "sendTask" | "receiveTask"
            | "intermediateCatchEvent" | "intermediateThrowEvent" | "exclusiveGateway"
            | "parallelGateway" | "eventBasedGateway" | "callActivity" | "boundaryEvent" => {
                if let Some(l) = c.children().find(|x| {
                    is_bpmn(x, "multiInstanceLoopCharacteristics")
                        || is_bpmn(x, "standardLoopCharacteristics")
                }) {
                    return fail(&doc, l, "loops and multi-instance are not supported (model the loop with a gateway)");
                }
                nodes.push(c)
            }
            other => {
                return fail(
                    &doc,
                    c,
                    format!("{other} is not supported (longrun runs start and end events, service, send and receive tasks, intermediate and boundary events, exclusive, parallel and event-based gateways, call activities and compensation)"),
                )
            }
        }
    }
    let by_id: HashMap<&str, Xn> = nodes
        .iter()
        .filter_map(|n| Some((n.attribute("id")?, *n)))
        .collect();
    let out_of = |id: &str| -> Vec<&F> { flows.iter().filter(|f| f.from == id).collect() };
    let in_of = |id: &str| -> Vec<&F> { flows.iter().filter(|f| f.to == id).collect() };
    let target = |f: &F| -> Result<String, ImportError> {
        match by_id.get(f.to) {
            Some(n) => id_of(*n),
            None => fail(
                &doc,
                process,
                format!("flow {} leads to unknown element \"{}\"", f.id, f.to),
            ),
        }
    };
    let single_next = |n: Xn| -> Result<Option<String>, ImportError> {
        let outs = out_of(n.attribute("id").unwrap_or(""));
        match outs.as_slice() {
            [] => Ok(None),
            [f] => target(f).map(Some),
            _ => fail(
                &doc,
                n,
                "has more than one outgoing flow: fork with a parallel or exclusive gateway",
            ),
        }
    };
    let timer_of = |n: Xn, def: Xn| -> Result<TimerSpec, ImportError> {
        if let Some(d) = child(def, "timeDuration").and_then(|t| t.text()) {
            return Ok(TimerSpec::After(feel(d)));
        }
        if let Some(d) = child(def, "timeDate").and_then(|t| t.text()) {
            return match time_date(d) {
                Some(spec) => Ok(spec),
                None => fail(
                    &doc,
                    n,
                    format!(
                        "timeDate \"{}\" is neither an ISO 8601 date-time (2026-12-24T10:00:00Z) nor an expression (=deadline)",
                        d.trim().chars().take(40).collect::<String>()
                    ),
                ),
            };
        }
        if let Some(d) = child(def, "timeCycle").and_then(|t| t.text()) {
            return Ok(TimerSpec::Cycle(feel(d)));
        }
        fail(&doc, n, "a timer needs timeDuration, timeDate or timeCycle")
    };
    let handler_of = |n: Xn| -> Option<String> {
        ext(n, ZEEBE_NS, "taskDefinition")
            .and_then(|t| t.attribute("type"))
            .or(n.attribute((CAMUNDA7_NS, "topic")))
            .map(str::to_string)
    };
    let output_of = |n: Xn| {
        lr(n, "output")
            .map(|v| Output::Variable(v.to_string()))
            .unwrap_or_default()
    };
    let list_of = |v: Option<&str>| {
        v.map(|s| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };

    // Auxiliary nodes: boundary events, the catch events of event gateways, compensation
    // tasks, and a reminder's throw and end events.
    let mut auxiliary: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for n in &nodes {
        let id = n.attribute("id").unwrap_or("");
        let name = n.tag_name().name();
        if name == "boundaryEvent" || n.attribute("isForCompensation") == Some("true") {
            auxiliary.insert(id);
        }
        if name == "intermediateCatchEvent"
            && in_of(id).iter().any(|f| {
                by_id
                    .get(f.from)
                    .is_some_and(|g| is_bpmn(g, "eventBasedGateway"))
            })
        {
            auxiliary.insert(id);
        }
        if name == "intermediateThrowEvent"
            && child(*n, "messageEventDefinition").is_some()
            && in_of(id).iter().any(|f| {
                by_id.get(f.from).is_some_and(|b| {
                    is_bpmn(b, "boundaryEvent") && b.attribute("cancelActivity") == Some("false")
                })
            })
        {
            auxiliary.insert(id);
            for f in out_of(id) {
                if by_id.get(f.to).is_some_and(|e| is_bpmn(e, "endEvent")) {
                    auxiliary.insert(f.to);
                }
            }
        }
    }

    let starts: Vec<&Xn> = nodes.iter().filter(|n| is_bpmn(n, "startEvent")).collect();
    let start_node = match starts.as_slice() {
        [s] => **s,
        [] => return fail(&doc, process, "no start event"),
        [_, second, ..] => return fail(&doc, **second, "more than one start event"),
    };
    let start = match child(start_node, "messageEventDefinition") {
        Some(m) => Some(StartTrigger {
            message: message_of(m, m.attribute("messageRef"))?.0,
        }),
        None => None,
    };
    for d in start_node
        .children()
        .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
    {
        if !is_bpmn(&d, "messageEventDefinition") {
            return fail(&doc, d, "a start event is plain or a message start event");
        }
    }
    let first = single_next(start_node)?;

    let mut steps: Vec<Step> = Vec::new();
    for n in &nodes {
        let raw_id = n.attribute("id").unwrap_or("");
        if auxiliary.contains(raw_id) || is_bpmn(n, "startEvent") {
            continue;
        }
        let id = id_of(*n)?;
        let defs: Vec<Xn> = n
            .children()
            .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
            .collect();
        let routed = matches!(
            n.tag_name().name(),
            "exclusiveGateway" | "eventBasedGateway"
        ) || (is_bpmn(n, "parallelGateway") && out_of(raw_id).len() > 1);
        let next = if routed { None } else { single_next(*n)? };
        let kind = match n.tag_name().name() {
            "serviceTask" => {
                let Some(handler) = handler_of(*n) else {
                    return fail(
                        &doc,
                        *n,
                        "a service task needs zeebe:taskDefinition type (or camunda:topic)",
                    );
                };
                let retry = match lr(*n, "retry") {
                    Some(j) => Some(
                        serde_json::from_str::<RetryPolicy>(j)
                            .or_else(|e| fail(&doc, *n, format!("longrun:retry: {e}")))?,
                    ),
                    None => None,
                };
                StepKind::Service {
                    handler,
                    output: output_of(*n),
                    timeout: lr(*n, "timeout").map(str::to_string),
                    retry,
                    errors: Vec::new(),
                }
            }
            "sendTask" => StepKind::Send {
                message: message_of(*n, n.attribute("messageRef"))?.0,
                to: lr(*n, "to").map(str::to_string),
                key: lr(*n, "key").map(str::to_string),
                payload: list_of(lr(*n, "payload")),
            },
            "receiveTask" => {
                let (message, key) = message_of(*n, n.attribute("messageRef"))?;
                StepKind::Receive {
                    message,
                    key: lr(*n, "key").map(str::to_string).or(key),
                    output: output_of(*n),
                }
            }
            "intermediateCatchEvent" => match defs.first() {
                Some(d) if is_bpmn(d, "timerEventDefinition") => StepKind::Timer {
                    timer: timer_of(*n, *d)?,
                },
                Some(d) if is_bpmn(d, "messageEventDefinition") => {
                    let (message, key) = message_of(*d, d.attribute("messageRef"))?;
                    StepKind::Receive {
                        message,
                        key: lr(*n, "key").map(str::to_string).or(key),
                        output: output_of(*n),
                    }
                }
                _ => {
                    return fail(
                        &doc,
                        *n,
                        "an intermediate catch event is a timer or a message",
                    )
                }
            },
            "intermediateThrowEvent" => match defs.first() {
                Some(d) if is_bpmn(d, "compensateEventDefinition") => StepKind::Compensate,
                Some(d) if is_bpmn(d, "messageEventDefinition") => StepKind::Send {
                    message: message_of(*d, d.attribute("messageRef"))?.0,
                    to: lr(*n, "to").map(str::to_string),
                    key: lr(*n, "key").map(str::to_string),
                    payload: list_of(lr(*n, "payload")),
                },
                _ => {
                    return fail(
                        &doc,
                        *n,
                        "an intermediate throw event sends a message or compensates",
                    )
                }
            },
            "endEvent" => {
                if let Some(d) = defs.first() {
                    return fail(&doc, *d, "an end event is plain (terminate, error and other end events are not supported)");
                }
                StepKind::End
            }
            "exclusiveGateway" => {
                let default = n.attribute("default");
                let mut routes = Vec::new();
                let mut default_step = None;
                for f in out_of(raw_id) {
                    if Some(f.id) == default {
                        default_step = Some(target(f)?);
                    } else {
                        match &f.condition {
                            Some(c) => {
                                let when = feel_condition(c);
                                if let Err(e) = crate::expr::Expr::parse(&when) {
                                    let flow = process
                                        .children()
                                        .find(|x| {
                                            is_bpmn(x, "sequenceFlow")
                                                && x.attribute("id") == Some(f.id)
                                        })
                                        .unwrap_or(*n);
                                    return fail(&doc, flow, format!("condition `{c}`: {e}"));
                                }
                                routes.push(Route {
                                    when,
                                    next: target(f)?,
                                })
                            }
                            None => {
                                return fail(
                                    &doc,
                                    *n,
                                    format!(
                                        "flow {} has no condition and is not the default",
                                        f.id
                                    ),
                                )
                            }
                        }
                    }
                }
                StepKind::Exclusive {
                    routes,
                    default: default_step,
                }
            }
            "parallelGateway" => {
                let outs = out_of(raw_id);
                if outs.len() > 1 {
                    if in_of(raw_id).len() > 1 {
                        return fail(
                            &doc,
                            *n,
                            "a parallel gateway that both joins and forks: use two gateways",
                        );
                    }
                    StepKind::Parallel {
                        branches: outs.iter().map(|f| target(f)).collect::<Result<_, _>>()?,
                    }
                } else {
                    StepKind::Join
                }
            }
            "eventBasedGateway" => {
                let mut events = Vec::new();
                let mut key = lr(*n, "key").map(str::to_string);
                for f in out_of(raw_id) {
                    let Some(e) = by_id.get(f.to) else {
                        return fail(&doc, *n, "an event gateway leads to catch events");
                    };
                    let d = e.children().find(|c| {
                        c.is_element() && c.tag_name().name().ends_with("EventDefinition")
                    });
                    let on = match d {
                        Some(d) if is_bpmn(&d, "messageEventDefinition") => {
                            let (m, k) = message_of(d, d.attribute("messageRef"))?;
                            if key.is_none() {
                                key = k;
                            }
                            BoundaryEvent::Message(m)
                        }
                        Some(d) if is_bpmn(&d, "timerEventDefinition") => {
                            BoundaryEvent::Timer(timer_of(*e, d)?)
                        }
                        _ => {
                            return fail(
                                &doc,
                                *e,
                                "an event gateway's events are message or timer catch events",
                            )
                        }
                    };
                    let Some(after) = single_next(*e)? else {
                        return fail(&doc, *e, "needs an outgoing flow");
                    };
                    events.push(GatewayEvent {
                        on,
                        output: output_of(*e),
                        next: after,
                    });
                }
                StepKind::EventGateway { key, events }
            }
            "callActivity" => {
                let Some(process) = ext(*n, ZEEBE_NS, "calledElement")
                    .and_then(|c| c.attribute("processId"))
                    .or(n.attribute("calledElement"))
                else {
                    return fail(
                        &doc,
                        *n,
                        "a call activity needs zeebe:calledElement processId",
                    );
                };
                StepKind::Call {
                    process: feel(process),
                    input: list_of(lr(*n, "payload")),
                    output: output_of(*n),
                }
            }
            other => return fail(&doc, *n, format!("{other} is not supported")),
        };
        // Boundary events attached to it.
        let mut boundary = Vec::new();
        let mut compensate = None;
        let mut errors = Vec::new();
        for b in nodes
            .iter()
            .filter(|b| is_bpmn(b, "boundaryEvent") && b.attribute("attachedToRef") == Some(raw_id))
        {
            let bid = b.attribute("id").unwrap_or("");
            let d = b
                .children()
                .find(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"));
            let interrupting = b.attribute("cancelActivity") != Some("false");
            match d {
                Some(d) if is_bpmn(&d, "errorEventDefinition") => {
                    let code = d
                        .attribute("errorRef")
                        .and_then(|r| error_codes.get(r))
                        .map(|c| c.to_string());
                    let (Some(code), Some(after)) = (code, single_next(*b)?) else {
                        return fail(&doc, *b, "an error boundary event needs an error with a code and an outgoing flow");
                    };
                    errors.push(ErrorRoute { code, next: after });
                }
                Some(d) if is_bpmn(&d, "compensateEventDefinition") => {
                    let Some(handler) = associations
                        .iter()
                        .find(|a| a.0 == bid)
                        .and_then(|a| by_id.get(a.1))
                    else {
                        return fail(&doc, *b, "a compensation boundary event needs an association to a task marked for compensation");
                    };
                    compensate = Some(if is_bpmn(handler, "sendTask") {
                        Compensation::Send {
                            send: message_of(*handler, handler.attribute("messageRef"))?.0,
                            to: lr(*handler, "to").map(str::to_string),
                        }
                    } else {
                        match handler_of(*handler) {
                            Some(h) => Compensation::Handler { handler: h },
                            None => {
                                return fail(
                                    &doc,
                                    *handler,
                                    "a compensation task needs a handler or a message",
                                )
                            }
                        }
                    });
                }
                Some(d)
                    if is_bpmn(&d, "timerEventDefinition")
                        || is_bpmn(&d, "messageEventDefinition") =>
                {
                    let on = if is_bpmn(&d, "timerEventDefinition") {
                        BoundaryEvent::Timer(timer_of(*b, d)?)
                    } else {
                        BoundaryEvent::Message(message_of(d, d.attribute("messageRef"))?.0)
                    };
                    if interrupting {
                        boundary.push(Boundary {
                            on,
                            interrupting,
                            next: single_next(*b)?,
                            send: None,
                        });
                    } else {
                        // A reminder: the boundary event leads to a message throw event.
                        let throw = out_of(bid).first().and_then(|f| by_id.get(f.to)).copied();
                        let send = match throw {
                            Some(t) => {
                                let md = child(t, "messageEventDefinition");
                                match md {
                                    Some(md) => Some((message_of(md, md.attribute("messageRef"))?.0, lr(t, "to").map(str::to_string))),
                                    None => return fail(&doc, t, "a non-interrupting boundary event leads to a message throw event"),
                                }
                            }
                            None => return fail(
                                &doc,
                                *b,
                                "a non-interrupting boundary event leads to a message throw event",
                            ),
                        };
                        boundary.push(Boundary {
                            on,
                            interrupting,
                            next: None,
                            send,
                        });
                    }
                }
                _ => {
                    return fail(
                        &doc,
                        *b,
                        "a boundary event is a timer, a message, an error or a compensation",
                    )
                }
            }
        }
        let kind = match kind {
            StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                ..
            } => StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                errors,
            },
            other if !errors.is_empty() => {
                return fail(
                    &doc,
                    *n,
                    format!(
                        "only service tasks route errors, not a {}",
                        other.type_name()
                    ),
                )
            }
            other => other,
        };
        steps.push(Step {
            id,
            kind,
            next,
            boundary,
            compensate,
        });
    }
    // The start's target is the first step.
    if let Some(first) = first {
        if let Some(i) = steps.iter().position(|s| s.id == first) {
            let s = steps.remove(i);
            steps.insert(0, s);
        }
    }
    let retry = match lr(process, "retry") {
        Some(j) => Some(
            serde_json::from_str::<RetryPolicy>(j)
                .or_else(|e| fail(&doc, process, format!("longrun:retry: {e}")))?,
        ),
        None => None,
    };
    let variables = match lr(process, "variables") {
        Some(j) => serde_json::from_str(j)
            .or_else(|e| fail(&doc, process, format!("longrun:variables: {e}")))?,
        None => Default::default(),
    };
    let unique_business_key = match lr(process, "uniqueBusinessKey") {
        None => None,
        Some("return_existing") => Some(crate::definition::UniqueKey::ReturnExisting),
        Some("refuse") => Some(crate::definition::UniqueKey::Refuse),
        Some(other) => {
            return fail(
                &doc,
                process,
                format!("longrun:uniqueBusinessKey is return_existing or refuse, not \"{other}\""),
            )
        }
    };
    let def = ProcessDefinition {
        process: id_of(process)?,
        start,
        retry,
        variables,
        unique_business_key,
        steps,
    };
    if let Err(e) = def.validate() {
        return fail(&doc, process, format!("the process is not valid: {e}"));
    }
    Ok(def)
}
