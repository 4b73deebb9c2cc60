//! Every SQL statement longrun runs, loaded from `sql/` and rendered for the configured schema.
//!
//! The files write `__schema__.table`; that placeholder is a valid identifier, so each file is
//! plain SQL a DBA can read and run. Rendering replaces it with the quoted schema name.
//!
//! Public for tools that run longrun's own SQL files against a schema (the command line's
//! reports, the load generator, the chaos harness): [`render`] and the names of the reporting
//! views, [`REPORTS`]. The runtime statements themselves stay private.

/// The migrations, in order: (version, name, text).
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_core",
        include_str!("../../sql/migrations/0001_core.sql"),
    ),
    (
        2,
        "0002_timers",
        include_str!("../../sql/migrations/0002_timers.sql"),
    ),
    (
        3,
        "0003_reporting",
        include_str!("../../sql/migrations/0003_reporting.sql"),
    ),
    (
        4,
        "0004_control_flow",
        include_str!("../../sql/migrations/0004_control_flow.sql"),
    ),
    (
        5,
        "0005_projections",
        include_str!("../../sql/migrations/0005_projections.sql"),
    ),
    (
        6,
        "0006_reporting_role",
        include_str!("../../sql/migrations/0006_reporting_role.sql"),
    ),
    (
        7,
        "0007_event_schema",
        include_str!("../../sql/migrations/0007_event_schema.sql"),
    ),
    (
        8,
        "0008_version_tags",
        include_str!("../../sql/migrations/0008_version_tags.sql"),
    ),
    (
        9,
        "0009_roles",
        include_str!("../../sql/migrations/0009_roles.sql"),
    ),
    (
        10,
        "0010_definition_source",
        include_str!("../../sql/migrations/0010_definition_source.sql"),
    ),
    (
        11,
        "0011_console_counts",
        include_str!("../../sql/migrations/0011_console_counts.sql"),
    ),
    (
        12,
        "0012_unique_starts",
        include_str!("../../sql/migrations/0012_unique_starts.sql"),
    ),
    (
        13,
        "0013_retention",
        include_str!("../../sql/migrations/0013_retention.sql"),
    ),
    (
        14,
        "0014_start_timers",
        include_str!("../../sql/migrations/0014_start_timers.sql"),
    ),
    (
        15,
        "0015_tasks",
        include_str!("../../sql/migrations/0015_tasks.sql"),
    ),
    (
        16,
        "0016_signals",
        include_str!("../../sql/migrations/0016_signals.sql"),
    ),
    (
        17,
        "0017_message_starts",
        include_str!("../../sql/migrations/0017_message_starts.sql"),
    ),
    (
        18,
        "0018_traces",
        include_str!("../../sql/migrations/0018_traces.sql"),
    ),
    (
        19,
        "0019_monitor",
        include_str!("../../sql/migrations/0019_monitor.sql"),
    ),
    (
        20,
        "0020_job_traces",
        include_str!("../../sql/migrations/0020_job_traces.sql"),
    ),
    (
        21,
        "0021_locks",
        include_str!("../../sql/migrations/0021_locks.sql"),
    ),
    (
        22,
        "0022_engines",
        include_str!("../../sql/migrations/0022_engines.sql"),
    ),
];

/// The reporting views (migrations 0003 to 0005, 0011 and 0015), as `longrun report` names them.
pub const REPORTS: &[&str] = &[
    "instances",
    "waiting",
    "incidents",
    "stuck",
    "throughput",
    "step_durations",
    "activity",
    "old_instances",
    "dead_letters",
    "step_counts",
    "version_counts",
    "tasks",
    "task_durations",
    "flow_stages",
    "flow_durations",
    "flow_stuck",
    "flow_timeline",
];

/// The statement reading one report (`name` must be one of [`REPORTS`]).
pub(crate) fn report_query(schema: &str, name: &str) -> Option<String> {
    REPORTS.contains(&name).then(|| {
        render(include_str!("../../sql/reporting/report.sql"), schema)
            .replace("__view__", &format!("report_{name}"))
    })
}

