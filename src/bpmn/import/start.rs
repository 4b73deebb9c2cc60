//! The start of a process: which start event, and what triggers it (a message, a timer, a
//! signal, or nothing: explicit starts).

use super::xml::{child, is_bpmn};
use super::{ImportError, Importer, Xn};
use crate::definition::{StartTimer, StartTrigger};

/// The process's starts: the step an instance begins at (by default), its message starts
/// (the first, then the others with the step each begins at when it differs), or its timer or
/// signal start.
pub(super) struct Starts {
    pub(super) first: Option<String>,
    pub(super) start: Option<StartTrigger>,
    pub(super) starts: Vec<StartTrigger>,
    pub(super) start_timer: Option<StartTimer>,
    pub(super) start_signal: Option<String>,
}

impl<'a> Importer<'a> {
    /// The process's start events and what triggers each: at most one plain start, any
    /// number of message starts, or one timer or signal start (beside a plain start leading
    /// to the same step).
    pub(super) fn start(&self) -> Result<Starts, ImportError> {
        let nodes: Vec<Xn> = self
            .nodes
            .iter()
            .filter(|n| {
                is_bpmn(n, "startEvent")
                    && !self.parent_of.contains_key(n.attribute("id").unwrap_or(""))
            })
            .copied()
            .collect();
        if nodes.is_empty() {
            return self.fail(self.process, "no start event");
        }
        let mut plain = Vec::new();
        let mut messages = Vec::new();
        let mut other = Vec::new();
        for n in &nodes {
            let defs: Vec<Xn> = n
                .children()
                .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
                .collect();
            match defs.as_slice() {
                [] => plain.push(*n),
                [d] if is_bpmn(d, "messageEventDefinition") => messages.push((*n, *d)),
                [d] if is_bpmn(d, "timerEventDefinition")
                    || is_bpmn(d, "signalEventDefinition") =>
                {
                    other.push((*n, *d))
                }
                [d, ..] => {
                    return self.fail(
                        *d,
                        "a start event is plain, a message, a signal or a timer start event",
                    )
                }
            }
        }
        if let Some(second) = plain.get(1) {
            return self.fail(
                *second,
                "more than one plain start event: an explicit start has one place to begin",
            );
        }
        if other.len() > 1 || (!other.is_empty() && !messages.is_empty()) {
            let n = if other.len() > 1 {
                other[1].0
            } else {
                other[0].0
            };
            return self.fail(
                n,
                "a process starts on messages, on one signal or on one timer, not more than one kind",
            );
        }
        // Where an instance begins by default: the plain start's step, else the first
        // triggered start's.
        let default_node = plain
            .first()
            .copied()
            .or(messages.first().map(|m| m.0))
            .or(other.first().map(|o| o.0))
            .expect("at least one start event");
        let first = self.single_next(default_node)?;
        let mut start = None;
        let mut starts = Vec::new();
        for (n, d) in &messages {
            let target = self.single_next(*n)?;
            let trigger = StartTrigger {
                message: self.message_of(*d, d.attribute("messageRef"))?.0,
                at: target.filter(|t| Some(t) != first.as_ref()),
            };
            if start.is_none() {
                start = Some(trigger);
            } else {
                starts.push(trigger);
            }
        }
        let (mut start_timer, mut start_signal) = (None, None);
        if let Some((n, d)) = other.first() {
            // A timer or signal start has no step of its own: beside a plain start, both lead
            // to the same step.
            if self.single_next(*n)? != first {
                return self.fail(
                    *n,
                    "a timer or signal start beside a plain start leads to the same step",
                );
            }
            if is_bpmn(d, "timerEventDefinition") {
                start_timer = Some(self.start_timer_of(*n, *d)?);
            } else {
                start_signal = Some(self.signal_of(*d)?);
            }
        }
        Ok(Starts {
            first,
            start,
            starts,
            start_timer,
            start_signal,
        })
    }

