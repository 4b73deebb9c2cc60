//! The JSON form of an event subprocess: its event as flat fields (`message`, `signal`,
//! `duration` or `until`, or an error `code`) with `interrupting` (default true).

use super::*;

impl RawStep {
    /// An `event_subprocess` step.
    pub(super) fn event_subprocess(self) -> Result<Step, String> {
        let id = self.id;
        for (name, present) in [
            ("boundary", !self.boundary.is_empty()),
            ("next", self.next.is_some()),
            ("handler", self.handler.is_some()),
            ("to", self.to.is_some()),
            ("key", self.key.is_some()),
            ("payload", self.payload.is_some()),
            ("output", self.output.is_some()),
            ("errors", !self.errors.is_empty()),
            ("compensate", self.compensate.is_some()),
            ("multi", self.multi.is_some()),
        ] {
            if present {
                return Err(format!(
                    "step \"{id}\" of type \"event_subprocess\" has no field `{name}`"
                ));
            }
        }
        let interrupting = self.interrupting.unwrap_or(true);
        let on = match (self.message, self.signal, self.duration, self.until, &self.code) {
            (Some(m), None, None, None, None) => Some(BoundaryEvent::Message(m)),
            (None, Some(s), None, None, None) => Some(BoundaryEvent::Signal(s)),
            (None, None, Some(d), None, None) if d.starts_with('R') => {
                Some(BoundaryEvent::Timer(TimerSpec::Cycle(d)))
            }
            (None, None, Some(d), None, None) => Some(BoundaryEvent::Timer(TimerSpec::After(d))),
            (None, None, None, Some(u), None) => Some(BoundaryEvent::Timer(TimerSpec::Until(u))),
            (None, None, None, None, Some(_)) if interrupting => None,
            (None, None, None, None, Some(_)) => {
                return Err(format!(
                    "step \"{id}\": an error event subprocess always interrupts"
                ))
            }
            _ => {
                return Err(format!(
                    "step \"{id}\" of type \"event_subprocess\" needs exactly one of `message`, `signal`, `duration`, `until` or `code`"
                ))
            }
        };
        let start = self
            .start
            .ok_or_else(|| format!("step \"{id}\" of type \"event_subprocess\" needs `start`"))?;
        Ok(Step {
            id,
            kind: StepKind::EventSubprocess {
                start,
                code: self.code,
            },
            next: None,
            boundary: on
                .map(|on| {
                    vec![Boundary {
                        on,
                        interrupting,
                        next: None,
                        send: None,
                        assign: None,
                    }]
                })
                .unwrap_or_default(),
            compensate: None,
            inputs: self.inputs,
            outputs: self.outputs,
            within: self.within,
            multi: None,
            milestone: None,
        })
    }

    /// Write an event subprocess's fields (its event from its boundary entry).
    pub(super) fn event_fields(&mut self, start: String, code: Option<String>) {
        self.start = Some(start);
        self.code = code;
        if let Some(b) = self.boundary.pop() {
            let b = Boundary::try_from(b).expect("a stored boundary converts back");
            match b.on {
                BoundaryEvent::Message(m) => self.message = Some(m),
                BoundaryEvent::Signal(s) => self.signal = Some(s),
                BoundaryEvent::Timer(TimerSpec::After(d) | TimerSpec::Cycle(d)) => {
                    self.duration = Some(d)
                }
                BoundaryEvent::Timer(TimerSpec::Until(u)) => self.until = Some(u),
            }
            self.interrupting = (!b.interrupting).then_some(false);
        }
        self.boundary.clear();
    }
}
