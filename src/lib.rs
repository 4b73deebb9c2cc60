#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod bpmn;
pub mod bridge;
pub mod bucket;
#[cfg(feature = "console")]
pub mod console;
pub mod definition;
pub mod expr;
#[doc(hidden)]
pub mod failpoint;
pub mod machine;
pub mod monitor;
pub mod runtime;
pub mod store;
pub mod telemetry;

pub use definition::ProcessDefinition;
pub use runtime::{
    Action, Clock, Ended, Engine, EngineBuilder, EngineConfig, Handler, HandlerError, JobContext,
    ManualClock, Running, ScaledClock, StartRequest, Subscriber, SystemClock,
};
pub use store::{Consumer, Delivery, Error, Message, OutboxMessage, Result, Store, StoreConfig};
