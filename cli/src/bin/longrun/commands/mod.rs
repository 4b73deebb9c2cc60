//! The commands, by what they act on.

pub(crate) mod broker;
pub(crate) mod definitions;
pub(crate) mod instances;
pub(crate) mod monitor;
pub(crate) mod operate;
pub(crate) mod signals;
pub(crate) mod tasks;
