//! The command line of the `steward` binary (DESIGN §5).
//!
//! Two kinds of command live here:
//!
//! * **daemon commands** (`up`, `validate`) work on a config directory with the library
//!   itself: see [`daemon`];
//! * **client commands** (`status`, `start`, `logs`, `events`, `define`, …) talk to a
//!   running daemon over its HTTP API (DESIGN §6): see [`client`] for the transport and
//!   [`status`], [`control`], [`logs`], [`define`], [`inspect`] for the commands.
//!
//! The CLI is part of the binary, not of the library: an embedding app has no use for it,
//! and it is the one place that uses `anyhow`.
//!
//! Global flags (`--url`, `--token`, `--json`) are accepted before or after the
//! subcommand. Exit codes: 0 success, 1 failure (an API error, no daemon, a state not
//! reached in time, config errors), 2 a usage error (from clap).

pub mod client;
pub mod control;
pub mod daemon;
pub mod define;
pub mod inspect;
pub mod logs;
pub mod mcp;
pub mod outline;
pub mod spinner;
pub mod sse;
pub mod status;
pub mod style;
pub mod table;
pub mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::cli::client::Client;

/// Where client commands find the daemon when neither `--url` nor `STEWARD_URL` is given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

/// `steward`: an OTP-style service supervisor.
#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "An OTP-style service supervisor",
    long_about = "An OTP-style service supervisor.\n\n`steward up` boots the services of a config \
                  directory and serves the HTTP API; the other commands talk to that daemon."
)]
pub struct Cli {
    /// Flags every client command understands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The daemon's HTTP API.
    #[arg(long, global = true, env = "STEWARD_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Bearer token for the API (needed when the daemon has `token_env` set).
    #[arg(long, global = true, env = "STEWARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of text, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot the services of a config directory, serve the HTTP API, run in the foreground.
    Up(UpArgs),
    /// Check a config directory without starting anything.
    Validate(ValidateArgs),
    /// Show the services: id, status, health, pid, uptime, restarts, cpu, mem.
    Status(StatusArgs),
    /// Start services and wait until they are running and ready.
    Start(ControlArgs),
    /// Stop services gracefully and wait until they are stopped.
    Stop(StopArgs),
    /// Restart services and wait until they are running and ready again.
    Restart(ControlArgs),
    /// SIGKILL services' process groups and wait until they are stopped.
    Kill(ControlArgs),
    /// Freeze services (SIGSTOP to the group, probes suspended).
    Pause(ControlArgs),
    /// Thaw paused services (SIGCONT, probes resumed).
    Resume(ControlArgs),
    /// Print a service's last log lines; with -f, follow new ones.
    Logs(LogsArgs),
    /// Print the runtime's recent events; with -f, follow new ones.
    Events(EventsArgs),
    /// Define the services of a YAML file in the running daemon.
    Define(DefineArgs),
    /// Remove services (they must be stopped).
    Remove(RemoveArgs),
    /// Explain why a service is in its state.
    Explain(ExplainArgs),
    /// Re-read the daemon's config and apply the difference.
    Reload(ReloadArgs),
    /// Serve the agent tools over the Model Context Protocol on stdio (a client of the
    /// running daemon; see docs/AGENTS.md).
    Mcp(McpArgs),
}

/// `steward mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Offer only the read-only tools (list, status, logs, explain, events, search, graph).
    #[arg(long)]
    pub read_only: bool,
}

/// How `steward up` writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per record (colored on a terminal).
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `steward up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory holding services.yml and services.d/.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// Address of the HTTP API (overrides `settings.listen`; default 127.0.0.1:7070).
    #[arg(long)]
    pub listen: Option<String>,
    /// Env var holding the API's bearer token (overrides `settings.token_env`).
    #[arg(long)]
    pub token_env: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Reload when services.yml or services.d/*.yml change (as SIGHUP does; one reload per
    /// burst of changes).
    #[arg(long)]
    pub watch: bool,
}

/// `steward validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Directory holding services.yml and services.d/.
    #[arg(long, default_value = "config")]
    pub config: PathBuf,
    /// Fail (exit 1) on warnings too, such as `limits` this machine cannot enforce.
    #[arg(long)]
    pub strict: bool,
}

/// `steward status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these services (default: all).
    pub ids: Vec<String>,
}

