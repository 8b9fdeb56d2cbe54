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
    let filter = log_filter(default_level, std::env::var("STEWARD_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// ractor wraps every actor's message loop in an INFO span, `Actor{id="0.32"}`: four per
/// service, alive as long as the actor. Each takes a slot in the subscriber's span registry,
/// whose pages and per-slot maps are never freed: at 4,000 services that was 16,000 spans,
/// 4.5 of the 6.6 MB the heap still held after every service was removed, scattered over
/// pages that then could not be given back (issue 16, docs/BENCHMARKS.md). The id means
/// nothing outside the process (lines name their `service`), so ractor logs only warnings
/// and errors unless `STEWARD_LOG` names `ractor` itself.
const RACTOR_QUIET: &str = "ractor=warn";

/// The log filter: `directives` (from `STEWARD_LOG`) when they parse, else
/// `default_level`; with [`RACTOR_QUIET`] added unless they name `ractor`.
fn log_filter(default_level: &str, directives: Option<&str>) -> EnvFilter {
    let filter = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    if directives.is_some_and(|d| d.contains("ractor")) {
        return filter;
    }
    match RACTOR_QUIET.parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ractor_s_actor_spans_are_off_unless_the_filter_names_ractor() {
        assert_eq!(log_filter("info", None).to_string(), "ractor=warn,info");
        assert_eq!(
            log_filter("warn", Some("debug")).to_string(),
            "ractor=warn,debug"
        );
        assert_eq!(
            log_filter("info", Some("debug,ractor=trace")).to_string(),
            "ractor=trace,debug"
        );
        // Directives that do not parse: the default level, as before.
        assert_eq!(
            log_filter("info", Some("=[")).to_string(),
            "ractor=warn,info"
        );
    }
}
