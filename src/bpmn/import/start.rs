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
            .filter(|n| is_bpmn(n, "startEvent"))
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
}
