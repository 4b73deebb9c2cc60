//! Import: BPMN 2.0 XML (Camunda Modeler, Zeebe and Camunda 7 extensions) as a definition.
//!
//! [`import`] checks the document, then an [`Importer`] holds what the whole process shares
//! (its messages, errors, flows and nodes) and reads it step by step (`step.rs`); the XML
//! helpers and the FEEL reading are in `xml.rs`.

use std::collections::{HashMap, HashSet};

use crate::definition::{ProcessDefinition, RetryPolicy, Step, TimerSpec};

use super::{BPMN_NS, ZEEBE_NS};

mod io;
mod multi;
mod start;
mod step;
mod task;
mod throws;
mod xml;

#[cfg(test)]
pub(super) use xml::feel_condition;
use xml::{child, ext, feel, is_bpmn, lr, time_date};

/// Why a BPMN document was refused, and where: the first problem, and the others found in the
/// same file (each element is looked at; one line each when printed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The element (tag and id, e.g. `userTask "Activity_1"`).
    pub element: String,
    /// What is wrong.
    pub message: String,
    /// The other problems in the file, in document order.
    pub others: Vec<ImportError>,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.line, self.column, self.element, self.message
        )?;
        for o in &self.others {
            write!(f, "\n{}:{}: {}: {}", o.line, o.column, o.element, o.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportError {}

impl ImportError {
    /// The first of `problems` with the rest as its others (`None` if there are none).
    fn all(mut problems: Vec<ImportError>) -> Option<ImportError> {
        if problems.is_empty() {
            return None;
        }
        problems.sort_by_key(|p| (p.line, p.column));
        let mut first = problems.remove(0);
        first.others.extend(problems);
        Some(first)
    }
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
        others: Vec::new(),
    })
}

/// Import a BPMN 2.0 document (as the Camunda Modeler or [`export`](super::export) writes it)
/// for the subset longrun runs. Anything outside it is refused with its `line:column` and
/// element; nothing is half-read.
pub fn import(xml: &str) -> Result<ProcessDefinition, ImportError> {
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
            others: Vec::new(),
        });
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| ImportError {
        line: e.pos().row,
        column: e.pos().col,
        element: "document".into(),
        message: format!("not well-formed XML: {e}"),
        others: Vec::new(),
    })?;
    Importer::new(&doc)?.definition()
}

/// A BPMN id as a longrun id: lower case, `_` for anything but ASCII letters and digits
/// (`Activity_1` is `activity_1`, `start-end` is `start_end`).
fn normal_id(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A sequence flow.
struct Flow<'a> {
    id: &'a str,
    from: &'a str,
    to: &'a str,
    condition: Option<String>,
}

/// What the elements of one process share while they are read.
struct Importer<'a> {
    doc: &'a roxmltree::Document<'a>,
    process: Xn<'a>,
    /// Message id -> its name and (for other modelers) its correlation key.
    messages: HashMap<&'a str, (&'a str, Option<String>)>,
    /// Signal id -> its name.
    signals: HashMap<&'a str, &'a str>,
    /// Error id -> its code.
    error_codes: HashMap<&'a str, &'a str>,
    flows: Vec<Flow<'a>>,
    nodes: Vec<Xn<'a>>,
    by_id: HashMap<&'a str, Xn<'a>>,
    /// (source, target) of each association (compensation handlers).
    associations: Vec<(&'a str, &'a str)>,
    /// Elements found outside the subset, reported with the rest, and their ids (a flow to
    /// one is not a second problem).
    unsupported: Vec<ImportError>,
    unsupported_ids: HashSet<&'a str>,
    /// Element id -> the embedded subprocess it is in (elements of the process are in none).
    parent_of: HashMap<&'a str, &'a str>,
}

