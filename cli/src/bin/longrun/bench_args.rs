//! The arguments of `longrun bench`.

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct BenchArgs {
    /// Instances to complete.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) instances: usize,
    /// Engines (tasks in one process; per process with --processes).
    #[arg(long, default_value_t = 2)]
    pub(crate) engines: usize,
    /// Separate engine processes (each runs --engines engines).
    #[arg(long, default_value_t = 1)]
    pub(crate) processes: usize,
    /// service (no-op in-process handlers) or messages (a participant answers send/receive).
    #[arg(long, default_value = "service")]
    pub(crate) workload: String,
    /// Low-rate mode: one instance at a time, start-to-end latency.
    #[arg(long)]
    pub(crate) latency: bool,
    /// Instances per start transaction.
    #[arg(long, default_value_t = 200)]
    pub(crate) start_batch: usize,
    /// Concurrent callers, each starting one instance at a time with Engine::start and
    /// waiting until it is accepted (what HTTP handlers do), instead of batched starts.
    #[arg(long, default_value_t = 0)]
    pub(crate) callers: usize,
    /// Connections per engine.
    #[arg(long, default_value_t = 8)]
    pub(crate) pool_size: usize,
    /// Seconds spent measuring the commit ceiling (0 skips it).
    #[arg(long, default_value_t = 3.0)]
    pub(crate) ceiling_seconds: f64,
    /// Idle mode: how many queries per second an engine with nothing to do makes, over this
    /// many seconds.
    #[arg(long)]
    pub(crate) idle_seconds: Option<f64>,
    /// Timer mode: this many timers due within one second on real time; reports how late
    /// they fired.
    #[arg(long)]
    pub(crate) timers: Option<usize>,
    /// Soak mode: start the service workload at --rate instances per second for this many
    /// minutes while retention (period --soak-retention, run every 5 s) removes what ended;
    /// prints the schema's size every minute and the latency with and without a pass running.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) soak_minutes: Option<u64>,
    /// Sustained mode: run the workload for this many minutes with --in-flight instances
    /// started and not yet ended (each end lets another start); prints the instances
    /// completed and the dead row versions every minute. With --foreign-tx, the held
    /// transaction stays open for the whole run.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) minutes: Option<u64>,
    /// Sustained mode: instances in flight.
    #[arg(long, default_value_t = 2000)]
    pub(crate) in_flight: usize,
    /// Soak mode: instances started per second.
    #[arg(long, default_value_t = 100)]
    pub(crate) rate: usize,
    /// Soak mode: the processes' retention period (ISO 8601).
    #[arg(long, default_value = "PT2M")]
    pub(crate) soak_retention: String,
    /// Hold a transaction with an xid open in another database of the cluster (`postgres`)
    /// for the whole run, as another application's idle session after a write would: delivery
    /// and projections must not stall behind it.
    #[arg(long)]
    pub(crate) foreign_tx: bool,
    /// Run on a private PostgreSQL cluster made for the run (initdb, default settings, so
    /// autovacuum on) and removed afterwards, instead of the configured database.
    #[arg(long)]
    pub(crate) private_cluster: bool,
    /// Prefill mode: run once on the empty schema, fill it with this many ended instances'
    /// history as real runs leave it (copied from one that ran), then run again: the second
    /// run's throughput against the first shows what a large history costs.
    #[arg(long, value_name = "N")]
    pub(crate) prefill: Option<usize>,
    /// Task list mode: fill the schema with this many open user tasks (copies of one that
    /// really waits) and measure a group's first page, several groups' first page, a deep
    /// page, a clerk's own list, claims and completions (p50 and p99).
    #[arg(long, value_name = "N")]
    pub(crate) tasks: Option<usize>,
    /// Task completions: this many instances wait at a user task, then --callers concurrent
    /// callers (64 if not given) complete them one at a time: completions per second.
    #[arg(long, value_name = "N")]
    pub(crate) complete_tasks: Option<usize>,
    /// Signal mode: this many instances wait for one signal (started through the engine),
    /// which is then delivered to them all in chunks of --signal-chunk: the time per instance.
    #[arg(long, value_name = "N")]
    pub(crate) signal: Option<usize>,
    /// Signal mode: instances per chunk (one transaction each).
    #[arg(long, default_value_t = 500)]
    pub(crate) signal_chunk: usize,
    /// Task list mode: samples of each operation.
    #[arg(long, default_value_t = 200)]
    pub(crate) samples: usize,
    /// Keep the bench schema afterwards.
    #[arg(long)]
    pub(crate) keep: bool,
    /// Run the engines without the activity history (a projection they keep by default),
    /// to see what it costs.
    #[arg(long)]
    pub(crate) no_activity_history: bool,
    /// The bench schema's layout: plain, or partitioned (each bucketed table `PARTITION BY
    /// HASH (bucket)`, docs/SCALING.md).
    #[arg(long, default_value = "plain", value_parser = ["plain", "partitioned"])]
    pub(crate) layout: String,
    /// Internal: run as a child engine process on an existing bench schema.
    #[arg(long, hide = true)]
    pub(crate) child: bool,
}
