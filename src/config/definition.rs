//! The resolved, validated definition of a service: what the runtime works from.
//!
//! Files are parsed into the raw file schema (`model`) and turned into [`ServiceDefinition`]
//! by `validate`; an app may build one in code ([`ServiceDefinition::new`]). Paths here are
//! absolute and durations typed: nothing in this type still needs checking.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::Limits;
use crate::function::FunctionService;
use crate::state::ServiceKind;

/// How to run the service's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// A command line: exec'd directly when it is plain words, else run by `/bin/sh -c`.
    Line(String),
    /// An argv list, exec'd as is.
    Argv(Vec<String>),
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandSpec::Line(line) => f.write_str(line),
            CommandSpec::Argv(argv) => f.write_str(&argv.join(" ")),
        }
    }
}

/// Restart policy, with OTP's names (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    /// Always restarted (`always`).
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit: non-zero code or a signal (`on-failure`).
    Transient,
    /// Never restarted (`never`).
    Temporary,
}

impl RestartPolicy {
    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Permanent => "permanent",
            RestartPolicy::Transient => "transient",
            RestartPolicy::Temporary => "temporary",
        }
    }
}

/// Which probe of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Gates liveness and readiness until it passes once.
    Startup,
    /// Gates `ready`.
    Readiness,
    /// Restarts the process when it fails.
    Liveness,
}

impl ProbeKind {
    /// `startup`, `readiness` or `liveness`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Readiness => "readiness",
            ProbeKind::Liveness => "liveness",
        }
    }
}

/// The future a function probe returns: `Ok(())` when healthy, else why not.
pub type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A probe written in Rust by an embedding app.
#[derive(Clone)]
pub struct FunctionProbe {
    /// A name for messages (`"db ping"`).
    pub name: String,
    /// Called once per probe run.
    pub check: Arc<dyn Fn() -> ProbeFuture + Send + Sync>,
}

impl FunctionProbe {
    /// Wraps an async closure as a probe.
    pub fn new<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        FunctionProbe {
            name: name.into(),
            check: Arc::new(move || Box::pin(f())),
        }
    }
}

impl fmt::Debug for FunctionProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionProbe({})", self.name)
    }
}

impl PartialEq for FunctionProbe {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.check, &other.check)
    }
}

/// What a probe checks.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeCheck {
    /// GET the url; healthy when the status equals `expect_status`.
    Http {
        /// `http://127.0.0.1:8080/health`
        url: String,
        /// Expected status code (default 200).
        expect_status: u16,
    },
    /// Healthy when a TCP connection to `address` (`host:port`) opens.
    Tcp {
        /// `127.0.0.1:5432`
        address: String,
    },
    /// Healthy when the command exits 0 within the timeout.
    Command {
        /// The command, run like the service (same cwd and environment).
        command: CommandSpec,
    },
    /// An async function of the embedding app.
    Function(FunctionProbe),
    /// Readiness only: the service says it is ready itself, by sending `READY=1` over the
    /// systemd notification protocol to the socket steward gives it in `NOTIFY_SOCKET`
    /// (`readiness: { notify: true }`). Never polled: the schedule fields do not apply.
    Notify,
}

/// A probe with its schedule and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// What to check.
    pub check: ProbeCheck,
    /// Time between two probe runs (default 2s).
    pub interval: Duration,
    /// Time one probe run may take (default 1s).
    pub timeout: Duration,
    /// Wait after the process starts before the first run (default 0s).
    pub initial_delay: Duration,
    /// Consecutive failures before the verdict turns to unhealthy (default 2).
    pub failure_threshold: u32,
    /// Consecutive successes before the verdict turns to healthy (default 1).
    pub success_threshold: u32,
}

impl ProbeSpec {
    /// A probe with the default schedule (2s interval, 1s timeout, thresholds 2 and 1).
    pub fn new(check: ProbeCheck) -> Self {
        ProbeSpec {
            check,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            initial_delay: Duration::ZERO,
            failure_threshold: 2,
            success_threshold: 1,
        }
    }
}

/// When a dependency counts as met (DESIGN §2 `depends_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DependencyCondition {
    /// Its process was spawned.
    #[default]
    Started,
    /// It is ready (running, and its readiness probe, if any, passed).
    Healthy,
    /// It exited with code 0 (a one-shot job such as a migration).
    Completed,
}

impl DependencyCondition {
    /// `started`, `healthy` or `completed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyCondition::Started => "started",
            DependencyCondition::Healthy => "healthy",
            DependencyCondition::Completed => "completed",
        }
    }
}

