//! The probe: while the engine's workers sleep, one statement every `max_poll_interval` looks
//! for work of every kind (`sql/queries/probe.sql`) and wakes the workers that have some.
//! Work this engine creates wakes its workers at once, work another process creates through
//! a LISTEN/NOTIFY hint; the probe covers what neither announces (a job whose retry falls
//! due, outbox messages another engine wrote, a timer or a broadcast an engine left behind
//! when it died), so each worker's own looks can be as rare as `idle_poll_interval`.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

use super::idle;
use crate::runtime::throttle::Throttle;
use crate::runtime::{Engine, Local};

pub(super) async fn run(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let has_handlers = !engine.inner.handler_names.is_empty();
    let quiet = Notify::new();
    let mut failing = Throttle::new("looking for work (the probe)");
    loop {
        if !idle(cfg.max_poll_interval, &quiet, &mut stop).await {
            return;
        }
        let now = engine.now();
        let found = match engine.work_waiting().await {
            Ok(found) => {
                failing.ok();
                found
            }
            Err(e) => {
                failing.failed(&e);
                continue;
            }
        };
        if found.jobs && has_handlers {
            local.claim_wake.notify_one();
        }
        for (i, subscriber) in engine.inner.subscribers.iter().enumerate() {
            if found.consumers.contains(&subscriber.name) {
                local.relay_wake[i].notify_one();
            }
        }
        for (i, projection) in engine.inner.projections.iter().enumerate() {
            if found.projections.iter().any(|n| n == projection.name()) {
                local.projection_wake[i].notify_one();
            }
        }
        if found.next_timer.is_some_and(|due| due <= now) {
            local.timer_wake.notify_one();
        }
        if found.signals {
            local.signal_wake.notify_one();
        }
        if found.start_timers {
            local.start_timer_wake.notify_one();
        }
        if found.expired || (found.lapsed && has_handlers) {
            local.maintain_wake.notify_one();
        }
    }
}
