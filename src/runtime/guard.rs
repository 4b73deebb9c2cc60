//! What keeps a worker alive: panics caught around each piece of work (so the item can be set
//! aside with the reason), and a supervisor that starts a worker again if it panics anywhere
//! else. No input may stop a worker for good.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration as StdDuration;

use futures_util::FutureExt;
use tokio::sync::watch;

use crate::store::Error;

/// Run `fut`; a panic inside becomes [`Error::Panicked`] with its message.
pub(super) async fn caught<T>(
    fut: impl Future<Output = crate::store::Result<T>>,
) -> crate::store::Result<T> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(p) => Err(Error::Panicked(panic_text(p.as_ref()))),
    }
}

/// The message a panic carried.
pub(super) fn panic_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Run the worker `name` made by `start` until it returns; if it panics, log the panic and
/// start it again after a pause (one second, so a worker that panics at once does not spin),
/// until the engine stops.
pub(super) async fn supervise<F, Fut>(
    name: &'static str,
    mut stop: watch::Receiver<bool>,
    mut start: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        match AssertUnwindSafe(start()).catch_unwind().await {
            Ok(()) => return,
            Err(p) => {
                metrics::counter!(crate::telemetry::WORKER_RESTARTS, "worker" => name).increment(1);
                tracing::error!(
                    worker = name,
                    panic = %panic_text(p.as_ref()),
                    "a worker panicked; it starts again in a second"
                );
            }
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
