//! Integration tests against a real Postgres: each test migrates its own schema, dropped when
//! the test ends (also when it fails).

mod acts;
mod bad_input;
mod bpmn;
mod bridge;
mod buckets;
mod checkpoints;
mod common;
#[cfg(feature = "console")]
mod console;
mod consumer;
mod control_flow;
mod definitions;
mod elements;
mod engine;
mod explain;
mod groups;
mod locks;
mod messages;
mod migrations;
mod monitor;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "opentelemetry")]
mod otel;
mod plans;
mod poison;
mod privileges;
mod probe;
mod projections;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;
mod retention;
mod shares;
mod signals;
mod start_timers;
mod starts;
mod subprocesses;
mod tasks;
mod telemetry;
mod timers;
mod transactions;
mod versions;
