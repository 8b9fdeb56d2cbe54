//! The processes of a service, and — in process-group mode — the trace of those that left
//! its process group, so that a stop still ends them.
//!
//! In cgroup mode the answer is the leaf's `cgroup.procs`. Without cgroups, a service's
//! processes are the leader's descendants (`/proc/PID/task/TID/children`, followed down),
//! and steward's own orphans (processes reparented to steward as subreaper or init, which
//! nobody owns) that share a session or process group with a process seen in the
//! service's tree before. Each walk is recorded (pid, start time, session, group): the
//! usage sampler walks every few seconds, and a stop walks once before its first signal.
//!
//! Sampling walks ([`Lineage::walk_sampled`]: the list's usage columns, `max_memory`) share
//! one list of steward's orphans for up to [`ORPHANS_MAX_AGE`]: listing a thousand
//! services must not read steward's children a thousand times. A stop's walk
//! ([`Lineage::walk`]) always reads them afresh. An orphan a sampling walk misses for being
//! younger than the list is not lost: the stop's own walk sees it.
//! After the leader's exit every recorded process that still runs (same pid *and* start
//! time, so never a stranger that got the number) is SIGKILLed with the group.
//!
//! What this cannot catch (docs/ARCHITECTURE.md): a process that leaves the session and
//! whose parent exits before any walk saw it (a `setsid` double fork right at start); one
//! whose parent chain ends outside steward (steward is not a subreaper: the library
//! embedded in an application); anything after a SIGKILL of steward itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// One process as a walk saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    pid: u32,
    start: u64,
    session: u32,
    group: u32,
}

/// `/proc/PID/stat` fields a walk needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    group: u32,
    session: u32,
    start: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let s = crate::process::pid_file::read_stat(pid)?;
    Some(Stat {
        state: s.state,
        group: s.pgrp,
        session: s.session,
        start: s.start_time,
    })
}

/// The direct children of `pid` (every thread's `children` file).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// `leader` and every descendant of it, leader first.
pub fn descendants(leader: u32) -> Vec<u32> {
    let mut out = vec![leader];
    let mut next = 0;
    while next < out.len() {
        let kids = children(out[next]);
        out.extend(kids);
        next += 1;
        // A fork bomb must not make a walk endless.
        if out.len() > 100_000 {
            break;
        }
    }
    out
}

/// How long sampling walks may share one list of steward's orphans.
pub const ORPHANS_MAX_AGE: Duration = Duration::from_secs(1);

/// What process-group mode remembers of each service's processes.
#[derive(Debug, Default)]
pub struct Lineage {
    seen: Mutex<HashMap<String, Vec<Seen>>>,
    /// The last list of steward's orphans and when it was read (for sampling walks).
    orphans: Mutex<Option<(Instant, Arc<[u32]>)>>,
}

