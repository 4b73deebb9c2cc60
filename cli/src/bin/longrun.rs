//! The `longrun` command line: a thin layer over the library's public API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use uuid::Uuid;

use longrun::store::{pg_config, validate_schema, StoreConfig};
use longrun::{Action, Engine, Error, Message, ProcessDefinition, StartRequest, Store};

/// longrun: long-running business processes on PostgreSQL.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "longrun",
    version,
    about = "Long-running business processes in PostgreSQL: migrate, deploy, run engines and the console, operate and report."
)]
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
    /// Log lines on stderr as text or as JSON objects (one per line). What is logged is set by
    /// RUST_LOG (default: info for longrun, warn for the rest).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Seconds opening a connection may take (TCP and start-up together).
    #[arg(long, global = true, default_value = "10", value_name = "SECONDS", value_parser = seconds)]
    connect_timeout: std::time::Duration,
    /// Seconds a statement may run before the server cancels it (0: the server's setting).
    #[arg(long, global = true, default_value = "60", value_name = "SECONDS", value_parser = seconds_or_off)]
    statement_timeout: std::time::Duration,
    /// Seconds a statement may wait for a lock (a row another transaction holds) before it
    /// fails (0: the server's setting).
    #[arg(long, global = true, default_value = "10", value_name = "SECONDS", value_parser = seconds_or_off)]
    lock_timeout: std::time::Duration,
    #[command(subcommand)]
    command: Command,
}

/// A timeout in seconds (fractions allowed), at least 1 ms and at most a day.
fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    if !(0.001..=86_400.0).contains(&s) {
        return Err("a timeout is between 0.001 and 86400 seconds".into());
    }
    Ok(std::time::Duration::from_secs_f64(s))
}

/// As [`seconds`], where 0 (kept as zero) leaves the server's setting.
fn seconds_or_off(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    seconds(text)
}

