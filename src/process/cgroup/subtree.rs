//! steward's own subtree: `<own cgroup>/steward-<pid>-<n>/` with one leaf per service,
//! created when a runtime starts and removed when it ends; and the crash recovery that
//! empties the subtree a killed steward left behind.
//!
//! Each runtime gets its own subtree (several runtimes may share a process, as in the
//! integration tests, and several stewards a cgroup), named after the process and a
//! counter. Nothing outside it is ever created, written or removed. Following systemd's
//! delegation rules, processes only ever live in the leaves: a service's processes in
//! `<subtree>/<service id>`; steward itself stays where it is unless controllers must be
//! enabled (see `limits.rs`).
//!
//! When the runtime keeps a `state_dir`, the subtree's path and steward's pid and start
//! time are written to `state_dir/cgroup`. A steward that is SIGKILLed cannot remove its
//! subtree; the next one booting on the same `state_dir` finds the record, sees that its
//! writer is gone, and kills and removes every leaf ([`recover`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use super::hierarchy::Hierarchy;
use super::leaf::Leaf;
use super::limits::{self, Controllers};
use crate::process::pid_file;

/// How long removing a leaf waits for its killed processes to be gone.
pub const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

/// The file in `state_dir` that names the subtree of the runtime using it.
const RECORD: &str = "cgroup";

/// Tells apart the subtrees of several runtimes in one process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A runtime's subtree in the unified hierarchy.
#[derive(Debug)]
pub struct Subtree {
    /// Where the hierarchy is and where steward sits in it.
    hierarchy: Hierarchy,
    /// `<own>/steward-<pid>-<n>`.
    path: PathBuf,
    /// `state_dir/cgroup`, removed with the subtree.
    record: Option<PathBuf>,
    /// Set once [`Subtree::release`] ran (it runs again from `Drop` otherwise).
    released: AtomicBool,
    /// The controllers the leaves have for `limits`, and why the others are missing.
    controllers: Controllers,
}

impl Subtree {
    /// Creates a new subtree below steward's own cgroup and checks that it supports what
    /// steward needs (`cgroup.kill`: Linux 5.14); records it in `state_dir` when given.
    pub fn create(hierarchy: Hierarchy, state_dir: Option<&Path>) -> Result<Subtree, String> {
        let name = format!(
            "steward-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        sweep_dead_empty(&hierarchy.own);
        let path = hierarchy.own.join(name);
        std::fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        if !path.join("cgroup.kill").exists() {
            let _ = std::fs::remove_dir(&path);
            return Err("the kernel has no cgroup.kill (Linux 5.14 or later is needed)".into());
        }
        let record = state_dir.and_then(|dir| write_record(dir, &path));
        let delegated = limits::is_delegated(&hierarchy.own, &hierarchy.mount);
        let controllers = limits::enable(&hierarchy.own, &path, delegated, std::process::id());
        Ok(Subtree {
            hierarchy,
            path,
            record,
            released: AtomicBool::new(false),
            controllers,
        })
    }

    /// The subtree's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hierarchy it lives in.
    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The controllers its leaves have for `limits` (see `limits.rs`).
    pub fn controllers(&self) -> &Controllers {
        &self.controllers
    }

    /// A service's leaf, created unless it exists.
    pub fn leaf(&self, service: &str) -> std::io::Result<Leaf> {
        Leaf::create(self.path.join(service)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create the cgroup {}: {e}",
                    self.path.join(service).display()
                ),
            )
        })
    }

    /// A service's leaf, whether or not it exists.
    pub fn leaf_of(&self, service: &str) -> Leaf {
        Leaf::at(self.path.join(service))
    }

    /// Kills what is left in every leaf and removes the leaves and the subtree (and its
    /// record). Blocks for at most [`EMPTY_TIMEOUT`] per leaf; runs once.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        empty_and_remove(&self.path);
        if let Some(record) = &self.record {
            // Only our own record: another runtime may have taken the state_dir over.
            if read_record(record).is_some_and(|r| r.path == self.path) {
                let _ = std::fs::remove_file(record);
            }
        }
    }
}

impl Drop for Subtree {
    fn drop(&mut self) {
        self.release();
    }
}

/// Kills and removes every leaf below `path`, then `path` itself.
fn empty_and_remove(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let leaf = Leaf::at(entry.path());
                if let Err(error) = leaf.kill_and_remove_blocking(EMPTY_TIMEOUT) {
                    warn!(%error, "could not remove a service's cgroup");
                }
            }
        }
    }
    match std::fs::remove_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            warn!(cgroup = %path.display(), %error, "could not remove steward's cgroup subtree")
        }
    }
}

