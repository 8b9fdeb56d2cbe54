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

pub mod root;
pub mod service;
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
pub(crate) fn describe_exit<'a>(
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

#[cfg(test)]
mod future_sizes {
    //! How big each actor's resident futures are. ractor keeps, per actor, one task whose
    //! future holds the actor's state and a boxed message loop that inlines the largest
    //! `handle` / `handle_supervisor_evt` future (twice, as the loop moves it): bytes
    //! every defined service pays while it idles. Server, ServiceSupervisor, LogBuffer
    //! and PortManager handle a message before its future exists and box only the paths
    //! that wait (the PortManager has none), so their handler futures are a few words;
    //! this test guards that.

    use std::future::Future;
    use std::mem::size_of;

    use ractor::{Actor, ActorRef, SupervisionEvent};

    use super::service::health_checker::HealthChecker;
    use super::service::log_buffer::LogBuffer;
    use super::service::port_manager::PortManager;
    use super::service::server::Server;
    use super::service::supervisor::ServiceSupervisor;

    /// Regression bound: an inlined `Server::start` or `spawn_children` (≈ 1–2 KiB each,
    /// measured before they were boxed) exceeds it.
    const MAX_RESIDENT_FUTURE: usize = 640;

    fn handle_size<'a, A, Fut, F>(_: F) -> usize
    where
        A: Actor + 'a,
        F: FnOnce(&'a A, ActorRef<A::Msg>, A::Msg, &'a mut A::State) -> Fut,
        Fut: Future + 'a,
    {
        size_of::<Fut>()
    }

    fn supervision_size<'a, A, Fut, F>(_: F) -> usize
    where
        A: Actor + 'a,
        F: FnOnce(&'a A, ActorRef<A::Msg>, SupervisionEvent, &'a mut A::State) -> Fut,
        Fut: Future + 'a,
    {
        size_of::<Fut>()
    }

    #[test]
    fn handler_futures_kept_by_every_actor_stay_small() {
        let rows = [
            (
                "log_buffer",
                handle_size(<LogBuffer as Actor>::handle),
                supervision_size(<LogBuffer as Actor>::handle_supervisor_evt),
                size_of::<<LogBuffer as Actor>::State>(),
            ),
            (
                "server",
                handle_size(<Server as Actor>::handle),
                supervision_size(<Server as Actor>::handle_supervisor_evt),
                size_of::<<Server as Actor>::State>(),
            ),
            (
                "port_manager",
                handle_size(<PortManager as Actor>::handle),
                supervision_size(<PortManager as Actor>::handle_supervisor_evt),
                size_of::<<PortManager as Actor>::State>(),
            ),
            (
                "service_supervisor",
                handle_size(<ServiceSupervisor as Actor>::handle),
                supervision_size(<ServiceSupervisor as Actor>::handle_supervisor_evt),
                size_of::<<ServiceSupervisor as Actor>::State>(),
            ),
            (
                "health_checker",
                handle_size(<HealthChecker as Actor>::handle),
                supervision_size(<HealthChecker as Actor>::handle_supervisor_evt),
                size_of::<<HealthChecker as Actor>::State>(),
            ),
        ];
        for (name, handle, supervision, state) in rows {
            // `cargo test future_sizes -- --nocapture` shows them.
            println!("{name}: handle {handle} B, supervision {supervision} B, state {state} B");
            assert!(
                handle.max(supervision) <= MAX_RESIDENT_FUTURE,
                "{name}: a handler future of {} B is kept resident; box its heavy path",
                handle.max(supervision)
            );
        }
    }
}
