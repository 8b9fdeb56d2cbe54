//! Which way a runtime keeps track of its services' processes, decided once when it
//! starts: a cgroup per service, or the process group plus the subreaper.
//!
//! The mode is shown as [`TrackingStatus`] in `GET /api/v1/status` and in the boot log, so
//! a user knows what "stop" guarantees (docs/ARCHITECTURE.md, "Nothing escapes").

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hierarchy;
use super::lineage::Lineage;
use super::subtree::Subtree;

/// The environment variable that overrides `settings.cgroups`: `off` (or `false`, `0`)
/// forces process-group mode, whatever the config says.
pub const CGROUPS_ENV: &str = "STEWARD_CGROUPS";

/// How stop, kill and pause reach a service's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackingMode {
    /// One cgroup per service: everything it started, wherever it went, is reached.
    Cgroup,
    /// The process group, plus the subreaper for processes that leave it.
    ProcessGroup,
}

impl TrackingMode {
    /// `cgroup` or `process_group`, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackingMode::Cgroup => "cgroup",
            TrackingMode::ProcessGroup => "process_group",
        }
    }
}

/// The mode in force and why, as `GET /api/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingStatus {
    /// The mode.
    pub mode: TrackingMode,
    /// In cgroup mode, the runtime's subtree (one leaf per service below it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// In process-group mode, why cgroups are not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl std::fmt::Display for TrackingStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.mode, &self.cgroup, &self.reason) {
            (TrackingMode::Cgroup, Some(path), _) => write!(f, "cgroup per service under {path}"),
            (_, _, Some(why)) => write!(f, "process group + subreaper ({why})"),
            _ => f.write_str("process group + subreaper"),
        }
    }
}

/// A runtime's process tracking.
#[derive(Debug)]
pub struct ProcessTracking {
    subtree: Option<Subtree>,
    /// Why there is no subtree.
    reason: Option<String>,
    /// Process-group mode's record of each service's processes.
    lineage: Lineage,
}

impl ProcessTracking {
    /// Uses cgroups when `wanted` (`settings.cgroups`, default true), the environment does
    /// not say `STEWARD_CGROUPS=off`, and a writable cgroup v2 hierarchy is found; else
    /// process-group mode with the reason.
    pub fn detect(wanted: bool, state_dir: Option<&Path>) -> ProcessTracking {
        if !wanted {
            return ProcessTracking::without("disabled by settings.cgroups: false");
        }
        if std::env::var(CGROUPS_ENV).is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "off" | "false" | "0"
            )
        }) {
            return ProcessTracking::without("disabled by STEWARD_CGROUPS=off");
        }
        let made = hierarchy::find().and_then(|found| Subtree::create(found, state_dir));
        match made {
            Ok(subtree) => ProcessTracking {
                subtree: Some(subtree),
                reason: None,
                lineage: Lineage::default(),
            },
            Err(reason) => ProcessTracking::without(&reason),
        }
    }

    /// Process-group mode, for `reason`.
    pub fn without(reason: &str) -> ProcessTracking {
        ProcessTracking {
            subtree: None,
            reason: Some(reason.to_string()),
            lineage: Lineage::default(),
        }
    }

    /// The processes of `service`, whose process steward spawned is `leader`: its cgroup's
    /// in cgroup mode; in process-group mode the leader's tree and the orphans traced to
    /// it (recorded, so that a stop ends them: see [`Lineage`]). Leader first when it
    /// runs; never empty.
    pub fn members(&self, service: &str, leader: u32) -> Vec<u32> {
        match &self.subtree {
            Some(subtree) => {
                let mut pids = subtree.leaf_of(service).pids();
                // A detached launcher runs outside the cgroups: its own pid.
                if !pids.contains(&leader) {
                    pids.insert(0, leader);
                }
                pids
            }
            None => self.lineage.walk(service, leader),
        }
    }

    /// Process-group mode's trace of escaped processes (`None` in cgroup mode, where the
    /// cgroup holds them).
    pub fn lineage(&self) -> Option<&Lineage> {
        match self.subtree {
            Some(_) => None,
            None => Some(&self.lineage),
        }
    }

    /// The runtime's cgroup subtree, in cgroup mode.
    pub fn subtree(&self) -> Option<&Subtree> {
        self.subtree.as_ref()
    }

    /// The mode and why.
    pub fn status(&self) -> TrackingStatus {
        match &self.subtree {
            Some(subtree) => TrackingStatus {
                mode: TrackingMode::Cgroup,
                cgroup: Some(subtree.path().display().to_string()),
                reason: None,
            },
            None => TrackingStatus {
                mode: TrackingMode::ProcessGroup,
                cgroup: None,
                reason: self.reason.clone(),
            },
        }
    }

    /// Kills what is left in the runtime's cgroups and removes them (at shutdown; also
    /// done when the runtime's tables are dropped).
    pub fn release(&self) {
        if let Some(subtree) = &self.subtree {
            subtree.release();
        }
    }
}
