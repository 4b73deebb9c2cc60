//! Import: BPMN 2.0 XML (Camunda Modeler, Zeebe and Camunda 7 extensions) as a definition.

use std::collections::HashMap;

use crate::definition::{
    BoundaryEvent, Compensation, Output, ProcessDefinition, StepKind, TimerSpec,
};

use super::*;

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
pub(super) fn feel_condition(s: &str) -> String {
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
