//! The engine's lease in `engines` and its share of the buckets: renewed every third of
//! `engine_lease`; the buckets go to the engines that run the same handlers by rendezvous
//! hashing (`crate::bucket::shares`). Jobs are claimed and timers fired in this engine's share
//! only. Shares overlap or leave a bucket out for a moment while engines come and go; that
//! only delays work there, since every claim is fenced by its own row locks and tokens.

use std::sync::Arc;

use tokio::sync::watch;

use crate::runtime::throttle::Throttle;
use crate::runtime::{Engine, Local};

/// The handlers an engine runs, as the `engines.handlers` column holds them: engines with the
/// same list share the buckets.
pub(super) fn handlers_key(engine: &Engine) -> String {
    let mut names: Vec<&str> = engine
        .inner
        .handler_names
        .iter()
        .map(|h| h.as_str())
        .collect();
    names.sort_unstable();
    names.join(",")
}

pub(super) async fn share(engine: Engine, local: Arc<Local>, mut stop: watch::Receiver<bool>) {
    let cfg = &engine.inner.config;
    let store = &engine.inner.store;
    let handlers = handlers_key(&engine);
    let mut renewals = Throttle::new("renewing the engine's lease");
    loop {
        match store
            .renew_engine(&cfg.owner, &handlers, cfg.engine_lease)
            .await
        {
            Ok(others) => {
                renewals.ok();
                let mine = crate::bucket::shares(&cfg.owner, &others);
                if **local.shares.borrow() != mine {
                    tracing::info!(
                        buckets = mine.len(),
                        engines = others.len() + 1,
                        "this engine's share of the buckets changed"
                    );
                    local.shares.send_replace(Arc::new(mine));
                    local.claim_wake.notify_one();
                    local.timer_wake.notify_one();
                    local.maintain_wake.notify_one();
                }
            }
            // The engine goes on with the share it has: claims stay fenced if others took it.
            Err(e) => renewals.failed(&e),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.engine_lease / 3) => {}
            _ = stop.changed() => {
                if let Err(e) = store.leave_engine(&cfg.owner).await {
                    tracing::warn!(error = %e, "giving the engine's buckets back failed; they go to the others when its lease lapses");
                }
                return;
            }
        }
    }
}

/// Wait until this engine has a share of the buckets; false once stopping.
pub(super) async fn shared(local: &Local, stop: &mut watch::Receiver<bool>) -> bool {
    let mut shares = local.shares.subscribe();
    tokio::select! {
        r = shares.wait_for(|s| !s.is_empty()) => r.is_ok() && !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
