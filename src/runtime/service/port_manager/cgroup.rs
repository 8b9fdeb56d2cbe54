//! The PortManager's cgroup work, in cgroup mode (DESIGN §11 "Nothing escapes"): the leaf
//! a spawn joins, the stop signal to the processes that left the group, `cgroup.kill` for
//! kill and the stop timeout, freeze and thaw for pause and resume, and the removal of
//! the leaf when the actor stops. In process-group mode every function here is a no-op
//! (or, for pause, says so), and the group signals of `mod.rs` do the work.
//!
//! A detached service's launcher is spawned outside any cgroup: what it launches is meant
//! to outlive it (and is usually another manager's, such as Docker's).

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::RpcReplyPort;
use tracing::{debug, warn};

use super::{PortError, PortManagerState, RunningProcess};
use crate::config::Limits;
use crate::process::cgroup::{Condition, Leaf, ProcessTracking, limits, subtree::EMPTY_TIMEOUT};
use crate::process::{SpawnPlan, signal_name};
use crate::state::ExitInfo;

/// How long a pause waits for the group's leader to stop (SIGSTOP) before the freeze.
const STOP_SETTLE: Duration = Duration::from_secs(1);

/// How long a pause waits for `cgroup.events` to say `frozen 1`.
pub(super) const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// Kills the leaf when dropped while armed (the actor stopped or panicked with its
/// process running), like the [`ProcessGroupGuard`](crate::process::ProcessGroupGuard).
#[derive(Debug)]
pub(super) struct LeafGuard {
    leaf: Leaf,
    armed: bool,
}

impl LeafGuard {
    /// The watcher has emptied the leaf: nothing to kill any more.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for LeafGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.leaf.freeze(false);
            if let Err(error) = self.leaf.kill() {
                warn!(cgroup = %self.leaf.path().display(), %error, "could not kill the service's cgroup");
            }
        }
    }
}

/// The leaf a spawn of `plan` joins (created unless it exists), in cgroup mode.
pub(super) fn leaf_for(
    tracking: Option<&Arc<ProcessTracking>>,
    service: &str,
    plan: &SpawnPlan,
) -> Result<Option<Leaf>, PortError> {
    let Some(subtree) = tracking.and_then(|t| t.subtree()) else {
        return Ok(None);
    };
    if plan.detached {
        return Ok(None);
    }
    Ok(Some(subtree.leaf(service)?))
}

/// Before the spawn: writes the service's `limits` to its leaf for the controllers the
/// leaves have (lifting those it does not set), and returns the leaf's `oom_kill` count
/// to compare at the exit. A write that fails fails the start, naming the file.
pub(super) fn apply_limits(
    tracking: Option<&Arc<ProcessTracking>>,
    leaf: Option<&Leaf>,
    wanted: &Limits,
) -> Result<Option<u64>, PortError> {
    let (Some(controllers), Some(leaf)) = (tracking.and_then(|t| t.controllers()), leaf) else {
        return Ok(None);
    };
    limits::apply(leaf.path(), wanted, controllers)?;
    Ok(limits::oom_kills_of(leaf.path()))
}

/// At the exit: `Some(limits.memory)` when the kernel's OOM killer ended the process (it
/// died of SIGKILL and its leaf's `oom_kill` count went up since the spawn).
pub(super) fn out_of_memory(
    current: &RunningProcess,
    exit: &ExitInfo,
    wanted: &Limits,
) -> Option<Option<u64>> {
    let guard = current.leaf.as_ref()?;
    let now = limits::oom_kills_of(guard.leaf.path());
    killed_by_oom(exit, current.oom_kills, now).then_some(wanted.memory)
}

/// The kernel's OOM killer ended the process: SIGKILL, and its cgroup's `oom_kill` count
/// (read at the spawn and at the exit; `None` without the memory controller) went up. A
/// SIGKILL from steward (kill, `cgroup.kill`, the stop timeout) leaves the count alone.
fn killed_by_oom(exit: &ExitInfo, before: Option<u64>, now: Option<u64>) -> bool {
    let sigkill = exit.code.is_none() && exit.signal.as_deref() == Some("SIGKILL");
    matches!((before, now), (Some(before), Some(now)) if sigkill && now > before)
}

/// Arms a guard over `leaf`.
pub(super) fn guard(leaf: Option<Leaf>) -> Option<LeafGuard> {
    leaf.map(|leaf| LeafGuard { leaf, armed: true })
}

