//! The `steward` binary: parses flags, sets up tracing, runs one command, exits with its
//! code.
//!
//! `steward up` boots the services of a config directory, serves the HTTP API and runs in
//! the foreground until SIGINT or SIGTERM; the client commands (`status`, `start`, `logs`,
//! …) talk to that daemon over HTTP. Everything is in [`cli`]; this file only wires it up.
//! Errors are printed as one `steward: …` message (with their causes) and exit 1.
//!
//! Built with the `cli` feature (on by default), which brings in the HTTP API (`api`).

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    // Before any thread exists: one shared arena keeps per-service memory low.
    steward::process::limit_malloc_arenas(1);
    let cli = Cli::parse();
    init_tracing(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("steward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Do not wait on tasks still holding a connection (a follower's stream).
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {}", format!("{e:#}").trim_end());
            ExitCode::FAILURE
        }
    }
}

/// `up` logs what the runtime does (info by default, human or JSON); client commands log
/// only warnings. `STEWARD_LOG` (an `EnvFilter` directive) overrides the level.
fn init_tracing(command: &Command) {
    let (default_level, format) = match command {
        Command::Up(args) => ("info", args.log_format),
        _ => ("warn", LogFormat::Human),
    };
    let filter =
        EnvFilter::try_from_env("STEWARD_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// `steward logs -f | head` ends with a closed stdout: a normal way to stop reading.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
