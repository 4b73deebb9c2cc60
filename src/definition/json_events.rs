//! The JSON forms of boundary events and event gateway events, and their conversions to and
//! from the typed model with their checks.

use serde::{Deserialize, Serialize};

use super::*;

/// The JSON form of a boundary event: exactly one of `after`, `until`, `cycle`, `message`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBoundary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cycle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    interrupting: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assign: Option<Reassign>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGatewayEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    next: String,
}

impl TryFrom<RawGatewayEvent> for GatewayEvent {
    type Error = String;
    fn try_from(r: RawGatewayEvent) -> Result<Self, String> {
        let on = match (r.message, r.after, r.until) {
            (Some(m), None, None) => BoundaryEvent::Message(m),
            (None, Some(a), None) => BoundaryEvent::Timer(TimerSpec::After(a)),
            (None, None, Some(u)) => BoundaryEvent::Timer(TimerSpec::Until(u)),
            _ => {
                return Err(
                    "a gateway event needs exactly one of `message`, `after`, `until`".into(),
                )
            }
        };
        if r.output.is_some() && !matches!(on, BoundaryEvent::Message(_)) {
            return Err("only a message event has an `output`".into());
        }
        Ok(GatewayEvent {
            on,
            output: Output::from_raw(r.output),
            next: r.next,
        })
    }
}

impl From<GatewayEvent> for RawGatewayEvent {
    fn from(e: GatewayEvent) -> Self {
        let (message, after, until) = match e.on {
            // A gateway never holds a signal (validation refuses one).
            BoundaryEvent::Message(m) | BoundaryEvent::Signal(m) => (Some(m), None, None),
            BoundaryEvent::Timer(TimerSpec::After(a) | TimerSpec::Cycle(a)) => {
                (None, Some(a), None)
            }
            BoundaryEvent::Timer(TimerSpec::Until(u)) => (None, None, Some(u)),
        };
        RawGatewayEvent {
            message,
            after,
            until,
            output: e.output.into_raw(),
            next: e.next,
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl TryFrom<RawBoundary> for Boundary {
    type Error = String;
    fn try_from(r: RawBoundary) -> Result<Self, String> {
        let on = match (r.after, r.until, r.cycle, r.message, r.signal) {
            (Some(a), None, None, None, None) => BoundaryEvent::Timer(TimerSpec::After(a)),
            (None, Some(u), None, None, None) => BoundaryEvent::Timer(TimerSpec::Until(u)),
            (None, None, Some(c), None, None) => BoundaryEvent::Timer(TimerSpec::Cycle(c)),
            (None, None, None, Some(m), None) => BoundaryEvent::Message(m),
            (None, None, None, None, Some(s)) => BoundaryEvent::Signal(s),
            _ => return Err(
                "a boundary event needs exactly one of `after`, `until`, `cycle`, `message`, `signal`"
                    .into(),
            ),
        };
        if r.to.is_some() && r.send.is_none() {
            return Err("a boundary timer's `to` needs `send`".into());
        }
        Ok(Boundary {
            on,
            interrupting: r.interrupting,
            next: r.next,
            send: r.send.map(|m| (m, r.to)),
            assign: r.assign,
        })
    }
}

impl From<Boundary> for RawBoundary {
    fn from(b: Boundary) -> Self {
        let (after, until, cycle, message, signal) = match b.on {
            BoundaryEvent::Timer(TimerSpec::After(a)) => (Some(a), None, None, None, None),
            BoundaryEvent::Timer(TimerSpec::Until(u)) => (None, Some(u), None, None, None),
            BoundaryEvent::Timer(TimerSpec::Cycle(c)) => (None, None, Some(c), None, None),
            BoundaryEvent::Message(m) => (None, None, None, Some(m), None),
            BoundaryEvent::Signal(s) => (None, None, None, None, Some(s)),
        };
        let (send, to) = match b.send {
            Some((m, to)) => (Some(m), to),
            None => (None, None),
        };
        RawBoundary {
            after,
            until,
            cycle,
            message,
            signal,
            interrupting: b.interrupting,
            next: b.next,
            send,
            to,
            assign: b.assign,
        }
    }
}
