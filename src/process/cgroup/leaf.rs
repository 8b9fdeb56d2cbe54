//! One service's cgroup (a leaf of steward's subtree) and what steward does with it:
//! place a process (its `cgroup.procs`), kill everything in it (`cgroup.kill`), freeze and
//! thaw it (`cgroup.freeze`), wait for `cgroup.events` to say `populated 0` or `frozen 1`,
//! list its processes, read its CPU time, and remove it.
//!
//! Waiting uses the kernel's notification: `cgroup.events` wakes a `poll` with `POLLPRI`
//! when a value changes. Each wait is bounded by a deadline, and the file is read again at
//! least every [`RECHECK`], so a missed wake-up costs that much, never a hang.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a wait reads `cgroup.events` again without a wake-up.
const RECHECK: Duration = Duration::from_millis(50);

/// A service's cgroup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    path: PathBuf,
}

/// A key of `cgroup.events` and the value waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `populated 0`: no process is left in the cgroup.
    Empty,
    /// `frozen 1`: every process of the cgroup is frozen.
    Frozen,
}

impl Condition {
    fn holds(self, events: &str) -> bool {
        let (key, want) = match self {
            Condition::Empty => ("populated", "0"),
            Condition::Frozen => ("frozen", "1"),
        };
        events.lines().any(|line| {
            line.split_once(' ')
                .is_some_and(|(k, v)| k == key && v.trim() == want)
        })
    }
}

impl Leaf {
    /// The leaf at `path` (not created here: see [`Leaf::create`]).
    pub fn at(path: PathBuf) -> Leaf {
        Leaf { path }
    }

    /// Creates the directory unless it exists.
    pub fn create(path: PathBuf) -> std::io::Result<Leaf> {
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        Ok(Leaf { path })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `cgroup.procs` for writing (close-on-exec): a child writes `0` to it before
    /// exec to join this cgroup.
    pub fn open_procs(&self) -> std::io::Result<OwnedFd> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.procs"))
            .map_err(|e| {
                // A shortage of descriptors passes: kept as the bare OS error, so the spawn
                // is retried through the backoff like any other EMFILE.
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::EMFILE | nix::libc::ENFILE)
                ) {
                    return e;
                }
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot open {}: {e}",
                        self.path.join("cgroup.procs").display()
                    ),
                )
            })?;
        Ok(OwnedFd::from(file))
    }

    fn write(&self, file: &str, value: &str) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(self.path.join(file))?;
        f.write_all(value.as_bytes())
    }

    /// SIGKILLs every process in the cgroup (`cgroup.kill`), including those that left the
    /// service's process group or session. A cgroup that is gone is not an error.
    pub fn kill(&self) -> std::io::Result<()> {
        match self.write("cgroup.kill", "1") {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Freezes (`true`) or thaws (`false`) every process in the cgroup.
    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        self.write("cgroup.freeze", if frozen { "1" } else { "0" })
    }

    /// The text of `cgroup.events`.
    pub fn events(&self) -> std::io::Result<String> {
        std::fs::read_to_string(self.path.join("cgroup.events"))
    }

    /// Whether `condition` holds now (a cgroup that is gone counts as empty).
    pub fn holds(&self, condition: Condition) -> bool {
        match self.events() {
            Ok(text) => condition.holds(&text),
            Err(_) => condition == Condition::Empty,
        }
    }

    /// The pids in the cgroup now.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Total CPU time of every process that ran in the cgroup (`usage_usec` of `cpu.stat`,
    /// present with or without the cpu controller), in microseconds.
    pub fn cpu_usec(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.path.join("cpu.stat")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Waits until `condition` holds or `timeout` passes; returns whether it holds.
    pub async fn wait(&self, condition: Condition, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let watch = EventsWatch::open(&self.path);
        loop {
            if self.holds(condition) {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let nap = RECHECK.min(deadline - now);
            match &watch {
                Some(watch) => {
                    let _ = tokio::time::timeout(nap, watch.changed()).await;
                }
                None => tokio::time::sleep(nap).await,
            }
        }
    }

    /// [`Leaf::wait`] for code that cannot await (a `Drop`): polls every few milliseconds.
    pub fn wait_blocking(&self, condition: Condition, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.holds(condition) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Removes the (empty) cgroup. One that is gone already is not an error.
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Kills what runs in the cgroup, waits up to `timeout` for it to be empty, and
    /// removes it. Returns an error naming the cgroup when it could not be removed.
    pub async fn kill_and_remove(&self, timeout: Duration) -> std::io::Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let _ = self.freeze(false);
        self.kill()?;
        if !self.wait(Condition::Empty, timeout).await {
            return Err(self.still_populated(timeout));
        }
        self.remove()
    }

    /// [`Leaf::kill_and_remove`] without a runtime.
    pub fn kill_and_remove_blocking(&self, timeout: Duration) -> std::io::Result<()> {
        if !self.path.exists() {
            return Ok(());
        }
        let _ = self.freeze(false);
        self.kill()?;
        if !self.wait_blocking(Condition::Empty, timeout) {
            return Err(self.still_populated(timeout));
        }
        self.remove()
    }

    fn still_populated(&self, timeout: Duration) -> std::io::Error {
        std::io::Error::other(format!(
            "{} still has processes {:?} {} after cgroup.kill",
            self.path.display(),
            self.pids(),
            humantime::format_duration(timeout)
        ))
    }
}

/// `cgroup.events` registered with the runtime for `POLLPRI` (a value changed).
struct EventsWatch {
    fd: tokio::io::unix::AsyncFd<std::fs::File>,
}

impl EventsWatch {
    #[allow(unsafe_code)]
    fn open(dir: &Path) -> Option<EventsWatch> {
        let file = std::fs::File::open(dir.join("cgroup.events")).ok()?;
        // SAFETY: the file moves into the `AsyncFd`, which owns (and closes) it, so the
        // descriptor stays open and the same while it is registered.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                file,
                tokio::io::Interest::PRIORITY | tokio::io::Interest::ERROR,
            )
        }
        .ok()?;
        Some(EventsWatch { fd })
    }

    /// Resolves at the next change. kernfs re-arms the notification when the file is
    /// read, so each wake-up reads it once.
    async fn changed(&self) {
        let Ok(mut guard) = self
            .fd
            .ready(tokio::io::Interest::PRIORITY | tokio::io::Interest::ERROR)
            .await
        else {
            std::future::pending::<()>().await;
            return;
        };
        let mut sink = [0u8; 128];
        let _ = std::os::unix::fs::FileExt::read_at(self.fd.get_ref(), &mut sink, 0);
        guard.clear_ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_by_key() {
        let text = "populated 0\nfrozen 1\n";
        assert!(Condition::Empty.holds(text));
        assert!(Condition::Frozen.holds(text));
        let text = "populated 1\nfrozen 0\n";
        assert!(!Condition::Empty.holds(text));
        assert!(!Condition::Frozen.holds(text));
    }

    #[test]
    fn a_leaf_that_is_gone_counts_as_empty() {
        let leaf = Leaf::at(PathBuf::from("/nonexistent/steward-leaf"));
        assert!(leaf.holds(Condition::Empty));
        assert!(!leaf.holds(Condition::Frozen));
        assert!(leaf.kill().is_ok());
        assert!(leaf.remove().is_ok());
        assert!(leaf.pids().is_empty());
    }
}
