//! Init's work: reaping the orphans the kernel hands steward, without stealing the exit of
//! a process steward spawned itself.
//!
//! As PID 1 of a container (or of any PID namespace) every orphan of the namespace is
//! reparented to steward; outside PID 1 steward makes itself a child subreaper
//! (`PR_SET_CHILD_SUBREAPER`), so a grandchild that daemonizes out of its service's
//! process group comes back to steward rather than to the host's init. Either way those
//! orphans must be waited for, or they stay zombies (the kernel keeps their pid until
//! someone reads their exit).
//!
//! The catch is that a service's own process is waited for by its watcher (its pidfd, then
//! `waitpid(pid)`), and its exit status is the service's story: a blanket `waitpid(-1)`
//! would take it away. So every process steward spawns is *owned*: registered under the
//! `owned` lock in the same critical section as the `clone`/`fork` that creates it, and
//! released once its owner has reaped it. The sweep takes the same lock, lists steward's
//! children (`/proc/self/task/*/children`, or a scan of `/proc` where that file is not
//! compiled in) and reaps only the zombies that nobody owns. Holding the lock while it
//! decides is what makes the check exact: a pid that is not in the set while the lock is
//! held was not spawned by steward.
//!
//! The sweep runs at every `SIGCHLD` (the kernel sends one to the new parent when an
//! adopted child exits, and when a zombie is reparented) and, as a safety net for a lost
//! wake-up, every few seconds. Only the `steward` binary starts it: an application that
//! embeds the library may wait for its own children.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tracing::{debug, warn};

/// The safety-net sweep's period (a missed `SIGCHLD` leaves a zombie at most this long).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The pids of processes steward spawned and waits for itself.
fn registry() -> &'static Mutex<HashSet<u32>> {
    static OWNED: OnceLock<Mutex<HashSet<u32>>> = OnceLock::new();
    OWNED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// The set of owned pids, locked. A spawn holds it across the `clone`/`fork` and inserts
/// the new pid before letting go, so the sweep never sees the child unowned.
pub(crate) fn owned() -> MutexGuard<'static, HashSet<u32>> {
    // A panic while holding it leaves a set that is still a valid set.
    registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Releases `pid` after its owner has reaped it (or has given up waiting for it).
pub(crate) fn disown(pid: u32) {
    owned().remove(&pid);
}

/// How steward stands towards orphans, as the boot log reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaperRole {
    /// steward is PID 1 of its PID namespace: the kernel gives it every orphan.
    Init,
    /// steward set `PR_SET_CHILD_SUBREAPER`: orphans of its descendants come back to it.
    Subreaper,
    /// Neither (the prctl failed): orphans go to the namespace's init.
    None,
}

impl ReaperRole {
    /// `init`, `subreaper` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReaperRole::Init => "init",
            ReaperRole::Subreaper => "subreaper",
            ReaperRole::None => "none",
        }
    }
}

/// Makes steward the reaper of its descendants' orphans (a subreaper unless it is PID 1
/// already) and starts the sweep on the current tokio runtime. Call once, early in the
/// binary's `up`, inside the runtime.
pub fn start() -> ReaperRole {
    let role = if nix::unistd::getpid().as_raw() == 1 {
        ReaperRole::Init
    } else {
        match nix::sys::prctl::set_child_subreaper(true) {
            Ok(()) => ReaperRole::Subreaper,
            Err(errno) => {
                warn!(error = %errno, "PR_SET_CHILD_SUBREAPER failed: orphans of services go to init");
                ReaperRole::None
            }
        }
    };
    let sigchld = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child());
    let mut sigchld = match sigchld {
        Ok(stream) => Some(stream),
        Err(error) => {
            warn!(%error, "no SIGCHLD handler: orphans are reaped by the periodic sweep only");
            None
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            match &mut sigchld {
                Some(stream) => {
                    tokio::select! {
                        _ = stream.recv() => {}
                        _ = tick.tick() => {}
                    }
                }
                None => {
                    tick.tick().await;
                }
            }
            let reaped = sweep();
            if reaped > 0 {
                debug!(reaped, "orphans reaped");
            }
        }
    });
    role
}

/// Reaps every exited child of steward that no owner waits for; returns how many.
pub fn sweep() -> usize {
    let owned = owned();
    let mut reaped = 0;
    for pid in children() {
        if owned.contains(&pid) {
            continue;
        }
        match waitpid(
            Pid::from_raw(pid as i32),
            Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL),
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => reaped += 1,
            // Gone already (reaped by whoever owns it after all): nothing to do.
            Err(_) => {}
        }
    }
    reaped
}

/// The pids of steward's children that no owner waits for: processes reparented to
/// steward (as subreaper or init), alive or not. Process-group mode traces them to their
/// service ([`crate::process::cgroup::lineage`]).
pub(crate) fn orphans() -> Vec<u32> {
    let mut pids = children();
    let owned = owned();
    pids.retain(|pid| !owned.contains(pid));
    pids
}

/// The pids of steward's children, from every thread's `children` file (a child belongs to
/// the thread that forked it, or that adopted it), else from a scan of `/proc`.
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return scan_proc();
    };
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(list) => pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            ),
            // A thread that ended meanwhile has no file any more; carry on.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && task.path().exists() => {
                return scan_proc();
            }
            Err(_) => {}
        }
    }
    pids
}

/// Every process whose parent is steward, from `/proc/<pid>/stat` (kernels built without
/// `CONFIG_PROC_CHILDREN`).
fn scan_proc() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(me))
        .collect()
}

/// The parent pid from `/proc/<pid>/stat` (after the command name's closing parenthesis:
/// state, then ppid).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_of_self_is_the_test_runners_parent() {
        let me = std::process::id();
        let expected = std::os::unix::process::parent_id();
        assert_eq!(parent_of(me), Some(expected));
    }

    /// (`sweep` itself is not called here: in this test binary it would reap other
    /// tests' children; the PID-namespace tests in tests/it/production.rs run it.)
    #[tokio::test]
    async fn a_spawned_child_is_owned_until_its_owner_reaps_it() {
        let plan = crate::process::SpawnPlan::new(
            vec!["true".into()],
            std::env::temp_dir(),
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        );
        let mut child = crate::process::spawn(&plan).expect("spawn true");
        let pid = child.id();
        assert!(owned().contains(&pid), "owned from the spawn on");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while state_of(pid) != Some('Z') {
            assert!(
                std::time::Instant::now() < deadline,
                "never became a zombie"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(children().contains(&pid), "listed among steward's children");
        assert!(owned().contains(&pid), "still owned while a zombie");
        let status = child.wait().await.expect("the owner reaps its own child");
        assert!(status.success());
        assert!(
            !owned().contains(&pid),
            "released after its owner reaped it"
        );
    }

    fn state_of(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..]
            .split_whitespace()
            .next()?
            .chars()
            .next()
    }
}