    /// A timer start event's definition `def` (of start event `n`): a literal cycle, date or
    /// duration (`R/PT1H`, or as a FEEL string literal `="R/PT1H"`); an expression over
    /// variables is refused, since a timer start has none.
    pub(super) fn start_timer_of(
        &self,
        n: Xn,
        def: Xn,
    ) -> Result<crate::definition::StartTimer, ImportError> {
        use crate::definition::StartTimer;
        let literal = |text: &str| -> Option<String> {
            let t = text.trim();
            match t.strip_prefix('=') {
                None => Some(t.to_string()),
                Some(e) => {
                    let e = e.trim();
                    e.strip_prefix('"')
                        .and_then(|r| r.strip_suffix('"'))
                        .map(str::to_string)
                }
            }
        };
        let (kind, text) = ["timeCycle", "timeDate", "timeDuration"]
            .iter()
            .find_map(|k| child(def, k).and_then(|t| t.text()).map(|t| (*k, t)))
            .map_or((None, ""), |(k, t)| (Some(k), t));
        let Some(kind) = kind else {
            return self.fail(n, "a timer start needs timeCycle, timeDate or timeDuration");
        };
        let Some(value) = literal(text) else {
            return self.fail(
                n,
                format!(
                    "{kind} of a timer start must be a literal, not an expression over variables"
                ),
            );
        };
        Ok(match kind {
            "timeCycle" => StartTimer::Cycle(value),
            "timeDate" => StartTimer::Date(value),
            _ => StartTimer::Duration(value),
        })
    }

    /// An event subprocess (`triggeredByEvent`): its kind and its event (the one event
    /// definition of its start event: a message, timer or signal, or an error).
    pub(super) fn event_subprocess(
        &self,
        n: Xn<'a>,
    ) -> Result<
        (
            crate::definition::StepKind,
            Vec<crate::definition::Boundary>,
        ),
        ImportError,
    > {
        use crate::definition::{Boundary, BoundaryEvent, StepKind};
        let (start_node, first) = self.inner_start(n)?;
        let interrupting = start_node.attribute("isInterrupting") != Some("false");
        let Some(d) = start_node
            .children()
            .find(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
        else {
            return self.fail(start_node, "the start event of an event subprocess has its event (a message, timer, signal or error)");
        };
        let on = if is_bpmn(&d, "messageEventDefinition") {
            BoundaryEvent::Message(self.message_of(d, d.attribute("messageRef"))?.0)
        } else if is_bpmn(&d, "signalEventDefinition") {
            BoundaryEvent::Signal(self.signal_of(d)?)
        } else if is_bpmn(&d, "timerEventDefinition") {
            BoundaryEvent::Timer(self.timer_of(start_node, d)?)
        } else if is_bpmn(&d, "errorEventDefinition") {
            let Some(code) = d
                .attribute("errorRef")
                .and_then(|r| self.error_codes.get(r))
                .map(|c| c.to_string())
            else {
                return self.fail(d, "an error event subprocess names its error (errorRef with a code); a catch-all is not run");
            };
            return Ok((
                StepKind::EventSubprocess {
                    start: first,
                    code: Some(code),
                },
                Vec::new(),
            ));
        } else {
            return self.fail(
                d,
                "an event subprocess starts on a message, timer, signal or error",
            );
        };
        Ok((
            StepKind::EventSubprocess {
                start: first,
                code: None,
            },
            vec![Boundary {
                on,
                interrupting,
                next: None,
                send: None,
                assign: None,
            }],
        ))
    }

    /// An embedded subprocess: the step its one plain start event leads to.
    pub(super) fn subprocess_start(&self, n: Xn<'a>) -> Result<String, ImportError> {
        let (start, first) = self.inner_start(n)?;
        if let Some(d) = start
            .children()
            .find(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
        {
            return self.fail(
                d,
                "the start event of an embedded subprocess is a plain one (its boundary events catch what comes from outside)",
            );
        }
        Ok(first)
    }

    /// A subprocess's one start event, and the step it leads to.
    fn inner_start(&self, n: Xn<'a>) -> Result<(Xn<'a>, String), ImportError> {
        let raw_id = n.attribute("id").unwrap_or("");
        let starts: Vec<&Xn> = self
            .nodes
            .iter()
            .filter(|s| {
                is_bpmn(s, "startEvent")
                    && self.parent_of.get(s.attribute("id").unwrap_or("")) == Some(&raw_id)
            })
            .collect();
        let start = match starts.as_slice() {
            [s] => **s,
            [] => return self.fail(n, "an embedded subprocess needs a start event"),
            [_, second, ..] => {
                return self.fail(**second, "an embedded subprocess has one start event")
            }
        };
        match self.single_next(start)? {
            Some(first) => Ok((start, first)),
            None => self.fail(start, "the start event leads nowhere"),
        }
    }
}
