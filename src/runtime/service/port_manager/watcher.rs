//! The watcher: the one task beside the PortManager for each running process. It reads
//! both pipes into the LogBuffer and awaits the exit (the process's pidfd); at the exit it
//! kills what is left of the group, drains the pipes, waits for the LogBuffer to have
//! appended every line, and tells the PortManager, which reports the exit to the Server.

use std::os::unix::process::ExitStatusExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use ractor::ActorRef;
use tokio::net::unix::pipe;
use tracing::{debug, warn};

use super::{DRAIN_TIMEOUT, PortManagerMsg};
use crate::logs::Backlog;
use crate::process::cgroup::subtree::EMPTY_TIMEOUT;
use crate::process::cgroup::{Condition, Leaf, ProcessTracking};
use crate::process::signal::raw_signal_name;
use crate::process::{Child, read_pipes, signal_group};
use crate::runtime::service::generation::Generation;
use crate::runtime::service::log_buffer::LogBufferMsg;
use crate::state::ExitInfo;

/// How long the watcher waits for the LogBuffer to confirm it appended the last lines.
const LOG_BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// The pipes of one process and where their lines go.
pub(super) struct Output {
    pub(super) stdout: Option<pipe::Receiver>,
    pub(super) stderr: Option<pipe::Receiver>,
    pub(super) log_buffer: ActorRef<LogBufferMsg>,
}

/// Reads both pipes to end of file, casting their lines in batches, each with its credit
/// of the process's [`Backlog`]: while the LogBuffer has not handled [`Backlog`]'s limit
/// of them, nothing more is read and the writer blocks on its full pipe. Lines keep being
/// read (and dropped, with their credit) while the LogBuffer is away, so the child never
/// blocks for good. `sent` turns true with the first batch.
async fn read_output(output: Output, sent: &AtomicBool) {
    let log_buffer = output.log_buffer;
    let backlog = Backlog::default();
    let result = read_pipes(output.stdout, output.stderr, &backlog, |lines, drained| {
        sent.store(true, Ordering::Relaxed);
        let credit = backlog.charge(&lines);
        let _ = log_buffer.cast(LogBufferMsg::Read {
            lines,
            drained,
            credit,
        });
    })
    .await;
    if let Err(error) = result {
        debug!(%error, "pipe read failed");
    }
}

/// What the watcher task needs.
pub(super) struct Watch {
    pub(super) service: String,
    pub(super) run: Generation,
    pub(super) pid: u32,
    pub(super) child: Child,
    pub(super) reaped: Arc<AtomicBool>,
    /// A detached launcher: its group outlives it.
    pub(super) detached: bool,
    /// The service's cgroup (cgroup mode): emptied before the exit is reported.
    pub(super) leaf: Option<Leaf>,
    /// The runtime's tracking: in process-group mode, what left the group is ended too.
    pub(super) tracking: Option<Arc<ProcessTracking>>,
    pub(super) log_buffer: ActorRef<LogBufferMsg>,
    pub(super) port_manager: ActorRef<PortManagerMsg>,
}

/// The one task of a running process: reads its pipes and awaits its exit; then kills
/// the rest of the group, drains the pipes, and reports.
pub(super) async fn watch_exit(mut watch: Watch, output: Output) {
    let sent = AtomicBool::new(false);
    let reading = read_output(output, &sent);
    tokio::pin!(reading);
    let mut drained = false;
    let status = tokio::select! {
        status = watch.child.wait() => status,
        () = &mut reading => {
            // Both pipes closed before the exit (a process that closes its stdout and
            // stderr): nothing more to read.
            drained = true;
            watch.child.wait().await
        }
    };
    // Boxed: this task stays resident as long as the process runs, and what follows runs
    // once, at the exit (inlined, its timers made every running service's task larger).
    Box::pin(after_exit(watch, status, reading, drained, &sent)).await;
}

/// The rest of [`watch_exit`], once the leader is reaped.
async fn after_exit<F: Future<Output = ()>>(
    watch: Watch,
    status: std::io::Result<std::process::ExitStatus>,
    mut reading: std::pin::Pin<&mut F>,
    mut drained: bool,
    sent: &AtomicBool,
) {
    let at = Utc::now();
    watch.reaped.store(true, Ordering::Release);
    // KillMode=control-group: what the leader left behind in its group dies with it.
    if watch.detached {
        debug!(service = %watch.service, pid = watch.pid, "detached launcher exited; its group is left alone");
    } else {
        if let Err(error) = signal_group(watch.pid, Signal::SIGKILL) {
            warn!(service = %watch.service, pid = watch.pid, %error, "could not kill the rest of the process group");
        }
        super::cgroup::after_exit(watch.tracking.as_ref(), &watch.service);
    }
    // Nothing escapes: what left the group (setsid, a double fork) is still in the cgroup.
    // The exit (and so `stopped`) is reported once the cgroup is empty.
    if let Some(leaf) = &watch.leaf {
        if let Err(error) = leaf.kill() {
            warn!(service = %watch.service, %error, "cgroup.kill failed");
        }
        if !leaf.wait(Condition::Empty, EMPTY_TIMEOUT).await {
            warn!(service = %watch.service, cgroup = %leaf.path().display(), left = ?leaf.pids(), "the service's cgroup is still populated after cgroup.kill");
        }
    }
    let exit = match status {
        Ok(status) => ExitInfo {
            code: status.code(),
            signal: status.signal().map(raw_signal_name),
            at,
        },
        Err(error) => {
            warn!(service = %watch.service, pid = watch.pid, %error, "could not read the exit status");
            ExitInfo {
                code: None,
                signal: None,
                at,
            }
        }
    };

    if !drained {
        drained = tokio::time::timeout(DRAIN_TIMEOUT, reading.as_mut())
            .await
            .is_ok();
    }
    if !drained && watch.detached {
        // The launched daemon holds the pipes: keep feeding its output to the log (after
        // the exit is reported, below).
        debug!(service = %watch.service, pid = watch.pid, "the launched process keeps the output pipes");
    } else if !drained {
        warn!(
            service = %watch.service,
            pid = watch.pid,
            "a process outside the group still holds the output pipes: unread output dropped"
        );
    }
    // A silent process (most restarts of a crashed `sleep`) has nothing in flight.
    if sent.load(Ordering::Relaxed) {
        let _ = watch.log_buffer.cast(LogBufferMsg::Flush);
        // Every batch was cast before this call, so its answer means they were all
        // appended.
        let barrier = watch
            .log_buffer
            .call(
                |reply| LogBufferMsg::Tail { n: 0, reply },
                Some(LOG_BARRIER_TIMEOUT),
            )
            .await;
        if barrier.is_err() {
            debug!(service = %watch.service, "log buffer did not confirm the last lines");
        }
    }
    // The PortManager reports it on to the Server. A PortManager that is gone was stopped
    // or crashed, with its siblings: its process was killed by it, and the Server must not
    // take that for an exit of the service, so nothing is reported then.
    let told = watch.port_manager.cast(PortManagerMsg::Exited {
        run: watch.run,
        exit,
    });
    if told.is_err() {
        debug!(service = %watch.service, run = watch.run.0, "port manager gone: exit not reported");
    }
    if !drained && watch.detached {
        reading.await;
    }
}
