//! A spawned process as steward holds it: its pid, the parent's ends of its pipes, and a
//! way to wait for its exit without blocking a thread.
//!
//! The pipes are `tokio::net::unix::pipe` ends, read and written with readiness (the
//! reader never holds a buffer while a pipe is quiet). How the exit is awaited depends on
//! how the process was spawned (see [`crate::process::spawn`]):
//!
//! * the fast path (`clone` with `CLONE_PIDFD`) hands back a pidfd, which becomes readable
//!   when the process exits; the zombie is then reaped with `waitpid(pid, WNOHANG)` (the
//!   pid cannot be reused before that, since nobody else reaps steward's children);
//! * the fork fallback keeps tokio's own child handle, which waits on `SIGCHLD`.
//!
//! A [`Child`] dropped before its exit was read is reaped in the background, so it never
//! stays a zombie. Dropping it does not kill it: owners keep a
//! [`ProcessGroupGuard`](crate::process::signal::ProcessGroupGuard) for that.

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

/// A spawned process.
#[derive(Debug)]
pub struct Child {
    pid: u32,
    /// The write end of its stdin, when piped: a plain descriptor, registered with tokio
    /// only by whoever writes to it (`pipe::Sender::from_owned_fd`), since most services
    /// never get input and a registration costs memory for the life of the process.
    pub stdin: Option<OwnedFd>,
    /// The read end of its stdout, when piped.
    pub stdout: Option<pipe::Receiver>,
    /// The read end of its stderr, when piped.
    pub stderr: Option<pipe::Receiver>,
    exit: Exit,
}

/// How the exit is awaited.
#[derive(Debug)]
enum Exit {
    /// The fast path: a pidfd that turns readable at exit.
    Pidfd(Option<AsyncFd<OwnedFd>>),
    /// The fork fallback: tokio's handle.
    Tokio(Box<tokio::process::Child>),
    /// Reaped already: the status it had.
    Reaped(ExitStatus),
}

impl Child {
    /// A process spawned by `clone` with `CLONE_PIDFD`: `pidfd` refers to `pid`, which has
    /// not been reaped. Must be called inside a tokio runtime.
    #[allow(unsafe_code)]
    pub(crate) fn with_pidfd(pid: u32, pidfd: OwnedFd, pipes: ParentPipes) -> io::Result<Child> {
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which owns it (and closes it)
        // from now on, so the descriptor stays open and the same until then.
        let exit = unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE)? };
        Ok(Child {
            pid,
            stdin: pipes.stdin,
            stdout: pipes.stdout,
            stderr: pipes.stderr,
            exit: Exit::Pidfd(Some(exit)),
        })
    }

    /// A process spawned by tokio (the fork fallback).
    pub(crate) fn with_tokio(
        child: tokio::process::Child,
        pipes: ParentPipes,
    ) -> io::Result<Child> {
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the process exited before its pid was read"))?;
        Ok(Child {
            pid,
            stdin: pipes.stdin,
            stdout: pipes.stdout,
            stderr: pipes.stderr,
            exit: Exit::Tokio(Box::new(child)),
        })
    }

    /// The process id (also its process group id: every service leads its group).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits for the process to exit and reaps it. Cancel-safe; once it has returned a
    /// status it returns the same status again.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            match &mut self.exit {
                Exit::Reaped(status) => return Ok(*status),
                Exit::Tokio(child) => {
                    let status = child.wait().await?;
                    super::reaper::disown(self.pid);
                    self.exit = Exit::Reaped(status);
                }
                Exit::Pidfd(fd) => {
                    let Some(fd) = fd.as_ref() else {
                        return Err(io::Error::other("the exit watch is gone"));
                    };
                    let mut ready = fd.readable().await?;
                    match reap(self.pid)? {
                        Some(status) => self.exit = Exit::Reaped(status),
                        // Not a zombie yet (a spurious wake-up): wait again.
                        None => ready.clear_ready(),
                    }
                }
            }
        }
    }

    /// Closes stdin, reads stdout and stderr to their ends and waits for the exit.
    pub async fn wait_with_output(mut self) -> io::Result<std::process::Output> {
        async fn read_to_end(pipe: Option<pipe::Receiver>) -> io::Result<Vec<u8>> {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut out).await?;
            }
            Ok(out)
        }
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let (stdout, stderr, status) =
            tokio::try_join!(read_to_end(stdout), read_to_end(stderr), self.wait())?;
        Ok(std::process::Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Exit::Pidfd(fd) = &mut self.exit else {
            if matches!(self.exit, Exit::Tokio(_)) {
                // tokio reaps its orphans itself; the orphan sweep may as well, since
                // nobody reads this exit any more.
                super::reaper::disown(self.pid);
            }
            return;
        };
        let Some(fd) = fd.take() else { return };
        let pid = self.pid;
        if matches!(reap(pid), Ok(Some(_)) | Err(_)) {
            return;
        }
        // Still running: reap it when it exits, so it never lingers as a zombie.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    loop {
                        let Ok(mut ready) = fd.readable().await else {
                            return;
                        };
                        match reap(pid) {
                            Ok(None) => ready.clear_ready(),
                            Ok(Some(_)) | Err(_) => return,
                        }
                    }
                });
            }
            Err(_) => tracing::debug!(pid, "child dropped outside a runtime: left unreaped"),
        }
    }
}

