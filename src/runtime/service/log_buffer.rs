//! LogBuffer: appends a service's pipe lines to its ring and its optional log file.
//!
//! In OTP terms this is the worker that owns writes to an ETS table it does not own: the
//! [`LogRing`] belongs to the root (so history survives a one-for-all restart of the
//! service's actors), while the LogBuffer numbers and appends lines, feeds subscribers
//! through the ring, and keeps the `log_file` sink.
//!
//! The file is written through a large buffer and flushed when a batch comes from a read
//! that drained the pipe ([`LogBufferMsg::Drained`]: the writer paused, so the end of a
//! burst is in the file at once, not at the next tick), at least every [`FLUSH_INTERVAL`]
//! while it holds unflushed lines (a writer that never lets the pipe drain), on
//! [`LogBufferMsg::Flush`], in `post_stop`, and when the state is dropped (a panic skips
//! `post_stop`, not `Drop`). The flush timer is one `send_after` armed only when the buffer
//! becomes dirty, so an idle service costs no wake-ups. A failing file (disk full, permissions, a bad path) never
//! stops the ring: the failure is reported once per streak — a `log_file_failed` event with
//! the error as its cause, and `log_file_error` in the service's state (shown by explain) —
//! and the file is reopened on the next batch. When it takes writes again a
//! `log_file_resumed` event says how many lines were not written meanwhile, and the state
//! field is cleared.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::events::{Event, EventKind};
use crate::log_file::LogFileSink;
use crate::logs::{Credit, LogLine, LogRing, RawLine};
use crate::runtime::Tables;

/// Longest time a written line waits in the file buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Retry delay for flushing a buffer the file refuses (disk full): slower than
/// [`FLUSH_INTERVAL`], so a broken disk is not hammered.
const FLUSH_RETRY: Duration = Duration::from_secs(1);

/// Messages to a LogBuffer.
#[derive(Debug)]
pub enum LogBufferMsg {
    /// A batch of lines read from the pipes, in order; more output was waiting.
    Lines(Vec<RawLine>),
    /// Like [`LogBufferMsg::Lines`], from a read that drained the pipe: the log file is
    /// flushed after the batch (which may be empty).
    Drained(Vec<RawLine>),
    /// Lines read from a process's pipes; `drained` as for [`LogBufferMsg::Drained`]. The
    /// credit gives the lines' bytes back to the reader's backlog once they are handled
    /// (appended to the ring and written to the file buffer), which lets the reader read
    /// on: this is how a slow log file slows the service instead of growing memory.
    Read {
        /// The lines, in order.
        lines: Vec<RawLine>,
        /// The read emptied the pipe: flush the log file after the batch.
        drained: bool,
        /// The batch's share of the reader's backlog.
        credit: Credit,
    },
    /// Flush the log file now (sent at process exit, or by anyone who needs the file
    /// current).
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
    /// Internal: the actor's own flush timer fired. Only the LogBuffer sends it, to itself;
    /// others send [`LogBufferMsg::Flush`].
    FlushTick,
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
    /// The runtime's tables: a failing log file is reported in the service's state and as
    /// events. `None` for a LogBuffer outside a runtime (tests): then only a warning is
    /// logged.
    pub tables: Option<Arc<Tables>>,
}

/// State of a LogBuffer. Dropping it flushes the log file (through [`LogFileSink`]'s
/// `Drop`), which is what saves the buffered lines when a panic skips `post_stop`.
#[derive(Debug)]
pub struct LogBufferState {
    service: String,
    ring: Arc<LogRing>,
    /// `None` when the service has no `log_file`.
    file: Option<FileOutput>,
}

/// The file side of a LogBuffer: the sink while it is open, and the bookkeeping that keeps
/// a failing file from costing the ring anything.
#[derive(Debug)]
struct FileOutput {
    spec: LogFileSpec,
    /// `None` until the file could be opened (retried at every batch).
    sink: Option<LogFileSink>,
    /// A [`LogBufferMsg::FlushTick`] is on its way. There is at most one, and none while
    /// nothing is buffered: this is what makes an idle service free.
    tick_armed: bool,
    /// The file failed and we said so; quiet until a flush succeeds again.
    failing: bool,
    /// Lines not written since the file began failing.
    unwritten: u64,
    /// Where a failure and the recovery are reported.
    tables: Option<Arc<Tables>>,
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
        let file = args.file.map(|spec| {
            let mut output = FileOutput {
                spec,
                sink: None,
                tick_armed: false,
                failing: false,
                unwritten: 0,
                tables: args.tables.clone(),
            };
            // A file that cannot be opened must not keep the service from starting.
            output.open(&args.service);
            output
        });
        Ok(LogBufferState {
            service: args.service,
            ring: args.ring,
            file,
        })
    }

    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // Nothing here waits: handled before the future exists, so the future ractor
        // keeps inlined in the actor's resident loop is an empty one.
        match msg {
            LogBufferMsg::Lines(batch) => on_lines(&myself, state, batch, false),
            LogBufferMsg::Drained(batch) => on_lines(&myself, state, batch, true),
            LogBufferMsg::Read {
                lines,
                drained,
                credit,
            } => {
                on_lines(&myself, state, lines, drained);
                drop(credit);
            }
            LogBufferMsg::Flush => on_flush(&myself, state),
            LogBufferMsg::Tail { n, reply } => {
                // The asker may have given up waiting; nothing to do then.
                let _ = reply.send(state.ring.tail(n));
            }
            LogBufferMsg::Panic(why) => panic!("{why}"),
            LogBufferMsg::FlushTick => {
                if let Some(file) = &mut state.file {
                    file.tick_armed = false;
                }
                on_flush(&myself, state);
            }
        }
        std::future::ready(Ok(()))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(file) = &mut state.file {
            file.flush(&state.service);
        }
        Ok(())
    }
}

