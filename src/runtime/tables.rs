//! The tables a runtime shares between its actors, owned by the root supervisor.
//!
//! Like ETS tables owned by a long-lived process: they outlive the per-service actors, so
//! a one-for-all restart keeps the log history and the last known state. Each row has one
//! writer (a service's status row is written only by its Server; its ring is appended to
//! only by its LogBuffer); everyone else reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::config::ServiceDefinition;
use crate::events::EventBus;
use crate::logs::LogRing;
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
    /// Definitions by id.
    pub definitions: DashMap<String, Arc<ServiceDefinition>>,
    /// Status rows by id.
    pub states: DashMap<String, ServiceState>,
    /// Log rings by id.
    pub rings: DashMap<String, Arc<LogRing>>,
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
    pub detached_up: DashMap<String, Option<PidRecord>>,
    runtime_state: AtomicU8,
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
        }
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
        self.events
            .emit(crate::events::Event::new(id, crate::events::EventKind::Failed).cause(reason));
    }

    /// A copy of a service's status row, with CPU and RSS filled in when it runs.
    pub fn state_with_usage(&self, id: &str) -> Option<ServiceState> {
        let mut state = self.states.get(id)?.clone();
        if let Some(pid) = state.pid {
            if let Some((cpu, rss)) = self.usage.sample_within(pid, USAGE_MAX_AGE) {
                state.cpu_percent = Some(cpu);
                state.rss_bytes = Some(rss);
            }
        }
        Some(state)
    }
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}