/// At a stop: thaws the leaf (a frozen process cannot act on the stop signal) and sends
/// the stop signal to the processes of the leaf that left the process group, so that a
/// daemonized child also gets its chance to shut down cleanly before `cgroup.kill`.
pub(super) fn stop_escaped(service: &str, current: &RunningProcess, signal: Signal) {
    let Some(guard) = &current.leaf else { return };
    if let Err(error) = guard.leaf.freeze(false) {
        debug!(service = %service, %error, "could not thaw the cgroup");
    }
    for pid in guard.leaf.pids() {
        let in_group = crate::process::pid_file::process_group(pid) == Some(current.pid);
        if in_group || pid == current.pid {
            continue;
        }
        debug!(service = %service, pid, signal = signal_name(signal), "stop signal to a process outside the group");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}

/// Kill and the stop timeout: `cgroup.kill`, which reaches every process of the service.
pub(super) fn kill(service: &str, current: &RunningProcess) {
    let Some(guard) = &current.leaf else { return };
    if let Err(error) = guard.leaf.kill() {
        warn!(service = %service, cgroup = %guard.leaf.path().display(), %error, "cgroup.kill failed");
    }
}

/// Resume in cgroup mode: thaws the cgroup (the caller then sends SIGCONT to the group).
pub(super) fn thaw(service: &str, current: &RunningProcess) {
    let Some(guard) = &current.leaf else { return };
    if let Err(error) = guard.leaf.freeze(false) {
        warn!(service = %service, %error, "could not thaw the service's cgroup");
    }
}

/// Pause, after the group got SIGSTOP: in cgroup mode freezes the cgroup and answers once
/// `cgroup.events` says `frozen 1` (so the processes that left the group are stopped
/// too); without a leaf it answers at once.
pub(super) fn freeze(
    service: &str,
    current: &RunningProcess,
    reply: RpcReplyPort<Result<(), PortError>>,
) {
    let pid = current.pid;
    let Some(guard) = &current.leaf else {
        // Process-group mode: the pause is answered once the leader has stopped, so that
        // "paused" is true when it is said.
        tokio::spawn(async move {
            settle_stopped(pid).await;
            let _ = reply.send(Ok(()));
        });
        return;
    };
    let leaf = guard.leaf.clone();
    let service = service.to_string();
    tokio::spawn(async move {
        // The group's SIGSTOP takes effect when each process next runs; a process frozen
        // first would keep it pending (and show as sleeping, not stopped). So the leader
        // is given the moment it needs to stop before the freeze.
        settle_stopped(pid).await;
        let result = match leaf.freeze(true) {
            Err(source) => Err(PortError::Signal {
                signal: "cgroup.freeze",
                pid,
                source,
            }),
            Ok(()) if leaf.wait(Condition::Frozen, FREEZE_TIMEOUT).await => Ok(()),
            Ok(()) => Err(PortError::Signal {
                signal: "cgroup.freeze",
                pid,
                source: std::io::Error::other(format!(
                    "{} not frozen after {}",
                    leaf.path().display(),
                    humantime::format_duration(FREEZE_TIMEOUT)
                )),
            }),
        };
        debug!(service = %service, ok = result.is_ok(), "cgroup frozen");
        let _ = reply.send(result);
    });
}

/// Waits (at most [`STOP_SETTLE`]) until `pid` has taken its SIGSTOP: a signal takes effect
/// when the process next runs, which on a busy machine is not at once.
async fn settle_stopped(pid: u32) {
    let deadline = tokio::time::Instant::now() + STOP_SETTLE;
    while crate::process::pid_file::process_state(pid).is_some_and(|s| s != 'T')
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Process-group mode, before a stop or kill signals the group: records the service's
/// processes (its tree and the orphans traced to it), so that those which left the group
/// are ended after the leader's exit ([`after_exit`]).
pub(super) fn trace(state: &PortManagerState) {
    let (Some(tracking), Some(current)) = (state.tracking.as_ref(), state.current.as_ref()) else {
        return;
    };
    if tracking.lineage().is_some() && !current.is_reaped() {
        tracking.members(&state.service, current.pid);
    }
}

/// Process-group mode, after the leader's exit and the group's SIGKILL: SIGKILLs the
/// recorded processes that left the group and still run.
pub(super) fn after_exit(tracking: Option<&Arc<ProcessTracking>>, service: &str) {
    let Some(lineage) = tracking.and_then(|t| t.lineage()) else {
        return;
    };
    let killed = lineage.kill_escaped(service);
    if !killed.is_empty() {
        tracing::info!(service = %service, ?killed, "killed processes that had left the service's process group");
    }
}

/// When the actor stops: kills what is left in the service's leaf, waits for it to be
/// empty and removes it (a later spawn, after a restart of the actors, creates it again).
pub(super) async fn remove_leaf(state: &PortManagerState) {
    let Some(subtree) = state.tracking.as_ref().and_then(|t| t.subtree()) else {
        return;
    };
    let leaf = subtree.leaf_of(&state.service);
    if let Err(error) = leaf.kill_and_remove(EMPTY_TIMEOUT).await {
        warn!(service = %state.service, %error, "could not remove the service's cgroup");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sigkill_with_a_new_oom_kill_is_the_kernels() {
        let killed = ExitInfo::now(None, Some("SIGKILL"));
        assert!(killed_by_oom(&killed, Some(0), Some(1)));
        assert!(killed_by_oom(&killed, Some(3), Some(5)));
        // steward's own SIGKILL: the count did not move.
        assert!(!killed_by_oom(&killed, Some(2), Some(2)));
        // Without the memory controller there is no count: never the kernel's.
        assert!(!killed_by_oom(&killed, None, None));
        assert!(!killed_by_oom(&killed, None, Some(1)));
        // A child was OOM-killed but the process itself ended otherwise.
        assert!(!killed_by_oom(
            &ExitInfo::now(Some(1), None),
            Some(0),
            Some(1)
        ));
        assert!(!killed_by_oom(
            &ExitInfo::now(None, Some("SIGTERM")),
            Some(0),
            Some(1)
        ));
    }
}
