//! The stdin of a service's process: the bare pipe until the first write, then a writer
//! task that writes each request's bytes in order and replies once they are written (most
//! services never get input, and a task and its queue per service add up).

use std::os::fd::OwnedFd;

use ractor::RpcReplyPort;
use tokio::io::AsyncWriteExt as _;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::PortError;

/// A write request for the stdin task: the bytes and who to tell when they are written.
pub(super) type StdinWrite = (Vec<u8>, RpcReplyPort<Result<(), PortError>>);

/// The stdin of a process: the bare pipe until the first write starts the writer task.
#[derive(Debug)]
pub(super) enum StdinPort {
    /// No write yet; `None` when the process has no stdin pipe. Registered with tokio by
    /// the first write.
    Idle(Option<OwnedFd>),
    /// Queue of the writer task, which owns the pipe.
    Writing(mpsc::UnboundedSender<StdinWrite>),
}

impl StdinPort {
    /// Queues a write, starting the writer task on the first one. Gives the request back
    /// when the pipe is closed.
    pub(super) fn write(&mut self, request: StdinWrite) -> Result<(), StdinWrite> {
        if let StdinPort::Idle(pipe) = self {
            let Some(pipe) = pipe.take() else {
                return Err(request);
            };
            let pipe = match pipe::Sender::from_owned_fd(pipe) {
                Ok(pipe) => pipe,
                Err(error) => {
                    let _ = request.1.send(Err(PortError::Stdin(error)));
                    return Ok(());
                }
            };
            let (queue, requests) = mpsc::unbounded_channel();
            tokio::spawn(write_stdin(pipe, requests));
            *self = StdinPort::Writing(queue);
        }
        match self {
            StdinPort::Writing(queue) => queue.send(request).map_err(|e| e.0),
            StdinPort::Idle(_) => Err(request),
        }
    }
}

async fn write_stdin(mut stdin: pipe::Sender, mut queue: mpsc::UnboundedReceiver<StdinWrite>) {
    while let Some((data, reply)) = queue.recv().await {
        let written = match stdin.write_all(&data).await {
            Ok(()) => stdin.flush().await,
            Err(e) => Err(e),
        };
        let _ = reply.send(written.map_err(PortError::Stdin));
    }
}