/// One entry of `depends_on`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// When it counts as met.
    pub condition: DependencyCondition,
}

/// Where a service's code comes from (`source:`): cloned into `state_dir/src/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceSpec {
    /// A git URL or local path (`file://` works).
    pub git: String,
    /// Branch, tag or commit (default: the remote's HEAD).
    pub reference: Option<String>,
}

/// A service, resolved and validated. Its `Debug` shows the names of `env`, never the
/// values (they may hold secrets, and a definition may end up in a log line).
#[derive(Clone, PartialEq)]
pub struct ServiceDefinition {
    /// `[a-z0-9][a-z0-9_-]*`
    pub id: String,
    /// Display name (default: the id).
    pub name: String,
    /// What to run.
    pub command: CommandSpec,
    /// Working directory, absolute. Empty with `source`: not given, the service runs in
    /// `state_dir/src/<id>` (see [`crate::source`]).
    pub cwd: PathBuf,
    /// Variables set on top of steward's environment and `env_file` (later wins).
    pub env: BTreeMap<String, String>,
    /// `KEY=VALUE` file read at each start, absolute.
    pub env_file: Option<PathBuf>,
    /// Variables that must be set in the final environment, else the service fails to start.
    pub required_env: Vec<String>,
    /// Free-form labels for `list --tag`.
    pub tags: Vec<String>,
    /// Start at boot and when defined at run time (default true).
    pub autostart: bool,
    /// When to restart after the process exits.
    pub restart: RestartPolicy,
    /// Delay before restart n; the last repeats (default 1s, 2s, 5s, 10s, 30s).
    pub backoff: Vec<Duration>,
    /// More than this many automatic restarts within `restart_window` → failed (default 10).
    pub max_restarts: u32,
    /// The intensity window (default 5m).
    pub restart_window: Duration,
    /// Signal sent to the process group on stop (default SIGTERM).
    pub stop_signal: Signal,
    /// Grace before SIGKILL to the group (default 10s).
    pub stop_timeout: Duration,
    /// Gates `ready`.
    pub readiness: Option<ProbeSpec>,
    /// Restarts the process when it fails.
    pub liveness: Option<ProbeSpec>,
    /// Gates the other probes until it passes once.
    pub startup: Option<ProbeSpec>,
    /// Ring size in lines (default 1000).
    pub log_lines: usize,
    /// Optional file sink for stdout and stderr, absolute.
    pub log_file: Option<PathBuf>,
    /// Rotate the sink at this many bytes (default 10 MiB).
    pub log_max_size: u64,
    /// Old sink files kept (default 5).
    pub log_max_files: u32,
    /// The file that defines the service (`None` when defined in code or over the API).
    pub source_file: Option<PathBuf>,
    /// Services that must meet a condition before this one starts.
    pub depends_on: Vec<Dependency>,
    /// Run once before the first start (and again when it or `source` changes).
    pub install: Option<CommandSpec>,
    /// Cloned into `state_dir/src/<id>` when `cwd` is missing.
    pub source: Option<SourceSpec>,
    /// `command` launches something and exits (e.g. `docker compose up -d`); liveness then
    /// comes from probes and stop runs `stop_command`.
    pub detached: bool,
    /// How to stop a detached service.
    pub stop_command: Option<CommandSpec>,
    /// Where a detached service's daemon writes its pid (a relative path is taken from
    /// `cwd`; files are resolved to absolute paths at load).
    pub pid_file: Option<PathBuf>,
    /// Write the variables of `env_file` and `env` to `<cwd>/.env` (mode 0600) before start.
    pub write_env_file: bool,
    /// Run as this user (steward must be root).
    pub user: Option<String>,
    /// Run as this group (default: the user's primary group).
    pub group: Option<String>,
    /// `watchdog: 30s`: the process must send `WATCHDOG=1` over its notify socket at least
    /// this often (the first one within this time of its spawn), else it is a liveness
    /// failure, restarted through the restart policy. Gives the process `NOTIFY_SOCKET`
    /// and `WATCHDOG_USEC`.
    pub watchdog: Option<Duration>,
    /// A function service: the embedding app's async function runs instead of a process
    /// (`command` is then unused). Built with [`ServiceDefinition::function`]; it has no
    /// YAML form (see [`crate::function`]).
    pub function: Option<FunctionService>,
    /// Restart (through the restart policy) when the service's whole process tree uses
    /// more resident memory than this many bytes for two samples in a row.
    pub max_memory: Option<u64>,
    /// `limits:` — cgroup v2 limits on the service's cgroup (`memory.max`, `cpu.max`,
    /// `pids.max`), applied where steward's subtree has the controller; otherwise the
    /// service runs and its state says why they are not enforced (DESIGN §11).
    pub limits: Limits,
}

