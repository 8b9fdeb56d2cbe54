//! `steward up --watch`: reload when the config files change.
//!
//! A [`ConfigWatcher`] watches the config directory and its `services.d` (both
//! non-recursively, through the `notify` crate: inotify on Linux) and turns file events
//! into *bursts*: one save in an editor, a `git checkout` or a `cp -r` produces many
//! events, and each burst should cause exactly one reload. A burst ends when no relevant
//! event came for [`DEBOUNCE`]; [`ConfigWatcher::next_change`] then returns the files it
//! touched, and `up` applies the reload exactly as for SIGHUP (a config with errors changes
//! nothing and every error is logged with file:line:col).
//!
//! Which events count:
//!
//! * `services.yml`, the `services.d` folder itself, and `services.d/*.yml` not starting
//!   with `.` (the files the loader reads); Kubernetes' ConfigMap swap (`..data`) too;
//! * editor leftovers never do: swap and lock files (`.web.yml.swp`, `.#web.yml`), backups
//!   (`web.yml~`), vim's `4913` probe, `#web.yml#`: none ends in `.yml` or all start with
//!   `.`. steward's own `save` writes `.<id>.yml.<pid>.tmp` and renames it into place: one
//!   burst, whose reload keeps the (identical) service and its pid;
//! * opening and reading files (the reload itself reads them) and metadata changes
//!   (access time, `chmod`) never count, so a reload cannot trigger the next one.
//!
//! The state of a burst lives in the watcher, not in the future, so `next_change` is
//! cancel-safe: `up` polls it in a `select!` beside signals without losing events.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Quiet time that ends a burst of changes.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// The name of the folder of extra definition files.
const SERVICES_D: &str = "services.d";

/// Watches a config directory; see the module docs.
pub struct ConfigWatcher {
    /// Kept alive for as long as events are wanted (dropping it stops the OS watches).
    watcher: RecommendedWatcher,
    /// Events from the watcher's own thread.
    events: mpsc::UnboundedReceiver<notify::Result<notify::Event>>,
    /// The config directory, canonical (events carry canonical paths).
    dir: PathBuf,
    /// `dir/services.d`.
    services_d: PathBuf,
    /// Files touched in the current burst, in first-seen order.
    pending: Vec<PathBuf>,
    /// When the current burst ends unless another relevant event comes first.
    quiet_at: Option<Instant>,
}

impl ConfigWatcher {
    /// Starts watching `dir` (and `dir/services.d` when it exists; when it appears later,
    /// it is watched from then on).
    pub fn start(dir: &Path) -> anyhow::Result<ConfigWatcher> {
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot watch the config directory {}", dir.display()))?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only when `up` is ending.
            let _ = tx.send(event);
        })
        .context("cannot start watching the config files")?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
        let services_d = dir.join(SERVICES_D);
        let mut watching = ConfigWatcher {
            watcher,
            events,
            dir,
            services_d,
            pending: Vec::new(),
            quiet_at: None,
        };
        watching.watch_services_d();
        Ok(watching)
    }

    /// The directory watched (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Adds the watch on `services.d` when the folder exists (a missing one is fine).
    fn watch_services_d(&mut self) {
        if !self.services_d.is_dir() {
            return;
        }
        if let Err(e) = self
            .watcher
            .watch(&self.services_d, RecursiveMode::NonRecursive)
        {
            warn!(path = %self.services_d.display(), error = %e, "cannot watch services.d; its changes need a SIGHUP");
        }
    }

    /// Waits for the next burst of relevant changes and returns the files it touched, once
    /// no relevant event came for [`DEBOUNCE`]. `None` when the watcher has stopped.
    /// Cancel-safe.
    pub async fn next_change(&mut self) -> Option<Vec<PathBuf>> {
        loop {
            let received = match self.quiet_at {
                None => self.events.recv().await,
                Some(quiet_at) => {
                    tokio::select! {
                        received = self.events.recv() => received,
                        () = tokio::time::sleep_until(quiet_at) => {
                            self.quiet_at = None;
                            return Some(std::mem::take(&mut self.pending));
                        }
                    }
                }
            };
            match received? {
                Ok(event) => self.note(event),
                Err(e) => warn!(error = %e, "config watch error"),
            }
        }
    }

    /// Adds a relevant event to the current burst (starting one if needed).
    fn note(&mut self, event: notify::Event) {
        if !counts(&event.kind) {
            return;
        }
        let mut relevant = false;
        for path in &event.paths {
            if *path == self.services_d {
                // Created (or re-created) after the start: watch it from now on.
                self.watch_services_d();
            }
            if is_config_file(&self.dir, path) {
                relevant = true;
                if !self.pending.contains(path) {
                    self.pending.push(path.clone());
                }
            }
        }
        if relevant {
            debug!(kind = ?event.kind, paths = ?event.paths, "config change");
            self.quiet_at = Some(Instant::now() + DEBOUNCE);
        }
    }
}

