//! Timers: firing due ones in rounds, one by one when a round fails, setting aside what cannot fire.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::*;
use crate::runtime::throttle::Throttle;
use crate::runtime::{guard, Engine, Local};

/// Fire due timers; sleep until the next one is due (at most `idle_poll_interval`), or until a
/// new timer due sooner, a hint from another process, or the probe finding one due, wakes
/// the worker.
pub(super) async fn fire_timers(
    engine: Engine,
    local: Arc<Local>,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = &engine.inner.config;
    let mut rounds = Throttle::new("firing timers");
    if !super::shared(&local, &mut stop).await {
        return;
    }
    loop {
        let (sleep, next_due) = match guard::caught(engine.fire_round()).await {
            Ok(f) if f.more => {
                rounds.ok();
                continue;
            }
            Ok(f) => {
                rounds.ok();
                let sleep = f
                    .next_due
                    .map(|d| engine.inner.clock.real_duration(d - engine.now()))
                    .unwrap_or(cfg.idle_interval());
                (sleep.min(cfg.idle_interval()), f.next_due)
            }
            Err(e) if e.lies_in_the_data() => {
                // One timer's transition fails the round: fire them one by one, and set aside
                // the one that still fails, so that the others fire.
                tracing::warn!(error = %e, "a round of timers failed; firing them one by one");
                if fire_one_by_one(&engine).await {
                    continue;
                }
                (cfg.max_poll_interval, None)
            }
            Err(e) => {
                rounds.failed(&e);
                (cfg.max_poll_interval, None)
            }
        };
        // A new timer due before the earliest known one wakes the worker; any later one is
        // found by the scan at that time (or at the next poll) anyway.
        let next_ms = next_due.map_or(i64::MAX, |d| d.timestamp_millis());
        local.timer_next_ms.store(next_ms, Ordering::Relaxed);
        if !idle(sleep, &local.timer_wake, &mut stop).await {
            return;
        }
        // While a round runs, any new timer wakes the worker again: the round's scan may
        // have missed it.
        local.timer_next_ms.store(i64::MAX, Ordering::Relaxed);
    }
}

/// Retry `f` while it fails with a conflict, a few times; panics are caught.
pub(super) async fn retrying<T, F, Fut>(mut f: F) -> crate::store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = crate::store::Result<T>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match guard::caught(f()).await {
            Err(e) if e.is_retryable() && attempt < 5 => {}
            other => return other,
        }
    }
}

/// Fire the due timers one transaction each; a timer that still fails for a reason that lies
/// in the data is set aside (removed, its instance failed with the reason). Returns whether
/// every due timer fired or was set aside.
pub(super) async fn fire_one_by_one(engine: &Engine) -> bool {
    let store = &engine.inner.store;
    let now = engine.now();
    let buckets = engine.owned_buckets();
    let due = match store
        .due_timers(now, engine.inner.config.claim_batch, &buckets)
        .await
    {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "reading the due timers failed");
            return false;
        }
    };
    let mut all = true;
    for timer in due {
        let lease = engine.lease(now);
        match retrying(|| store.fire_timer(now, timer, lease.as_ref())).await {
            Ok(applied) => engine.after_commit(applied).await,
            Err(e) if e.lies_in_the_data() => {
                tracing::error!(timer = %timer.0, instance = %timer.1, error = %e, "a due timer could not be fired; its instance fails with the reason and the engine goes on");
                metrics::counter!(crate::telemetry::SET_ASIDE, "kind" => "timer").increment(1);
                let reason = format!("timer {} could not be fired: {e}", timer.0);
                match retrying(|| store.set_aside_timer(now, timer, reason.clone(), lease.as_ref()))
                    .await
                {
                    Ok(applied) => engine.after_commit(applied).await,
                    Err(e) => {
                        tracing::error!(timer = %timer.0, instance = %timer.1, error = %e, "setting the timer aside failed too");
                        all = false;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(timer = %timer.0, error = %e, "firing a timer failed");
                all = false;
            }
        }
    }
    all
}
