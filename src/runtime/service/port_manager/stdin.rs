//! The stdin of a service's process: the bare pipe until the first write, then a writer
//! task that writes the queued bytes in order (most services never get input, and a task
//! and its queue per service add up).
//!
//! **A write never waits for the process** (DESIGN §10 "Every request is answered"). A
//! request is answered as soon as its bytes are queued, or refused at once when they
//! would take the queue past [`STDIN_QUEUE_BYTES`] ("stdin buffer full"). The bytes the
//! process has not read yet are counted as the task writes them, chunk by chunk, so a
//! process that reads slowly frees room as it reads, and one that never reads (its pipe
//! full) holds at most the pipe's buffer plus this bound in steward. Before this, the
//! reply waited for the write: a process that never read its stdin held the Server (and
//! a stop sent meanwhile) until the call timed out (issue 14, item 3).

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::PortError;

/// The most bytes of input a service's process may have waiting in steward (written to
/// the queue, not yet taken by the pipe).
pub(crate) const STDIN_QUEUE_BYTES: usize = 1024 * 1024;

/// The writer task hands the pipe this much at a time, so the count of waiting bytes
/// falls as the process reads (a pipe's buffer is 64 KiB on Linux).
const CHUNK: usize = 64 * 1024;

/// The stdin of a process: the bare pipe until the first write starts the writer task.
#[derive(Debug)]
pub(super) enum StdinPort {
    /// No write yet; `None` when the process has no stdin pipe. Registered with tokio by
    /// the first write.
    Idle(Option<OwnedFd>),
    /// The writer task, which owns the pipe.
    Writing(Writer),
}

/// The writer task and what it shares with the port.
#[derive(Debug)]
pub(super) struct Writer {
    queue: mpsc::UnboundedSender<Vec<u8>>,
    shared: Arc<Shared>,
    /// Aborted when the port is dropped (the run is over): a pipe whose other end some
    /// grandchild holds and never reads must not keep a task and its bytes forever.
    task: JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the port and its writer task both see.
#[derive(Debug, Default)]
struct Shared {
    /// Bytes queued and not yet taken by the pipe.
    waiting: AtomicUsize,
    /// The pipe refused a write (the process closed its stdin, or exited).
    broken: AtomicBool,
}

impl StdinPort {
    /// Queues `data`, starting the writer task on the first write. Answers at once: the
    /// bytes are queued, or why not.
    pub(super) fn write(&mut self, service: &str, data: Vec<u8>) -> Result<(), PortError> {
        if let StdinPort::Idle(pipe) = self {
            let Some(pipe) = pipe.take() else {
                return Err(PortError::StdinClosed {
                    service: service.to_string(),
                });
            };
            let pipe = pipe::Sender::from_owned_fd(pipe).map_err(PortError::Stdin)?;
            let (queue, requests) = mpsc::unbounded_channel();
            let shared = Arc::new(Shared::default());
            let task = tokio::spawn(write_stdin(pipe, requests, shared.clone()));
            *self = StdinPort::Writing(Writer {
                queue,
                shared,
                task,
            });
        }
        let StdinPort::Writing(writer) = self else {
            return Err(PortError::StdinClosed {
                service: service.to_string(),
            });
        };
        if writer.shared.broken.load(Ordering::Acquire) {
            return Err(PortError::StdinClosed {
                service: service.to_string(),
            });
        }
        let len = data.len();
        let reserved =
            writer
                .shared
                .waiting
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                    waiting
                        .checked_add(len)
                        .filter(|&total| total <= STDIN_QUEUE_BYTES)
                });
        if let Err(waiting) = reserved {
            return Err(PortError::StdinFull {
                service: service.to_string(),
                waiting,
                asked: len,
                limit: STDIN_QUEUE_BYTES,
            });
        }
        writer.queue.send(data).map_err(|_| PortError::StdinClosed {
            service: service.to_string(),
        })
    }
}

/// Writes each queued request in order, a chunk at a time, counting what the pipe took.
async fn write_stdin(
    mut stdin: pipe::Sender,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(data) = queue.recv().await {
        for chunk in data.chunks(CHUNK) {
            let written = match stdin.write_all(chunk).await {
                Ok(()) => stdin.flush().await,
                Err(e) => Err(e),
            };
            if let Err(error) = written {
                debug!(%error, "stdin closed by the process; queued input dropped");
                shared.broken.store(true, Ordering::Release);
                return;
            }
            shared.waiting.fetch_sub(chunk.len(), Ordering::AcqRel);
        }
    }
}
