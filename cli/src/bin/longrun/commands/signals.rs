//! `longrun signal NAME` and `longrun signals`.

use serde_json::json;

use crate::args::*;
use crate::util::*;

/// Run one of this file's commands (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Signal {
            name,
            payload,
            no_deliver,
        } => {
            let payload = parse_json("--payload", payload)?;
            let engine = connect(cli).await?;
            let id = engine.signal(name, payload).await?;
            let mut reached = 0;
            if !no_deliver {
                let started = std::time::Instant::now();
                while let Some(n) = engine.deliver_signal_chunk().await? {
                    reached += n;
                    if !cli.json {
                        eprintln!(
                            "signal {name}: {reached} instances reached, {:.1} s",
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            }
            if cli.json {
                print_json(
                    &json!({ "signal_id": id, "name": name, "reached": reached, "delivered": !no_deliver }),
                );
            } else if *no_deliver {
                println!("threw signal {name} ({id}); the running engines deliver it");
            } else {
                println!("signal {name} ({id}) reached {reached} instances");
            }
            Ok(())
        }
        Command::Signals { limit } => {
            let engine = connect(cli).await?;
            let list = engine.store().signals(*limit).await?;
            if cli.json {
                print_json(&list);
                return Ok(());
            }
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|s| {
                    json!({
                        "signal": s.signal_id,
                        "name": s.name,
                        "thrown": ts(s.thrown_at),
                        "by": s.thrown_by.map(|i| i.to_string()).unwrap_or_else(|| "api".into()),
                        "delivered": s.delivered,
                        "finished": s.finished_at.map(ts).unwrap_or_else(|| "delivering".into()),
                    })
                })
                .collect();
            print_rows(
                &["signal", "name", "thrown", "by", "delivered", "finished"],
                &rows,
            );
            Ok(())
        }
        _ => unreachable!("main dispatches only signal commands here"),
    }
}