/// Removes the subtrees below `own` of stewards that are gone and left them *empty* (a
/// SIGKILLed steward that never boots again on its `state_dir` leaves one behind). Only
/// directories named `steward-<pid>-<n>` whose pid no longer exists and that hold no
/// process are removed; a populated one is left to [`recover`] on its `state_dir`, and a
/// pid that runs again (reused) keeps its subtree.
fn sweep_dead_empty(own: &Path) {
    let Ok(entries) = std::fs::read_dir(own) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("steward-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if Path::new(&format!("/proc/{pid}")).exists() || populated(&path) {
            continue;
        }
        if let Ok(leaves) = std::fs::read_dir(&path) {
            for leaf in leaves.flatten() {
                if leaf.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = std::fs::remove_dir(leaf.path());
                }
            }
        }
        if std::fs::remove_dir(&path).is_ok() {
            info!(cgroup = %path.display(), "removed the empty cgroup subtree of a steward that is gone");
        }
    }
}

/// True unless `cgroup.events` says `populated 0` (an unreadable one counts as populated).
fn populated(cgroup: &Path) -> bool {
    std::fs::read_to_string(cgroup.join("cgroup.events"))
        .map(|events| !events.lines().any(|l| l == "populated 0"))
        .unwrap_or(true)
}

/// What `state_dir/cgroup` says.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    path: PathBuf,
    pid: u32,
    start_time: u64,
}

fn write_record(state_dir: &Path, path: &Path) -> Option<PathBuf> {
    let pid = std::process::id();
    let start_time = pid_file::start_time(pid)?;
    let file = state_dir.join(RECORD);
    let text = format!("{}\n{pid} {start_time}\n", path.display());
    let written = std::fs::create_dir_all(state_dir).and_then(|()| std::fs::write(&file, text));
    match written {
        Ok(()) => Some(file),
        Err(error) => {
            warn!(file = %file.display(), %error, "cannot record the cgroup subtree: a crash would leave it to the next boot unnoticed");
            None
        }
    }
}

fn read_record(file: &Path) -> Option<Record> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut lines = text.lines();
    let path = PathBuf::from(lines.next()?);
    let mut owner = lines.next()?.split_whitespace();
    let pid = owner.next()?.parse().ok()?;
    let start_time = owner.next()?.parse().ok()?;
    Some(Record {
        path,
        pid,
        start_time,
    })
}

/// Crash recovery: when `state_dir/cgroup` names the subtree of a steward that is gone,
/// kills every process still in its leaves and removes them. Returns how many processes
/// were killed. A subtree whose steward still runs is left alone (with a warning).
pub fn recover(state_dir: &Path) -> usize {
    let file = state_dir.join(RECORD);
    let Some(record) = read_record(&file) else {
        return 0;
    };
    if pid_file::is_running(record.pid, record.start_time) {
        warn!(cgroup = %record.path.display(), pid = record.pid, "another steward still uses this state_dir's cgroup subtree: left alone");
        return 0;
    }
    // Only a directory named like one of ours, below a cgroup2 mount, is touched.
    let ours = record
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("steward-"))
        && record.path.join("cgroup.kill").exists();
    let mut killed = 0;
    if ours {
        if let Ok(entries) = std::fs::read_dir(&record.path) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    killed += Leaf::at(entry.path()).pids().len();
                }
            }
        }
        empty_and_remove(&record.path);
        if killed > 0 {
            warn!(cgroup = %record.path.display(), killed, "killed what a previous steward left in its cgroups");
        } else {
            info!(cgroup = %record.path.display(), "removed the cgroups a previous steward left");
        }
    }
    let _ = std::fs::remove_file(&file);
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = PathBuf::from("/sys/fs/cgroup/x/steward-1-0");
        let file = write_record(dir.path(), &path).expect("written");
        let record = read_record(&file).expect("read");
        assert_eq!(record.path, path);
        assert_eq!(record.pid, std::process::id());
        // Our own record: the writer runs, so recovery leaves it alone.
        assert_eq!(recover(dir.path()), 0);
        assert!(file.exists());
    }

    #[test]
    fn a_new_subtree_sweeps_the_empty_ones_of_stewards_that_are_gone() {
        let hierarchy = match super::super::hierarchy::find() {
            Ok(h) => h,
            Err(why) => {
                eprintln!("skipped: no writable cgroup v2 hierarchy here: {why}");
                return;
            }
        };
        // A pid that is gone: a child that ran and was reaped.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let dead = child.id();
        child.wait().expect("reaped");
        let stale = hierarchy.own.join(format!("steward-{dead}-7"));
        let live = hierarchy
            .own
            .join(format!("steward-{}-4000000000", std::process::id()));
        for dir in [stale.join("svc"), live.clone()] {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("skipped: cannot create {}: {e}", dir.display());
                return;
            }
        }
        let subtree = Subtree::create(hierarchy, None).expect("a subtree");
        let stale_left = stale.exists();
        let live_left = live.exists();
        let _ = std::fs::remove_dir(&live);
        let _ = std::fs::remove_dir(stale.join("svc"));
        let _ = std::fs::remove_dir(&stale);
        drop(subtree);
        assert!(
            !stale_left,
            "the empty subtree of a gone steward is removed"
        );
        assert!(live_left, "the subtree of a running process is kept");
    }
}
