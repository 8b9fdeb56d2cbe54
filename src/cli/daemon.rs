//! `steward up` and `steward validate`: the daemon side of the binary.
//!
//! `up` runs in the foreground, in this order:
//!
//! 1. raise the soft open-file limit to the hard one; load the config (every error at
//!    once, file:line:col) and work out the API's address
//!    and token (`--listen` / `settings.listen`, `--token-env` / `settings.token_env`);
//! 2. bind the listener *before* starting anything, so a port in use or a non-loopback
//!    address without a token fails the boot with no service started;
//! 3. boot as [`Steward::boot`] does, with the daemon's work between its steps: prepare
//!    (crash recovery, unclaimed detached daemons stopped, the runtime spawned), print its
//!    events through tracing, define every service, serve the API, start the autostart
//!    services;
//! 4. on SIGHUP, and with `--watch` on each burst of changes to the config files (see
//!    [`watch`](crate::cli::watch)), re-read the config and apply the difference; a config
//!    with errors changes nothing and every error is logged;
//! 5. on SIGTERM or SIGINT, stop every service in reverse order within
//!    `shutdown_timeout` (what is left is SIGKILLed), then exit 0 (DESIGN §10 "Shutdown").
//!    A second SIGINT during that stop kills every process group at once and exits.
//!
//! As PID 1 it reaps orphans, elsewhere it is their subreaper ([`steward::process::reaper`]);
//! with `settings.exit_with` the main service's end is a sixth way out, and the exit code
//! is that service's ([`steward::main_service`]); under systemd it reports READY, STATUS,
//! RELOADING, STOPPING and WATCHDOG to `NOTIFY_SOCKET` ([`steward::notify`]).
//!
//! The API keeps answering while the services stop, so `steward status` shows them
//! `stopping`; it closes once the runtime is down.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use steward::api::{self, ApiConfig, ApiOptions};
use steward::config::Config;
use steward::events::{Event, EventKind};
use steward::notify::ManagerNotifier;
use steward::{ControlAction, ControlError, EventItem, Steward};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{oneshot, watch};
use tracing::{error, info, warn};

use crate::cli::watch::ConfigWatcher;
use crate::cli::{UpArgs, ValidateArgs, out, out_json};

/// After the runtime is down: how long open API connections (a `logs -f` reader) get to
/// close, and how long the event printer gets to print the last events.
const DRAIN: Duration = Duration::from_secs(2);

/// After a second SIGINT: how long the forced kill may take before steward exits anyway
/// (children then still die with it through `PR_SET_PDEATHSIG`).
const FORCED_KILL: Duration = Duration::from_secs(5);

