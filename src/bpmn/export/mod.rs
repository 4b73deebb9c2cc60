//! Export: a definition as BPMN 2.0 XML with a computed layout.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::definition::{BoundaryEvent, Output, ProcessDefinition, StepKind, TimerSpec};

use super::*;

mod graph;
mod task;

use graph::Graph;

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
    /// The embedded subprocess it is in, if any.
    pub(super) scope: Option<String>,
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

pub(super) fn timer_xml(t: &TimerSpec) -> String {
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

/// The id of a message's `<bpmn:message>` element.
fn message_ref(name: &str) -> String {
    format!(
        "message_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// The id of a signal's `<bpmn:signal>` element.
fn signal_ref(name: &str) -> String {
    format!(
        "signal_{}",
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// Export a definition as BPMN XML with a computed layout.
pub fn export(def: &ProcessDefinition) -> Exported {
    let Graph {
        nodes,
        flows,
        messages,
        errors,
        associations,
        signals,
    } = graph::graph(def);
    // The scopes: the process, then each embedded subprocess; each is laid out on a plane of
    // its own (a collapsed subprocess opens onto its plane in the modeler), one below the
    // other so that no two shapes overlap.
    let mut scopes: Vec<Option<String>> = vec![None];
    scopes.extend(
        nodes
            .iter()
            .filter(|n| n.tag == "subProcess")
            .map(|n| Some(n.id.clone())),
    );
    let scope_of: HashMap<&str, Option<&str>> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.scope.as_deref()))
        .collect();
    let flow_scope = |f: &Flow| scope_of[f.from.as_str()];
    let mut shapes = BTreeMap::new();
    let mut top = 0.0;
    for scope in &scopes {
        let start = scope
            .as_ref()
            .map_or("start".to_string(), |s| format!("{s}_start"));
        let mut mine: Vec<Node> = nodes
            .iter()
            .filter(|n| n.scope == *scope)
            .cloned()
            .collect();
        if let Some(i) = mine.iter().position(|n| n.id == start) {
            let s = mine.remove(i);
            mine.insert(0, s);
        }
        let my_flows: Vec<Flow> = flows
            .iter()
            .filter(|f| flow_scope(f) == scope.as_deref())
            .cloned()
            .collect();
        let my_associations: Vec<(String, String)> = associations
            .iter()
            .filter(|(a, _)| scope_of[a.as_str()] == scope.as_deref())
            .cloned()
            .collect();
        let placed = super::layout::layout(&mine, &my_flows, &my_associations);
        let bottom = placed.values().map(|b| b.y + b.h).fold(0.0, f64::max);
        for (id, mut b) in placed {
            b.y += top;
            shapes.insert(id, b);
        }
        top += bottom + 60.0;
    }

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
    if let Some(r) = &def.retention {
        process_attrs += &format!(" longrun:retention=\"{}\"", esc(r));
    }
    let _ = writeln!(
        x,
        "  <bpmn:process id=\"{}\" isExecutable=\"true\"{process_attrs}>",
        esc(&def.process)
    );
    write_scope(
        &mut x,
        None,
        &Elements {
            nodes: &nodes,
            flows: &flows,
            associations: &associations,
            incoming: &incoming,
            outgoing: &outgoing,
            scope_of: &scope_of,
        },
        4,
    );
    let _ = writeln!(x, "  </bpmn:process>");
    for name in &signals {
        let _ = writeln!(
            x,
            "  <bpmn:signal id=\"{}\" name=\"{}\" />",
            signal_ref(name),
            esc(name)
        );
    }
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
    // Diagram interchange: a plane per scope, with a shape per node and an edge per flow and
    // association.
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
    for scope in &scopes {
        let element = scope.as_deref().unwrap_or(&def.process);
        let _ = writeln!(
            x,
            "  <bpmndi:BPMNDiagram id=\"diagram_{p}\">",
            p = esc(element)
        );
        let _ = writeln!(
            x,
            "    <bpmndi:BPMNPlane id=\"plane_{p}\" bpmnElement=\"{p}\">",
            p = esc(element)
        );
        for n in nodes.iter().filter(|n| n.scope == *scope) {
            let b = shapes[&n.id];
            let collapsed = if n.tag == "subProcess" {
                " isExpanded=\"false\""
            } else {
                ""
            };
            let _ = writeln!(
                x,
                "      <bpmndi:BPMNShape id=\"{id}_di\" bpmnElement=\"{id}\"{collapsed}><dc:Bounds x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" /></bpmndi:BPMNShape>",
                b.x, b.y, b.w, b.h, id = n.id
            );
        }
        for f in flows.iter().filter(|f| flow_scope(f) == scope.as_deref()) {
            edge(
                &mut x,
                &f.id,
                &shapes[&f.from],
                &shapes[&f.to],
                is_boundary[f.from.as_str()],
            );
        }
        for (i, (from, to)) in associations.iter().enumerate() {
            if scope_of[from.as_str()] == scope.as_deref() {
                edge(
                    &mut x,
                    &format!("association_{}", i + 1),
                    &shapes[from],
                    &shapes[to],
                    true,
                );
            }
        }
        let _ = writeln!(x, "    </bpmndi:BPMNPlane>");
        let _ = writeln!(x, "  </bpmndi:BPMNDiagram>");
    }
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

/// What the XML of one scope is written from.
struct Elements<'a> {
    nodes: &'a [Node],
    flows: &'a [Flow],
    associations: &'a [(String, String)],
    incoming: &'a HashMap<&'a str, Vec<&'a str>>,
    outgoing: &'a HashMap<&'a str, Vec<&'a str>>,
    scope_of: &'a HashMap<&'a str, Option<&'a str>>,
}

/// The elements of one scope (the process, or a subprocess inside its element), indented.
fn write_scope(x: &mut String, scope: Option<&str>, e: &Elements, indent: usize) {
    let pad = " ".repeat(indent);
    for n in e.nodes.iter().filter(|n| n.scope.as_deref() == scope) {
        let _ = write!(x, "{pad}<bpmn:{} id=\"{}\"{}>", n.tag, n.id, n.attrs);
        // The schema's order: extension elements, then incoming and outgoing flows, then
        // event definitions (or a subprocess's elements).
        let (ext, rest) = match n.inner.find("</bpmn:extensionElements>") {
            Some(i) if n.inner.starts_with("<bpmn:extensionElements>") => {
                n.inner.split_at(i + "</bpmn:extensionElements>".len())
            }
            _ => ("", n.inner.as_str()),
        };
        x.push_str(ext);
        for f in e.incoming.get(n.id.as_str()).into_iter().flatten() {
            let _ = write!(x, "<bpmn:incoming>{f}</bpmn:incoming>");
        }
        for f in e.outgoing.get(n.id.as_str()).into_iter().flatten() {
            let _ = write!(x, "<bpmn:outgoing>{f}</bpmn:outgoing>");
        }
        if n.tag == "subProcess" {
            let _ = writeln!(x, "{rest}");
            write_scope(x, Some(&n.id), e, indent + 2);
            let _ = writeln!(x, "{pad}</bpmn:{}>", n.tag);
        } else {
            let _ = writeln!(x, "{rest}</bpmn:{}>", n.tag);
        }
    }
    for f in e
        .flows
        .iter()
        .filter(|f| e.scope_of[f.from.as_str()] == scope)
    {
        match &f.condition {
            None => {
                let _ = writeln!(
                    x,
                    "{pad}<bpmn:sequenceFlow id=\"{}\" sourceRef=\"{}\" targetRef=\"{}\" />",
                    f.id, f.from, f.to
                );
            }
            Some(c) => {
                let _ = writeln!(
                    x,
                    "{pad}<bpmn:sequenceFlow id=\"{}\" sourceRef=\"{}\" targetRef=\"{}\"><bpmn:conditionExpression xsi:type=\"bpmn:tFormalExpression\">={}</bpmn:conditionExpression></bpmn:sequenceFlow>",
                    f.id, f.from, f.to, esc(c)
                );
            }
        }
    }
    for (i, (from, to)) in e.associations.iter().enumerate() {
        if e.scope_of[from.as_str()] == scope {
            let _ = writeln!(
                x,
                "{pad}<bpmn:association id=\"association_{}\" associationDirection=\"One\" sourceRef=\"{from}\" targetRef=\"{to}\" />",
                i + 1
            );
        }
    }
}
