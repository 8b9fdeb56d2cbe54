//! The PortManager's typed replies: why it could not spawn, signal or write. The Server
//! words them at its edge (a `failed` reason, a `ControlError` message) through `Display`.

use crate::runtime::service::generation::Generation;

/// Why the PortManager could not do what it was asked. Worded for the Server's events
/// and errors.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// A process runs already.
    #[error(
        "the process of run {run} (pid {pid}) is still running: stop it before spawning another"
    )]
    Busy {
        /// Its run.
        run: Generation,
        /// Its pid.
        pid: u32,
    },
    /// The process could not be spawned (missing program, cwd, user …).
    #[error(transparent)]
    Spawn(#[from] std::io::Error),
    /// The message is about a run that is not the current one.
    #[error("run {run} is not the running process of {service}")]
    NotCurrent {
        /// The run asked about.
        run: Generation,
        /// The service.
        service: String,
    },
    /// The process has exited (its group may already be gone).
    #[error("the process of {service} (pid {pid}) has exited")]
    Exited {
        /// The service.
        service: String,
        /// Its pid.
        pid: u32,
    },
    /// The signal could not be sent.
    #[error("cannot send {signal} to process group {pid}: {source}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// The group.
        pid: u32,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// No process runs.
    #[error("{service} has no running process")]
    NoProcess {
        /// The service.
        service: String,
    },
    /// The process has no stdin pipe, or it was closed.
    #[error("the stdin of {service} is closed")]
    StdinClosed {
        /// The service.
        service: String,
    },
    /// The input would take the bytes waiting for the process past the bound.
    #[error(
        "stdin buffer full: {service} has {waiting} bytes of input it has not read yet, and {asked} more would pass the {limit}-byte bound; retry once it reads"
    )]
    StdinFull {
        /// The service.
        service: String,
        /// Bytes queued and not yet taken by the process.
        waiting: usize,
        /// Bytes of the refused write.
        asked: usize,
        /// The bound.
        limit: usize,
    },
    /// Writing to stdin failed.
    #[error("cannot write to stdin: {0}")]
    Stdin(#[source] std::io::Error),
    /// The service is a function service: it has no process to signal and no stdin.
    #[error("{service} is a function service: it has no process to signal and no stdin")]
    NotAProcess {
        /// The service.
        service: String,
    },
    /// A function service's task runs already.
    #[error("the function task of run {run} is still running: stop it before spawning another")]
    FunctionRunning {
        /// Its run.
        run: Generation,
    },
}

impl PortError {
    /// True when the spawn failed for a reason that passes (no file descriptor, process
    /// slot or memory free for a moment: EMFILE, ENFILE, EAGAIN, ENOMEM), so it is worth
    /// retrying after the backoff delay rather than giving up.
    pub fn is_transient(&self) -> bool {
        use nix::errno::Errno;
        let PortError::Spawn(error) = self else {
            return false;
        };
        crate::process::spawn::os_error_code(error).is_some_and(|code| {
            [Errno::EMFILE, Errno::ENFILE, Errno::EAGAIN, Errno::ENOMEM]
                .iter()
                .any(|e| *e as i32 == code)
        })
    }
}
