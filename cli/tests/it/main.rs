//! Tests of the command line and the chaos harness binaries against a real Postgres: each test
//! makes its own schema (or cluster) and leaves nothing behind.

#[path = "../../../tests/it/common.rs"]
#[allow(dead_code)]
mod common;

mod cli;
mod contexts;
mod dba;
mod dev;
mod fencing;
mod least_privilege;
mod outage;
mod timeouts;
mod tls;
