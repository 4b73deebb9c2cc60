//! Events that throw as modelers draw them: a message, signal or compensation end event (the
//! throw or the compensation, then the end), and a message throw or end event implemented as a job (a `zeebe:taskDefinition`
//! on it, as Zeebe runs it: a service step whose handler sends); and the nodes that are part of
//! another step (boundary events, gateway catch events, compensation tasks, reminder throws).

use super::xml::{child, handler_of, is_bpmn, list_of, literal_name, lr};
use super::{ImportError, Importer, Xn};
use crate::definition::{Output, Step, StepKind};

impl<'a> Importer<'a> {
    /// A message throw event's step kind: a job for its handler when it has a task
    /// definition, else a send.
    pub(super) fn message_throw(&self, n: Xn<'a>, d: Xn<'a>) -> Result<StepKind, ImportError> {
        if let Some(handler) = handler_of(n) {
            let Some(handler) = literal_name(&handler).map(str::to_string) else {
                return self.fail(
                    n,
                    format!("the job type `{handler}` is an expression; longrun's handlers are named in the diagram"),
                );
            };
            return Ok(StepKind::Service {
                handler,
                output: Output::Merge,
                timeout: None,
                retry: None,
                errors: Vec::new(),
                headers: Default::default(),
            });
        }
        Ok(StepKind::Send {
            message: self.message_of(d, d.attribute("messageRef"))?.0,
            to: lr(n, "to").map(str::to_string),
            key: lr(n, "key").map(str::to_string),
            payload: list_of(lr(n, "payload")),
        })
    }

    /// A message, signal or compensation end event as two steps, the throw (or the
    /// compensation) and then an end (`<id>_end`); `None` for any other end event.
    pub(super) fn throwing_end(&self, n: Xn<'a>) -> Option<Result<Vec<Step>, ImportError>> {
        let message = child(n, "messageEventDefinition");
        let signal = child(n, "signalEventDefinition");
        let compensate = child(n, "compensateEventDefinition");
        if !is_bpmn(&n, "endEvent")
            || (message.is_none() && signal.is_none() && compensate.is_none())
        {
            return None;
        }
        Some((|| {
            let id = self.id_of(n)?;
            let kind = match (message, signal) {
                (Some(d), _) => self.message_throw(n, d)?,
                (None, Some(d)) => StepKind::Signal {
                    signal: self.signal_of(d)?,
                },
                // A compensation end event: undo, then end.
                (None, None) => StepKind::Compensate,
            };
            let end = format!("{id}_end");
            Ok(vec![
                Step {
                    id,
                    kind,
                    next: Some(end.clone()),
                    boundary: Vec::new(),
                    compensate: None,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    within: None,
                    multi: None,
                    milestone: None,
                },
                Step {
                    id: end,
                    kind: StepKind::End,
                    next: None,
                    boundary: Vec::new(),
                    compensate: None,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    within: None,
                    multi: None,
                    milestone: None,
                },
            ])
        })())
    }

    /// Nodes that are part of another step rather than steps of their own: boundary events,
    /// the catch events of event gateways, compensation tasks, and a reminder's throw and end
    /// events.
    pub(super) fn auxiliary(&self) -> std::collections::HashSet<&'a str> {
        let mut auxiliary = std::collections::HashSet::new();
        for n in &self.nodes {
            let id = n.attribute("id").unwrap_or("");
            let name = n.tag_name().name();
            if name == "boundaryEvent" || n.attribute("isForCompensation") == Some("true") {
                auxiliary.insert(id);
            }
            let from = |kind: &str| {
                self.in_of(id)
                    .iter()
                    .any(|f| self.by_id.get(f.from).is_some_and(|g| is_bpmn(g, kind)))
            };
            if name == "intermediateCatchEvent" && from("eventBasedGateway") {
                auxiliary.insert(id);
            }
            if name == "intermediateThrowEvent"
                && child(*n, "messageEventDefinition").is_some()
                && self.in_of(id).iter().any(|f| {
                    self.by_id.get(f.from).is_some_and(|b| {
                        is_bpmn(b, "boundaryEvent")
                            && b.attribute("cancelActivity") == Some("false")
                    })
                })
            {
                auxiliary.insert(id);
                for f in self.out_of(id) {
                    if self.by_id.get(f.to).is_some_and(|e| is_bpmn(e, "endEvent")) {
                        auxiliary.insert(f.to);
                    }
                }
            }
        }
        auxiliary
    }
}
