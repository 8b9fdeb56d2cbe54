//! The `steward` binary: parses flags, sets up tracing, and runs the library.
//!
//! `steward up` boots the services of a config directory and runs in the foreground,
//! printing every event, until SIGINT or SIGTERM, then stops every service gracefully.
//! `steward validate` checks a config directory and prints every error with file:line:col.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use steward::{EventItem, Steward};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

#[derive(Debug, Parser)]
#[command(name = "steward", version, about = "An OTP-style service supervisor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot the services of a config directory and run in the foreground.
    Up {
        /// Directory holding services.yml and services.d/.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Check a config directory without starting anything.
    Validate {
        /// Directory holding services.yml and services.d/.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Up { config } => runtime.block_on(up(&config)),
        Command::Validate { config } => validate(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn validate(dir: &Path) -> anyhow::Result<()> {
    let config = steward::config::load_dir(dir)?;
    println!(
        "{}: {} service{} defined, no errors",
        dir.display(),
        config.services.len(),
        if config.services.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn up(dir: &Path) -> anyhow::Result<()> {
    let config = steward::config::load_dir(dir)?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let steward = Steward::spawn().await?;
    let mut events = steward.subscribe_events(None).await?;
    let printer = tokio::spawn(async move {
        while let Some(item) = events.recv().await {
            match item {
                EventItem::Event(e) => info!(
                    seq = e.seq,
                    service = %e.service,
                    kind = e.kind.as_str(),
                    pid = e.pid,
                    exit_code = e.exit_code,
                    cause = e.cause.as_deref(),
                    "event"
                ),
                EventItem::Gap { missed } => warn!(missed, "event printer fell behind"),
            }
        }
    });
    steward.define_all(config.services).await?;
    steward.start_all().await?;
    info!(config = %dir.display(), "steward is up; press Ctrl-C to stop");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping every service"),
        _ = int.recv() => info!("SIGINT: stopping every service"),
    }
    steward.shutdown().await?;
    printer.abort();
    info!("every service stopped; bye");
    Ok(())
}
