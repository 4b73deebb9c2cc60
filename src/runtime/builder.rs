//! Building an engine: handlers, subscribers, projections, a clock.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::*;
use crate::store::{Error, Projection, Result, Store};

/// Builds an [`Engine`](crate::Engine): register handlers and subscribers, then `build`.
pub struct EngineBuilder {
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: EngineConfig,
    pub(super) handlers: HashMap<String, Arc<dyn Handler>>,
    pub(super) subscribers: Vec<SubscriberReg>,
    pub(super) projections: Vec<Arc<dyn Projection>>,
}

pub(crate) struct SubscriberReg {
    pub name: String,
    pub topics: Vec<String>,
    pub subscriber: Arc<dyn Subscriber>,
}

impl EngineBuilder {
    /// Use this clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Use these settings.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Run service steps whose `handler` is `name` with `handler`.
    pub fn handler(mut self, name: impl Into<String>, handler: impl Handler) -> Self {
        self.handlers.insert(name.into(), Arc::new(handler));
        self
    }

    /// Deliver outbox messages on `topics` to `subscriber`, as the durable consumer `name`
    /// (one engine at a time holds a consumer; its position survives restarts).
    pub fn subscriber(
        mut self,
        name: impl Into<String>,
        topics: &[&str],
        subscriber: impl Subscriber,
    ) -> Self {
        self.subscribers.push(SubscriberReg {
            name: name.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            subscriber: Arc::new(subscriber),
        });
        self
    }

    /// Keep `projection` up to date while the engine runs (with the other engines that
    /// register it: one at a time applies a batch).
    pub fn projection(mut self, projection: impl Projection) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Check the settings and build the engine. It does no work until [`Engine::run`](crate::Engine::run).
    pub fn build(mut self) -> Result<Engine> {
        self.config.validate()?;
        if self.config.activity_history {
            self.projections
                .insert(0, Arc::new(crate::store::ActivityHistory));
        }
        let mut projection_names = HashSet::new();
        for p in &self.projections {
            if !projection_names.insert(p.name().to_string()) {
                return Err(Error::BadInput(format!(
                    "two projections are named \"{}\"",
                    p.name()
                )));
            }
        }
        let mut names = HashSet::new();
        for s in &self.subscribers {
            if !names.insert(s.name.clone()) {
                return Err(Error::BadInput(format!(
                    "two subscribers are named \"{}\"",
                    s.name
                )));
            }
            if s.topics.is_empty() {
                return Err(Error::BadInput(format!(
                    "subscriber \"{}\" reads no topic",
                    s.name
                )));
            }
        }
        let handler_names = Arc::new(self.handlers.keys().cloned().collect());
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                config: self.config,
                handlers: self.handlers,
                handler_names,
                subscribers: self.subscribers,
                projections: self.projections,
                local: Mutex::new(None),
                ended: broadcast::channel(65536).0,
            }),
        })
    }
}