fn on_lines(
    myself: &ActorRef<LogBufferMsg>,
    state: &mut LogBufferState,
    batch: Vec<RawLine>,
    drained: bool,
) {
    let lines = if batch.is_empty() {
        Vec::new()
    } else {
        state.ring.append(batch)
    };
    if let Some(file) = &mut state.file {
        if !lines.is_empty() {
            file.write(&state.service, &lines);
        }
        // A failing file is retried by the slower timer, not at every read.
        if drained && !file.failing {
            file.flush(&state.service);
        }
        file.arm_tick(myself, FLUSH_INTERVAL);
    }
}

fn on_flush(myself: &ActorRef<LogBufferMsg>, state: &mut LogBufferState) {
    if let Some(file) = &mut state.file {
        file.flush(&state.service);
        // Still dirty means the file refused the bytes: try again later, not at once.
        file.arm_tick(myself, FLUSH_RETRY);
    }
}

impl FileOutput {
    fn open(&mut self, service: &str) {
        match LogFileSink::open(&self.spec.path, self.spec.max_size, self.spec.max_files) {
            Ok(sink) => self.sink = Some(sink),
            Err(error) => self.failed(service, error),
        }
    }

    fn write(&mut self, service: &str, lines: &[LogLine]) {
        if self.sink.is_none() {
            self.open(service);
        }
        let result = match &mut self.sink {
            Some(sink) => sink.write_batch(lines),
            None => {
                self.unwritten += lines.len() as u64;
                return;
            }
        };
        if let Err(partial) = result {
            self.unwritten += (lines.len() - partial.written) as u64;
            self.failed(service, partial.error);
        }
    }

    fn flush(&mut self, service: &str) {
        let Some(sink) = &mut self.sink else { return };
        match sink.flush() {
            Ok(()) => {
                if self.failing {
                    self.resumed(service);
                }
            }
            Err(error) => self.failed(service, error),
        }
    }

    /// Schedules one flush tick after `delay` if lines wait in the buffer and none is
    /// scheduled yet.
    fn arm_tick(&mut self, myself: &ActorRef<LogBufferMsg>, delay: Duration) {
        let dirty = self.sink.as_ref().is_some_and(LogFileSink::has_unflushed);
        if dirty && !self.tick_armed {
            self.tick_armed = true;
            // The timer task ends by itself; if the actor is gone by then the send fails
            // quietly, and the state's Drop has already flushed.
            drop(myself.send_after(delay, || LogBufferMsg::FlushTick));
        }
    }

    /// The first failure of a streak is reported (a warning, the state field, an event);
    /// the rest of the streak is counted, not reported.
    fn failed(&mut self, service: &str, error: std::io::Error) {
        if self.failing {
            return;
        }
        self.failing = true;
        tracing::warn!(service = %service, %error, "log file unavailable; lines stay in the ring and are not written until it works again");
        if let Some(tables) = &self.tables {
            let why = error.to_string();
            tables.update_state(service, |r| r.log_file_error = Some(why.clone()));
            tables
                .events
                .emit(Event::new(service, EventKind::LogFileFailed).cause(why));
        }
    }

    /// The file took a flush again: the streak is over.
    fn resumed(&mut self, service: &str) {
        self.failing = false;
        let unwritten = std::mem::take(&mut self.unwritten);
        tracing::info!(service = %service, path = %self.spec.path.display(), unwritten, "log file writable again");
        if let Some(tables) = &self.tables {
            tables.update_state(service, |r| r.log_file_error = None);
            let mut event = Event::new(service, EventKind::LogFileResumed).cause(format!(
                "{} writable again; {unwritten} lines were not written while it failed (they were kept in the ring)",
                self.spec.path.display()
            ));
            event.dropped = Some(unwritten);
            tables.events.emit(event);
        }
    }
}
