//! One service's subtree: its one-for-all supervisor and the four actors it owns.
//!
//! ```text
//! ServiceSupervisor "web"   (supervisor.rs: one-for-all over its children, restart intensity)
//!  ├─ LogBuffer      (log_buffer.rs)     pipe lines → the service's ring and log file
//!  ├─ Server         (server/)           lifecycle: state machine, restart policy, backoff, events
//!  ├─ PortManager    (port_manager/)     the OS process: spawn, pipes, exit, signals, stdin
//!  └─ HealthChecker  (health_checker/)   probes → verdicts to Server (only with probes)
//! ```
//!
//! What the Server decides (what follows an exit, a probe verdict) is in `decide/`, as
//! plain functions over typed causes; `generation.rs` holds the number that tells one run
//! from the next, carried by every message about a run.

pub mod decide;
pub mod generation;
pub mod health_checker;
pub mod log_buffer;
pub mod port_manager;
pub mod server;
pub mod supervisor;
