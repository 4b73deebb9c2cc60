//! The start of a process: which start event, and what triggers it (a message, a timer, a
//! signal, or nothing: explicit starts).

use super::xml::{child, is_bpmn};
use super::{ImportError, Importer, Xn};
use crate::definition::{StartTimer, StartTrigger};

/// The start event and its trigger: a message, a timer or a signal (at most one).
type Start<'a> = (
    Xn<'a>,
    Option<StartTrigger>,
    Option<StartTimer>,
    Option<String>,
);

impl<'a> Importer<'a> {
    /// The process's start event and what triggers it.
    pub(super) fn start(&self) -> Result<Start<'a>, ImportError> {
        let starts: Vec<&Xn> = self
            .nodes
            .iter()
            .filter(|n| {
                is_bpmn(n, "startEvent")
                    && !self.parent_of.contains_key(n.attribute("id").unwrap_or(""))
            })
            .collect();
        let triggered = |n: &Xn| {
            n.children()
                .any(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
        };
        let start_node = match starts.as_slice() {
            [s] => **s,
            [] => return self.fail(self.process, "no start event"),
            // A plain start beside a message, signal or timer start, both leading to the
            // same step: every explicit start (Engine::start) is the plain one, so the
            // process is the triggered one.
            [a, b] if triggered(a) != triggered(b)
                && self.single_next(**a)? == self.single_next(**b)? =>
            {
                if triggered(a) {
                    **a
                } else {
                    **b
                }
            }
            [_, second, ..] => {
                return self.fail(
                    **second,
                    "more than one start event: longrun reads one, or a plain start beside a triggered one leading to the same step",
                )
            }
        };
        let start = match child(start_node, "messageEventDefinition") {
            Some(m) => Some(StartTrigger {
                message: self.message_of(m, m.attribute("messageRef"))?.0,
            }),
            None => None,
        };
        let start_timer = match child(start_node, "timerEventDefinition") {
            Some(t) => Some(self.start_timer_of(start_node, t)?),
            None => None,
        };
        let start_signal = match child(start_node, "signalEventDefinition") {
            Some(d) => Some(self.signal_of(d)?),
            None => None,
        };
        for d in start_node
            .children()
            .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
        {
            if !is_bpmn(&d, "messageEventDefinition")
                && !is_bpmn(&d, "timerEventDefinition")
                && !is_bpmn(&d, "signalEventDefinition")
            {
                return self.fail(
                    d,
                    "a start event is plain, a message, a signal or a timer start event",
                );
            }
        }
        Ok((start_node, start, start_timer, start_signal))
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
