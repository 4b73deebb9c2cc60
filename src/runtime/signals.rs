//! Signals: thrown by [`Engine::signal`] (or a signal step) and broadcast to every instance
//! waiting for them, in chunks (see `store::signals`).

use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::definition::is_message_name;
use crate::store::{Error, Result};

impl Engine {
    /// Throw a signal: every instance waiting for `name` when it is thrown (a `wait_signal`
    /// step, or a boundary signal on a waiting step) receives it once, with `payload` (a JSON
    /// object, or null), and every process whose latest version starts on it starts one
    /// instance. Delivery runs after this returns, in chunks of
    /// [`EngineConfig::signal_batch`] instances, each one transaction, by whichever engine
    /// takes it (or [`Engine::deliver_signals`]). Returns the broadcast's id.
    pub async fn signal(&self, name: &str, payload: Value) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let payload = self.signal_payload(name, payload)?;
        let store = &self.inner.store;
        let c = store.client().await?;
        crate::store::throw_signals_in(
            &c,
            store.q(),
            self.now(),
            &[(id, name.to_string(), payload, None)],
        )
        .await?;
        match self.local() {
            Some(local) => local.signal_wake.notify_one(),
            None => {
                if let Err(e) = store.notify(None).await {
                    tracing::debug!(error = %e, "wake-up hint not sent");
                }
            }
        }
        Ok(id)
    }

    /// [`Engine::signal`] in the caller's transaction: the signal is thrown if and only if the
    /// caller commits.
    pub async fn signal_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        name: &str,
        payload: Value,
    ) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let payload = self.signal_payload(name, payload)?;
        let store = &self.inner.store;
        let c = store.caller_tx(tx).await?;
        crate::store::throw_signals_in(
            &c,
            store.q(),
            self.now(),
            &[(id, name.to_string(), payload, None)],
        )
        .await?;
        store.notify(Some(tx)).await?;
        Ok(id)
    }

    /// Deliver every open broadcast now, chunk by chunk (the engines' workers do this by
    /// themselves; tests and `longrun signal` call it). Returns how many instances received a
    /// signal or were started by one.
    pub async fn deliver_signals(&self) -> Result<usize> {
        let mut total = 0;
        while let Some(n) = self.deliver_signal_chunk().await? {
            total += n;
        }
        Ok(total)
    }

    /// Deliver one chunk of the oldest open broadcast (at most
    /// [`EngineConfig::signal_batch`] instances, one transaction): how many instances received
    /// the signal or were started by it, or `None` when no broadcast is open.
    pub async fn deliver_signal_chunk(&self) -> Result<Option<usize>> {
        let now = self.now();
        let lease = self.lease(now);
        let batch = self.inner.config.signal_batch;
        let Some(chunk) = self
            .inner
            .store
            .broadcast_chunk(now, batch, lease.as_ref())
            .await?
        else {
            return Ok(None);
        };
        let n = chunk.delivered + chunk.started;
        self.after_commit(chunk.applied).await;
        Ok(Some(n))
    }

    fn signal_payload(&self, name: &str, payload: Value) -> Result<Value> {
        if !is_message_name(name) {
            return Err(Error::BadInput(format!(
                "invalid signal name \"{name}\": 1 to 200 bytes, without control characters or spaces at either end"
            )));
        }
        self.check_variables("the signal's payload", &payload)?;
        match payload {
            Value::Null => Ok(Value::Object(Default::default())),
            Value::Object(m) => Ok(Value::Object(m)),
            other => Err(Error::BadInput(format!(
                "a signal's payload is a JSON object, not {other}"
            ))),
        }
    }
}