impl Lineage {
    /// Walks `service`'s processes now (see the module docs), records them, and returns
    /// their pids, leader first. Reads steward's orphans afresh: for a stop or a kill.
    pub fn walk(&self, service: &str, leader: u32) -> Vec<u32> {
        let orphans: Arc<[u32]> = crate::process::reaper::orphans().into();
        *self.orphans.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), Arc::clone(&orphans)));
        self.walk_with(service, leader, &orphans)
    }

    /// [`Lineage::walk`] for a sampler: the list of steward's orphans may be up to
    /// [`ORPHANS_MAX_AGE`] old (one read serves a whole round of services).
    pub fn walk_sampled(&self, service: &str, leader: u32) -> Vec<u32> {
        self.walk_recent(service, leader, ORPHANS_MAX_AGE)
    }

    /// A walk with a list of orphans at most `max_age` old.
    fn walk_recent(&self, service: &str, leader: u32, max_age: Duration) -> Vec<u32> {
        let orphans = {
            let mut last = self.orphans.lock().unwrap_or_else(|p| p.into_inner());
            match last.as_ref() {
                Some((at, list)) if at.elapsed() < max_age => Arc::clone(list),
                _ => {
                    let list: Arc<[u32]> = crate::process::reaper::orphans().into();
                    *last = Some((Instant::now(), Arc::clone(&list)));
                    list
                }
            }
        };
        self.walk_with(service, leader, &orphans)
    }

    /// The walk itself, given steward's orphans.
    fn walk_with(&self, service: &str, leader: u32, orphans: &[u32]) -> Vec<u32> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let before = seen.remove(service).unwrap_or_default();
        let mut found: Vec<Seen> = descendants(leader)
            .into_iter()
            .filter_map(|pid| {
                let s = stat(pid).filter(|s| s.state != 'Z')?;
                Some(Seen {
                    pid,
                    start: s.start,
                    session: s.session,
                    group: s.group,
                })
            })
            .collect();
        let pids: HashSet<u32> = found.iter().map(|s| s.pid).collect();
        // Seen before and still the same process, though no longer below the leader
        // (its parent exited and it was reparented).
        for old in before {
            if !pids.contains(&old.pid)
                && stat(old.pid).is_some_and(|s| s.start == old.start && s.state != 'Z')
            {
                found.push(old);
            }
        }
        // steward's orphans in a session or group of the service's.
        let sessions: HashSet<u32> = found.iter().map(|s| s.session).collect();
        let groups: HashSet<u32> = found.iter().map(|s| s.group).collect();
        let known: HashSet<u32> = found.iter().map(|s| s.pid).collect();
        let own = own_session_and_group();
        for &pid in orphans {
            if known.contains(&pid) {
                continue;
            }
            if let Some(s) = stat(pid).filter(|s| s.state != 'Z')
                && (sessions.contains(&s.session) || groups.contains(&s.group))
                // Never steward's own session or group.
                && !is_own(own, s.session, s.group)
            {
                found.push(Seen {
                    pid,
                    start: s.start,
                    session: s.session,
                    group: s.group,
                });
            }
        }
        let out = found.iter().map(|s| s.pid).collect();
        seen.insert(service.to_string(), found);
        out
    }

    /// After the leader's exit and the group's SIGKILL: SIGKILLs every process recorded
    /// for `service` that still runs (same start time), and every orphan of steward that
    /// shares a recorded session or group; forgets the service. Returns the pids killed.
    pub fn kill_escaped(&self, service: &str) -> Vec<u32> {
        let recorded = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service)
            .unwrap_or_default();
        if recorded.is_empty() {
            return Vec::new();
        }
        let sessions: HashSet<u32> = recorded.iter().map(|s| s.session).collect();
        let groups: HashSet<u32> = recorded.iter().map(|s| s.group).collect();
        let mut targets: Vec<(u32, u64)> = recorded.iter().map(|s| (s.pid, s.start)).collect();
        let own = own_session_and_group();
        for pid in crate::process::reaper::orphans() {
            if let Some(s) = stat(pid)
                && (sessions.contains(&s.session) || groups.contains(&s.group))
                && !is_own(own, s.session, s.group)
            {
                targets.push((pid, s.start));
            }
        }
        let mut killed = Vec::new();
        for (pid, start) in targets {
            if stat(pid).is_some_and(|s| s.start == start && s.state != 'Z')
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
                    .is_ok()
            {
                killed.push(pid);
            }
        }
        killed
    }

    /// Forgets a service's record.
    pub fn forget(&self, service: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(service);
    }
}

/// steward's own session and process group, when `/proc` answers.
fn own_session_and_group() -> Option<(u32, u32)> {
    stat(std::process::id()).map(|s| (s.session, s.group))
}

/// True for steward's own session or process group (never a service's); true for every
/// process when steward's own are unknown (nothing is traced then rather than too much).
fn is_own(own: Option<(u32, u32)>, session: u32, group: u32) -> bool {
    own.is_none_or(|(s, g)| s == session || g == group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descendants_of_this_process_include_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let all = descendants(std::process::id());
        assert_eq!(all.first(), Some(&std::process::id()));
        assert!(all.contains(&child.id()), "{all:?}");
        let _ = child.kill();
        let _ = child.wait();
    }

    fn last_orphans(lineage: &Lineage) -> Arc<[u32]> {
        let last = lineage.orphans.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&last.as_ref().expect("a walk keeps the list it read").1)
    }

    #[test]
    fn sampling_walks_share_one_list_of_orphans_and_a_stops_walk_reads_it_afresh() {
        let lineage = Lineage::default();
        let me = std::process::id();
        let long = Duration::from_secs(3600);
        lineage.walk_recent("a", me, long);
        let first = last_orphans(&lineage);
        lineage.walk_recent("b", me, long);
        assert!(
            Arc::ptr_eq(&first, &last_orphans(&lineage)),
            "a sampling walk within the age reuses the list"
        );
        lineage.walk_recent("b", me, Duration::ZERO);
        let second = last_orphans(&lineage);
        assert!(!Arc::ptr_eq(&first, &second), "an older list is read again");
        lineage.walk("a", me);
        let fresh = last_orphans(&lineage);
        assert!(
            !Arc::ptr_eq(&second, &fresh),
            "a stop's walk always reads steward's orphans again"
        );
        lineage.walk_recent("c", me, long);
        assert!(
            Arc::ptr_eq(&fresh, &last_orphans(&lineage)),
            "and sampling walks go on from the list it read"
        );
    }
}
