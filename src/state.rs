//! What a service is doing right now: its status, health and last exit.
//!
//! [`ServiceState`] is the row a service has in the runtime's status table. Only the
//! service's own Server actor writes it; the root, the API and the CLI read it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The lifecycle status of a service (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// Defined, not started.
    Pending,
    /// Running its install step.
    Installing,
    /// Being started (or waiting for a dependency).
    Starting,
    /// The process is up.
    Running,
    /// The process group is frozen with SIGSTOP.
    Paused,
    /// Stop signal sent, waiting for the process to exit.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// The process finished and is not to be restarted.
    Exited,
    /// The process crashed; a restart is scheduled.
    Backoff,
    /// Gave up (restart intensity) or could not start.
    Failed,
}

impl ServiceStatus {
    /// The snake_case name, as in the wire format.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Pending => "pending",
            ServiceStatus::Installing => "installing",
            ServiceStatus::Starting => "starting",
            ServiceStatus::Running => "running",
            ServiceStatus::Paused => "paused",
            ServiceStatus::Stopping => "stopping",
            ServiceStatus::Stopped => "stopped",
            ServiceStatus::Exited => "exited",
            ServiceStatus::Backoff => "backoff",
            ServiceStatus::Failed => "failed",
        }
    }

    /// True while a process exists (or is about to) for this service.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ServiceStatus::Installing
                | ServiceStatus::Starting
                | ServiceStatus::Running
                | ServiceStatus::Paused
                | ServiceStatus::Stopping
                | ServiceStatus::Backoff
        )
    }
}

impl std::fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health as the probes see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No probe, or no verdict yet.
    #[default]
    Unknown,
    /// The probe passed `success_threshold` times in a row.
    Healthy,
    /// The probe failed `failure_threshold` times in a row.
    Unhealthy,
}

impl Health {
    /// The snake_case name, as in the wire format.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, when it exited by itself.
    pub code: Option<i32>,
    /// Signal name (`SIGKILL`), when a signal ended it.
    pub signal: Option<String>,
    /// When the exit was seen.
    pub at: DateTime<Utc>,
}

impl ExitInfo {
    /// An exit seen now (tests build the exits they need with it).
    #[cfg(test)]
    pub(crate) fn now(code: Option<i32>, signal: Option<&str>) -> ExitInfo {
        ExitInfo {
            code,
            signal: signal.map(str::to_string),
            at: Utc::now(),
        }
    }

    /// True for a clean exit (code 0).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// "exit code 3" or "killed by SIGKILL".
    pub fn describe(&self) -> String {
        match (&self.code, &self.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by {sig}"),
            (None, None) => "exited".to_string(),
        }
    }
}

/// One service's row in the status table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Lifecycle status.
    pub status: ServiceStatus,
    /// Probe verdict.
    pub health: Health,
    /// Running, and its readiness probe (if any) is healthy.
    pub ready: bool,
    /// Pid of the main process while it runs.
    pub pid: Option<u32>,
    /// How the last process ended.
    pub last_exit: Option<ExitInfo>,
    /// Automatic restarts (crash, liveness) since the service was defined.
    pub restart_count: u32,
    /// When the current process started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the status last changed.
    pub changed_at: DateTime<Utc>,
    /// Why the service is in this state (the cause of the last transition).
    pub reason: Option<String>,
    /// Tags from the definition.
    pub tags: Vec<String>,
    /// CPU use of the main process in percent of one core, when running.
    pub cpu_percent: Option<f64>,
    /// Resident memory of the main process in bytes, when running.
    pub rss_bytes: Option<u64>,
    /// Why the service's `log_file` cannot be written, while that lasts (its lines stay in
    /// the ring; see the `log_file_failed` and `log_file_resumed` events).
    #[serde(default)]
    pub log_file_error: Option<String>,
    /// The last `STATUS=` text the process sent over its notify socket
    /// (`readiness: { notify: true }` or `watchdog`); `None` before one, and once the
    /// process that sent it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_status: Option<String>,
    /// `process` (an OS process) or `function` (a function of the embedding app, with no
    /// pid, CPU or memory of its own).
    #[serde(default)]
    pub kind: ServiceKind,
    /// Why the service's `limits` are not (all) applied, e.g. `the memory controller is
    /// not available in /sys/fs/cgroup (controllers: cpu io)` or `cgroups are off
    /// (settings.cgroups: false)`; `None` when it has none or all are enforced (DESIGN §11:
    /// never silently ignored). The service runs either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits_not_enforced: Option<String>,
}

impl ServiceState {
    /// The state of a service that was just defined.
    pub fn pending(id: &str, name: &str, tags: &[String]) -> Self {
        ServiceState {
            id: id.to_string(),
            name: name.to_string(),
            status: ServiceStatus::Pending,
            health: Health::Unknown,
            ready: false,
            pid: None,
            last_exit: None,
            restart_count: 0,
            started_at: None,
            changed_at: Utc::now(),
            reason: None,
            tags: tags.to_vec(),
            cpu_percent: None,
            rss_bytes: None,
            log_file_error: None,
            notify_status: None,
            kind: ServiceKind::Process,
            limits_not_enforced: None,
        }
    }

    /// The same state, of `kind`.
    #[must_use]
    pub fn of_kind(mut self, kind: ServiceKind) -> Self {
        self.kind = kind;
        self
    }
}

/// What runs for a service: an OS process, or a function of the embedding app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// An OS process (`command` / `argv`).
    #[default]
    Process,
    /// A function service ([`crate::function`]).
    Function,
}

impl ServiceKind {
    /// `process` or `function`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Process => "process",
            ServiceKind::Function => "function",
        }
    }
}
