//! steward: an OTP-style service supervisor.
//!
//! steward runs long-lived OS processes (dev servers, workers, databases) under a tree of
//! [`ractor`] actors, keeps them alive by policy, checks their health, keeps their logs,
//! and lets people, scripts and other actors control them by message.
//!
//! ```text
//! Root supervisor  (one per runtime; one-for-one over services; owns the tables)
//!  ├─ tables: definitions, status rows, log rings, event bus  (survive actor restarts)
//!  └─ ServiceSupervisor "web"   (one-for-all, restart intensity)
//!      ├─ LogBuffer      pipe lines → the service's ring and log file
//!      ├─ Server         lifecycle: state machine, restart policy, backoff, events
//!      ├─ PortManager    the OS process: spawn, pipes, exit, signals, stdin
//!      └─ HealthChecker  startup / readiness / liveness probes (only with probes)
//! ```
//!
//! Embed it: spawn a runtime with [`Steward::spawn`] (or [`Steward::boot`] a loaded
//! [`config::Config`]), define services with [`Steward::define`], and subscribe to
//! [`events`] and [`logs`]; [`metrics`] renders its Prometheus page. Every method of
//! [`Steward`] is one [`runtime::root::RootMsg`] that an actor may send to
//! [`Steward::root`] itself.
//!
//! steward targets Linux (process groups, `PR_SET_PDEATHSIG`, `/proc`).

#[cfg(feature = "api")]
pub mod api;
pub mod config;
pub mod control;
pub mod dependencies;
pub mod error;
pub mod events;
mod handle;
pub mod logs;
pub mod main_service;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod process;
pub mod restart;
pub mod runtime;
pub mod source;
pub mod state;

pub use config::{CommandSpec, ServiceDefinition};
pub use control::{BatchResult, ControlAction, RuntimeStatus, ServiceInfo};
pub use error::{BootError, ConfigError, ConfigErrors, ControlError};
pub use events::{Event, EventItem, EventKind};
pub use handle::Steward;
/// The log file sink at its older path; it lives in [`logs::file_sink`].
pub use logs::file_sink as log_file;
pub use runtime::root::RootMsg;
pub use runtime::{ActorKind, RuntimeState};
pub use state::{Health, ServiceState, ServiceStatus};