impl<'a> Importer<'a> {
    /// Check the document's shape and collect the executable process's flows and nodes.
    fn new(doc: &'a roxmltree::Document<'a>) -> Result<Self, ImportError> {
        let root = doc.root_element();
        // longrun's own export puts each key on its element; other modelers put it on the
        // message.
        let ours = root.attribute("exporter") == Some("longrun");
        if !is_bpmn(&root, "definitions") {
            return fail(doc, root, "not a BPMN 2.0 document (no bpmn:definitions)");
        }
        let processes: Vec<Xn> = root.children().filter(|c| is_bpmn(c, "process")).collect();
        let process = match processes
            .iter()
            .find(|p| p.children().any(|c| is_bpmn(&c, "startEvent")))
        {
            Some(p) => *p,
            None => return fail(doc, root, "no process with a start event"),
        };
        // A second process that would run is not silently dropped with everything in it.
        if let Some(other) = processes.iter().find(|p| {
            **p != process
                && p.attribute("isExecutable") != Some("false")
                && p.children().any(|c| is_bpmn(&c, "startEvent"))
        }) {
            return fail(
                doc,
                *other,
                "a second executable process: longrun deploys one process per file (split the file, or mark the other isExecutable=\"false\")",
            );
        }
        let messages = root
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
        let signals = root
            .children()
            .filter(|c| is_bpmn(c, "signal"))
            .filter_map(|s| Some((s.attribute("id")?, s.attribute("name")?)))
            .collect();
        let error_codes = root
            .children()
            .filter(|c| is_bpmn(c, "error"))
            .filter_map(|e| {
                Some((
                    e.attribute("id")?,
                    e.attribute("errorCode").or(e.attribute("name"))?,
                ))
            })
            .collect();
        let mut flows = Vec::new();
        let mut nodes = Vec::new();
        let mut associations = Vec::new();
        let mut unsupported = Vec::new();
        let mut unsupported_ids = HashSet::new();
        let mut parent_of = HashMap::new();
        // The process, then each embedded subprocess found in it (their elements are the
        // steps `in` them).
        let mut containers: Vec<(Xn, Option<&str>)> = vec![(process, None)];
        while let Some((container, parent)) = containers.pop() {
            for c in container.children().filter(|c| c.is_element()) {
                if c.tag_name().namespace() != Some(BPMN_NS) {
                    continue;
                }
                if let (Some(p), Some(id)) = (parent, c.attribute("id")) {
                    parent_of.insert(id, p);
                }
                match c.tag_name().name() {
                    "subProcess" => {
                        if let Some(l) = c
                            .children()
                            .find(|x| is_bpmn(x, "standardLoopCharacteristics"))
                        {
                            unsupported.extend(
                            fail::<()>(doc, l, "standard loops are not supported (model the loop with a gateway, or run the subprocess per element of a list: multi-instance)")
                                .err(),
                        );
                            continue;
                        }
                        nodes.push(c);
                        containers.push((c, c.attribute("id")));
                    }
                    "sequenceFlow" => flows.push(Flow {
                        id: c.attribute("id").unwrap_or(""),
                        from: c.attribute("sourceRef").unwrap_or(""),
                        to: c.attribute("targetRef").unwrap_or(""),
                        condition: child(c, "conditionExpression")
                            .and_then(|e| e.text())
                            .map(feel),
                    }),
                    "association" => associations.push((
                        c.attribute("sourceRef").unwrap_or(""),
                        c.attribute("targetRef").unwrap_or(""),
                    )),
                    // What does not change how an instance runs: documentation, lanes, notes,
                    // data objects and stores (longrun's data are the instance variables), groups.
                    "extensionElements"
                    | "documentation"
                    | "laneSet"
                    | "textAnnotation"
                    | "dataObject"
                    | "dataObjectReference"
                    | "dataStoreReference"
                    | "group" => {}
                    // A subprocess's own flow references and loop characteristics (read with it).
                    "incoming" | "outgoing" | "multiInstanceLoopCharacteristics"
                        if parent.is_some() => {}
                    "startEvent"
                    | "endEvent"
                    | "serviceTask"
                    | "sendTask"
                    | "receiveTask"
                    | "intermediateCatchEvent"
                    | "intermediateThrowEvent"
                    | "exclusiveGateway"
                    | "inclusiveGateway"
                    | "parallelGateway"
                    | "eventBasedGateway"
                    | "callActivity"
                    | "task"
                    | "manualTask"
                    | "userTask"
                    | "boundaryEvent" => {
                        if let Some(l) = c
                            .children()
                            .find(|x| is_bpmn(x, "standardLoopCharacteristics"))
                        {
                            unsupported.extend(
                            fail::<()>(
                                doc,
                                l,
                                "standard loops are not supported (model the loop with a gateway, or run the step per element of a list: multi-instance)",
                            )
                            .err(),
                        );
                            continue;
                        }
                        nodes.push(c)
                    }
                    other => {
                        unsupported_ids.insert(c.attribute("id").unwrap_or(""));
                        unsupported.extend(
                    fail::<()>(
                        doc,
                        c,
                        format!("{other} is not supported (longrun runs start and end events, service, send, receive and user tasks, intermediate and boundary events, plain and manual tasks, exclusive, inclusive, parallel and event-based gateways, call activities, embedded subprocesses and compensation)"),
                    )
                    .err(),
                    )
                    }
                }
            }
        }
        let by_id = nodes
            .iter()
            .filter_map(|n| Some((n.attribute("id")?, *n)))
            .collect();
        Ok(Importer {
            doc,
            process,
            messages,
            signals,
            error_codes,
            flows,
            nodes,
            by_id,
            associations,
            unsupported,
            unsupported_ids,
            parent_of,
        })
    }

