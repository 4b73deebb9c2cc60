//! The `longrun` command line: a thin layer over the library's public API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

use longrun::store::{pg_config, validate_schema, StoreConfig};
use longrun::{Engine, Error, Message, ProcessDefinition, StartRequest, Store};

/// longrun: long-running business processes on PostgreSQL.
#[derive(Parser, Debug)]
#[command(name = "longrun", version, about)]
struct Cli {
    /// Database URL; default: DATABASE_URL, else what psql would use (local socket, OS user).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The schema holding longrun's tables.
    #[arg(long, global = true, env = "LONGRUN_SCHEMA", default_value = "longrun")]
    schema: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply the schema migrations (or, with --print, show the SQL without connecting).
    Migrate {
        /// Print the SQL of every migration for this schema and exit.
        #[arg(long)]
        print: bool,
    },
    /// Deploy a process definition from a JSON file.
    Deploy {
        /// The JSON definition file.
        file: std::path::PathBuf,
    },
    /// List deployed processes and versions with instance counts.
    Definitions,
    /// Start an instance of the latest version of PROCESS.
    Start {
        /// The process id.
        process: String,
        /// The business key.
        #[arg(long)]
        key: String,
        /// The initial variables, a JSON object.
        #[arg(long)]
        vars: Option<String>,
        /// Start this version instead of the latest.
        #[arg(long)]
        version: Option<i32>,
    },
    /// Deliver a message to the engine.
    Send {
        /// The message name.
        message: String,
        /// The correlation key.
        #[arg(long)]
        key: String,
        /// The message id (deduplication key).
        #[arg(long)]
        id: String,
        /// The payload, JSON.
        #[arg(long)]
        payload: Option<String>,
        /// How long it is buffered if nobody waits for it yet, in seconds.
        #[arg(long)]
        ttl_seconds: Option<i64>,
    },
    /// List instances, newest first.
    Instances {
        /// Only of this process.
        #[arg(long)]
        process: Option<String>,
        /// Only in this status (running, completed, failed).
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show an instance: its state, what it waits for, and its event history.
    Show {
        /// The instance id.
        instance: String,
    },
    /// List dead-lettered inbound messages.
    DeadLetters {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// A failure: bad input exits 2, anything else 1.
enum Failure {
    Input(String),
    Other(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidSchema(_)
            | Error::Definition(_)
            | Error::BadInput(_)
            | Error::InstanceNotFound(_)
            | Error::ProcessNotFound(_)
            | Error::Rejected { .. }
            | Error::Config(_) => Failure::Input(e.to_string()),
            other => {
                let text = other.to_string();
                if text.contains("(42P01)") || text.contains("(3F000)") {
                    Failure::Other(format!(
                        "{text}\nhint: the schema is not migrated; run `longrun migrate`"
                    ))
                } else {
                    Failure::Other(text)
                }
            }
        }
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Input(format!("{what} is not valid JSON: {e}")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(m)) => {
            eprintln!("longrun: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Other(m)) => {
            eprintln!("longrun: {m}");
            ExitCode::from(1)
        }
    }
}

async fn connect(cli: &Cli) -> Result<Engine, Failure> {
    let config = StoreConfig {
        schema: cli.schema.clone(),
        pool_size: 2,
    };
    let store = Store::connect_with(pg_config(cli.database_url.as_deref())?, config).await?;
    Ok(Engine::builder(store).build()?)
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

async fn run(cli: Cli) -> Result<(), Failure> {
    validate_schema(&cli.schema)?;
    match &cli.command {
        Command::Migrate { print: true } => {
            for m in longrun::store::migrations_for_schema(&cli.schema) {
                println!(
                    "-- migration {} ({}), sha256 {}",
                    m.version, m.name, m.checksum
                );
                println!("{}", m.sql.trim_end());
                println!();
            }
            Ok(())
        }
        Command::Migrate { print: false } => {
            let engine = connect(&cli).await?;
            let applied = engine.store().migrate().await?;
            if cli.json {
                print_json(&json!({ "schema": cli.schema, "applied": applied }));
            } else if applied.is_empty() {
                println!("schema \"{}\" is up to date", cli.schema);
            } else {
                for v in applied {
                    println!("applied migration {v:04} to schema \"{}\"", cli.schema);
                }
            }
            Ok(())
        }
        Command::Deploy { file } => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Failure::Input(format!("cannot read {}: {e}", file.display())))?;
            let def = ProcessDefinition::from_json(&text)
                .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?;
            let engine = connect(&cli).await?;
            let d = engine.deploy(&def).await?;
            if cli.json {
                print_json(&d);
            } else if d.created {
                println!("deployed {} version {}", d.process, d.version);
            } else {
                println!(
                    "{} version {} is already deployed with this document",
                    d.process, d.version
                );
            }
            Ok(())
        }
        Command::Definitions => {
            let engine = connect(&cli).await?;
            let defs = engine.store().definitions().await?;
            if cli.json {
                print_json(&defs);
            } else {
                println!(
                    "{:<20} {:>7} {:>8} {:>9} {:>6}  {:<20}  deployed",
                    "process", "version", "running", "completed", "failed", "start message"
                );
                for d in defs {
                    println!(
                        "{:<20} {:>7} {:>8} {:>9} {:>6}  {:<20}  {}",
                        d.process,
                        d.version,
                        d.running,
                        d.completed,
                        d.failed,
                        d.start_message.unwrap_or_default(),
                        d.deployed_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
            Ok(())
        }
        Command::Start {
            process,
            key,
            vars,
            version,
        } => {
            let variables = match vars {
                Some(v) => parse_json("--vars", v)?,
                None => json!({}),
            };
            if !variables.is_object() {
                return Err(Failure::Input("--vars must be a JSON object".into()));
            }
            let engine = connect(&cli).await?;
            let mut req = StartRequest::new(process.clone(), key.clone()).variables(variables);
            req.version = *version;
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
                if *s <= 0 {
                    return Err(Failure::Input("--ttl-seconds must be positive".into()));
                }
                msg = msg.ttl(chrono::Duration::seconds(*s));
            }
            let engine = connect(&cli).await?;
            let d = engine.send(msg).await?;
            if cli.json {
                print_json(&d);
            } else {
                use longrun::Delivery::*;
                match d {
                    Correlated { instance_id } => println!("correlated to instance {instance_id}"),
                    Started { instance_id } => println!("started instance {instance_id}"),
                    Buffered { expires_at } => println!("buffered: nobody waits for it yet; kept until {expires_at}"),
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
            limit,
        } => {
            if let Some(s) = status {
                if !["running", "completed", "failed"].contains(&s.as_str()) {
                    return Err(Failure::Input(format!(
                        "unknown status \"{s}\" (running, completed or failed)"
                    )));
                }
            }
            let engine = connect(&cli).await?;
            let list = engine
                .store()
                .instances(process.as_deref(), status.as_deref(), *limit)
                .await?;
            if cli.json {
                print_json(&list);
            } else {
                println!(
                    "{:<36}  {:<12} {:>3}  {:<16} {:<9}  {:<20}  waiting for",
                    "instance", "process", "v", "key", "status", "step"
                );
                for i in list {
                    println!(
                        "{:<36}  {:<12} {:>3}  {:<16} {:<9}  {:<20}  {}",
                        i.instance_id,
                        i.process,
                        i.version,
                        i.business_key,
                        i.status,
                        i.current_step.unwrap_or_default(),
                        i.waiting_for.unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        Command::Show { instance } => {
            let id: Uuid = instance.parse().map_err(|_| {
                Failure::Input(format!("\"{instance}\" is not an instance id (a UUID)"))
            })?;
            let engine = connect(&cli).await?;
            let store = engine.store();
            let view = store.instance(id).await?;
            let waiting = store.waiting(id).await?;
            let history = store.history(id).await?;
            if cli.json {
                print_json(&json!({ "instance": view, "waiting": waiting, "history": history }));
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
            println!("started   {}", view.started_at);
            if let Some(e) = view.ended_at {
                println!("ended     {e}");
            }
            println!("variables {}", view.variables);
            for w in waiting {
                match w {
                    longrun::store::Waiting::Message {
                        name,
                        key,
                        since,
                        step,
                    } => println!("  waits at {step} for message {name} key {key} since {since}"),
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
            println!("history:");
            for h in history {
                println!(
                    "  {:>3}  {}  {:<18} {}",
                    h.seq,
                    h.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
                    h.event_type,
                    describe(&h.data)
                );
            }
            Ok(())
        }
        Command::DeadLetters { limit } => {
            let engine = connect(&cli).await?;
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
    }
}

/// A one-line summary of an event's data.
fn describe(data: &Value) -> String {
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match data.get("type").and_then(Value::as_str).unwrap_or("") {
        "InstanceStarted" => format!(
            "key {} variables {}",
            s("business_key"),
            data.get("variables").cloned().unwrap_or(Value::Null)
        ),
        "JobCreated" => format!("{} -> handler {}", s("step"), s("handler")),
        "JobCompleted" => format!(
            "{} set {}",
            s("step"),
            data.get("set").cloned().unwrap_or(Value::Null)
        ),
        "JobFailed" => format!("{}: {}", s("step"), s("error")),
        "MessageSent" => match data.get("to").and_then(Value::as_str) {
            Some(to) => format!(
                "{}: command {} to {} key {}",
                s("step"),
                s("name"),
                to,
                s("key")
            ),
            None => format!("{}: event {} key {}", s("step"), s("name"), s("key")),
        },
        "MessageAwaited" => format!("{}: waits for {} key {}", s("step"), s("name"), s("key")),
        "MessageCorrelated" => format!(
            "{}: {} (id {}) set {}",
            s("step"),
            s("name"),
            s("message_id"),
            data.get("set").cloned().unwrap_or(Value::Null)
        ),
        "InstanceCompleted" => format!("at {}", s("step")),
        "InstanceFailed" => format!("at {}: {}", s("step"), s("error")),
        _ => data.to_string(),
    }
}