impl std::fmt::Debug for ServiceDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every field by name (no `..`), so a new field cannot be left out unnoticed.
        let ServiceDefinition {
            id,
            name,
            command,
            cwd,
            env,
            env_file,
            required_env,
            tags,
            autostart,
            restart,
            backoff,
            max_restarts,
            restart_window,
            stop_signal,
            stop_timeout,
            readiness,
            liveness,
            startup,
            log_lines,
            log_file,
            log_max_size,
            log_max_files,
            source_file,
            depends_on,
            install,
            source,
            detached,
            stop_command,
            pid_file,
            write_env_file,
            user,
            group,
            watchdog,
            function,
            max_memory,
            limits,
        } = self;
        f.debug_struct("ServiceDefinition")
            .field("id", id)
            .field("name", name)
            .field("command", command)
            .field("cwd", cwd)
            .field("env", &env.keys().collect::<Vec<_>>())
            .field("env_file", env_file)
            .field("required_env", required_env)
            .field("tags", tags)
            .field("autostart", autostart)
            .field("restart", restart)
            .field("backoff", backoff)
            .field("max_restarts", max_restarts)
            .field("restart_window", restart_window)
            .field("stop_signal", stop_signal)
            .field("stop_timeout", stop_timeout)
            .field("readiness", readiness)
            .field("liveness", liveness)
            .field("startup", startup)
            .field("log_lines", log_lines)
            .field("log_file", log_file)
            .field("log_max_size", log_max_size)
            .field("log_max_files", log_max_files)
            .field("source_file", source_file)
            .field("depends_on", depends_on)
            .field("install", install)
            .field("source", source)
            .field("detached", detached)
            .field("stop_command", stop_command)
            .field("pid_file", pid_file)
            .field("write_env_file", write_env_file)
            .field("user", user)
            .field("group", group)
            .field("watchdog", watchdog)
            .field("function", function)
            .field("max_memory", max_memory)
            .field("limits", limits)
            .finish()
    }
}

/// Default backoff delays.
pub const DEFAULT_BACKOFF: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

impl ServiceDefinition {
    /// A definition with every default, running `command` in the current directory.
    ///
    /// The id is not checked here; the root supervisor validates it when the service is
    /// defined.
    pub fn new(id: impl Into<String>, command: CommandSpec) -> Self {
        let id = id.into();
        ServiceDefinition {
            name: id.clone(),
            id,
            command,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            env: BTreeMap::new(),
            env_file: None,
            required_env: Vec::new(),
            tags: Vec::new(),
            autostart: true,
            restart: RestartPolicy::Permanent,
            backoff: DEFAULT_BACKOFF.to_vec(),
            max_restarts: 10,
            restart_window: Duration::from_secs(300),
            stop_signal: Signal::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            readiness: None,
            liveness: None,
            startup: None,
            log_lines: 1000,
            log_file: None,
            log_max_size: 10 * 1024 * 1024,
            log_max_files: 5,
            source_file: None,
            depends_on: Vec::new(),
            install: None,
            source: None,
            detached: false,
            stop_command: None,
            pid_file: None,
            write_env_file: false,
            user: None,
            group: None,
            watchdog: None,
            function: None,
            max_memory: None,
            limits: Limits::default(),
        }
    }

    /// True when the service has any probe (it then gets a HealthChecker actor).
    pub fn has_probes(&self) -> bool {
        self.readiness.is_some()
            || self.liveness.is_some()
            || self.startup.is_some()
            || self.watchdog.is_some()
    }

    /// True when the service speaks the notification protocol to steward: its readiness
    /// is `notify`, or it has a `watchdog`. It then gets a notify socket (`NOTIFY_SOCKET`).
    pub fn uses_notify(&self) -> bool {
        self.notify_readiness() || self.watchdog.is_some()
    }

    /// True when `readiness: { notify: true }`: `READY=1` makes it ready.
    pub fn notify_readiness(&self) -> bool {
        matches!(
            self.readiness.as_ref().map(|r| &r.check),
            Some(ProbeCheck::Notify)
        )
    }

