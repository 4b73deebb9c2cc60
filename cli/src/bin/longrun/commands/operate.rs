//! Operating: reports, projections, an engine, the console, a throwaway cluster.

use serde_json::{json, Value};

use crate::args::*;
use crate::serve::*;
use crate::util::*;

/// Run one of this file's commands (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Report {
            view,
            limit,
            older_than,
        } => {
            let names: Vec<&str> = match view {
                Some(v) => vec![v.as_str()],
                None => longrun::store::sql::REPORTS.to_vec(),
            };
            let older_than = match older_than {
                None => None,
                Some(_) if names != ["old_instances"] => {
                    return Err(Failure::Input(
                        "--older-than applies to the old_instances view".into(),
                    ))
                }
                Some(d) => Some(
                    longrun::definition::parse_duration(d)
                        .map_err(|e| Failure::Input(format!("--older-than: {e}")))?,
                ),
            };
            let engine = connect(cli).await?;
            let mut all = serde_json::Map::new();
            for name in names {
                let rows = match older_than {
                    Some(d) => engine.store().report_older_than(d, *limit).await?,
                    None => engine.store().report(name, *limit).await?,
                };
                if cli.json {
                    all.insert(name.to_string(), Value::Array(rows));
                    continue;
                }
                let columns = engine.store().report_columns(name).await?;
                println!("== {name} ({} rows)", rows.len());
                print_table(&columns, &rows);
                println!();
            }
            if cli.json {
                print_json(&all);
            }
            Ok(())
        }
        Command::Engines => {
            let engine = connect(cli).await?;
            let engines = engine.store().engines().await?;
            if cli.json {
                print_json(&engines);
            } else if engines.is_empty() {
                println!("no engine runs on this schema");
            } else {
                let cols = [
                    "owner",
                    "handlers",
                    "live",
                    "buckets",
                    "seen_at",
                    "expires_at",
                ];
                print_rows(&cols, &engines);
            }
            Ok(())
        }
        Command::Storage { exact } => {
            let engine = connect(cli).await?;
            let storage = engine.store().storage(*exact).await?;
            if cli.json {
                print_json(&json!({
                    "tables": storage.tables,
                    "ended_instances": storage.ended_instances,
                    "running_instances": storage.running_instances,
                    "total_bytes": storage.total_bytes(),
                    "bytes_per_ended_instance": storage.bytes_per_ended_instance(),
                }));
            } else {
                let cols = ["table", "rows", "total_bytes", "table_bytes", "index_bytes"];
                print_rows(&cols, &storage.tables);
                println!(
                    "total {} bytes; {} ended and {} running instances; {}",
                    storage.total_bytes(),
                    storage.ended_instances,
                    storage.running_instances,
                    match storage.bytes_per_ended_instance() {
                        Some(b) => format!("{b} bytes per ended instance"),
                        None => "no instance has ended yet".to_string(),
                    }
                );
                if !engine.store().autovacuum().await? {
                    println!("autovacuum is off on this server: deleted rows are never reclaimed without VACUUM");
                }
            }
            Ok(())
        }
        Command::Retention {
            dry_run,
            older_than,
            default_period,
            dedup_window,
            outbox_retention,
            batch,
        } => {
            let period = |flag: &str, text: &str| {
                longrun::definition::parse_duration(text)
                    .map_err(|e| Failure::Input(format!("--{flag}: {e}")))
            };
            let policy = longrun::store::Retention {
                default_period: match default_period.as_str() {
                    "never" => None,
                    d => Some(period("default", d)?),
                },
                older_than: older_than
                    .as_deref()
                    .map(|d| period("older-than", d))
                    .transpose()?,
                dedup_window: period("dedup-window", dedup_window)?,
                outbox_retention: period("outbox-retention", outbox_retention)?,
                batch: *batch,
                pause: std::time::Duration::ZERO,
            };
            policy
                .validate()
                .map_err(|e| Failure::Input(e.to_string()))?;
            let engine = connect(cli).await?;
            let now = chrono::Utc::now();
            let removed = if *dry_run {
                engine.store().retention_preview(&policy, now).await?
            } else {
                // Progress on stderr, at most once a second, while batches go.
                let mut last = std::time::Instant::now();
                engine
                    .store()
                    .apply_retention(&policy, now, |so_far| {
                        if last.elapsed() >= std::time::Duration::from_secs(1) {
                            last = std::time::Instant::now();
                            eprintln!(
                                "removed so far: {} instances, {} events, {} inbox, {} outbox rows",
                                so_far.instances, so_far.events, so_far.inbox, so_far.outbox
                            );
                        }
                    })
                    .await?
            };
            if cli.json {
                print_json(&json!({ "dry_run": dry_run, "removed": removed }));
                return Ok(());
            }
            let verb = if *dry_run { "would remove" } else { "removed" };
            println!("{:<20} {:>12}", "table", verb.replace(' ', "_"));
            for (table, rows) in removed.tables() {
                println!("{table:<20} {rows:>12}");
            }
            if removed.instances_held > 0 {
                println!(
                    "{} ended instances past their period wait for a projection to apply their history (longrun projections)",
                    removed.instances_held
                );
            }
            if removed.rows() > 0 && !*dry_run && !engine.store().autovacuum().await? {
                println!(
                    "autovacuum is off on this server: the space of removed rows is reused only after VACUUM"
                );
            }
            if removed.outbox_held > 0 {
                println!(
                    "{} outbound messages past the outbox retention wait for a consumer that has not read them",
                    removed.outbox_held
                );
            }
            Ok(())
        }
        Command::Bridge {
            from,
            to,
            topics,
            name,
            once,
            nats_stream,
            nats_prefix,
            ..
        } if from.starts_with("nats://") || to.starts_with("nats://") => {
            let nats = (nats_stream.clone(), nats_prefix.clone());
            super::broker::nats(cli, (from, to), topics, name.clone(), *once, nats).await
        }
        Command::Bridge {
            from,
            to,
            topics,
            name,
            once,
            rabbitmq_exchange,
            ..
        } if super::broker::is_amqp(from) || super::broker::is_amqp(to) => {
            let exchange = rabbitmq_exchange.clone();
            super::broker::rabbitmq(cli, (from, to), topics, name.clone(), *once, exchange).await
        }
        Command::Bridge {
            from,
            to,
            topics,
            name,
            once,
            ..
        } => {
            let (source, target) = (context(cli, from).await?, context(cli, to).await?);
            let name = name
                .clone()
                .unwrap_or_else(|| format!("bridge-{}-to-{}", source.schema(), target.schema()));
            let bridge = longrun::bridge::Bridge::new(&source, &target, &name, topics.clone())
                .map_err(|e| Failure::Input(e.to_string()))?;
            if *once {
                let moved = bridge.drain().await?;
                if cli.json {
                    print_json(&moved);
                } else {
                    println!(
                        "bridge {name}: {} delivered, {} already there",
                        moved.delivered, moved.duplicates
                    );
                }
                return Ok(());
            }
            eprintln!(
                "longrun: bridge {name} carries {} from {} to {}; Ctrl-C stops it",
                topics.join(","),
                source.schema(),
                target.schema()
            );
            let (stop_tx, stop) = tokio::sync::watch::channel(false);
            let running = tokio::spawn(async move { bridge.run(stop).await });
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| Failure::Other(format!("cannot watch SIGTERM: {e}")))?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = stop_tx.send(true);
            let _ = running.await;
            Ok(())
        }
        Command::Projections { action: None } => {
            let engine = connect(cli).await?;
            let list = engine.store().projections().await?;
            let holders = engine.store().horizon_holders().await?;
            if cli.json {
                print_json(&json!({ "projections": list, "holders": holders }));
            } else {
                let cols = [
                    "name",
                    "events",
                    "behind",
                    "buckets_behind",
                    "updated_at",
                    "rebuilt_at",
                ];
                print_rows(&cols, &list);
                // What holds delivery and the projections back, if anything does.
                for h in &holders {
                    println!(
                        "held back by pid {} ({}, user {}, {}, transaction open since {}): {}",
                        h.pid,
                        if h.application_name.is_empty() {
                            "no application_name"
                        } else {
                            h.application_name.as_str()
                        },
                        h.user_name,
                        h.state,
                        h.xact_start.map(ts).unwrap_or_default(),
                        h.last_query
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                }
            }
            Ok(())
        }
        Command::Projections {
            action: Some(ProjectionAction::Rebuild { name }),
        } => {
            let projection = longrun::store::builtin_projection(name)?;
            let engine = connect(cli).await?;
            let store = engine.store();
            let started = std::time::Instant::now();
            store
                .reset_projection(projection.as_ref(), engine.now())
                .await?;
            let mut last = std::time::Instant::now();
            let total = store
                .project_all(
                    projection.as_ref(),
                    || engine.now(),
                    |n| {
                        if last.elapsed() >= std::time::Duration::from_secs(1) {
                            eprintln!("rebuilding {name}: {n} events read");
                            last = std::time::Instant::now();
                        }
                    },
                )
                .await?;
            let secs = started.elapsed().as_secs_f64();
            if cli.json {
                print_json(&json!({"projection": name, "events": total, "seconds": secs}));
            } else {
                println!(
                    "rebuilt {name} from {total} events in {secs:.2} s ({:.0} events/s)",
                    total as f64 / secs.max(1e-9)
                );
            }
            Ok(())
        }
        Command::Run {
            metrics_listen,
            migrate,
        } => {
            let engine = connect_pool(cli, 4).await?;
            migrated(&engine, *migrate).await?;
            if let Some(addr) = metrics_listen {
                serve_metrics(*addr).await?;
                eprintln!("longrun: metrics at http://{addr}/metrics");
            }
            let running = engine.run();
            eprintln!(
                "longrun: engine {} running on schema \"{}\" (timers, message expiry, lapsed work); stop with Ctrl-C or SIGTERM",
                engine.config().owner,
                cli.schema
            );
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| Failure::Other(format!("cannot watch SIGTERM: {e}")))?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("longrun: stopping: finishing work in flight");
            running.shutdown().await;
            eprintln!("longrun: stopped");
            Ok(())
        }
        Command::Console {
            listen,
            prefix,
            user_header,
            run_engine,
            migrate,
            allowed_hosts,
        } => {
            serve_console(
                cli,
                *listen,
                prefix.as_deref(),
                user_header,
                *run_engine,
                *migrate,
                allowed_hosts,
            )
            .await
        }
        Command::Dev { listen, port, keep } => dev(cli, *listen, *port, *keep).await,
        _ => unreachable!("main dispatches only this file's commands here"),
    }
}

/// A context given as `[URL]#SCHEMA` (or a bare schema name): its store, checked to be
/// migrated.
pub(crate) async fn context(cli: &Cli, spec: &str) -> Result<longrun::Store, Failure> {
    let (url, schema) = match spec.rsplit_once('#') {
        Some((url, schema)) => ((!url.is_empty()).then_some(url), schema),
        None => (None, spec),
    };
    longrun::store::validate_schema(schema).map_err(|e| Failure::Input(format!("{spec}: {e}")))?;
    let mut inner = cli.clone();
    inner.schema = schema.to_string();
    if let Some(url) = url {
        inner.database_url = Some(url.to_string());
    }
    let engine = connect(&inner).await?;
    migrated(&engine, false).await?;
    Ok(engine.store().clone())
}
