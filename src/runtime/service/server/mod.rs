//! Server: the lifecycle coordinator of one service (the `gen_server` at the heart of
//! each service's subtree).
//!
//! It owns the service's state machine (DESIGN §3) and is the only writer of the service's
//! status row. It asks the PortManager to spawn, stop and signal the process, hears back
//! when the process exits, hears probe verdicts from the HealthChecker, and applies the
//! restart policy, the backoff and the restart intensity (`crate::restart`). Every
//! transition emits exactly one event, with a cause when it is a consequence.
//!
//! ```text
//!  pending ─start─▶ starting ─spawned─▶ running ─exit─▶ backoff ─delay─▶ starting …
//!     ▲                │                 │  ▲ │            │
//!     │          bad env/cwd          pause resume      intensity passed
//!     │                ▼                 ▼  │ │            ▼
//!     │              failed            paused │         failed
//!     │                                       ├─exit, policy says no─▶ exited
//!     └──────────────── stopped ◀─ stopping ◀─┘ stop / kill
//! ```
//!
//! Manual actions (stop, kill, restart, start) never count towards `max_restarts` or the
//! backoff (DESIGN §10).
//!
//! A detached service (`command` launches a daemon and exits) runs the same machine with
//! its own launch, stop and adoption steps, kept in the `detached` submodule.
//!
//! What follows an exit or a probe verdict is decided by plain functions
//! (`super::decide`); this actor gathers the facts and performs the answer. Every message
//! about a run carries its [`Generation`]; `ServerState::is_current` is the one check
//! that drops those of a run that is gone.
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the messages and the actor: `handle` dispatches to `on_*` |
//! | `state.rs` | the state, its status row, events, replies |
//! | `start.rs` | start, spawn, failed starts |
//! | `dependency_wait.rs` | waiting for `depends_on` |
//! | `install.rs` | clone and install before a start |
//! | `stop.rs` | stop, kill, restart, the shutdown-budget kill: taking a run down |
//! | `exit.rs` | an exit, and the restart timer after it |
//! | `verdict.rs` | probe verdicts: health, ready, liveness |
//! | `notify.rs` | what the service says over its notify socket; its watchdog |
//! | `control.rs` | pause, resume, stdin |
//! | `detached/` | a service whose command launches a daemon: way up, way down, follow task |
//! | `function.rs` | a function service: its spawn (a task, no pid) and its end |

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::config::ServiceDefinition;
use crate::error::ControlError;
use crate::runtime::service::decide::VerdictCause;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::health_checker::{HealthCheckerMsg, ServiceNotice};
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::{ExitInfo, ServiceState};

mod control;
mod dependency_wait;
mod detached;
mod exit;
mod function;
mod install;
mod notify;
mod start;
mod state;
mod stop;
mod verdict;

pub use dependency_wait::DEPENDENCY_WAIT_LIMIT;
pub use detached::DetachedNotice;
pub use state::ServerState;

/// The reply to a control message: the service's state once the action is done.
pub type ControlReply = RpcReplyPort<Result<ServiceState, ControlError>>;

/// Messages to a Server.
#[derive(Debug)]
pub enum ServerMsg {
    /// From the ServiceSupervisor, right after spawning its siblings.
    Attach {
        /// The PortManager.
        port: ActorRef<PortManagerMsg>,
        /// The HealthChecker, when the service has probes.
        health: Option<ActorRef<HealthCheckerMsg>>,
        /// `Some(cause)` when the actors were restarted (one-for-all) while the service was
        /// meant to run: start it again.
        recover: Option<String>,
    },
    /// Start the process (a no-op when it runs). Replies once it is spawned, or failed.
    Start(ControlReply),
    /// Start because another service needs it (the event says so). Replies like `Start`.
    StartNeeded {
        /// The service that needs this one.
        by: String,
        /// The state once spawned.
        reply: ControlReply,
    },
    /// Stop gracefully. Replies once it is stopped.
    Stop(ControlReply),
    /// Stop, then start. Replies once the new process is spawned.
    Restart(ControlReply),
    /// SIGKILL the group now. Replies once it is stopped.
    Kill(ControlReply),
    /// steward's shutdown budget is spent: SIGKILL the group now, like `Kill`, with a
    /// warning, and events that say the kill was forced by the budget. Replies once it is
    /// stopped.
    ShutdownKill {
        /// The budget that was spent (named in the warning and the events' cause).
        budget: Duration,
        /// The state once stopped.
        reply: ControlReply,
    },
    /// SIGSTOP the group, suspend probes.
    Pause(ControlReply),
    /// SIGCONT the group, resume probes.
    Resume(ControlReply),
    /// Write bytes to stdin.
    Input {
        /// The bytes.
        data: Vec<u8>,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
    /// From the PortManager: the process of `run` exited and its pipes are drained.
    ProcessExited {
        /// Which run.
        run: Generation,
        /// How it ended.
        exit: ExitInfo,
        /// True when it had to be SIGKILLed after `stop_timeout`.
        forced_kill: bool,
    },
    /// From the PortManager: the process tree of `run` used more than `max_memory` for
    /// two samples in a row; it is restarted through the restart policy.
    MemoryExceeded {
        /// Which run.
        run: Generation,
        /// Bytes used at the second sample.
        used: u64,
        /// `max_memory`.
        limit: u64,
    },
    /// From the PortManager, just before `ProcessExited`: the kernel's OOM killer ended
    /// the process of `run` (its cgroup's `oom_kill` count went up); the exit's cause.
    OutOfMemory {
        /// Which run.
        run: Generation,
        /// The service's `limits.memory`.
        limit: Option<u64>,
    },
    /// From the PortManager: the task of a function service's `run` ended and the lines it
    /// wrote are appended.
    FunctionExited {
        /// Which run.
        run: Generation,
        /// The exit it counts as (code 0 for `Ok`, 1 for `Err`, none for a panic or abort).
        exit: ExitInfo,
        /// How it ended, in the function's words.
        end: crate::runtime::service::decide::FunctionEnd,
        /// True when it had to be aborted after `stop_timeout`.
        forced_kill: bool,
    },
    /// From the HealthChecker (or a function service's readiness report): a probe's
    /// verdict changed (thresholds already applied).
    ProbeVerdict {
        /// Which run.
        run: Generation,
        /// The new verdict.
        healthy: bool,
        /// Which probe, and what it found (worded `liveness http 503 ×3`).
        cause: VerdictCause,
    },
    /// From the dependency watcher: every `depends_on` condition holds.
    DependenciesMet {
        /// The wait's generation (stale ones are ignored).
        run: Generation,
    },
    /// From the dependency watcher: a dependency will not meet its condition.
    DependencyFailed {
        /// The wait's generation.
        run: Generation,
        /// The dependency.
        dependency: String,
        /// Why, in words.
        reason: String,
    },
    /// Timer: the backoff delay before a restart has passed.
    RestartDue {
        /// The generation of the run that exited (stale timers are ignored).
        run: Generation,
    },
    /// A detached service's own watch task and deadlines (see [`DetachedNotice`]).
    Detached(DetachedNotice),
    /// From the HealthChecker: the service said something over its notify socket
    /// (`STATUS=`, `STOPPING=1`, `RELOADING=1`), or its watchdog went off.
    Notified {
        /// Which run.
        run: Generation,
        /// What it said, or the watchdog.
        notice: ServiceNotice,
    },
    /// Replies once every message sent before it has been handled (used to send stop
    /// signals to many services strictly in order without waiting for their exits).
    Sync(RpcReplyPort<()>),
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}

/// Arguments of a Server.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// The service.
    pub definition: Arc<ServiceDefinition>,
    /// The runtime's tables (the Server writes its own status row).
    pub tables: Arc<crate::runtime::Tables>,
    /// The address of the service's notify socket for `NOTIFY_SOCKET` (`Err`: why it
    /// could not be opened); `None` when the service does not use the protocol.
    pub notify_socket: Option<Result<String, String>>,
}

