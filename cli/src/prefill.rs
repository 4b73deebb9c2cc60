//! `longrun bench --prefill N`: fill the bench schema with N ended instances' history as real
//! runs leave it (instances, events, activity, projection progress, outbox, inbox), copied
//! from one instance that really ran, with server-side `INSERT ... SELECT` in chunks, so the
//! cost of a large history shows in the run that follows.

use uuid::Uuid;

use longrun::store::{Error, Result};

use crate::bench::BenchConfig;

/// An ended instance of the bench schema to copy: one whose history the activity projection
/// has applied (waiting up to a minute for one), unless the engines keep no activity history.
pub async fn template(cfg: &BenchConfig) -> Result<Uuid> {
    let (client, conn) = longrun::store::pg_config(cfg.database_url.as_deref())?
        .connect()
        .await?;
    tokio::spawn(conn);
    let sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_template.sql"),
        &cfg.schema,
    );
    for _ in 0..600 {
        if let Some(row) = client.query(&sql, &[]).await?.first() {
            // Without the activity history there is nothing to wait for.
            if row.get::<_, bool>("applied") || !cfg.activity_history {
                return Ok(row.get("instance_id"));
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(Error::BadInput(
        "prefill: no ended instance with its activity history to copy".into(),
    ))
}

/// Copy the rows of ended instance `template` `n` times, in chunks of 100,000 (one
/// transaction each), then VACUUM ANALYZE the tables and CHECKPOINT; `progress` hears the copies made so far.
pub async fn prefill(
    cfg: &BenchConfig,
    template: Uuid,
    n: usize,
    mut progress: impl FnMut(usize),
) -> Result<()> {
    let (client, conn) = longrun::store::pg_config(cfg.database_url.as_deref())?
        .connect()
        .await?;
    tokio::spawn(conn);
    let sql = longrun::store::sql::render(
        include_str!("../../sql/queries/bench_prefill.sql"),
        &cfg.schema,
    );
    copy_in_chunks(&client, &sql, template, n, "prefill", &mut progress).await?;
    for table in [
        "instances",
        "events",
        "activity",
        "projection_progress",
        "outbox",
        "inbox",
    ] {
        client
            .batch_execute(&format!("VACUUM ANALYZE \"{}\".{table}", cfg.schema))
            .await?;
    }
    // The copy wrote gigabytes of WAL: a checkpoint now, so that the measured run does not
    // pay for it (full-page writes, dirty buffers written back). Needs superuser or
    // pg_checkpoint; without, the run goes on and may pay for it.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        eprintln!("prefill: no CHECKPOINT ({e}); the run may include one");
    }
    Ok(())
}

/// Run a copy statement (`__count__` copies of `__template__`, numbered from `__first__`) in
/// chunks of 100,000, each one transaction; `progress` hears the copies made so far.
pub async fn copy_in_chunks(
    client: &tokio_postgres::Client,
    sql: &str,
    template: Uuid,
    n: usize,
    what: &str,
    progress: &mut impl FnMut(usize),
) -> Result<()> {
    const CHUNK: usize = 100_000;
    let mut done = 0;
    while done < n {
        let count = CHUNK.min(n - done);
        let chunk = sql
            .replace("__count__", &count.to_string())
            .replace("__template__", &format!("'{template}'"))
            .replace("__first__", &(done + 1).to_string());
        client
            .batch_execute(&format!("BEGIN;\n{chunk}\nCOMMIT;"))
            .await
            .map_err(|e| Error::BadInput(format!("{what}: {e}")))?;
        done += count;
        progress(done);
    }
    Ok(())
}
