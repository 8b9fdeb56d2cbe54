//! The public control vocabulary: the verbs a person, a script, an actor or an agent can
//! apply to a service or to the whole runtime, and the shapes of what they get back.
//!
//! The library's [`crate::Steward`] handle, the root's [`crate::RootMsg`], the HTTP API
//! and the CLI all speak these types, so a verb has one name everywhere.

use std::sync::Arc;

use serde::Serialize;

use crate::config::ServiceDefinition;
use crate::error::ControlError;
use crate::runtime::RuntimeState;
use crate::state::{ServiceState, ServiceStatus};

/// A control verb for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Start the process (no-op when running).
    Start,
    /// Stop gracefully (stop signal, SIGKILL after stop_timeout).
    Stop,
    /// Stop then start.
    Restart,
    /// SIGKILL the group now.
    Kill,
    /// SIGSTOP the group and suspend probes.
    Pause,
    /// SIGCONT the group and resume probes.
    Resume,
}

impl ControlAction {
    /// Every verb, in the order the docs list them.
    pub const ALL: [ControlAction; 6] = [
        ControlAction::Start,
        ControlAction::Stop,
        ControlAction::Restart,
        ControlAction::Kill,
        ControlAction::Pause,
        ControlAction::Resume,
    ];

    /// The verb as one word (`start`, `stop`, …): the path segment of its API route and
    /// its CLI command.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Start => "start",
            ControlAction::Stop => "stop",
            ControlAction::Restart => "restart",
            ControlAction::Kill => "kill",
            ControlAction::Pause => "pause",
            ControlAction::Resume => "resume",
        }
    }
}

impl std::fmt::Display for ControlAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service's state together with its definition.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// Current state.
    pub state: ServiceState,
    /// The definition it runs from.
    pub definition: Arc<ServiceDefinition>,
}

/// The result of an operation over many services, one entry per service, in the order
/// the services were handled.
pub type BatchResult = Vec<(String, Result<ServiceState, ControlError>)>;

/// The runtime's own status (`GET /api/v1/status`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeStatus {
    /// `running`, `paused` or `stopping`.
    pub state: RuntimeState,
    /// When the runtime started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Seconds since then.
    pub uptime_secs: u64,
    /// steward's version.
    pub version: &'static str,
    /// Number of services.
    pub services: usize,
    /// Services by status (only statuses that occur).
    pub counts: std::collections::BTreeMap<ServiceStatus, usize>,
    /// Automatic restarts of every service.
    pub restarts_total: u64,
    /// Sequence number of the newest event.
    pub last_event_seq: u64,
    /// How services' processes are tracked (cgroup per service, or process group +
    /// subreaper, and why): what stop, kill and pause guarantee (DESIGN §11).
    pub tracking: crate::process::cgroup::TrackingStatus,
}
