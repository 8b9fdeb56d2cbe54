//! LogBuffer: appends a service's pipe lines to its ring and its optional log file.

use std::path::PathBuf;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::logs::{LogLine, LogRing, RawLine};

/// Messages to a LogBuffer.
#[derive(Debug)]
pub enum LogBufferMsg {
    /// A batch of lines read from the pipes, in order.
    Lines(Vec<RawLine>),
    /// Flush the log file now (sent at process exit, and by the actor's own timer).
    Flush,
    /// The last `n` lines.
    Tail {
        /// How many.
        n: usize,
        /// The lines, oldest first.
        reply: RpcReplyPort<Vec<LogLine>>,
    },
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}

/// Where and how to keep a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileSpec {
    /// The file, absolute.
    pub path: PathBuf,
    /// Rotate at this size in bytes.
    pub max_size: u64,
    /// Old files kept (`path.1` … `path.N`).
    pub max_files: u32,
}

/// Arguments of a LogBuffer.
#[derive(Debug, Clone)]
pub struct LogBufferArgs {
    /// The service id.
    pub service: String,
    /// The ring, owned by the root.
    pub ring: Arc<LogRing>,
    /// The optional file sink.
    pub file: Option<LogFileSpec>,
}

/// State of a LogBuffer.
#[derive(Debug)]
pub struct LogBufferState {
    ring: Arc<LogRing>,
}

/// The LogBuffer actor.
#[derive(Debug, Default)]
pub struct LogBuffer;

impl Actor for LogBuffer {
    type Msg = LogBufferMsg;
    type State = LogBufferState;
    type Arguments = LogBufferArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: LogBufferArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(LogBufferState { ring: args.ring })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LogBufferMsg::Lines(batch) => {
                state.ring.append(batch);
            }
            LogBufferMsg::Flush => {}
            LogBufferMsg::Tail { n, reply } => {
                let _ = reply.send(state.ring.tail(n));
            }
            LogBufferMsg::Panic(why) => panic!("{why}"),
        }
        Ok(())
    }
}
