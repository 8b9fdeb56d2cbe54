//! The tables a runtime shares between its actors, owned by the root supervisor.
//!
//! Like ETS tables owned by a long-lived process: they outlive the per-service actors, so
//! a one-for-all restart keeps the log history and the last known state. Each row has one
//! writer (a service's status row is written only by its Server; its ring is appended to
//! only by its LogBuffer); everyone else reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::config::ServiceDefinition;
use crate::events::EventBus;
use crate::logs::LogRing;
use crate::process::cgroup::ProcessTracking;
use crate::process::pid_file::PidRecord;
use crate::process::usage::UsageSampler;
use crate::state::ServiceState;

/// How old a CPU/RSS sample may be when a state is read (status lists read every service).
const USAGE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// Shared tables of one runtime.
#[derive(Debug)]
pub struct Tables {
    /// The event stream.
    pub events: Arc<EventBus>,
    /// Definitions by id (written by the root).
    definitions: DashMap<String, Arc<ServiceDefinition>>,
    /// Status rows by id (each written by its service's Server).
    states: DashMap<String, ServiceState>,
    /// Log rings by id (created by the root, appended to by each service's LogBuffer).
    rings: DashMap<String, Arc<LogRing>>,
    /// One HTTP client for every HTTP probe (connection pooling, one resolver).
    pub http: reqwest::Client,
    /// CPU and RSS sampling of running processes.
    pub usage: UsageSampler,
    /// When the runtime started.
    pub started_at: DateTime<Utc>,
    /// Where pid files (crash recovery) and other runtime state live; `None` keeps no
    /// state on disk.
    pub state_dir: Option<PathBuf>,
    /// The config directory reloads read and saves write (`None`: no file config).
    pub config_dir: Option<PathBuf>,
    /// Detached services that are up, with their daemon when `pid_file` named it. Written
    /// by their Server; outlives a one-for-all restart of the service's actors, so the
    /// new Server adopts what runs instead of launching it twice.
    detached_up: DashMap<String, Option<PidRecord>>,
    runtime_state: AtomicU8,
    /// Bumped by every write to a definition or a status row (and the runtime's state):
    /// a page rendered from the tables at one generation is still true at the same one,
    /// apart from CPU and RSS (see [`Tables::generation`]).
    generation: AtomicU64,
    /// How services' processes are tracked: a cgroup per service, or the process group
    /// plus the subreaper (DESIGN §11). Its cgroups are removed when the tables drop.
    pub tracking: Arc<ProcessTracking>,
}

/// What the runtime as a whole is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeState {
    /// Supervising.
    Running,
    /// Every service paused for maintenance; restarts are held back.
    Paused,
    /// Shutting down.
    Stopping,
}

