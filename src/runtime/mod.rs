//! The actor tree (DESIGN §1).
//!
//! ```text
//! Root supervisor  (one-for-one over services; owns the tables)
//!  └─ ServiceSupervisor "web"   (one-for-all over its four children, restart intensity)
//!      ├─ LogBuffer      appends pipe lines to the ring and the log file
//!      ├─ Server         lifecycle: state machine, restart policy, backoff, events
//!      ├─ PortManager    the OS process: spawn, pipes, exit, signals, stdin
//!      └─ HealthChecker  probes → verdicts to Server (only when the service has probes)
//! ```
//!
//! Actors talk only by messages. The tables the root owns ([`Tables`]: definitions, status
//! rows, log rings, the event bus) outlive the per-service actors, so a one-for-all
//! restart loses neither log history nor the service's last known state.

pub mod health_checker;
pub mod log_buffer;
pub mod port_manager;
pub mod root;
pub mod server;
pub mod service_supervisor;
mod tables;

pub use tables::{RuntimeState, Tables};

use serde::{Deserialize, Serialize};

/// One of the four actors of a service, for fault injection and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The lifecycle coordinator.
    Server,
    /// The OS process owner.
    PortManager,
    /// The log appender.
    LogBuffer,
    /// The prober.
    HealthChecker,
}

impl ActorKind {
    /// snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Server => "server",
            ActorKind::PortManager => "port_manager",
            ActorKind::LogBuffer => "log_buffer",
            ActorKind::HealthChecker => "health_checker",
        }
    }
}

/// The actor and a description of why it ended, for the supervision events a supervisor
/// acts on (a failure, or a stop it did not ask for); `None` for the others.
fn describe_exit<'a>(
    event: &'a ractor::SupervisionEvent,
    stopped: &str,
) -> Option<(&'a ractor::ActorCell, String)> {
    match event {
        ractor::SupervisionEvent::ActorFailed(cell, err) => {
            Some((cell, format!("panicked: {err}")))
        }
        ractor::SupervisionEvent::ActorTerminated(cell, _, reason) => Some((
            cell,
            format!("{stopped} ({})", reason.as_deref().unwrap_or("no reason")),
        )),
        _ => None,
    }
}