    /// The probe of a kind.
    pub fn probe(&self, kind: ProbeKind) -> Option<&ProbeSpec> {
        match kind {
            ProbeKind::Startup => self.startup.as_ref(),
            ProbeKind::Readiness => self.readiness.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
        }
    }
}

/// The default of `settings.max_services`.
pub const DEFAULT_MAX_SERVICES: usize = 100_000;

/// Global settings from `services.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// HTTP API and dashboard address (default 127.0.0.1:7070).
    pub listen: String,
    /// Env var that holds the bearer token.
    pub token_env: Option<String>,
    /// Pid files, cloned sources, install markers; absolute.
    pub state_dir: PathBuf,
    /// Whole-runtime graceful stop budget (default 30s).
    pub shutdown_timeout: Duration,
    /// The container's main service: when it ends for good (exited, failed or stopped),
    /// the `steward` binary stops the rest and exits with its code (128+signal when it
    /// was killed). `None`: exit 0 after a clean shutdown.
    pub exit_with: Option<String>,
    /// The most services the runtime holds; a define over the API past it is refused
    /// with 409 (default 100000).
    pub max_services: usize,
    /// A cgroup per service where steward can create cgroups (default true); `false`
    /// keeps the process group + subreaper mode (DESIGN §11).
    pub cgroups: bool,
}

impl Settings {
    /// The defaults, with `state_dir` under `base`.
    pub fn defaults_in(base: &std::path::Path) -> Self {
        Settings {
            listen: "127.0.0.1:7070".to_string(),
            token_env: None,
            state_dir: base.join(".steward"),
            shutdown_timeout: Duration::from_secs(30),
            exit_with: None,
            max_services: DEFAULT_MAX_SERVICES,
            cgroups: true,
        }
    }
}

/// A whole loaded configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The directory that holds `services.yml`.
    pub dir: PathBuf,
    /// Global settings.
    pub settings: Settings,
    /// Services in file order (services.yml first, then services.d/*.yml by name).
    pub services: Vec<ServiceDefinition>,
}

impl Config {
    /// `settings.exit_with` must name a service that some file defines: an error in words
    /// (naming services.yml) when it does not. [`load_dir`](crate::config::load_dir)
    /// already refuses such files with the `exit_with:` value's line and column; this is
    /// the check for a `Config` built or changed in code.
    pub fn check_exit_with(&self) -> Result<(), String> {
        let Some(id) = &self.settings.exit_with else {
            return Ok(());
        };
        if self.services.iter().any(|s| &s.id == id) {
            return Ok(());
        }
        Err(format!(
            "{}: invalid `exit_with` in `settings`: no service `{id}` is defined (hint: name a service of services.yml or services.d)",
            self.dir.join("services.yml").display()
        ))
    }
}

/// Function services (see [`crate::function`]): built in code, run as a tokio task.
impl ServiceDefinition {
    /// A function service with every default (as [`ServiceDefinition::new`]): `function`
    /// runs in a task of steward's runtime instead of a process. Set the other fields
    /// (restart, backoff, probes, depends_on, tags, …) as for a process; the fields that
    /// only mean something to a process (`detached`, `install`, `source`,
    /// `stop_command`, `pid_file`, `user`, `group`, `write_env_file`) are refused when
    /// it is defined. `cwd` and `env` are where and with what command probes run.
    pub fn function(id: impl Into<String>, function: FunctionService) -> Self {
        let mut def = ServiceDefinition::new(id, CommandSpec::Argv(Vec::new()));
        def.function = Some(function);
        def
    }

    /// `process` or `function`.
    pub fn kind(&self) -> ServiceKind {
        if self.function.is_some() {
            ServiceKind::Function
        } else {
            ServiceKind::Process
        }
    }

    /// True when something must declare the service ready before it is: a readiness
    /// probe, or a function that reports its readiness itself.
    pub fn has_readiness_gate(&self) -> bool {
        self.readiness.is_some() || self.function.as_ref().is_some_and(|f| f.reports_ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_env_names_but_never_values() {
        let mut def = ServiceDefinition::new("vault", CommandSpec::Line("sleep 1".into()));
        def.env.insert("API_TOKEN".into(), "tok-s3cr3t".into());
        def.env.insert("PLAIN".into(), "plain-value".into());
        let shown = format!("{def:?}");
        assert!(
            shown.contains("API_TOKEN") && shown.contains("PLAIN"),
            "{shown}"
        );
        assert!(!shown.contains("tok-s3cr3t"), "{shown}");
        assert!(!shown.contains("plain-value"), "{shown}");
        assert!(shown.contains("sleep 1"), "{shown}");
    }
}
