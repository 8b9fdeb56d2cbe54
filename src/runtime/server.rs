//! Server: the lifecycle coordinator of one service.

use ractor::{ActorRef, RpcReplyPort};

use crate::config::ProbeKind;
use crate::error::ControlError;
use crate::runtime::health_checker::HealthCheckerMsg;
use crate::runtime::port_manager::PortManagerMsg;
use crate::state::{ExitInfo, ServiceState};

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
    /// Stop gracefully. Replies once it is stopped.
    Stop(ControlReply),
    /// Stop, then start. Replies once the new process is spawned.
    Restart(ControlReply),
    /// SIGKILL the group now. Replies once it is stopped.
    Kill(ControlReply),
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
        run: u64,
        /// How it ended.
        exit: ExitInfo,
        /// True when it had to be SIGKILLed after `stop_timeout`.
        forced_kill: bool,
    },
    /// From the HealthChecker: a probe's verdict changed (thresholds already applied).
    ProbeVerdict {
        /// Which run.
        run: u64,
        /// Which probe.
        probe: ProbeKind,
        /// The new verdict.
        healthy: bool,
        /// Words for the event (`liveness http 503 ×3`).
        cause: String,
    },
    /// Timer: the backoff delay before a restart has passed.
    RestartDue {
        /// Which restart (stale timers are ignored).
        attempt_token: u64,
    },
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}
