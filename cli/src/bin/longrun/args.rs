//! The command line's arguments (clap).

use clap::{Parser, Subcommand};

/// longrun: long-running business processes on PostgreSQL.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "longrun",
    version,
    about = "Long-running business processes in PostgreSQL: migrate, deploy, run engines and the console, operate and report."
)]
pub(crate) struct Cli {
    /// Database URL; default: DATABASE_URL, else what psql would use (local socket, OS user).
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// The schema holding longrun's tables.
    #[arg(long, global = true, env = "LONGRUN_SCHEMA", default_value = "longrun")]
    pub(crate) schema: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Log lines on stderr as text or as JSON objects (one per line). What is logged is set by
    /// RUST_LOG (default: info for longrun, warn for the rest).
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Seconds opening a connection may take (TCP and start-up together).
    #[arg(long, global = true, default_value = "10", value_name = "SECONDS", value_parser = seconds)]
    pub(crate) connect_timeout: std::time::Duration,
    /// Seconds a statement may run before the server cancels it (0: the server's setting).
    #[arg(long, global = true, default_value = "60", value_name = "SECONDS", value_parser = seconds_or_off)]
    pub(crate) statement_timeout: std::time::Duration,
    /// Seconds a statement may wait for a lock (a row another transaction holds) before it
    /// fails (0: the server's setting).
    #[arg(long, global = true, default_value = "10", value_name = "SECONDS", value_parser = seconds_or_off)]
    pub(crate) lock_timeout: std::time::Duration,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A timeout in seconds (fractions allowed), at least 1 ms and at most a day.
pub(crate) fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    if !(0.001..=86_400.0).contains(&s) {
        return Err("a timeout is between 0.001 and 86400 seconds".into());
    }
    Ok(std::time::Duration::from_secs_f64(s))
}

/// As [`seconds`], where 0 (kept as zero) leaves the server's setting.
pub(crate) fn seconds_or_off(text: &str) -> Result<std::time::Duration, String> {
    if text.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    seconds(text)
}