/// A timeout given as [`seconds_or_off`]: `None` for 0.
fn unless_zero(d: std::time::Duration) -> Option<std::time::Duration> {
    (!d.is_zero()).then_some(d)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// Install the log subscriber every command uses: stderr, filtered by RUST_LOG.
fn install_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,longrun=info"));
    // Colours only for a terminal: a file or a log collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}

#[derive(Subcommand, Debug, Clone)]
enum ProjectionAction {
    /// Delete a projection's rows and rebuild it from the first event, showing progress.
    Rebuild {
        /// The projection (built in: activity).
        name: String,
    },
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    /// Apply the schema migrations (or, with --print, show the SQL without connecting).
    Migrate {
        /// Print the SQL of every migration for this schema and exit.
        #[arg(long)]
        print: bool,
    },
    /// Deploy a process definition from a JSON file.
    Deploy {
        /// The definition file: JSON, or BPMN 2.0 XML (`.bpmn`).
        file: std::path::PathBuf,
        /// json or bpmn (default: from the file's extension).
        #[arg(long)]
        format: Option<String>,
        /// Also point this tag at the deployed version (e.g. stable).
        #[arg(long)]
        tag: Option<String>,
    },
    /// Point a tag at a version of a process; starts by tag then start that version.
    Tag {
        /// The process id.
        process: String,
        /// The tag (e.g. stable).
        tag: String,
        /// The version it names.
        version: i32,
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
        #[arg(long, conflicts_with = "tag")]
        version: Option<i32>,
        /// Start the version this tag names.
        #[arg(long)]
        tag: Option<String>,
        /// Make the start idempotent: run again with the same key, it prints the instance the
        /// first run started and starts nothing.
        #[arg(long)]
        idempotency_key: Option<String>,
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
        /// Only in this status (running, completed, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only with this business key.
        #[arg(long)]
        key: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show an instance: its state, what it waits for, and its event history.
    Show {
        /// The instance id, or a business key (the one instance with it; --process narrows).
        instance: String,
        /// With a business key: of this process.
        #[arg(long)]
        process: Option<String>,
    },
    /// Load generator: N three-step instances on K engines, against a fresh schema, compared
    /// with the commit ceiling Postgres reaches on this machine in the same run.
    Bench(BenchArgs),
    /// Print reporting views as tables: instances, waiting, incidents, stuck, throughput,
    /// step_durations, dead_letters (all of them without a name).
    Report {
        /// One view.
        view: Option<String>,
        /// At most this many rows per view.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// With the old_instances view: only instances started longer ago than this ISO 8601
        /// duration (P7D).
        #[arg(long)]
        older_than: Option<String>,
    },
    /// Rebuild an instance's state from its events and check it against the stored state.
    Replay {
        /// The instance id.
        instance: String,
    },
    /// Print a deployed definition as BPMN 2.0 XML (with a computed layout) or as JSON.
    Export {
        /// The process id.
        process: String,
        /// The version (default: the latest).
        #[arg(long)]
        version: Option<i32>,
        /// bpmn or json.
        #[arg(long, default_value = "bpmn")]
        format: String,
    },
    /// Show what changed between two versions of a process: steps added, removed, changed.
    Diff {
        /// The process id.
        process: String,
        /// The old version.
        from: i32,
        /// The new version.
        to: i32,
    },
    /// Move running instances of PROCESS from one version to another (or, with --dry-run,
    /// list which can move and why the others cannot).
    MigrateInstances {
        /// The process id.
        process: String,
        /// The version they run on.
        #[arg(long)]
        from: i32,
        /// The version to move them to.
        #[arg(long)]
        to: i32,
        /// Map a step of the old version to one of the new: --map old_step=new_step
        /// (repeatable; a step not mapped keeps its id).
        #[arg(long = "map", value_name = "OLD=NEW")]
        map: Vec<String>,
        /// Variables to set on every instance moved, a JSON object.
        #[arg(long)]
        set: Option<String>,
        /// Write nothing: list the instances that can move, and why the others cannot.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the catch-up projections with their checkpoint and lag, or rebuild one.
    Projections {
        #[command(subcommand)]
        action: Option<ProjectionAction>,
    },
    /// Say in plain words where an instance is and why.
    Explain {
        /// The instance id, or a business key (the one instance with it; --process narrows).
        instance: String,
        /// With a business key: of this process.
        #[arg(long)]
        process: Option<String>,
    },
    /// List open incidents: instances stopped at a step that ran out of attempts.
    Incidents {
        /// Only of this process.
        #[arg(long)]
        process: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Retry the step of an instance's open incident, optionally fixing variables first.
    Retry {
        /// The instance id.
        instance: String,
        /// Variables to set before the retry, a JSON object.
        #[arg(long)]
        vars: Option<String>,
    },
    /// Cancel a running instance: its waits, jobs and timers are withdrawn.
    Cancel {
        /// The instance id.
        instance: String,
        /// Why (recorded in its history).
        #[arg(long, default_value = "cancelled by an operator")]
        reason: String,
    },
    /// Pause a running instance until `resume` (messages and timers for it wait).
    Pause {
        /// The instance id.
        instance: String,
    },
    /// Resume a paused instance.
    Resume {
        /// The instance id.
        instance: String,
    },
    /// List running timers, soonest first.
    Timers {
        /// Only of this process.
        #[arg(long)]
        process: Option<String>,
        /// Only due before this RFC 3339 time (e.g. 2026-12-01T00:00:00Z).
        #[arg(long)]
        due_before: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Run an engine with no handlers of its own: fires timers, expires buffered messages and
    /// takes over lapsed work, until interrupted (SIGINT or SIGTERM), then shuts down cleanly.
    Run {
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Apply pending migrations first (needs the owner role). Without it an unmigrated
        /// schema is refused: engines run as a role granted longrun_runtime, which cannot.
        #[arg(long)]
        migrate: bool,
    },
    /// Serve the operations console (the page and its JSON API) until interrupted. It has no
    /// authentication of its own: keep it on a loopback address, or put a proxy that
    /// authenticates in front and sets the user header.
    Console {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Serve under this path prefix (e.g. /ops) instead of at the root.
        #[arg(long)]
        prefix: Option<String>,
        /// The request header that names who asks for an action (set by your proxy).
        #[arg(long, default_value = "x-longrun-user")]
        user_header: String,
        /// Also run an engine with no handlers (timers, the activity projection that feeds
        /// the counts, lapsed work), as `longrun run` does.
        #[arg(long)]
        run_engine: bool,
        /// Apply pending migrations first (needs the owner role); without it an unmigrated
        /// schema is refused.
        #[arg(long)]
        migrate: bool,
        /// A Host the console answers besides localhost, 127.0.0.1, `[::1]` and the --listen
        /// address (repeat for several): the name users reach it by (DNS rebinding guard).
        #[arg(long = "allowed-host", value_name = "HOST")]
        allowed_hosts: Vec<String>,
    },
    /// Try longrun without a database server running: start a throwaway PostgreSQL cluster in
    /// a directory of its own (needs the server binaries, initdb and pg_ctl), migrate, run an
    /// engine and the console, and print the database URL to use. Ctrl-C stops it all and
    /// removes the cluster (unless --keep).
    Dev {
        /// Where the console listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The cluster's port on 127.0.0.1 (default: a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Keep the cluster's directory when stopping (its path is printed).
        #[arg(long)]
        keep: bool,
    },
    /// List dead-lettered inbound messages.
    DeadLetters {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(clap::Args, Debug, Clone)]
struct BenchArgs {
    /// Instances to complete.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// Engines (tasks in one process; per process with --processes).
    #[arg(long, default_value_t = 2)]
    engines: usize,
    /// Separate engine processes (each runs --engines engines).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// service (no-op in-process handlers) or messages (a participant answers send/receive).
    #[arg(long, default_value = "service")]
    workload: String,
    /// Low-rate mode: one instance at a time, start-to-end latency.
    #[arg(long)]
    latency: bool,
    /// Instances per start transaction.
    #[arg(long, default_value_t = 200)]
    start_batch: usize,
    /// Connections per engine.
    #[arg(long, default_value_t = 8)]
    pool_size: usize,
    /// Seconds spent measuring the commit ceiling (0 skips it).
    #[arg(long, default_value_t = 3.0)]
    ceiling_seconds: f64,
    /// Idle mode: how many queries per second an engine with nothing to do makes, over this
    /// many seconds.
    #[arg(long)]
    idle_seconds: Option<f64>,
    /// Timer mode: this many timers due within one second on real time; reports how late
    /// they fired.
    #[arg(long)]
    timers: Option<usize>,
    /// Keep the bench schema afterwards.
    #[arg(long)]
    keep: bool,
    /// Run the engines without the activity history (a projection they keep by default),
    /// to see what it costs.
    #[arg(long)]
    no_activity_history: bool,
    /// Internal: run as a child engine process on an existing bench schema.
    #[arg(long, hide = true)]
    child: bool,
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
            | Error::AlreadyRunning { .. }
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

/// Every time the command line prints as text: RFC 3339 in UTC with milliseconds (the JSON
/// output is RFC 3339 too).
fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A definition file, read no further than the size limit (an endless or huge input is
/// refused without being held in memory).
fn read_document(file: &std::path::Path) -> Result<String, Failure> {
    use std::io::Read;
    let max = longrun::definition::MAX_DOCUMENT_BYTES;
    let cannot = |e: std::io::Error| Failure::Input(format!("cannot read {}: {e}", file.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .map_err(cannot)?
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > max {
        return Err(Failure::Input(format!(
            "{} is larger than {max} bytes, the most a definition may be",
            file.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure::Input(format!("{} is not UTF-8 text", file.display())))
}

/// An instance named by its id, or by its business key when exactly one instance (of
/// `process`, if given) has it.
async fn resolve_instance(
    engine: &Engine,
    text: &str,
    process: Option<&str>,
) -> Result<Uuid, Failure> {
    if let Ok(id) = text.parse::<Uuid>() {
        return Ok(id);
    }
    let filter = longrun::store::InstanceFilter {
        process: process.map(str::to_string),
        business_key: Some(text.to_string()),
        ..Default::default()
    };
    let page = engine.store().search_instances(&filter, None, 6).await?;
    match page.instances.as_slice() {
        [one] => Ok(one.instance_id),
        [] => Err(Failure::Input(format!(
            "no instance has the id or business key \"{text}\"{}",
            process
                .map(|p| format!(" in process {p}"))
                .unwrap_or_default()
        ))),
        several => Err(Failure::Input(format!(
            "{}{} instances have business key \"{text}\": {}; name one by its id{}",
            several.len().min(5),
            if several.len() > 5 { " or more" } else { "" },
            several
                .iter()
                .take(5)
                .map(|i| format!("{} ({} {})", i.instance_id, i.process, i.status))
                .collect::<Vec<_>>()
                .join(", "),
            if process.is_none() {
                " or narrow with --process"
            } else {
                ""
            }
        ))),
    }
}

fn parse_instance(text: &str) -> Result<Uuid, Failure> {
    text.parse()
        .map_err(|_| Failure::Input(format!("\"{text}\" is not an instance id (a UUID)")))
}

fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Input(format!("{what} is not valid JSON: {e}")))
}

/// `longrun instances | head`: when the reader closes the pipe, end quietly as other Unix
/// tools do (killed by SIGPIPE), rather than panic in `println!`. Rust ignores SIGPIPE by
/// default; this puts the default action back.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    install_logs(cli.log_format);
    let json = cli.json;
    let (code, kind, message) = match run(cli).await {
        Ok(()) => return ExitCode::SUCCESS,
        Err(Failure::Input(m)) => (2, "input", m),
        Err(Failure::Other(m)) => (1, "failure", m),
    };
    if json {
        // One JSON object on stderr, so that stdout holds only results.
        eprintln!(
            "{}",
            json!({ "error": message, "kind": kind, "exit_code": code })
        );
    } else {
        eprintln!("longrun: {message}");
    }
    ExitCode::from(code)
}

async fn connect(cli: &Cli) -> Result<Engine, Failure> {
    connect_pool(cli, 2).await
}

async fn connect_pool(cli: &Cli, pool_size: usize) -> Result<Engine, Failure> {
    let config = StoreConfig {
        schema: cli.schema.clone(),
        pool_size,
        connect_timeout: cli.connect_timeout,
        statement_timeout: unless_zero(cli.statement_timeout),
        lock_timeout: unless_zero(cli.lock_timeout),
        ..StoreConfig::default()
    };
    let store = Store::connect_with(pg_config(cli.database_url.as_deref())?, config).await?;
    Ok(Engine::builder(store).build()?)
}

/// `run` and `console` start only on a migrated schema: they migrate when asked (`--migrate`,
/// as the owner), else refuse a schema with pending migrations, so that an engine running as
/// the runtime role never tries DDL it may not run.
async fn migrated(engine: &Engine, migrate: bool) -> Result<(), Failure> {
    if migrate {
        engine.store().migrate().await?;
        return Ok(());
    }
    let pending = engine.store().pending_migrations().await?;
    if pending.is_empty() {
        return Ok(());
    }
    let total = engine.store().migrations().len();
    Err(Failure::Input(format!(
        "schema \"{}\" is not migrated ({} of {total} migrations pending, from {})\nhint: run `longrun migrate` as the owner (or a DBA applies `longrun migrate --print`), or pass --migrate",
        engine.store().schema(),
        pending.len(),
        pending[0].name
    )))
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

async fn run(cli: Cli) -> Result<(), Failure> {
    validate_schema(&cli.schema)?;
    if let Command::Bench(args) = &cli.command {
        return bench(&cli, args).await;
    }
    match &cli.command {
        Command::Bench(_) => unreachable!("handled above"),
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
        Command::Deploy { file, tag, format } => {
            let text = read_document(file)?;
            let format =
                format
                    .clone()
                    .unwrap_or_else(|| match file.extension().and_then(|e| e.to_str()) {
                        Some("bpmn") | Some("xml") => "bpmn".into(),
                        _ => "json".into(),
                    });
            let def = match format.as_str() {
                "json" => ProcessDefinition::from_json(&text)
                    .map_err(|e| Failure::Input(format!("{}: {e}", file.display())))?,
                "bpmn" => {
                    longrun::bpmn::import(&text)
                        .map_err(|e| Failure::Input(format!("{}:{e}", file.display())))?;
                    let engine = connect(&cli).await?;
                    let d = engine.store().deploy_bpmn(&text, engine.now()).await?;
                    if cli.json {
                        print_json(&d);
                    } else {
                        println!(
                            "deployed {} version {}{}",
                            d.process,
                            d.version,
                            if d.created { "" } else { " (unchanged)" }
                        );
                    }
                    if let Some(tag) = tag {
                        engine
                            .store()
                            .tag(&d.process, tag, d.version, engine.now())
                            .await?;
                    }
                    return Ok(());
                }
                other => {
                    return Err(Failure::Input(format!(
                        "--format {other}: expected json or bpmn"
                    )))
                }
            };
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
            if let Some(tag) = tag {
                engine
                    .store()
                    .tag(&d.process, tag, d.version, engine.now())
                    .await?;
                if !cli.json {
                    println!("tagged {} version {} as {tag}", d.process, d.version);
                }
            }
            Ok(())
        }
        Command::Tag {
            process,
            tag,
            version,
        } => {
            let engine = connect(&cli).await?;
            engine
                .store()
                .tag(process, tag, *version, engine.now())
                .await?;
            println!("{process} {tag} -> version {version}");
            Ok(())
        }
        Command::Definitions => {
            let engine = connect(&cli).await?;
            let defs = engine.store().definitions().await?;
            if cli.json {
                print_json(&defs);
            } else {
                let cols = [
                    "process",
                    "version",
                    "running",
                    "completed",
                    "failed",
                    "cancelled",
                    "tags",
                    "start_message",
                    "deployed_at",
                ];
                print_rows(&cols, &defs);
            }
            Ok(())
        }
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
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
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
                    Started { instance_id } => println!("started instance {instance_id}"),
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
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
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
                    longrun::store::describe_event(&h.data)
                );
            }
            Ok(())
        }
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
            let engine = connect(&cli).await?;
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
        Command::Export {
            process,
            version,
            format,
        } => {
            if !matches!(format.as_str(), "bpmn" | "json") {
                return Err(Failure::Input(format!(
                    "--format {format}: expected bpmn or json"
                )));
            }
            let engine = connect(&cli).await?;
            let version = match version {
                Some(v) => *v,
                None => engine
                    .store()
                    .definitions()
                    .await?
                    .iter()
                    .filter(|d| d.process == *process)
                    .map(|d| d.version)
                    .max()
                    .ok_or_else(|| {
                        Failure::Input(format!("no process \"{process}\" is deployed"))
                    })?,
            };
            let def = engine.store().definition(process, version).await?;
            if format == "json" {
                println!("{}", def.to_json());
            } else if let Some(source) = engine.store().definition_source(process, version).await? {
                // Deployed from BPMN: the document as it was, its layout kept.
                print!("{source}");
            } else {
                print!("{}", longrun::bpmn::export(&def).xml);
            }
            Ok(())
        }
        Command::Replay { instance } => {
            let id = parse_instance(instance)?;
            let engine = connect(&cli).await?;
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
        Command::Diff { process, from, to } => {
            let engine = connect(&cli).await?;
            let old = engine.store().definition(process, *from).await?;
            let new = engine.store().definition(process, *to).await?;
            let d = longrun::definition::diff(&old, &new);
            if cli.json {
                print_json(&d);
                return Ok(());
            }
            if d.is_empty() {
                println!("{process} v{from} and v{to} are the same model");
            }
            for line in &d.process {
                println!("~ process {line}");
            }
            for s in &d.added {
                println!("+ step {s}");
            }
            for s in &d.removed {
                println!("- step {s}");
            }
            for (s, lines) in &d.changed {
                println!("~ step {s}");
                for l in lines {
                    println!("    {l}");
                }
            }
            Ok(())
        }
        Command::MigrateInstances {
            process,
            from,
            to,
            map,
            set,
            dry_run,
        } => {
            let mut plan = longrun::machine::MigrationPlan::default();
            for m in map {
                let Some((a, b)) = m.split_once('=') else {
                    return Err(Failure::Input(format!("--map {m}: expected OLD=NEW")));
                };
                plan.mapping
                    .insert(a.trim().to_string(), b.trim().to_string());
            }
            if let Some(s) = set {
                match parse_json("--set", s)? {
                    Value::Object(m) => plan.set = m,
                    _ => return Err(Failure::Input("--set must be a JSON object".into())),
                }
            }
            let engine = connect(&cli).await?;
            let by = format!(
                "longrun migrate-instances (user {})",
                std::env::var("USER").unwrap_or_default()
            );
            let report = engine
                .store()
                .migrate_instances(
                    process,
                    *from,
                    *to,
                    &plan,
                    *dry_run,
                    engine.now(),
                    &by,
                    |n| {
                        eprintln!("{n} instances looked at");
                    },
                )
                .await?;
            if cli.json {
                print_json(&report);
                return Ok(());
            }
            let verb = if *dry_run { "can move" } else { "moved" };
            println!(
                "{process} v{from} -> v{to}: {} {verb}, {} cannot{}",
                report.moved.len(),
                report.refused.len(),
                if *dry_run {
                    " (dry run: nothing written)"
                } else {
                    ""
                }
            );
            for id in &report.moved {
                println!("  {verb}: {id}");
            }
            for r in &report.refused {
                println!("  cannot: {}: {}", r.instance_id, r.reason);
            }
            Ok(())
        }
        Command::Projections { action: None } => {
            let engine = connect(&cli).await?;
            let list = engine.store().projections().await?;
            if cli.json {
                print_json(&list);
            } else {
                let cols = [
                    "name",
                    "events",
                    "behind",
                    "last_xid",
                    "last_position",
                    "updated_at",
                    "rebuilt_at",
                ];
                print_rows(&cols, &list);
            }
            Ok(())
        }
        Command::Projections {
            action: Some(ProjectionAction::Rebuild { name }),
        } => {
            let projection = longrun::store::builtin_projection(name)?;
            let engine = connect(&cli).await?;
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
        Command::Explain { instance, process } => {
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
            let pausing = matches!(cli.command, Command::Pause { .. });
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
            let engine = connect(&cli).await?;
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
            let engine = connect(&cli).await?;
            let list = engine
                .store()
                .timers(process.as_deref(), due_before, *limit)
                .await?;
            if cli.json {
                print_json(&list);
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
            }
            Ok(())
        }
        Command::Run {
            metrics_listen,
            migrate,
        } => {
            let engine = connect_pool(&cli, 4).await?;
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
                &cli,
                *listen,
                prefix.as_deref(),
                user_header,
                *run_engine,
                *migrate,
                allowed_hosts,
            )
            .await
        }
        Command::Dev { listen, port, keep } => dev(&cli, *listen, *port, *keep).await,
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

/// Install a Prometheus recorder and serve its text at `GET /metrics` on `addr`.
async fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), Failure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::Other(format!("cannot install the metrics recorder: {e}")))?;
    longrun::telemetry::describe();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {addr}: {e}")))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let response = if request.starts_with("GET /metrics ") {
                    let body = handle.render();
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(())
}

async fn bench(cli: &Cli, a: &BenchArgs) -> Result<(), Failure> {
    use longrun_cli::bench::{self, BenchConfig, Workload};
    use std::sync::Arc;

    let workload = match a.workload.as_str() {
        "service" => Workload::Service,
        "messages" => Workload::Messages,
        other => {
            return Err(Failure::Input(format!(
                "unknown workload \"{other}\" (service or messages)"
            )))
        }
    };
    if a.instances == 0 || a.engines == 0 || a.processes == 0 || a.pool_size == 0 {
        return Err(Failure::Input(
            "--instances, --engines, --processes and --pool-size must be at least 1".into(),
        ));
    }
    let schema = if a.child || cli.schema != "longrun" {
        cli.schema.clone()
    } else {
        format!("bench_{}", &Uuid::new_v4().simple().to_string()[..12])
    };
    let cfg = BenchConfig {
        database_url: cli.database_url.clone(),
        schema,
        instances: a.instances,
        engines: a.engines,
        workload,
        start_batch: a.start_batch,
        pool_size: a.pool_size,
        ceiling_seconds: a.ceiling_seconds,
        activity_history: !a.no_activity_history,
    };
    if a.child {
        let figures =
            bench::run_engines(&cfg, a.instances, a.engines, true, Arc::default()).await?;
        println!("{}", serde_json::to_string(&figures).expect("serializable"));
        return Ok(());
    }
    eprintln!(
        "bench: schema {}, {} instances, workload {:?}, {} engine(s) x {} process(es), {} connections each",
        cfg.schema, a.instances, workload, a.engines, a.processes, a.pool_size
    );
    let created = bench::setup(&cfg).await?;
    let result = bench_body(&cfg, a).await;
    if a.keep {
        eprintln!("bench: kept schema {}", created.name());
    } else {
        bench::teardown(&cfg, created).await?;
    }
    let line = result?;
    println!("{line}");
    Ok(())
}

async fn bench_body(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
) -> Result<String, Failure> {
    use longrun_cli::bench;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    if let Some(secs) = a.idle_seconds {
        if secs <= 0.0 {
            return Err(Failure::Input("--idle-seconds must be positive".into()));
        }
        let qps = bench::idle_queries(cfg, secs).await?;
        return Ok(format!("idle_seconds={secs:.0} queries_per_s={qps:.2}"));
    }
    if let Some(n) = a.timers {
        if n == 0 {
            return Err(Failure::Input("--timers must be at least 1".into()));
        }
        let mut late = bench::timer_lateness(cfg, n, std::time::Duration::from_secs(2)).await?;
        let early = late.iter().filter(|l| **l < 0.0).count();
        return Ok(format!(
            "timers={} fired={} early={} lateness_p50_ms={:.1} lateness_p99_ms={:.1} lateness_max_ms={:.1}",
            n,
            late.len(),
            early,
            bench::percentile(&mut late, 50.0),
            bench::percentile(&mut late, 99.0),
            bench::percentile(&mut late, 100.0),
        ));
    }
    let commits_before = bench::commits(cfg).await?;
    let progress = Arc::new(AtomicUsize::new(0));
    let reporter = {
        let progress = progress.clone();
        let total = a.instances;
        tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let n = progress.load(Ordering::Relaxed);
                eprintln!(
                    "progress: {n}/{total} instances completed, {:.0}/s, rss {} MiB",
                    n as f64 / t0.elapsed().as_secs_f64(),
                    rss_mib()
                );
            }
        })
    };
    let figures = if a.latency {
        bench::run_latency(cfg, a.instances).await
    } else if a.processes > 1 {
        run_children(cfg, a, progress.clone()).await
    } else {
        bench::run_engines(cfg, a.instances, a.engines, false, progress.clone()).await
    };
    reporter.abort();
    let mut figures = figures?;
    if !a.latency {
        figures.latencies_ms = bench::latencies_from_table(cfg).await?;
    }
    // Closed connections flush their statistics as their backends exit.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let commits = bench::commits(cfg).await? - commits_before - 2;
    let steps = figures.completed * 3;
    let connections = a.engines * a.processes * a.pool_size;
    let ceiling = if a.ceiling_seconds > 0.0 {
        bench::commit_ceiling(
            cfg,
            if a.latency { 1 } else { connections },
            a.ceiling_seconds,
        )
        .await?
    } else {
        f64::NAN
    };
    let ips = figures.completed as f64 / figures.seconds;
    if figures.completed < a.instances {
        return Err(Failure::Other(format!(
            "only {} of {} instances completed",
            figures.completed, a.instances
        )));
    }
    Ok(format!(
        "instances={} seconds={:.2} instances_per_s={:.0} steps_per_s={:.0} commits_per_step={:.3} p50_ms={:.2} p99_ms={:.2} pg_commit_ceiling={:.0} ratio={:.2}",
        figures.completed,
        figures.seconds,
        ips,
        steps as f64 / figures.seconds,
        commits as f64 / steps as f64,
        bench::percentile(&mut figures.latencies_ms, 50.0),
        bench::percentile(&mut figures.latencies_ms, 99.0),
        ceiling,
        ips / ceiling
    ))
}

async fn run_children(
    cfg: &longrun_cli::bench::BenchConfig,
    a: &BenchArgs,
    progress: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Result<longrun_cli::bench::RunFigures, longrun::Error> {
    let exe = std::env::current_exe().map_err(|e| Error::BadInput(e.to_string()))?;
    let per = a.instances.div_ceil(a.processes);
    let started = std::time::Instant::now();
    let mut children = Vec::new();
    for p in 0..a.processes {
        let n = per.min(a.instances.saturating_sub(p * per));
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(["--schema", &cfg.schema, "bench", "--child"])
            .args([
                "--instances",
                &n.to_string(),
                "--engines",
                &a.engines.to_string(),
            ])
            .args([
                "--workload",
                &a.workload,
                "--start-batch",
                &a.start_batch.to_string(),
            ])
            .args(["--pool-size", &a.pool_size.to_string()])
            .args(a.no_activity_history.then_some("--no-activity-history"))
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        if let Some(url) = &cfg.database_url {
            cmd.env("DATABASE_URL", url);
        }
        children.push(
            cmd.spawn()
                .map_err(|e| Error::BadInput(format!("cannot start a bench process: {e}")))?,
        );
    }
    let mut all = longrun_cli::bench::RunFigures::default();
    for child in children {
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| Error::BadInput(e.to_string()))?;
        if !out.status.success() {
            return Err(Error::BadInput(format!(
                "a bench process failed: {}",
                out.status
            )));
        }
        let f: longrun_cli::bench::RunFigures = serde_json::from_slice(&out.stdout)
            .map_err(|e| Error::BadInput(format!("bad output from a bench process: {e}")))?;
        all.completed += f.completed;
        all.latencies_ms.extend(f.latencies_ms);
        progress.store(all.completed, std::sync::atomic::Ordering::Relaxed);
    }
    all.seconds = started.elapsed().as_secs_f64();
    Ok(all)
}

/// This process's resident memory, MiB (Linux; 0 elsewhere).
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// Print serializable rows as a table of the given fields.
fn print_rows<T: serde::Serialize>(columns: &[&str], rows: &[T]) {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).expect("serializable"))
        .collect();
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    print_table(&columns, &rows);
}

/// Print rows (JSON objects) as a table with aligned columns.
fn print_table(columns: &[String], rows: &[Value]) {
    let cell = |row: &Value, c: &str| match row.get(c) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).len())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(columns.to_vec()));
    for r in rows {
        println!("{}", line(columns.iter().map(|c| cell(r, c)).collect()));
    }
}