/// `steward start|stop|restart|kill|pause|resume`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The services, handled in the order given.
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// How long to wait for each service to reach its new state.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Return once the daemon accepted the request, without waiting.
    #[arg(long)]
    pub no_wait: bool,
}

/// `steward stop`: the control flags, plus `--cascade`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The services, the deadline and `--no-wait`.
    #[command(flatten)]
    pub control: ControlArgs,
    /// Stop the running services that depend on each one first (dependents of dependents
    /// before them), then the service itself.
    #[arg(long, conflicts_with = "no_wait")]
    pub cascade: bool,
}

/// `steward logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service.
    pub id: String,
    /// How many of the last lines to print.
    #[arg(short = 'n', long = "lines", default_value_t = 100)]
    pub lines: usize,
    /// Keep printing new lines as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// Prefix each line with its timestamp.
    #[arg(short, long)]
    pub timestamps: bool,
}

/// `steward events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new events as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// Only events after this sequence number.
    #[arg(long)]
    pub since: Option<u64>,
    /// Only events about this service.
    #[arg(long)]
    pub service: Option<String>,
}

/// `steward define`.
#[derive(Debug, Args)]
pub struct DefineArgs {
    /// A YAML file shaped like services.yml (`version: 1`, `services:`).
    pub file: PathBuf,
    /// Also write each service to the daemon's services.d/<id>.yml.
    #[arg(long)]
    pub persist: bool,
}

/// `steward remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The services.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

/// `steward explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The service.
    pub id: String,
}

/// `steward reload`.
#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Only print the plan (start / stop / restart / keep, each with why).
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs one command; `Ok` carries the exit code of a command that finished (possibly
/// reporting failures it already printed), `Err` an error still to be printed.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    use steward::ControlAction;
    let GlobalArgs { url, token, json } = cli.global;
    // Daemon commands never talk HTTP, so a bad --url must not stop them.
    let client = || Client::new(&url, token.clone());
    match cli.command {
        Command::Up(args) => daemon::up(args).await,
        Command::Validate(args) => daemon::validate(&args, json),
        Command::Status(args) => status::run(&client()?, &args, json).await,
        Command::Start(args) => control::run(&client()?, ControlAction::Start, &args, json).await,
        Command::Stop(args) if args.cascade => {
            control::run_cascade(&client()?, &args.control, json).await
        }
        Command::Stop(args) => {
            control::run(&client()?, ControlAction::Stop, &args.control, json).await
        }
        Command::Restart(args) => {
            control::run(&client()?, ControlAction::Restart, &args, json).await
        }
        Command::Kill(args) => control::run(&client()?, ControlAction::Kill, &args, json).await,
        Command::Pause(args) => control::run(&client()?, ControlAction::Pause, &args, json).await,
        Command::Resume(args) => control::run(&client()?, ControlAction::Resume, &args, json).await,
        Command::Logs(args) => logs::logs(&client()?, &args, json).await,
        Command::Events(args) => logs::events(&client()?, &args, json).await,
        Command::Define(args) => define::define(&client()?, &args, json).await,
        Command::Remove(args) => define::remove(&client()?, &args, json).await,
        Command::Explain(args) => inspect::explain(&client()?, &args, json).await,
        Command::Reload(args) => inspect::reload(&client()?, &args, json).await,
        Command::Mcp(args) => mcp::run(&url, token.clone(), &args)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

/// Writes `text` to stdout as it is (callers end lines themselves) and flushes, so a
/// follower's lines show up at once even when piped. A closed pipe (`steward logs -f |
/// head`) surfaces as an `io::Error` of kind `BrokenPipe`, which `main` treats as a quiet
/// end rather than a panic.
pub fn out(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Pretty JSON of `value` plus a newline, on stdout.
pub fn out_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    out(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["steward", "status", "web", "--json", "--url", "http://h:1"]);
        let cli = cli.unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.global.json);
        assert_eq!(cli.global.url, "http://h:1");
    }

    /// docs/CLI.md cannot show a flag that does not exist.
    #[test]
    fn every_command_line_in_the_docs_parses() {
        let docs = include_str!("../../docs/CLI.md");
        let mut checked = 0;
        for line in docs.lines() {
            let Some(args) = line.strip_prefix("$ steward") else {
                continue;
            };
            let argv = std::iter::once("steward").chain(args.split_whitespace());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("docs/CLI.md: `{line}` does not parse:\n{e}");
            }
            checked += 1;
        }
        assert!(checked >= 15, "only {checked} command lines found");
    }
}