/// Runs `steward validate`: loads the config, prints a summary (or every error).
///
/// Warnings (a valid config that will not do all it says here: `limits` without the
/// cgroup controllers) are printed after the summary; `--strict` makes them fail it.
pub fn validate(args: &ValidateArgs, json: bool) -> anyhow::Result<ExitCode> {
    let config = steward::config::load_dir(&args.config)?;
    config.check_exit_with().map_err(anyhow::Error::msg)?;
    let warnings = warnings(&config);
    let failed = args.strict && !warnings.is_empty();
    if json {
        let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
        out_json(&serde_json::json!({
            "config": args.config.display().to_string(),
            "services": ids,
            "listen": config.settings.listen,
            "errors": [],
            "warnings": warnings,
            "strict": args.strict,
        }))?;
    } else {
        out(&summary(&args.config, &config))?;
        for warning in &warnings {
            match failed {
                true => eprintln!("steward: error (--strict): {warning}"),
                false => out(&format!("warning: {warning}\n"))?,
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What a valid `config` will not do on this machine, one sentence each: `limits not
/// enforced: <why> (services: api, worker)`, judged as a runtime started now would
/// (`settings.cgroups`, `STEWARD_CGROUPS`, the cgroup controllers), creating nothing.
fn warnings(config: &Config) -> Vec<String> {
    use steward::process::cgroup::{ProcessTracking, tracking::unenforced_limits};
    let outlook = ProcessTracking::limits_outlook(config.settings.cgroups);
    let why_not = |limits: &steward::config::Limits| match &outlook {
        _ if limits.is_empty() => None,
        Ok(controllers) => controllers.why_not(limits),
        Err(why) => Some(why.clone()),
    };
    unenforced_limits(&config.services, why_not)
        .into_iter()
        .map(|(why, ids)| format!("limits not enforced: {why} (services: {})", ids.join(", ")))
        .collect()
}

/// `config: 3 services (web, worker, migrate), no errors; API on 127.0.0.1:7070`.
fn summary(dir: &Path, config: &Config) -> String {
    let n = config.services.len();
    let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
    let list = if ids.is_empty() {
        String::new()
    } else {
        format!(" ({})", ids.join(", "))
    };
    format!(
        "{}: {n} service{}{list}, no errors; API on {}\n",
        dir.display(),
        if n == 1 { "" } else { "s" },
        config.settings.listen
    )
}

/// SIGTERM and SIGINT, installed once at the start of `up` so that a signal during boot
/// is handled like any other (never the default action, which would orphan children).
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// The name of the next signal (SIGTERM, SIGINT or SIGHUP).
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}

/// Raises the soft open-file limit to the hard one (pipes and log files per service, a
/// socket per API connection); logged either way, never fatal.
fn raise_open_file_limit() {
    match steward::process::fd_limit::raise_nofile() {
        Ok(raised) if raised.hard_before < raised.hard_after => tracing::info!(
            before = raised.before,
            after = raised.after,
            hard_before = raised.hard_before,
            "raised the open-file limit (RLIMIT_NOFILE) to the kernel's fs.nr_open; services get the limits steward was started with"
        ),
        Ok(raised) if raised.before < raised.after => tracing::info!(
            before = raised.before,
            after = raised.after,
            "raised the open-file limit (RLIMIT_NOFILE) to the hard limit; services get the limits steward was started with"
        ),
        Ok(raised) => tracing::debug!(
            nofile = raised.after,
            "open-file limit already at the hard limit"
        ),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit (RLIMIT_NOFILE)"),
    }
}

/// Runs `steward up` until a signal; see the module docs.
pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    raise_open_file_limit();
    // Init's work (PID 1) or a subreaper's: orphans of services come back and are reaped.
    let reaper = steward::process::reaper::start();
    info!(role = reaper.as_str(), "reaping orphans");
    let config = steward::config::load_dir(&args.config)?;
    config.check_exit_with().map_err(anyhow::Error::msg)?;
    let exit_with = config.settings.exit_with.clone();
    let listen = resolve_listen(args.listen.as_deref().unwrap_or(&config.settings.listen)).await?;
    let token_env = args.token_env.clone().or(config.settings.token_env.clone());
    let token = read_token(token_env.as_deref())?;
    let options = ApiOptions {
        listen,
        token: token.clone(),
    };
    // The error's message already includes its cause: keep it to one line (no chain).
    let listener = api::bind(&options)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bound = listener.local_addr().unwrap_or(listen);
    let budget = config.settings.shutdown_timeout;
    let config_dir = config.dir.clone();
    let max_services = config.settings.max_services;

    // The library's boot, step by step (see `Steward::boot`), with the event printer and
    // the API in between. Crash recovery first: whatever a killed steward left running
    // is stopped before anything starts again (matched by process group and start time),
    // and so is a detached daemon whose service is no longer detached.
    let steward = Steward::prepare(&config).await?;
    // What a stop guarantees (DESIGN §11): every process of a service, or its group and
    // what the subreaper can trace.
    let tracking = steward.tables().tracking.status();
    info!(
        mode = tracking.mode.as_str(),
        "process tracking: {tracking}"
    );
    // A limit that cannot be enforced is said, never silently ignored (DESIGN §11).
    let tables = steward.tables();
    for (why, ids) in steward::process::cgroup::tracking::unenforced_limits(&config.services, |l| {
        tables.tracking.limits_not_enforced(l)
    }) {
        warn!(services = %ids.join(", "), "limits not enforced: {why}");
    }
    let printed = print_events(&steward).await?;
    // systemd's Type=notify (DESIGN §11): READY, STATUS, STOPPING, RELOADING, WATCHDOG.
    let notifier = ManagerNotifier::from_env().map(Arc::new);
    if let Some(notifier) = &notifier {
        notifier.clone().spawn(steward.clone());
    }
    steward
        .define_all(config.services)
        .await
        .context("defining the services")?;
    let (close_api, api_closed) = oneshot::channel::<()>();
    let mut server = tokio::spawn(api::serve(
        listener,
        // Services defined over the API resolve relative paths like those in services.yml.
        api::router_with(
            steward.clone(),
            ApiConfig {
                token,
                config_dir: Some(config_dir),
                listen: Some(bound),
            },
        )
        .layer(axum::Extension(api::ServiceCap(max_services))),
        async {
            let _ = api_closed.await;
        },
    ));
    info!(
        listen = %bound,
        auth = options.token.is_some(),
        config = %args.config.display(),
        "steward is up; SIGINT (Ctrl-C) or SIGTERM stops every service"
    );

    // Started before the boot, so a change made while services start is not missed.
    let mut watcher = None;
    if args.watch {
        let watching = ConfigWatcher::start(&args.config)?;
        info!(config = %watching.dir().display(), "watching the config files; a change reloads them");
        watcher = Some(watching);
    }
    let mut failed = false;
    // `exit_with`: the main service's end stops everything, and its code is steward's.
    let mut exit_code: Option<u8> = None;
    let main_ended = main_service_end(&steward, exit_with.as_deref());
    tokio::pin!(main_ended);
    let boot = steward.start_all();
    tokio::pin!(boot);
    let mut booting = true;
    let signal_name = loop {
        tokio::select! {
            result = &mut boot, if booting => {
                booting = false;
                match result {
                    Ok(batch) => {
                        // Each failure is already printed as its `failed` event.
                        let failed = batch.iter().filter(|(_, r)| r.is_err()).count();
                        info!(services = batch.len(), failed, "boot finished");
                    }
                    Err(e) => warn!(error = %e, "starting the services failed"),
                }
                if let Some(notifier) = &notifier {
                    notifier.ready(&steward);
                }
            }
            name = signals.next() => {
                if name != "SIGHUP" {
                    break name;
                }
                info!("SIGHUP: reloading the configuration");
                reload(&steward, notifier.as_deref()).await;
            }
            change = next_change(&mut watcher) => {
                match change {
                    Some(files) => {
                        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                        info!(files = %files.join(", "), "config changed: reloading");
                        reload(&steward, notifier.as_deref()).await;
                    }
                    None => {
                        warn!("the config watcher stopped; changes now need a SIGHUP");
                        watcher = None;
                    }
                }
            }
            ended = &mut main_ended => {
                let (id, code) = ended;
                info!(service = %id, exit_code = code, "exit_with: the main service ended; stopping the rest");
                exit_code = Some(code);
                break "exit_with";
            }
            served = &mut server => {
                match served {
                    Ok(Ok(())) => error!("the HTTP API stopped unexpectedly"),
                    Ok(Err(e)) => error!(error = %e, "the HTTP API failed"),
                    Err(e) => error!(error = %e, "the HTTP API task failed"),
                }
                failed = true;
                break "API failure";
            }
        }
    };

    if let Some(notifier) = &notifier {
        notifier.stopping();
    }
    info!(cause = signal_name, budget = %humantime::format_duration(budget), "stopping every service");
    let shutdown = steward.clone().shutdown_within(budget);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            result = &mut shutdown => {
                if let Err(e) = result {
                    error!(error = %e, "shutdown failed");
                    failed = true;
                }
                break;
            }
            name = signals.next() => {
                if name == "SIGINT" {
                    warn!("second SIGINT: killing every process group now");
                    match tokio::time::timeout(FORCED_KILL, steward.lifecycle(ControlAction::Kill)).await {
                        Ok(Ok(_)) => info!("every process group killed"),
                        Ok(Err(e)) => error!(error = %e, "forced kill failed"),
                        Err(_) => error!("forced kill did not finish; exiting anyway"),
                    }
                    break;
                }
                info!(cause = name, "already stopping; a second SIGINT kills everything at once");
            }
        }
    }

    let last = steward.tables().events.last_seq();
    let mut printed = printed;
    let _ = tokio::time::timeout(DRAIN, printed.wait_for(|seq| *seq >= last)).await;
    let _ = close_api.send(());
    if tokio::time::timeout(DRAIN, &mut server).await.is_err() {
        // A follower (`logs -f`) holds its stream open; exiting closes it.
        server.abort();
    }
    info!(exit_code = exit_code.unwrap_or(u8::from(failed)), "bye");
    Ok(match exit_code {
        Some(code) => ExitCode::from(code),
        None if failed => ExitCode::FAILURE,
        None => ExitCode::SUCCESS,
    })
}