/// True for events that may change what the loader reads: not opening or reading a file,
/// not metadata (which reading itself can change).
fn counts(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    }
}

/// True when `path` is one of the files (or folders) whose change a reload would see.
pub fn is_config_file(dir: &Path, path: &Path) -> bool {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name().and_then(OsStr::to_str))
    else {
        return false;
    };
    if parent == dir {
        // `..data`: Kubernetes updates a mounted ConfigMap by swapping this symlink.
        return matches!(name, "services.yml" | SERVICES_D | "..data");
    }
    parent == dir.join(SERVICES_D) && name.ends_with(".yml") && !name.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_the_loader_reads_count() {
        let dir = Path::new("/etc/steward");
        for path in [
            "/etc/steward/services.yml",
            "/etc/steward/services.d",
            "/etc/steward/services.d/web.yml",
            "/etc/steward/..data",
        ] {
            assert!(is_config_file(dir, Path::new(path)), "{path}");
        }
        for path in [
            "/etc/steward/.services.yml.swp",
            "/etc/steward/services.yml~",
            "/etc/steward/4913",
            "/etc/steward/.steward/pids/web.json",
            "/etc/steward/other.yml",
            "/etc/steward/services.d/.web.yml.swp",
            "/etc/steward/services.d/.#web.yml",
            "/etc/steward/services.d/#web.yml#",
            "/etc/steward/services.d/web.yml~",
            "/etc/steward/services.d/.web.yml.4242.tmp",
            "/etc/steward/services.d/web.yaml",
            "/etc/steward/services.d/sub/web.yml",
            "/elsewhere/services.yml",
        ] {
            assert!(!is_config_file(dir, Path::new(path)), "{path}");
        }
    }

    #[test]
    fn reading_and_metadata_do_not_count() {
        use notify::event::{AccessKind, CreateKind, RemoveKind};
        assert!(!counts(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!counts(&EventKind::Modify(ModifyKind::Metadata(
            notify::event::MetadataKind::Any
        ))));
        assert!(counts(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(counts(&EventKind::Create(CreateKind::File)));
        assert!(counts(&EventKind::Remove(RemoveKind::File)));
        assert!(counts(&EventKind::Modify(ModifyKind::Any)));
    }

    /// Every path of the changes reported until one holds `wanted` (at most 10 s).
    async fn changes_until(watcher: &mut ConfigWatcher, wanted: &Path) -> Vec<PathBuf> {
        let mut seen = Vec::new();
        while !seen.iter().any(|p: &PathBuf| p == wanted) {
            let change = tokio::time::timeout(Duration::from_secs(10), watcher.next_change())
                .await
                .unwrap_or_else(|_| panic!("no change with {} ({seen:?})", wanted.display()))
                .expect("watcher alive");
            seen.extend(change);
        }
        seen
    }

    #[tokio::test]
    async fn changes_name_the_config_files_and_never_editor_leftovers() {
        let dir = tempfile::tempdir().expect("dir");
        let mut watcher = ConfigWatcher::start(dir.path()).expect("watch");
        let root = watcher.dir().to_path_buf();
        std::fs::write(root.join(".services.yml.swp"), "x").expect("swap file");
        std::fs::write(root.join("services.yml~"), "x").expect("backup file");
        std::fs::create_dir(root.join(SERVICES_D)).expect("services.d");
        std::fs::write(root.join("services.yml"), "version: 1\n").expect("write");
        let seen = changes_until(&mut watcher, &root.join("services.yml")).await;
        assert!(seen.contains(&root.join(SERVICES_D)), "{seen:?}");
        assert!(
            seen.iter().all(|p| is_config_file(&root, p)),
            "only config files: {seen:?}"
        );
        // services.d, created after the start, is watched too.
        let x = root.join(SERVICES_D).join("x.yml");
        std::fs::write(&x, "version: 1\n").expect("x.yml");
        changes_until(&mut watcher, &x).await;
    }
}
