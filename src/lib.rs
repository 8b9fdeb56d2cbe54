//! steward: an OTP-style service supervisor.
//!
//! steward runs long-lived OS processes (dev servers, workers, databases) under a tree of
//! [`ractor`] actors, keeps them alive by policy, checks their health, keeps their logs,
//! and lets people, scripts and other actors control them by message.
//!
//! ```text
//! Root supervisor        runtime/root/: messages (mod.rs), registry, fan_out, reload
//!  ├─ tables             runtime/tables.rs: definitions, status rows, log rings, event
//!  │                     bus (survive actor restarts; read and written through methods)
//!  └─ ServiceSupervisor  runtime/service/supervisor.rs (one-for-all, restart intensity)
//!      ├─ LogBuffer      runtime/service/log_buffer.rs: pipe lines → ring and log file
//!      ├─ Server         runtime/service/server/: lifecycle, one file per seam; it
//!      │                 performs what runtime/service/decide/ decides after an exit or a
//!      │                 probe verdict (pure functions over typed causes)
//!      ├─ PortManager    runtime/service/port_manager/: spawn, pipes, exit, signals, stdin
//!      └─ HealthChecker  runtime/service/health_checker/: probes (only with probes)
//! ```
//!
//! Below the actors: [`process`] (the only module that calls nix / clone / prctl),
//! [`config`], [`logs`], [`events`], [`metrics`]. Above them: [`Steward`] (the handle),
//! [`control`] (the verbs and reply shapes), and, behind default cargo features, `api`
//! (HTTP, feature `api`) and the binary's CLI (feature `cli`). docs/ARCHITECTURE.md maps
//! every file and walks one stop request hop by hop.
//!
//! A service may also be a function of the embedding app ([`function`]): the PortManager
//! then runs a tokio task instead of a process, under the same Server and policies.
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
pub mod function;
#[doc(hidden)]
pub mod fuzzing;
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
#[cfg(feature = "api")]
pub mod tools;

pub use config::{CommandSpec, ServiceDefinition};
pub use control::{BatchResult, ControlAction, RuntimeStatus, ServiceInfo};
pub use error::{BootError, ConfigError, ConfigErrors, ControlError};
pub use events::{Event, EventItem, EventKind};
pub use function::{FunctionService, ServiceContext};
pub use handle::Steward;
/// The log file sink at its older path; it lives in [`logs::file_sink`].
pub use logs::file_sink as log_file;
pub use runtime::root::RootMsg;
pub use runtime::{ActorKind, RuntimeState};
pub use state::{Health, ServiceKind, ServiceState, ServiceStatus};