/// Resolves with the main service's id and exit code once it has ended for good; never
/// without `exit_with` (or when the runtime's events end, which only a shutdown does).
async fn main_service_end(steward: &Steward, exit_with: Option<&str>) -> (String, u8) {
    let Some(id) = exit_with else {
        return std::future::pending().await;
    };
    match steward::main_service::ended(steward, id).await {
        Ok(state) => (id.to_string(), steward::main_service::exit_code(&state)),
        Err(e) => {
            warn!(service = %id, error = %e, "exit_with: cannot follow the main service");
            std::future::pending().await
        }
    }
}

/// Re-reads the config and applies the difference (SIGHUP and `--watch`). A config with
/// errors changes nothing; each error is logged on its own line, with file:line:col.
async fn reload(steward: &Steward, notifier: Option<&ManagerNotifier>) {
    if let Some(notifier) = notifier {
        notifier.reloading();
    }
    let result = steward.reload(false).await;
    if let Some(notifier) = notifier {
        notifier.ready(steward);
    }
    match result {
        Ok(plan) => {
            for entry in &plan.entries {
                info!(service = %entry.id, action = ?entry.action, why = %entry.why, "reload");
            }
        }
        Err(ControlError::InvalidDefinition(errors)) => {
            warn!(problems = errors.0.len(), "reload refused; nothing changed");
            for problem in &errors.0 {
                warn!(%problem, "reload refused");
            }
        }
        Err(e) => warn!(error = %e, "reload refused; nothing changed"),
    }
}

