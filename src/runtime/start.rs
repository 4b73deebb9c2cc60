//! Starting instances: alone, in batches, in the caller's transaction, idempotently.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::*;
use crate::definition::{Process, UniqueKey};
use crate::store::{Applied, Conn, Error, Lease, Result, Work};

impl Engine {
    /// Start an instance and carry it forward until it waits. Returns its id.
    ///
    /// While the engine's workers run, concurrent calls are grouped into one transaction
    /// (group commit), as a web service's request handlers make them; each call still gets
    /// its own outcome.
    pub async fn start(&self, request: StartRequest) -> Result<Uuid> {
        if let Some(local) = self.local() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if local.starts.send((request.clone(), tx)).is_ok() {
                if let Ok(result) = rx.await {
                    return result;
                }
            }
        }
        Ok(self.start_many(vec![request]).await?[0])
    }

    /// Start several instances in one transaction (all or none). A request with an
    /// idempotency key that was used before, or with the business key of a running instance of
    /// a process that keeps keys unique and returns the existing instance, gets that instance's
    /// id and starts nothing.
    pub async fn start_many(&self, requests: Vec<StartRequest>) -> Result<Vec<Uuid>> {
        let store = &self.inner.store;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut client = store.client().await?;
            let now = self.now();
            let lease = self.lease(now);
            let tx = client.transaction().await?;
            let result = match self
                .start_in(&tx, now, requests.clone(), lease.as_ref())
                .await
            {
                Ok(r) => tx.commit().await.map(|_| r).map_err(Error::from),
                Err(e) => Err(e),
            };
            match result {
                Ok((ids, applied)) => {
                    self.after_commit(applied).await;
                    return Ok(ids);
                }
                // A concurrent start with the same idempotency or unique business key won the
                // race: looked up again, its instance is found.
                Err(Error::Conflict(_)) if attempt < 4 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Start the instances of timer starts due now (a few per transaction), each exactly
    /// once across engines; returns how many started. The engine's workers call it; a test or
    /// a job scheduler may too.
    pub async fn fire_start_timers(&self) -> Result<usize> {
        let store = &self.inner.store;
        let mut client = store.client().await?;
        let now = self.now();
        let lease = self.lease(now);
        let tx = client.transaction().await?;
        let (n, applied) = store
            .fire_start_timers_in(&tx, now, 16, lease.as_ref())
            .await?;
        if n == 0 {
            return Ok(0);
        }
        tx.commit().await?;
        self.after_commit(applied).await;
        Ok(n)
    }

    /// Start an instance in the caller's transaction: it exists if and only if the caller
    /// commits. Its first job (if any) is claimed by polling once committed.
    pub async fn start_tx(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        request: StartRequest,
    ) -> Result<Uuid> {
        let c = self.inner.store.caller_tx(tx).await?;
        let (ids, applied) = self.start_in(&c, self.now(), vec![request], None).await?;
        if applied.unleased_jobs || applied.outbox_written || applied.next_timer.is_some() {
            self.inner.store.notify(Some(tx)).await?;
        }
        Ok(ids[0])
    }

    pub(super) async fn start_in(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        requests: Vec<StartRequest>,
        lease: Option<&Lease>,
    ) -> Result<(Vec<Uuid>, Applied)> {
        let store = &self.inner.store;
        let mut works = Vec::with_capacity(requests.len());
        let mut ids = Vec::with_capacity(requests.len());
        let mut versions: HashMap<String, (i32, Arc<Process>)> = HashMap::new();
        // Starts of this batch by idempotency id and by unique (process, business key).
        let mut made: HashMap<Uuid, ()> = HashMap::new();
        let mut unique_made: HashMap<(String, String), Uuid> = HashMap::new();
        for r in requests {
            check_business_key(&r.business_key)?;
            if let Some(problem) = r.trace.as_ref().and_then(|t| t.problem()) {
                return Err(Error::BadInput(problem));
            }
            let derived = match &r.idempotency_key {
                Some(k) => {
                    check_idempotency_key(k)?;
                    let name = store.lock_key(&["start", &r.process, k]);
                    Some(crate::bucket::in_bucket(
                        Uuid::new_v5(&IDEMPOTENT_STARTS, name.as_bytes()),
                        crate::bucket::bucket_of_key(&r.business_key),
                    ))
                }
                None => None,
            };
            if let Some(id) = derived {
                if made.contains_key(&id) || store.instance_exists_in(c, id).await? {
                    ids.push(id);
                    continue;
                }
            }
            self.check_variables("the start's variables", &r.variables)?;
            let variables = match r.variables {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                other => {
                    return Err(Error::BadInput(format!(
                        "variables must be a JSON object, not {other}"
                    )))
                }
            };
            // The version and its compiled definition (looked up once per process per batch
            // for the latest).
            let (version, def) = match (r.version, &r.tag) {
                (Some(v), _) => (v, store.definition_in(c, &r.process, v).await?),
                (None, Some(tag)) => {
                    let v = store.tagged_in(c, &r.process, tag).await?;
                    (v, store.definition_in(c, &r.process, v).await?)
                }
                (None, None) => match versions.get(&r.process) {
                    Some(found) => found.clone(),
                    None => {
                        let found = store.latest_in(c, &r.process).await?;
                        versions.insert(r.process.clone(), found.clone());
                        found
                    }
                },
            };
            if let Some(policy) = def.unique_business_key {
                let key = (r.process.clone(), r.business_key.clone());
                let running = match unique_made.get(&key) {
                    Some(id) => Some(*id),
                    None => {
                        store
                            .running_by_key_in(c, &r.process, &r.business_key)
                            .await?
                    }
                };
                if let Some(instance) = running {
                    match policy {
                        UniqueKey::ReturnExisting => {
                            ids.push(instance);
                            continue;
                        }
                        UniqueKey::Refuse => {
                            return Err(Error::AlreadyRunning {
                                process: r.process,
                                business_key: r.business_key,
                                instance,
                            })
                        }
                    }
                }
            }
            let instance_id =
                derived.unwrap_or_else(|| crate::bucket::new_instance_id(&r.business_key));
            if def.unique_business_key.is_some() {
                unique_made.insert((r.process.clone(), r.business_key.clone()), instance_id);
            }
            made.insert(instance_id, ());
            ids.push(instance_id);
            works.push(Work::Start {
                instance_id,
                process: r.process,
                version,
                business_key: r.business_key,
                variables,
                message_id: None,
                parent: None,
                start_message: None,
                trace: r.trace,
            });
        }
        let applied = store.apply(c, now, works, lease, Vec::new()).await?;
        for o in &applied.outcomes {
            if let Err(e) = o {
                return Err(Error::BadInput(e.to_string()));
            }
        }
        Ok((ids, applied))
    }
}