    fn fail<T>(&self, node: Xn, message: impl Into<String>) -> Result<T, ImportError> {
        fail(self.doc, node, message)
    }

    /// The message an element refers to: its name and correlation key (if the message has one).
    fn message_of(&self, n: Xn, r: Option<&str>) -> Result<(String, Option<String>), ImportError> {
        let Some(r) = r else {
            return self.fail(n, "needs a message (messageRef)");
        };
        match self.messages.get(r) {
            Some((name, key)) => Ok((name.to_string(), key.clone())),
            None => self.fail(n, format!("refers to an unknown message \"{r}\"")),
        }
    }

    /// The signal an element's `signalEventDefinition` refers to: its name.
    fn signal_of(&self, d: Xn) -> Result<String, ImportError> {
        let Some(r) = d.attribute("signalRef") else {
            return self.fail(d, "needs a signal (signalRef)");
        };
        match self.signals.get(r) {
            Some(name) => Ok(name.to_string()),
            None => self.fail(d, format!("refers to an unknown signal \"{r}\"")),
        }
    }

    /// An element's id as a longrun step id (lower case, `_` for anything else).
    fn id_of(&self, n: Xn) -> Result<String, ImportError> {
        let id = normal_id(n.attribute("id").unwrap_or(""));
        if id.is_empty() || !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            return self.fail(n, "an element id must start with a letter");
        }
        Ok(id)
    }

    fn out_of(&self, id: &str) -> Vec<&Flow<'a>> {
        self.flows.iter().filter(|f| f.from == id).collect()
    }

    fn in_of(&self, id: &str) -> Vec<&Flow<'a>> {
        self.flows.iter().filter(|f| f.to == id).collect()
    }

    /// The step a flow leads to.
    fn target(&self, f: &Flow) -> Result<String, ImportError> {
        match self.by_id.get(f.to) {
            Some(n) => self.id_of(*n),
            // Refused already, with its own location.
            None if self.unsupported_ids.contains(f.to) => Ok(normal_id(f.to)),
            None => self.fail(
                self.process,
                format!("flow {} leads to unknown element \"{}\"", f.id, f.to),
            ),
        }
    }

    /// The one step after `n`, if any.
    fn single_next(&self, n: Xn) -> Result<Option<String>, ImportError> {
        let outs = self.out_of(n.attribute("id").unwrap_or(""));
        match outs.as_slice() {
            [] => Ok(None),
            [f] => self.target(f).map(Some),
            _ => self.fail(
                n,
                "has more than one outgoing flow: fork with a parallel or exclusive gateway",
            ),
        }
    }

    /// A timer event definition `def` of element `n`.
    fn timer_of(&self, n: Xn, def: Xn) -> Result<TimerSpec, ImportError> {
        if let Some(d) = child(def, "timeDuration").and_then(|t| t.text()) {
            return Ok(TimerSpec::After(feel(d)));
        }
        if let Some(d) = child(def, "timeDate").and_then(|t| t.text()) {
            return match time_date(d) {
                Some(spec) => Ok(spec),
                None => self.fail(
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
        self.fail(n, "a timer needs timeDuration, timeDate or timeCycle")
    }

    /// The element a validation problem at `steps[i]...` is about, and the problem without
    /// the internal path.
    fn element_of(
        &self,
        def: &ProcessDefinition,
        problem: &crate::definition::Problem,
    ) -> Option<(Xn<'a>, String)> {
        let rest = problem.path.strip_prefix("steps[")?;
        let (index, field) = rest.split_once(']')?;
        let step = def.steps.get(index.parse::<usize>().ok()?)?;
        let node = self
            .nodes
            .iter()
            .find(|n| self.id_of(**n).ok().as_deref() == Some(step.id.as_str()))?;
        let field = field.trim_start_matches('.');
        Some(match field {
            "" => (*node, problem.message.clone()),
            field => (*node, format!("{field}: {}", problem.message)),
        })
    }

    /// The whole definition: its start, its steps (the start's target first) and the
    /// process-level settings, validated.
    fn definition(&self) -> Result<ProcessDefinition, ImportError> {
        let process = self.process;
        let start::Starts {
            first,
            start,
            starts,
            start_timer,
            start_signal,
        } = self.start()?;

        let auxiliary = self.auxiliary();
        let mut steps: Vec<Step> = Vec::new();
        // Every element is looked at, so that all of a file's problems are reported at once.
        let mut problems = self.unsupported.clone();
        for n in &self.nodes {
            let raw_id = n.attribute("id").unwrap_or("");
            if auxiliary.contains(raw_id) || is_bpmn(n, "startEvent") {
                continue;
            }
            let within = self.parent_of.get(raw_id).map(|p| normal_id(p));
            if let Some(two) = self.throwing_end(*n) {
                match two {
                    Ok(two) => steps.extend(two.into_iter().map(|mut s| {
                        s.within = within.clone();
                        s
                    })),
                    Err(e) => problems.push(e),
                }
                continue;
            }
            match self.step(*n) {
                Ok(mut step) => {
                    step.within = within;
                    steps.push(step)
                }
                Err(e) => problems.push(e),
            }
        }
        if let Some(e) = ImportError::all(problems) {
            return Err(e);
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
                    .or_else(|e| self.fail(process, format!("longrun:retry: {e}")))?,
            ),
            None => None,
        };
        let variables = match lr(process, "variables") {
            Some(j) => serde_json::from_str(j)
                .or_else(|e| self.fail(process, format!("longrun:variables: {e}")))?,
            None => Default::default(),
        };
        let unique_business_key = match lr(process, "uniqueBusinessKey") {
            None => None,
            Some("return_existing") => Some(crate::definition::UniqueKey::ReturnExisting),
            Some("refuse") => Some(crate::definition::UniqueKey::Refuse),
            Some(other) => {
                return self.fail(
                    process,
                    format!(
                        "longrun:uniqueBusinessKey is return_existing or refuse, not \"{other}\""
                    ),
                )
            }
        };
        // longrun's own attribute, or Camunda 7's history time to live (days, or a duration).
        let retention = match lr(process, "retention")
            .or(process.attribute((CAMUNDA7_NS, "historyTimeToLive")))
            .map(str::trim)
        {
            None | Some("") => None,
            Some(days) if days.bytes().all(|b| b.is_ascii_digit()) => Some(format!("P{days}D")),
            Some(period) => Some(period.to_string()),
        };
        let def = ProcessDefinition {
            process: self.id_of(process)?,
            start,
            starts,
            start_timer,
            start_signal,
            retry,
            variables,
            unique_business_key,
            retention,
            steps,
        };
        if let Err(e) = def.validate() {
            // Point at the element a problem is about, in BPMN's words, not at the process
            // with the model's internal path (`steps[2].message`).
            if let crate::definition::Error::Invalid(problems) = &e {
                let located: Vec<ImportError> = problems
                    .iter()
                    .filter_map(|p| self.element_of(&def, p))
                    .filter_map(|(node, what)| self.fail::<()>(node, what).err())
                    .collect();
                if located.len() == problems.len() {
                    return Err(ImportError::all(located).expect("at least one problem"));
                }
            }
            return self.fail(process, format!("the process is not valid: {e}"));
        }
        Ok(def)
    }
}