/// The next burst of config changes; never resolves without a watcher.
async fn next_change(watcher: &mut Option<ConfigWatcher>) -> Option<Vec<PathBuf>> {
    match watcher {
        Some(watching) => watching.next_change().await,
        None => std::future::pending().await,
    }
}

/// `127.0.0.1:7070`, `[::1]:7070` or `localhost:7070` → a socket address.
async fn resolve_listen(listen: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = listen.parse() {
        return Ok(addr);
    }
    tokio::net::lookup_host(listen)
        .await
        .with_context(|| {
            format!("cannot resolve the listen address `{listen}` (expected HOST:PORT)")
        })?
        .next()
        .with_context(|| format!("the listen address `{listen}` resolves to nothing"))
}

/// The bearer token from the variable `token_env` names. A named variable that is unset
/// or empty is an error: starting without the auth the config asked for would be worse.
fn read_token(token_env: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(name) = token_env else {
        return Ok(None);
    };
    match std::env::var(name) {
        Ok(token) if !token.is_empty() => Ok(Some(token)),
        _ => anyhow::bail!(
            "the API token variable `{name}` (token_env) is not set: export {name}=<token>, or remove token_env to serve without auth on a loopback address"
        ),
    }
}

/// Prints every event of the runtime through tracing, as it happens. The returned watch
/// holds the sequence number of the last event printed, so `up` can let the printer catch
/// up before it exits.
async fn print_events(steward: &Steward) -> anyhow::Result<watch::Receiver<u64>> {
    let mut events = steward
        .subscribe_events(None)
        .await
        .context("subscribing to the runtime's events")?;
    let (printed, watcher) = watch::channel(0);
    tokio::spawn(async move {
        while let Some(item) = events.recv().await {
            match item {
                EventItem::Event(event) => {
                    log_event(&event);
                    printed.send_replace(event.seq);
                }
                EventItem::Gap { missed } => warn!(missed, "the event printer fell behind"),
            }
        }
    });
    Ok(watcher)
}

fn log_event(e: &Event) {
    macro_rules! event {
        ($level:ident) => {
            tracing::$level!(
                target: "steward::events",
                seq = e.seq,
                service = %e.service,
                kind = e.kind.as_str(),
                pid = e.pid,
                exit_code = e.exit_code,
                signal = e.signal.as_deref(),
                health = e.health.map(|h| h.as_str()),
                delay_ms = e.delay_ms,
                dropped = e.dropped,
                cause = e.cause.as_deref(),
                "event"
            )
        };
    }
    // A crash shows as `backoff` (or `failed`); an exit by a stop signal is the normal end
    // of a stop, so only a non-zero exit code is worth a warning on its own.
    match e.kind {
        EventKind::Failed
        | EventKind::LogDropped
        | EventKind::LogFileFailed
        | EventKind::Backoff => event!(warn),
        EventKind::Exited if e.exit_code.is_some_and(|c| c != 0) => event!(warn),
        _ => event!(info),
    }
}