/// `waitpid(pid, WNOHANG)`: the status of an exited child (now reaped), or `None`.
fn reap(pid: u32) -> io::Result<Option<ExitStatus>> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let owned = pid;
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let waited = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    if !matches!(waited, Ok(WaitStatus::StillAlive)) {
        // Reaped (or not ours to reap any more): the orphan sweep may have the pid back.
        super::reaper::disown(owned);
    }
    let raw = match waited {
        Ok(WaitStatus::StillAlive) => return Ok(None),
        Ok(WaitStatus::Exited(_, code)) => code << 8,
        Ok(WaitStatus::Signaled(_, signal, core)) => signal as i32 | if core { 0x80 } else { 0 },
        // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
        Ok(_) => return Ok(None),
        Err(errno) => return Err(io::Error::from(errno)),
    };
    Ok(Some(ExitStatus::from_raw(raw)))
}

/// The parent's ends of a child's pipes, made non-blocking for tokio.
#[derive(Debug, Default)]
pub(crate) struct ParentPipes {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

/// A child's standard streams before the spawn: for each of stdin, stdout and stderr, the
/// descriptor the child gets (a pipe end or `/dev/null`), always numbered 3 or above so
/// that placing them on 0, 1 and 2 can never overwrite one another; and the parent's ends.
#[derive(Debug)]
pub(crate) struct StdioPlan {
    /// What the child gets as fd 0, 1 and 2 (close-on-exec; the copies on 0–2 are not).
    pub child: [OwnedFd; 3],
    /// The parent's ends (close-on-exec, so no other child inherits them).
    pub parent: ParentEnds,
}

/// The parent's ends as plain descriptors, turned into tokio pipes after the spawn.
#[derive(Debug, Default)]
pub(crate) struct ParentEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl ParentEnds {
    /// Registers the output ends with tokio (non-blocking). Inside a tokio runtime only.
    pub fn into_pipes(self) -> io::Result<ParentPipes> {
        Ok(ParentPipes {
            stdin: self.stdin,
            stdout: self.stdout.map(pipe::Receiver::from_owned_fd).transpose()?,
            stderr: self.stderr.map(pipe::Receiver::from_owned_fd).transpose()?,
        })
    }
}

impl StdioPlan {
    /// Pipes for the streams marked `true`, `/dev/null` for the others.
    pub fn new(stdin: bool, stdout: bool, stderr: bool) -> io::Result<StdioPlan> {
        let null = || -> io::Result<OwnedFd> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            above_stdio(OwnedFd::from(file))
        };
        let mut parent = ParentEnds::default();
        let child_in = if stdin {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            parent.stdin = Some(write);
            above_stdio(read)?
        } else {
            null()?
        };
        let output = |piped: bool, slot: &mut Option<OwnedFd>| -> io::Result<OwnedFd> {
            if !piped {
                return null();
            }
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            *slot = Some(read);
            above_stdio(write)
        };
        let child_out = output(stdout, &mut parent.stdout)?;
        let child_err = output(stderr, &mut parent.stderr)?;
        Ok(StdioPlan {
            child: [child_in, child_out, child_err],
            parent,
        })
    }
}

/// `fd` itself when it is 3 or above, else a close-on-exec copy numbered 3 or above (when
/// steward runs with a closed stdin, say, a new pipe may get number 0).
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let copy = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    Ok(owned(copy))
}

#[allow(unsafe_code)]
fn owned(raw: std::os::fd::RawFd) -> OwnedFd {
    use std::os::fd::FromRawFd as _;
    // SAFETY: `raw` was just returned by F_DUPFD_CLOEXEC, is open, and has no other owner.
    unsafe { OwnedFd::from_raw_fd(raw) }
}
