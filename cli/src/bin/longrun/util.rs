//! What the commands share: failures and exit codes, connecting, reading inputs, printing.

use serde_json::Value;
use uuid::Uuid;

use longrun::store::{pg_config, StoreConfig};
use longrun::{Engine, Error, Store};

use crate::args::*;

/// A failure: bad input exits 2, anything else 1.
pub(crate) enum Failure {
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
            | Error::TaskNotOpen(_)
            | Error::TaskHeld { .. }
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
pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A definition file, read no further than the size limit (an endless or huge input is
/// refused without being held in memory).
pub(crate) fn read_document(file: &std::path::Path) -> Result<String, Failure> {
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
pub(crate) async fn resolve_instance(
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

pub(crate) fn parse_instance(text: &str) -> Result<Uuid, Failure> {
    text.parse()
        .map_err(|_| Failure::Input(format!("\"{text}\" is not an instance id (a UUID)")))
}

pub(crate) fn parse_json(what: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Input(format!("{what} is not valid JSON: {e}")))
}

pub(crate) async fn connect(cli: &Cli) -> Result<Engine, Failure> {
    connect_pool(cli, 2).await
}

pub(crate) async fn connect_pool(cli: &Cli, pool_size: usize) -> Result<Engine, Failure> {
    connect_layout(cli, pool_size, longrun::store::Layout::Plain).await
}

/// As [`connect_pool`], with the layout a new schema's migrations use.
pub(crate) async fn connect_layout(
    cli: &Cli,
    pool_size: usize,
    layout: longrun::store::Layout,
) -> Result<Engine, Failure> {
    let config = StoreConfig {
        layout,
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
pub(crate) async fn migrated(engine: &Engine, migrate: bool) -> Result<(), Failure> {
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

pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

/// Print serializable rows as a table of the given fields.
pub(crate) fn print_rows<T: serde::Serialize>(columns: &[&str], rows: &[T]) {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::to_value(r).expect("serializable"))
        .collect();
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    print_table(&columns, &rows);
}

/// Print rows (JSON objects) as a table with aligned columns.
pub(crate) fn print_table(columns: &[String], rows: &[Value]) {
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
pub(crate) fn cli_user(command: &str) -> String {
    format!(
        "longrun {command} (user {})",
        std::env::var("USER").unwrap_or_default()
    )
}