/// A timeout given as [`seconds_or_off`]: `None` for 0.
pub(crate) fn unless_zero(d: std::time::Duration) -> Option<std::time::Duration> {
    (!d.is_zero()).then_some(d)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Install the log subscriber every command uses: stderr, filtered by RUST_LOG.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum ProjectionAction {
    /// Delete a projection's rows and rebuild it from the first event, showing progress.
    Rebuild {
        /// The projection (built in: activity).
        name: String,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum Command {
    /// Apply the schema migrations; or, without connecting, print them as one script a DBA
    /// applies (--print), or write them as files for the DBA's tool (--out).
    Migrate {
        /// Print the SQL that brings the schema to the latest migration, as one transaction
        /// for `psql -v ON_ERROR_STOP=1 -f` (it creates the schema and records each migration
        /// as `longrun migrate` does), and exit.
        #[arg(long, conflicts_with = "out")]
        print: bool,
        /// With --print: the migration the schema is at (`SELECT max(version) FROM
        /// <schema>.schema_migrations`); only what it still needs is printed.
        #[arg(long, requires = "print", default_value_t = 0, value_name = "N")]
        from: i32,
        /// Write one file per migration into this directory (created if missing) and exit.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
        /// The files' layout with --out: plain (0001_core.sql, each a transaction of its own)
        /// or flyway (V1__core.sql, without BEGIN/COMMIT).
        #[arg(long, requires = "out", default_value = "plain", value_parser = ["plain", "flyway"])]
        format: String,
        /// A new schema's per-instance tables: plain, or partitioned (`PARTITION BY HASH
        /// (bucket)`, docs/SCALING.md). A schema that exists keeps its layout.
        #[arg(long, default_value = "plain", value_parser = ["plain", "partitioned"])]
        layout: String,
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
    /// Read a definition file (JSON, or BPMN 2.0 XML) and print it as the other form, without
    /// connecting: every problem is reported as deploy would; BPMN is written from the model
    /// with a computed layout (what `export` prints for a version deployed as JSON).
    Convert {
        /// The definition file: JSON, or BPMN 2.0 XML (`.bpmn`).
        file: std::path::PathBuf,
        /// json or bpmn (default: from the file's extension).
        #[arg(long)]
        format: Option<String>,
        /// What to print: bpmn or json (default: the other form).
        #[arg(long)]
        to: Option<String>,
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
    /// The running engines: their handlers, when each last renewed its lease, and how many of
    /// the 256 buckets each claims jobs and fires timers in (engines with the same handlers
    /// share them). Engines whose lease lapsed within the last hour are listed as not live.
    Engines,
    /// Rows and bytes per table of the schema, and the bytes per ended instance.
    Storage {
        /// Count each table's rows (a full scan of each) instead of the planner's estimate.
        #[arg(long)]
        exact: bool,
    },
    /// Remove what retention says is due now, in short batches, and print what went per
    /// table: the history (events, activity, instance row) of instances that ended longer ago
    /// than their process's retention period, inbound message ids past the deduplication
    /// window, and outbound messages every consumer has passed. Running instances are never
    /// touched. Engines do the same in the background.
    Retention {
        /// Count what would go; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Remove the history of instances that ended longer ago than this (ISO 8601, e.g.
        /// P30D), whatever their processes' own periods.
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// The period of processes whose definition declares none (ISO 8601), or `never`.
        #[arg(long = "default", value_name = "DURATION", default_value = "P180D")]
        default_period: String,
        /// How long inbound message ids are remembered (ISO 8601).
        #[arg(long, value_name = "DURATION", default_value = "P7D")]
        dedup_window: String,
        /// How long outbound messages are kept at least (ISO 8601), once every consumer has
        /// passed them.
        #[arg(long, value_name = "DURATION", default_value = "P7D")]
        outbox_retention: String,
        /// Instances (or messages) per batch; each batch is one short transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Carry what one context's outbox sends on some topics into another context's inbox,
    /// exactly once in effect (the outbox message id is the inbound id; the checkpoint moves
    /// after the target committed). Runs until Ctrl-C or SIGTERM, or with --once until
    /// nothing is left.
    Bridge {
        /// The source context: `[DATABASE_URL]#SCHEMA` (`#orders` or a bare `orders` is a
        /// schema of the default database), or `nats://HOST:PORT` (NATS JetStream) or
        /// `amqp://HOST:PORT/VHOST` (RabbitMQ, a queue named --name) to deliver from a broker
        /// (then --to is a context).
        #[arg(long, value_name = "URL#SCHEMA")]
        from: String,
        /// The target context, the same way, or a broker URL to publish to.
        #[arg(long, value_name = "URL#SCHEMA")]
        to: String,
        /// The outbox topics to carry, comma-separated (a command's recipient, an event's
        /// name).
        #[arg(long, value_delimiter = ',', required = true)]
        topics: Vec<String>,
        /// The bridge's name: its checkpoint in the source (default
        /// `bridge-<from schema>-to-<to schema>`).
        #[arg(long)]
        name: Option<String>,
        /// Carry what is there now and stop.
        #[arg(long)]
        once: bool,
        /// With NATS: the JetStream stream and the subjects' first token.
        #[arg(long, default_value = "LONGRUN")]
        nats_stream: String,
        #[arg(long, default_value = "longrun", hide = true)]
        nats_prefix: String,
        /// With RabbitMQ: the topic exchange.
        #[arg(long, default_value = "longrun")]
        rabbitmq_exchange: String,
    },
    /// Central monitoring: read the milestones every context (`--source`) published into this
    /// schema, then print each flow's traces per stage, stage-to-stage durations (p50, p95)
    /// and the traces stuck past a stage's limit, or one trace's timeline (`--trace`).
    Monitor {
        /// A context to read: `NAME=[URL]#SCHEMA` (repeatable).
        #[arg(long = "source", value_name = "NAME=URL#SCHEMA")]
        sources: Vec<String>,
        /// A flow document to declare (or replace) first: `{"flow": .., "stages": [..]}`.
        #[arg(long)]
        flow: Option<std::path::PathBuf>,
        /// Print this trace's timeline across the contexts instead.
        #[arg(long)]
        trace: Option<String>,
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
    /// List running timers, soonest first, and the processes' timer starts (when each fires next).
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
    /// List open user tasks, due first (tasks without a due date last): all, someone's, or
    /// those offered to a user or their groups.
    Tasks {
        /// Held by this user.
        #[arg(long)]
        assignee: Option<String>,
        /// Offered to this user by name (with --group: to the user or any of the groups).
        #[arg(long)]
        user: Option<String>,
        /// Offered to this group (repeat for each of a user's groups).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Only of this process.
        #[arg(long)]
        process: Option<String>,
        /// Only due before this RFC 3339 time; `now` for overdue ones.
        #[arg(long)]
        due_before: Option<String>,
        /// Only those nobody holds.
        #[arg(long)]
        unassigned: bool,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The page after this cursor (printed after a full page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Show one open task, or act on it as a user (claim, release, assign, complete, update).
    Task {
        #[command(subcommand)]
        action: TaskCommand,
    },
    /// Throw a signal: every instance waiting for it receives it once, and the processes that
    /// start on it start. Delivered here at once, in chunks, with progress (unless --no-deliver,
    /// which leaves it to the running engines).
    Signal {
        /// The signal's name.
        name: String,
        /// Its payload, a JSON object.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Only throw it; the running engines deliver it.
        #[arg(long)]
        no_deliver: bool,
    },
    /// List signals thrown, newest first, and how far each broadcast got.
    Signals {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// List dead-lettered inbound messages.
    DeadLetters {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

pub(crate) use crate::bench_args::BenchArgs;

#[derive(Subcommand, Debug, Clone)]
pub(crate) enum TaskCommand {
    /// The task, the fields its completion needs, and its instance's variables.
    Show {
        /// The task id.
        task: String,
    },
    /// Take the task (refused while someone else holds it, unless --force).
    Claim {
        /// The task id.
        task: String,
        /// Who (default: $USER).
        #[arg(long)]
        user: Option<String>,
        /// Take it from whoever holds it (an operator's claim; recorded).
        #[arg(long)]
        force: bool,
    },
    /// Release the task to its candidates.
    Unclaim {
        /// The task id.
        task: String,
        /// Who (default: $USER).
        #[arg(long)]
        user: Option<String>,
        /// Release it from whoever holds it.
        #[arg(long)]
        force: bool,
    },
    /// Give the task to someone (delegate), or offer it to other groups or users.
    Assign {
        /// The task id.
        task: String,
        /// The new assignee (leave out to release it).
        #[arg(long)]
        to: Option<String>,
        /// New candidate groups (repeat; replaces the list).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// New candidate users (repeat; replaces the list).
        #[arg(long = "candidate")]
        users: Vec<String>,
        /// Who asks (default: $USER).
        #[arg(long)]
        user: Option<String>,
        /// Act whoever holds it.
        #[arg(long)]
        force: bool,
    },
    /// Change the task's due date, follow-up date or priority.
    Update {
        /// The task id.
        task: String,
        /// New due date (RFC 3339), or `none`.
        #[arg(long)]
        due: Option<String>,
        /// New follow-up date (RFC 3339), or `none`.
        #[arg(long)]
        follow_up: Option<String>,
        /// New priority, 0 to 100.
        #[arg(long)]
        priority: Option<u8>,
        /// Who asks (default: $USER).
        #[arg(long)]
        user: Option<String>,
    },
    /// Complete the task with variables (checked against its fields); the instance goes on.
    Complete {
        /// The task id.
        task: String,
        /// The variables, a JSON object.
        #[arg(long, default_value = "{}")]
        vars: String,
        /// Who (default: $USER).
        #[arg(long)]
        user: Option<String>,
        /// Complete it whoever holds it.
        #[arg(long)]
        force: bool,
    },
}