/// Who asks, as recorded in an instance's history by the operator commands.
fn cli_user(command: &str) -> String {
    format!(
        "longrun {command} (user {})",
        std::env::var("USER").unwrap_or_default()
    )
}

/// `longrun dev`: a private cluster, migrated, with an engine and the console, until
/// interrupted; then the cluster is stopped and (unless `keep`) removed.
async fn dev(
    cli: &Cli,
    listen: std::net::SocketAddr,
    port: Option<u16>,
    keep: bool,
) -> Result<(), Failure> {
    use longrun_cli::cluster::{free_port, Cluster};
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| Failure::Other(e.to_string());
    let port = match port {
        Some(p) => p,
        None => free_port().map_err(failed)?,
    };
    eprintln!("longrun: creating a PostgreSQL cluster (initdb) ...");
    let mut cluster = Cluster::create(port, &format!("longrun-dev-{port}")).map_err(failed)?;
    cluster.listen_tcp();
    let started = cluster.start().map_err(failed);
    let result = match started {
        Ok(()) => {
            let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable");
            println!("DATABASE_URL={url}");
            println!("LONGRUN_SCHEMA={}", cli.schema);
            eprintln!(
                "longrun: PostgreSQL in {} on port {port}; in another shell: export DATABASE_URL='{url}'",
                cluster.dir.display()
            );
            let mut dev_cli = cli.clone();
            dev_cli.database_url = Some(url);
            serve_console(&dev_cli, listen, None, "x-longrun-user", true, true, &[]).await
        }
        Err(e) => Err(e),
    };
    let _ = cluster.stop("fast");
    if keep {
        eprintln!("longrun: kept the cluster in {}", cluster.dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&cluster.dir);
        eprintln!("longrun: removed the cluster");
    }
    result
}

