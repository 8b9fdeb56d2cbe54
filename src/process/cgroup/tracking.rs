//! Which way a runtime keeps track of its services' processes, decided once when it
//! starts: a cgroup per service, or the process group plus the subreaper.
//!
//! The mode is shown as [`TrackingStatus`] in `GET /api/v1/status` and in the boot log, so
//! a user knows what "stop" guarantees (docs/ARCHITECTURE.md, "Nothing escapes").

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::hierarchy;
use super::limits::{self, Controllers};
use super::lineage::Lineage;
use super::subtree::Subtree;
use crate::config::Limits;

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

/// Services whose `limits` are not (all) enforced, grouped by the reason: `(why, ids)` in
/// the order each reason first appears. `why_not` is
/// [`ProcessTracking::limits_not_enforced`] or the outlook of `steward validate`.
pub fn unenforced_limits<'a>(
    services: impl IntoIterator<Item = &'a crate::config::ServiceDefinition>,
    why_not: impl Fn(&Limits) -> Option<String>,
) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for def in services {
        let Some(why) = why_not(&def.limits) else {
            continue;
        };
        match groups.iter_mut().find(|(w, _)| *w == why) {
            Some((_, ids)) => ids.push(def.id.clone()),
            None => groups.push((why, vec![def.id.clone()])),
        }
    }
    groups
}

/// Process-group mode when cgroups are switched off (`settings.cgroups: false`, or
/// `STEWARD_CGROUPS=off`, which wins).
fn switched_off(wanted: bool) -> Option<ProcessTracking> {
    if !wanted {
        return Some(ProcessTracking::off(
            "disabled by settings.cgroups: false",
            "cgroups are off (settings.cgroups: false)".to_string(),
        ));
    }
    let env_off = std::env::var(CGROUPS_ENV).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "false" | "0"
        )
    });
    env_off.then(|| {
        ProcessTracking::off(
            "disabled by STEWARD_CGROUPS=off",
            "cgroups are off (STEWARD_CGROUPS=off)".to_string(),
        )
    })
}

/// A runtime's process tracking.
#[derive(Debug)]
pub struct ProcessTracking {
    subtree: Option<Subtree>,
    /// Why there is no subtree.
    reason: Option<String>,
    /// Why `limits` are not enforced, in process-group mode (`cgroups are off (…)`, `no
    /// cgroup v2 hierarchy steward can write (…)`).
    limits_reason: Option<String>,
    /// Process-group mode's record of each service's processes.
    lineage: Lineage,
}

impl ProcessTracking {
    /// Uses cgroups when `wanted` (`settings.cgroups`, default true), the environment does
    /// not say `STEWARD_CGROUPS=off`, and a writable cgroup v2 hierarchy is found; else
    /// process-group mode with the reason.
    pub fn detect(wanted: bool, state_dir: Option<&Path>) -> ProcessTracking {
        if let Some(off) = switched_off(wanted) {
            return off;
        }
        let made = hierarchy::find().and_then(|found| Subtree::create(found, state_dir));
        match made {
            Ok(subtree) => ProcessTracking {
                subtree: Some(subtree),
                reason: None,
                limits_reason: None,
                lineage: Lineage::default(),
            },
            Err(reason) => ProcessTracking::without(&reason),
        }
    }

    /// Process-group mode, for `reason` (no cgroup could be created).
    pub fn without(reason: &str) -> ProcessTracking {
        ProcessTracking::off(
            reason,
            format!("no cgroup v2 hierarchy steward can write ({reason})"),
        )
    }

    fn off(reason: &str, limits_reason: String) -> ProcessTracking {
        ProcessTracking {
            subtree: None,
            reason: Some(reason.to_string()),
            limits_reason: Some(limits_reason),
            lineage: Lineage::default(),
        }
    }

    /// Why `limits` cannot all be enforced for a service (`None` when they can, or when it
    /// sets none): in process-group mode the mode's reason, in cgroup mode the missing
    /// controllers'. Shown as `limits not enforced: <why>`.
    pub fn limits_not_enforced(&self, limits: &Limits) -> Option<String> {
        if limits.is_empty() {
            return None;
        }
        match &self.subtree {
            Some(subtree) => subtree.controllers().why_not(limits),
            None => self.limits_reason.clone(),
        }
    }

    /// The controllers the leaves have, in cgroup mode.
    pub fn controllers(&self) -> Option<&Controllers> {
        self.subtree.as_ref().map(Subtree::controllers)
    }

    /// What a runtime started now with `settings.cgroups: wanted` could enforce, found
    /// without creating or writing anything (for `steward validate`): the controllers its
    /// leaves would have, or why it would run in process-group mode.
    pub fn limits_outlook(wanted: bool) -> Result<Controllers, String> {
        if let Some(off) = switched_off(wanted) {
            return Err(off.limits_reason.unwrap_or_default());
        }
        let unwritable = |why: String| format!("no cgroup v2 hierarchy steward can write ({why})");
        let found = hierarchy::find().map_err(unwritable)?;
        nix::unistd::access(&found.own, nix::unistd::AccessFlags::W_OK).map_err(|e| {
            unwritable(format!(
                "cannot create cgroups in {}: {e}",
                found.own.display()
            ))
        })?;
        let delegated = limits::is_delegated(&found.own, &found.mount);
        Ok(limits::preview(&found.own, delegated, std::process::id()))
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

    /// [`ProcessTracking::members`] for a sampler (usage columns, `max_memory`): in
    /// process-group mode one read of steward's orphans serves every service for up to
    /// [`super::lineage::ORPHANS_MAX_AGE`] ([`Lineage::walk_sampled`]); a stop or kill
    /// calls [`ProcessTracking::members`], which reads them afresh.
    pub fn sampled_members(&self, service: &str, leader: u32) -> Vec<u32> {
        match &self.subtree {
            Some(_) => self.members(service, leader),
            None => self.lineage.walk_sampled(service, leader),
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
