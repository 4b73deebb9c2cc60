//! `longrun monitor`: the coarse-grained view across contexts.

use serde_json::{json, Value};

use super::operate::context;
use crate::args::*;
use crate::util::*;

/// Run `longrun monitor` (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    let Command::Monitor {
        sources,
        flow,
        trace,
    } = &cli.command
    else {
        unreachable!("dispatched by command");
    };
    let engine = connect(cli).await?;
    migrated(&engine, false).await?;
    let central = engine.store().clone();
    let mut monitor = longrun::monitor::Monitor::new(&central, central.schema())
        .map_err(|e| Failure::Input(e.to_string()))?;
    for spec in sources {
        let Some((name, at)) = spec.split_once('=') else {
            return Err(Failure::Input(format!(
                "--source {spec}: expected NAME=[URL]#SCHEMA"
            )));
        };
        let store = context(cli, at).await?;
        monitor = monitor
            .source(name, &store)
            .map_err(|e| Failure::Input(e.to_string()))?;
    }
    if let Some(file) = flow {
        let doc = longrun::monitor::Flow::from_json(&read_document(file)?)
            .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
        monitor.define(&doc).await?;
    }
    let got = monitor.drain().await?;
    if !cli.json {
        eprintln!(
            "monitor: {} milestones read from {} sources ({} already kept)",
            got.kept,
            sources.len(),
            got.duplicates
        );
    }
    if let Some(key) = trace {
        let timeline = monitor.timeline(key).await?;
        if cli.json {
            print_json(&timeline);
        } else if timeline.is_empty() {
            println!("no milestone of trace {key}");
        } else {
            for r in &timeline {
                println!(
                    "{}  {:<10} {:<14} {:<20} {} ({})",
                    r.reached_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    r.context,
                    r.process,
                    r.milestone,
                    r.business_key,
                    r.instance_id
                );
            }
        }
        return Ok(());
    }
    let report = |name: &'static str| {
        let central = central.clone();
        async move { central.report(name, 10_000).await }
    };
    let (stages, durations, stuck) = (
        report("flow_stages").await?,
        report("flow_durations").await?,
        report("flow_stuck").await?,
    );
    if cli.json {
        print_json(&json!({ "stages": stages, "durations": durations, "stuck": stuck }));
        return Ok(());
    }
    let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    println!("traces per stage");
    print_table(&cols(&["flow", "position", "milestone", "traces"]), &stages);
    println!("\nfrom stage to stage");
    print_table(
        &cols(&[
            "flow",
            "from_milestone",
            "to_milestone",
            "traces",
            "p50_seconds",
            "p95_seconds",
        ]),
        &durations,
    );
    println!("\nstuck past a stage's limit: {}", stuck.len());
    if !stuck.is_empty() {
        let shown: Vec<Value> = stuck.into_iter().take(20).collect();
        print_table(
            &cols(&[
                "flow",
                "trace_key",
                "milestone",
                "context",
                "waiting_seconds",
            ]),
            &shown,
        );
    }
    Ok(())
}