/// Replace the schema placeholders: `__schema__` with the quoted schema name, and
/// `__schema_name__` (inside a string literal) with the name itself, which is a validated
/// identifier.
pub fn render(sql: &str, schema: &str) -> String {
    sql.replace("__schema_name__", schema)
        .replace("__schema__", &format!("\"{schema}\""))
}

macro_rules! queries {
    ($($name:ident),* $(,)?) => {
        /// The runtime statements, rendered for one schema.
        #[derive(Debug)]
        pub(crate) struct Queries {
            $(pub(crate) $name: String,)*
        }

        impl Queries {
            pub(crate) fn new(schema: &str) -> Self {
                Queries {
                    $($name: render(
                        include_str!(concat!("../../sql/queries/", stringify!($name), ".sql")),
                        schema,
                    ),)*
                }
            }
        }
    };
}

queries!(
    monitor_insert,
    monitor_flow_clear,
    monitor_flow_insert,
    monitor_timeline,
    signal_insert,
    signal_next,
    signal_receivers,
    signal_advance,
    definition_by_start_signal,
    signals_list,
    tasks_put,
    task_candidates_clear,
    task_candidates_insert,
    tasks_delete,
    tasks_page,
    tasks_page_assignee,
    tasks_page_candidates,
    task_get,
    task_instance,
    start_timer_set,
    start_timer_clear,
    start_timers_due,
    start_timer_move,
    start_timers_list,
    autovacuum_setting,
    retention_definitions,
    retention_instances,
    retention_instances_count,
    retention_inbox,
    retention_locks,
    retention_locks_count,
    retention_inbox_count,
    retention_outbox,
    retention_outbox_count,
    horizon_holders,
    storage_tables,
    storage_instances,
    read_horizon,
    caller_tx_enter,
    next_xid,
    console_versions,
    console_step_counts,
    console_instances,
    console_incidents,
    console_projection_lag,
    migrations_lock,
    migrations_no_statement_timeout,
    migrations_bootstrap,
    migrations_applied,
    migrations_layout,
    migrations_lock_timeout,
    migrations_record,
    definition_by_checksum,
    definition_insert,
    definition_get,
    definition_latest,
    definition_by_start_message,
    definition_receives,
    definitions_list,
    instances_insert,
    instances_lock,
    instances_update,
    instance_get,
    instance_running_by_key,
    instance_exists,
    instances_list,
    instances_count,
    events_append,
    events_of_instance,
    jobs_insert,
    jobs_claim,
    jobs_claim_lapsed,
    bucket_groups,
    bucket_groups_citus,
    citus_present,
    engines_renew,
    engines_leave,
    engines_list,
    jobs_finish,
    jobs_of_instance,
    outbox_insert,
    outbox_read,
    consumer_claim,
    consumer_ack,
    consumer_renew,
    consumer_release,
    inbox_insert,
    inbox_insert_many,
    inbox_forget,
    inbox_get,
    inbox_settle,
    inbox_buffer,
    inbox_take_buffered,
    inbox_expire,
    inbox_dead_letters,
    correlation_lock,
    subscriptions_insert,
    subscriptions_delete,
    subscription_find,
    subscriptions_find_many,
    subscriptions_of_instance,
    listen,
    notify,
    probe,
    timers_insert,
    timers_delete,
    timers_scan,
    instances_try_lock,
    timers_take,
    jobs_withdraw,
    timers_list,
    timers_of_instance,
    incidents_list,
    projection_claim,
    projection_create,
    projection_scan,
    projection_events,
    projection_advance,
    projection_checkpoint,
    projection_reset,
    projection_lock,
    projections_list,
    instances_on_version,
    jobs_migrate,
    timers_migrate,
    tag_set,
    tag_get,
    privileges_check,
    definition_set_source,
    definition_source,
);
