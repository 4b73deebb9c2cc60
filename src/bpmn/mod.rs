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

mod export;
mod import;
mod layout;
#[cfg(test)]
mod modeler_events_tests;
#[cfg(test)]
mod modeler_flow_tests;
#[cfg(test)]
mod modeler_tests;
#[cfg(test)]
mod tests;

pub use export::{export, Bounds, Exported};
pub use import::{import, ImportError};

/// longrun's own BPMN extension namespace.
pub const LONGRUN_NS: &str = "https://github.com/longrun-rs/longrun/bpmn";
const BPMN_NS: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
const ZEEBE_NS: &str = "http://camunda.org/schema/zeebe/1.0";