/// `longrun console`: the console's router, alone or under a prefix, until interrupted.
async fn serve_console(
    cli: &Cli,
    listen: std::net::SocketAddr,
    prefix: Option<&str>,
    user_header: &str,
    run_engine: bool,
    migrate: bool,
    allowed_hosts: &[String],
) -> Result<(), Failure> {
    let prefix = match prefix.map(|p| p.trim_end_matches('/')) {
        None | Some("") => None,
        Some(p) if p.starts_with('/') && !p.contains(['?', '#', '{', '}', '*']) => Some(p),
        Some(p) => {
            return Err(Failure::Input(format!(
                "--prefix must be a path like /ops, not {p:?}"
            )))
        }
    };
    axum::http::HeaderName::from_bytes(user_header.as_bytes()).map_err(|_| {
        Failure::Input(format!(
            "--user-header {user_header:?} is not a header name"
        ))
    })?;
    let engine = connect_pool(cli, 8).await?;
    migrated(&engine, migrate).await?;
    let running = run_engine.then(|| engine.run());
    let mut hosts = allowed_hosts.to_vec();
    hosts.push(listen.to_string());
    let console = longrun::console::Console::new(engine.clone())
        .user_header(user_header)
        .allowed_hosts(hosts)
        .router();
    let app = match prefix {
        Some(p) => axum::Router::new().nest_service(p, console),
        None => console,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Other(format!("cannot listen on {listen}: {e}")))?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "longrun: WARNING: the console listens on {listen}, not a loopback address, and has no authentication of its own: anyone who reaches it can cancel instances. Put an authenticating proxy in front."
        );
    }
    eprintln!(
        "longrun: console at http://{}{}/ on schema \"{}\"{}; stop with Ctrl-C or SIGTERM",
        listener
            .local_addr()
            .map_err(|e| Failure::Other(e.to_string()))?,
        prefix.unwrap_or(""),
        cli.schema,
        if run_engine { ", with an engine" } else { "" }
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Failure::Other(format!("cannot watch SIGTERM: {e}")))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        })
        .await
        .map_err(|e| Failure::Other(format!("the console stopped: {e}")))?;
    if let Some(running) = running {
        running.shutdown().await;
    }
    eprintln!("longrun: console stopped");
    Ok(())
}