impl Tables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::with_state_dir(None)
    }

    /// Empty tables keeping runtime state (pid files) under `state_dir`.
    pub fn with_state_dir(state_dir: Option<PathBuf>) -> Self {
        Self::with_dirs(state_dir, None)
    }

    /// Empty tables with a state directory and a config directory.
    pub fn with_dirs(state_dir: Option<PathBuf>, config_dir: Option<PathBuf>) -> Self {
        let tracking = ProcessTracking::without("tables built without process tracking");
        Self::with_tracking(state_dir, config_dir, tracking)
    }

    /// Empty tables with a state directory, a config directory and the runtime's process
    /// tracking ([`ProcessTracking::detect`]).
    pub fn with_tracking(
        state_dir: Option<PathBuf>,
        config_dir: Option<PathBuf>,
        tracking: ProcessTracking,
    ) -> Self {
        // A runtime is born here: what its actors record has somewhere to go from now on.
        crate::metrics::install_recorder();
        Tables {
            state_dir,
            config_dir,
            events: Arc::new(EventBus::new()),
            definitions: DashMap::new(),
            states: DashMap::new(),
            rings: DashMap::new(),
            detached_up: DashMap::new(),
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            usage: UsageSampler::default(),
            started_at: Utc::now(),
            runtime_state: AtomicU8::new(0),
            generation: AtomicU64::new(0),
            tracking: Arc::new(tracking),
        }
    }

    /// How many times the definitions, the status rows or the runtime's state have been
    /// written: equal numbers mean nothing a list or a metrics page shows has changed
    /// since, except CPU and RSS, which a reader samples within its own age limit. Caches
    /// of rendered pages key on it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// What the runtime as a whole is doing.
    pub fn runtime_state(&self) -> RuntimeState {
        match self.runtime_state.load(Ordering::SeqCst) {
            1 => RuntimeState::Paused,
            2 => RuntimeState::Stopping,
            _ => RuntimeState::Running,
        }
    }

    /// Sets what the runtime as a whole is doing (root only).
    pub(crate) fn set_runtime_state(&self, state: RuntimeState) {
        let v = match state {
            RuntimeState::Running => 0,
            RuntimeState::Paused => 1,
            RuntimeState::Stopping => 2,
        };
        self.runtime_state.store(v, Ordering::SeqCst);
        self.changed();
    }

    /// A service's definition.
    pub fn definition(&self, id: &str) -> Option<Arc<ServiceDefinition>> {
        self.definitions.get(id).map(|d| d.value().clone())
    }

    /// Reads a service's definition in place (no reference count taken).
    pub fn read_definition<T>(
        &self,
        id: &str,
        read: impl FnOnce(&ServiceDefinition) -> T,
    ) -> Option<T> {
        self.definitions.get(id).map(|d| read(d.value()))
    }

    /// Whether a service of that id is defined.
    pub fn is_defined(&self, id: &str) -> bool {
        self.definitions.contains_key(id)
    }

    /// Every definition, in no set order.
    pub fn definitions(&self) -> Vec<Arc<ServiceDefinition>> {
        self.definitions.iter().map(|d| d.value().clone()).collect()
    }

    /// A copy of a service's status row (without CPU and RSS: see
    /// [`Tables::state_with_usage`]).
    pub fn state(&self, id: &str) -> Option<ServiceState> {
        self.states.get(id).map(|r| r.clone())
    }

    /// Reads a service's status row in place (no copy).
    pub fn read_state<T>(&self, id: &str, read: impl FnOnce(&ServiceState) -> T) -> Option<T> {
        self.states.get(id).map(|r| read(&r))
    }

    /// Calls `visit` with every status row, in no set order.
    pub fn each_state(&self, mut visit: impl FnMut(&ServiceState)) {
        for row in self.states.iter() {
            visit(row.value());
        }
    }

    /// A service's log ring.
    pub fn ring(&self, id: &str) -> Option<Arc<LogRing>> {
        self.rings.get(id).map(|r| r.value().clone())
    }

    /// Gives a service its log ring. The root does it when it defines a service; a test
    /// or bench that drives a service's actors without a root does it itself.
    pub fn insert_ring(&self, id: &str, ring: Arc<LogRing>) {
        self.rings.insert(id.to_string(), ring);
    }

    /// Adds a defined service: its definition and its first status row (root only).
    pub(crate) fn insert_service(&self, def: Arc<ServiceDefinition>, state: ServiceState) {
        self.states.insert(def.id.clone(), state);
        self.definitions.insert(def.id.clone(), def);
        self.changed();
    }

    /// Forgets a service: definition, status row and ring (root only).
    pub(crate) fn remove_service(&self, id: &str) {
        self.definitions.remove(id);
        self.states.remove(id);
        self.rings.remove(id);
        self.changed();
    }

    /// Gives back the room the tables kept for services removed since (a `DashMap` keeps
    /// its capacity): called by the root after bulk removals, with the heap trim.
    pub(crate) fn shrink(&self) {
        self.definitions.shrink_to_fit();
        self.states.shrink_to_fit();
        self.rings.shrink_to_fit();
        self.detached_up.shrink_to_fit();
    }

    /// Gives a service a status row unless it has one (a restarted Server keeps its row:
    /// restart count, last exit, reason).
    pub(crate) fn ensure_state(&self, id: &str, make: impl FnOnce() -> ServiceState) {
        self.states.entry(id.to_string()).or_insert_with(make);
        self.changed();
    }

    /// Changes a service's status row in place (its Server only).
    pub(crate) fn update_state(&self, id: &str, change: impl FnOnce(&mut ServiceState)) {
        if let Some(mut row) = self.states.get_mut(id) {
            change(&mut row);
        }
        self.changed();
    }

    /// Records that a detached service is up, with its daemon when known (its Server).
    pub(crate) fn set_detached_up(&self, id: &str, daemon: Option<PidRecord>) {
        self.detached_up.insert(id.to_string(), daemon);
    }

    /// Changes the record of a detached service that is up (its Server).
    pub(crate) fn update_detached_up(&self, id: &str, change: impl FnOnce(&mut Option<PidRecord>)) {
        if let Some(mut up) = self.detached_up.get_mut(id) {
            change(&mut up);
        }
    }

    /// The record of a detached service that is up: `Some(daemon)` when it is up.
    pub(crate) fn detached_up(&self, id: &str) -> Option<Option<PidRecord>> {
        self.detached_up.get(id).map(|e| e.clone())
    }

    /// Forgets that a detached service is up (its Server, once the daemon is down).
    pub(crate) fn clear_detached_up(&self, id: &str) {
        self.detached_up.remove(id);
    }

    /// Marks a service `failed` because its supervision gave up, and emits the event.
    pub(crate) fn mark_failed(&self, id: &str, reason: String) {
        if let Some(mut row) = self.states.get_mut(id) {
            row.status = crate::state::ServiceStatus::Failed;
            row.pid = None;
            row.ready = false;
            row.reason = Some(reason.clone());
            row.changed_at = Utc::now();
        }
        self.changed();
        self.events
            .emit(crate::events::Event::new(id, crate::events::EventKind::Failed).cause(reason));
    }

    /// A copy of a service's status row, with CPU and RSS filled in when it runs: summed
    /// over all of its processes (its cgroup, or its process tree; DESIGN §11).
    pub fn state_with_usage(&self, id: &str) -> Option<ServiceState> {
        let mut state = self.states.get(id)?.clone();
        // A detached service's daemon is another manager's tree: sampled alone, and never
        // traced as the service's own (a stop of steward must leave it running).
        let detached = self.definitions.get(id).is_some_and(|d| d.detached);
        if let Some(pid) = state.pid
            && let Some((cpu, rss)) = if detached {
                self.usage.sample_within(pid, USAGE_MAX_AGE)
            } else {
                self.usage.sample_tree_within(pid, USAGE_MAX_AGE, || {
                    self.tracking.sampled_members(id, pid)
                })
            }
        {
            state.cpu_percent = Some(cpu);
            state.rss_bytes = Some(rss);
        }
        Some(state)
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}
