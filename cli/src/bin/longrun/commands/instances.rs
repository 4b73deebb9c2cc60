//! Instances: start, send, list, show, replay, explain, incidents, retry, pause, resume, cancel, timers, dead letters.

use serde_json::json;

use longrun::{Action, Message, StartRequest};

use crate::args::*;
use crate::util::*;

/// Run one of this file's commands (main dispatches by command).
pub(crate) async fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Start {
            process,
            key,
            vars,
            version,
            tag,
            idempotency_key,
        } => {
            let variables = match vars {
                Some(v) => parse_json("--vars", v)?,
                None => json!({}),
            };
            if !variables.is_object() {
                return Err(Failure::Input("--vars must be a JSON object".into()));
            }
            let engine = connect(cli).await?;
            let mut req = StartRequest::new(process.clone(), key.clone()).variables(variables);
            req.version = *version;
            req.tag = tag.clone();
            req.idempotency_key = idempotency_key.clone();
            let id = engine.start(req).await?;
            let view = engine.store().instance(id).await?;
            if cli.json {
                print_json(&view);
            } else {
                println!(
                    "started {} (process {} v{}, key {}): {}{}",
                    id,
                    view.process,
                    view.version,
                    view.business_key,
                    view.status,
                    view.waiting_for
                        .map(|w| format!(", waiting for {w}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Send {
            message,
            key,
            id,
            payload,
            ttl_seconds,
        } => {
            let payload = match payload {
                Some(p) => parse_json("--payload", p)?,
                None => json!({}),
            };
            let mut msg = Message::new(message.clone(), key.clone(), id.clone()).payload(payload);
            if let Some(s) = ttl_seconds {
                let ttl = chrono::Duration::try_seconds(*s)
                    .filter(|t| {
                        *t > chrono::Duration::zero() && *t <= longrun::definition::MAX_SPAN
                    })
                    .ok_or_else(|| {
                        Failure::Input(format!(
                            "--ttl-seconds must be from 1 to {} (100 years)",
                            longrun::definition::MAX_SPAN.num_seconds()
                        ))
                    })?;
                msg = msg.ttl(ttl);
            }
            let engine = connect(cli).await?;
            let d = engine.send(msg).await?;
            // Said on stderr even with --json: a message nobody knows is most often a typo.
            if let longrun::Delivery::DeadLettered { reason } = &d {
                eprintln!("longrun: warning: message {message} was dead-lettered: {reason}");
            }
            if cli.json {
                print_json(&d);
            } else {
                use longrun::Delivery::*;
                match d {
                    Correlated { instance_id } => println!("correlated to instance {instance_id}"),
                    Started { instance_id, also } => {
                        println!("started instance {instance_id}");
                        for id in also {
                            println!("started instance {id} (another process that starts on it)");
                        }
                    }
                    Buffered { expires_at } => println!("buffered: nobody waits for it yet; kept until {}", ts(expires_at)),
                    DeadLettered { reason } => println!("dead-lettered: {reason}"),
                    Duplicate { status, instance_id } => println!(
                        "duplicate: message id {id} was received before ({status}{}); nothing changed",
                        instance_id.map(|i| format!(", instance {i}")).unwrap_or_default()
                    ),
                }
            }
            Ok(())
        }
        Command::Instances {
            process,
            status,
            key,
            limit,
        } => {
            if let Some(s) = status {
                if longrun::machine::Status::from_stored(s).is_none() {
                    let all: Vec<&str> = longrun::machine::Status::STORED
                        .iter()
                        .map(|s| s.as_str())
                        .collect();
                    return Err(Failure::Input(format!(
                        "unknown status \"{s}\" (one of {})",
                        all.join(", ")
                    )));
                }
            }
            let engine = connect(cli).await?;
            let list = match key {
                None => {
                    engine
                        .store()
                        .instances(process.as_deref(), status.as_deref(), *limit)
                        .await?
                }
                Some(k) => {
                    let filter = longrun::store::InstanceFilter {
                        process: process.clone(),
                        status: status.clone(),
                        business_key: Some(k.clone()),
                        ..Default::default()
                    };
                    engine
                        .store()
                        .search_instances(&filter, None, (*limit).clamp(1, 1000))
                        .await?
                        .instances
                }
            };
            if cli.json {
                print_json(&list);
            } else {
                let cols = [
                    "instance_id",
                    "process",
                    "version",
                    "business_key",
                    "status",
                    "current_step",
                    "waiting_for",
                ];
                print_rows(&cols, &list);
            }
            Ok(())
        }
        Command::Show { instance, process } => {
            let engine = connect(cli).await?;
            let id = resolve_instance(&engine, instance, process.as_deref()).await?;
            let store = engine.store();
            let view = store.instance(id).await?;
            let waiting = store.waiting(id).await?;
            let history = store.history(id).await?;
            let timers = store.timers_of(id).await?;
            if cli.json {
                print_json(
                    &json!({ "instance": view, "waiting": waiting, "timers": timers, "history": history }),
                );
                return Ok(());
            }
            println!("instance  {}", view.instance_id);
            println!("process   {} v{}", view.process, view.version);
            println!("key       {}", view.business_key);
            println!(
                "status    {}{}",
                view.status,
                view.current_step
                    .map(|s| format!(" at {s}"))
                    .unwrap_or_default()
            );
            if let Some(w) = &view.waiting_for {
                println!("waiting   {w}");
            }
            if let Some(e) = &view.error {
                println!("error     {e}");
            }
            println!("started   {}", ts(view.started_at));
            if let Some(e) = view.ended_at {
                println!("ended     {}", ts(e));
            }
            println!("variables {}", view.variables);
            for w in waiting {
                match w {
                    longrun::store::Waiting::Message {
                        name,
                        key,
                        since,
                        step,
                    } => println!(
                        "  waits at {step} for message {name} key {key} since {}",
                        ts(since)
                    ),
                    longrun::store::Waiting::Job {
                        handler,
                        step,
                        attempts,
                        lease_owner,
                        ..
                    } => println!(
                        "  waits at {step} for job {handler} (attempts {attempts}{})",
                        lease_owner
                            .map(|o| format!(", held by {o}"))
                            .unwrap_or_default()
                    ),
                }
            }
            for t in &timers {
                println!(
                    "  timer {} at {} due {} ({})",
                    t.kind,
                    t.step,
                    ts(t.due_at),
                    t.timer_id
                );
            }
            println!("history:");
            for h in history {
                println!(
                    "  {:>3}  {}  {:<18} {}",
                    h.seq,
                    ts(h.recorded_at),
                    h.event_type,
                    h.event.describe()
                );
            }
            Ok(())
        }
        Command::Replay { instance } => {
            let id = parse_instance(instance)?;
            let engine = connect(cli).await?;
            let r = engine.store().replay(id).await?;
            if cli.json {
                print_json(&r);
            } else if r.differences.is_empty() {
                println!("{id}: {} events replay to the stored state", r.events);
            } else {
                println!("{id}: {} events replay to a different state:", r.events);
                for d in &r.differences {
                    println!("  {d}");
                }
            }
            if r.differences.is_empty() {
                Ok(())
            } else {
                Err(Failure::Other(
                    "the replayed state differs from the stored one".into(),
                ))
            }
        }
        Command::Explain { instance, process } => {
            let engine = connect(cli).await?;
            let id = resolve_instance(&engine, instance, process.as_deref()).await?;
            let lines = engine.store().explain(id).await?;
            if cli.json {
                print_json(&lines);
            } else {
                for l in lines {
                    println!("{l}");
                }
            }
            Ok(())
        }
        Command::Incidents { process, limit } => {
            let engine = connect(cli).await?;
            let list = engine.store().incidents(process.as_deref(), *limit).await?;
            if cli.json {
                print_json(&list);
            } else {
                let cols = [
                    "at",
                    "instance_id",
                    "process",
                    "business_key",
                    "step",
                    "attempts",
                    "error",
                ];
                print_rows(&cols, &list);
            }
            Ok(())
        }
        Command::Retry { instance, vars } => {
            let id = parse_instance(instance)?;
            let vars = match vars {
                Some(v) => {
                    let v = parse_json("--vars", v)?;
                    if !v.is_object() {
                        return Err(Failure::Input("--vars must be a JSON object".into()));
                    }
                    Some(v)
                }
                None => None,
            };
            let engine = connect(cli).await?;
            engine
                .act(id, Action::Retry { variables: vars }, &cli_user("retry"))
                .await?;
            let view = engine.store().instance(id).await?;
            if cli.json {
                print_json(&view);
            } else {
                println!(
                    "retrying {} at {}",
                    id,
                    view.current_step.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Pause { instance } | Command::Resume { instance } => {
            let id = parse_instance(instance)?;
            let engine = connect(cli).await?;
            let pausing = matches!(&cli.command, Command::Pause { .. });
            let (action, name) = if pausing {
                (Action::Pause, "pause")
            } else {
                (Action::Resume, "resume")
            };
            engine.act(id, action, &cli_user(name)).await?;
            if cli.json {
                print_json(&engine.store().instance(id).await?);
            } else {
                println!("{} {id}", if pausing { "paused" } else { "resumed" });
            }
            Ok(())
        }
        Command::Cancel { instance, reason } => {
            let id = parse_instance(instance)?;
            let engine = connect(cli).await?;
            let action = Action::Cancel {
                reason: reason.clone(),
            };
            engine.act(id, action, &cli_user("cancel")).await?;
            if cli.json {
                print_json(&engine.store().instance(id).await?);
            } else {
                println!("cancelled {id}: {reason}");
            }
            Ok(())
        }
        Command::Timers {
            process,
            due_before,
            limit,
        } => {
            let due_before = match due_before {
                None => None,
                Some(t) => Some(
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map_err(|e| {
                            Failure::Input(format!("--due-before is not an RFC 3339 time: {e}"))
                        })?
                        .with_timezone(&chrono::Utc),
                ),
            };
            let engine = connect(cli).await?;
            let list = engine
                .store()
                .timers(process.as_deref(), due_before, *limit)
                .await?;
            let starts: Vec<_> = engine
                .store()
                .start_timers()
                .await?
                .into_iter()
                .filter(|t| process.as_deref().is_none_or(|p| p == t.process_id))
                .filter(|t| due_before.is_none_or(|d| t.due_at < d))
                .collect();
            if cli.json {
                print_json(&serde_json::json!({ "timers": list, "timer_starts": starts }));
            } else {
                let cols = [
                    "due_at",
                    "kind",
                    "instance_id",
                    "process",
                    "business_key",
                    "step",
                ];
                print_rows(&cols, &list);
                if !starts.is_empty() {
                    println!();
                    print_rows(&["due_at", "process_id", "version", "fired"], &starts);
                }
            }
            Ok(())
        }
        Command::DeadLetters { limit } => {
            let engine = connect(cli).await?;
            let list = engine.store().dead_letters(*limit).await?;
            if cli.json {
                print_json(&list);
            } else {
                for d in list {
                    println!("{}  {} key {}: {}", d.message_id, d.name, d.key, d.reason);
                }
            }
            Ok(())
        }
        _ => unreachable!("main dispatches only this file's commands here"),
    }
}