/// What a message handler leaves to wait on: `None` when it was done at once.
type Work<'a> = Option<BoxFuture<'a, ()>>;

/// The Server actor.
#[derive(Debug, Default)]
pub struct Server;

impl Actor for Server {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = ServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ServerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(ServerState::new(myself, args))
    }

    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // ractor keeps the largest form of this future inlined (twice) in the actor's
        // resident message loop, for as long as the service is defined. So the message is
        // handled here, before the future exists: each `on_*` does at once what does not
        // wait and returns what waits (a start, an exit, a pause) as a boxed future of its
        // own; the future left holds only that box. A control message is rare; its box is
        // not.
        let work: Work<'_> = match msg {
            ServerMsg::Attach {
                port,
                health,
                recover,
            } => state.on_attach(myself, port, health, recover),
            ServerMsg::Start(reply) => state.on_start(myself, reply, "start requested".to_string()),
            ServerMsg::StartNeeded { by, reply } => {
                state.on_start(myself, reply, format!("needed by {by}"))
            }
            ServerMsg::DependenciesMet { run } => state.on_dependencies_met(run),
            ServerMsg::DependencyFailed {
                run,
                dependency,
                reason,
            } => state.on_dependency_failed(run, dependency, reason),
            ServerMsg::Stop(reply) => state.on_stop(reply, stop::Takedown::Stop),
            ServerMsg::Kill(reply) => state.on_stop(reply, stop::Takedown::Kill),
            ServerMsg::ShutdownKill { budget, reply } => state.on_shutdown_kill(reply, budget),
            ServerMsg::Restart(reply) => state.on_restart(myself, reply),
            ServerMsg::Pause(reply) => state.on_pause(reply),
            ServerMsg::Resume(reply) => state.on_resume(myself, reply),
            ServerMsg::Input { data, reply } => state.on_input(data, reply),
            ServerMsg::ProcessExited {
                run,
                exit,
                forced_kill,
            } => state.on_process_exited(myself, run, exit, forced_kill),
            ServerMsg::FunctionExited {
                run,
                exit,
                end,
                forced_kill,
            } => state.on_function_exited(myself, run, exit, end, forced_kill),
            ServerMsg::Detached(notice) => state.on_detached(notice),
            ServerMsg::ProbeVerdict {
                run,
                healthy,
                cause,
            } => state.on_verdict(run, healthy, cause),
            ServerMsg::MemoryExceeded { run, used, limit } => {
                state.on_memory_exceeded(run, used, limit)
            }
            ServerMsg::OutOfMemory { run, limit } => state.on_out_of_memory(run, limit),
            ServerMsg::RestartDue { run } => state.on_restart_due(myself, run),
            ServerMsg::Notified { run, notice } => state.on_notified(run, notice),
            ServerMsg::Sync(reply) => {
                let _ = reply.send(());
                None
            }
            ServerMsg::Panic(why) => panic!("{why}"),
        };
        async move {
            if let Some(work) = work {
                work.await;
            }
            Ok(())
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.on_post_stop();
        Ok(())
    }
}

/// How long a spawn (or a signal, or a stdin write) may take before the Server gives up.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);
