//! Delivering messages: one, many, grouped, or in the caller's transaction.

use tokio::sync::oneshot;

use super::*;
use crate::store::{Delivery, Error, Message, Result};

impl Engine {
    /// Deliver an inbound message: deduplicated by id, correlated to the instance waiting for
    /// its name and key (which is carried forward until it waits again), or starting an
    /// instance, or buffered for an instance that will wait for it, or dead-lettered if no
    /// process knows its name. Retries by itself on a conflict with a concurrent transaction.
    ///
    /// While the engine's workers run, concurrent calls are grouped into one transaction
    /// (group commit); each call still gets its own outcome.
    pub async fn send(&self, message: Message) -> Result<Delivery> {
        message.check()?;
        self.check_size("the message's payload", &message.payload)?;
        if let Some(local) = self.local() {
            let (tx, rx) = oneshot::channel();
            if local.sends.send((message.clone(), tx)).is_ok() {
                if let Ok(result) = rx.await {
                    return result;
                }
            }
        }
        let mut out = self.send_many(vec![message]).await?;
        out.pop().expect("one outcome per message")
    }

    /// Deliver several messages in one transaction, with a few statements for the whole batch.
    /// Outcomes are those of delivering the messages one by one in order of (key, name), and
    /// come back in the order given. If the batch fails, the messages are delivered one by one,
    /// so one bad message does not hold back the rest.
    pub async fn send_many(&self, messages: Vec<Message>) -> Result<Vec<Result<Delivery>>> {
        // Refused messages get their error; the others go on together.
        let refused: Vec<Option<Error>> = messages
            .iter()
            .map(|m| {
                m.check()
                    .and_then(|_| self.check_size("the message's payload", &m.payload))
                    .err()
            })
            .collect();
        if refused.iter().any(Option::is_some) {
            let (ok, idx): (Vec<Message>, Vec<usize>) = messages
                .iter()
                .enumerate()
                .filter(|(i, _)| refused[*i].is_none())
                .map(|(i, m)| (m.clone(), i))
                .unzip();
            let mut delivered = if ok.is_empty() {
                Vec::new()
            } else {
                Box::pin(self.send_many(ok)).await?
            }
            .into_iter();
            let mut idx = idx.into_iter().peekable();
            return Ok(refused
                .into_iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Some(e) => Err(e),
                    None => {
                        debug_assert_eq!(idx.next(), Some(i));
                        delivered.next().expect("one outcome per message")
                    }
                })
                .collect());
        }
        let mut order: Vec<usize> = (0..messages.len()).collect();
        // A stable lock order across concurrent batches: by key, then name.
        order.sort_by(|a, b| {
            (&messages[*a].key, &messages[*a].name).cmp(&(&messages[*b].key, &messages[*b].name))
        });
        match self.deliver_together(&messages, &order).await {
            Ok(out) => Ok(out.into_iter().map(Ok).collect()),
            Err(e) if messages.len() == 1 => Ok(vec![Err(e)]),
            Err(_) => {
                let mut out = Vec::with_capacity(messages.len());
                for i in 0..messages.len() {
                    out.push(
                        self.deliver_together(&messages, &[i])
                            .await
                            .map(|mut d| d.pop().expect("one outcome")),
                    );
                }
                Ok(out)
            }
        }
    }

    /// Deliver `messages[order[..]]` in one transaction, retrying on conflicts. Outcomes come
    /// back in the order of `messages` restricted to `order`.
    pub(super) async fn deliver_together(
        &self,
        messages: &[Message],
        order: &[usize],
    ) -> Result<Vec<Delivery>> {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let mut client = store.client().await?;
                let now = self.now();
                let lease = self.lease(now);
                let tx = client.transaction().await?;
                let batch: Vec<&Message> = order.iter().map(|&i| &messages[i]).collect();
                let (deliveries, applied) = store
                    .deliver_many_in(
                        &tx,
                        now,
                        &batch,
                        self.inner.config.message_ttl,
                        lease.as_ref(),
                    )
                    .await?;
                let out: Vec<(usize, Delivery)> = order.iter().copied().zip(deliveries).collect();
                tx.commit().await?;
                Ok::<_, Error>((out, applied))
            }
            .await;
            match result {
                Ok((mut out, applied)) => {
                    self.after_commit(applied).await;
                    out.sort_by_key(|(i, _)| *i);
                    return Ok(out.into_iter().map(|(_, d)| d).collect());
                }
                Err(e) if e.is_retryable() && attempt < 5 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Deliver an inbound message in the caller's transaction: the inbox mark, the instance's
    /// transition and the caller's own writes commit together. On [`Error::Conflict`] the
    /// caller should roll back and retry.
    pub async fn send_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        message: Message,
    ) -> Result<Delivery> {
        message.check()?;
        self.check_size("the message's payload", &message.payload)?;
        let c = self.inner.store.caller_tx(tx).await?;
        let (d, applied) = self
            .inner
            .store
            .deliver_in(
                &c,
                self.now(),
                &message,
                self.inner.config.message_ttl,
                None,
            )
            .await?;
        // As start_tx: the hint goes out when the caller commits, so engines elsewhere pick up
        // the jobs, outbox rows and timers at once rather than at their next poll.
        if applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some() {
            self.inner.store.notify(Some(tx)).await?;
        }
        Ok(d)
    }
}
