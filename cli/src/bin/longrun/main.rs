//! The `longrun` command line: a thin layer over the library's public API.

mod args;
mod bench;
mod bench_args;
mod commands;
mod serve;
mod util;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;

use longrun::store::validate_schema;

use crate::args::*;
use crate::util::*;

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

async fn run(cli: Cli) -> Result<(), Failure> {
    validate_schema(&cli.schema)?;
    match &cli.command {
        Command::Bench(args) => bench::bench(&cli, args).await,
        Command::Migrate { .. }
        | Command::Deploy { .. }
        | Command::Tag { .. }
        | Command::Definitions
        | Command::Export { .. }
        | Command::Convert { .. }
        | Command::Diff { .. }
        | Command::MigrateInstances { .. } => commands::definitions::run(&cli).await,
        Command::Report { .. }
        | Command::Projections { .. }
        | Command::Storage { .. }
        | Command::Engines
        | Command::Retention { .. }
        | Command::Bridge { .. }
        | Command::Run { .. }
        | Command::Console { .. }
        | Command::Dev { .. } => commands::operate::run(&cli).await,
        Command::Tasks { .. } | Command::Task { .. } => commands::tasks::run(&cli).await,
        Command::Signal { .. } | Command::Signals { .. } => commands::signals::run(&cli).await,
        Command::Monitor { .. } => commands::monitor::run(&cli).await,
        _ => commands::instances::run(&cli).await,
    }
}
