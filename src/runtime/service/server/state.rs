//! The Server's state, and the few ways it is shown to the world: the service's status
//! row (the Server is its only writer), the events every transition emits, the replies
//! to waiting control requests, the pid file that lets the next boot find the process.
//!
//! The current run is tracked here once: [`ServerState::generation`] numbers it, and
//! [`LiveRun`] holds what exists only while its process lives (when it was spawned, why
//! steward takes it down, whether it is probed).

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ractor::ActorRef;
use tracing::warn;

use super::{ControlReply, ServerArgs, ServerMsg, Work, detached, install};
use crate::config::ServiceDefinition;
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::process::{self, SpawnPlan};
use crate::restart::RestartIntensity;
use crate::runtime::Tables;
use crate::runtime::service::decide::{Ending, Intent, KillCause, RestartReason};
use crate::runtime::service::generation::Generation;
use crate::runtime::service::health_checker::HealthCheckerMsg;
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::{Health, ServiceState, ServiceStatus};

/// State of a Server.
pub struct ServerState {
    pub(super) def: Arc<ServiceDefinition>,
    pub(super) tables: Arc<Tables>,
    pub(super) port: Option<ActorRef<PortManagerMsg>>,
    pub(super) health: Option<ActorRef<HealthCheckerMsg>>,
    /// The generation of the current (or last) run: every message about a run carries
    /// its generation, and one that does not match is stale.
    pub(super) generation: Generation,
    /// The current run while its process (a detached service's launcher or daemon) lives.
    /// Boxed: the state of every defined service holds this field, running or not.
    pub(super) live: Option<Box<LiveRun>>,
    pub(super) intent: Intent,
    /// Index into `backoff` for the next automatic restart.
    pub(super) next_backoff: u32,
    pub(super) intensity: RestartIntensity,
    /// The automatic restart scheduled after an exit (status `backoff`), until it fires.
    /// Boxed, like `live`: most services are not waiting to restart.
    pub(super) pending_restart: Option<Box<PendingRestart>>,
    /// The task watching the dependencies, while the service waits for them.
    pub(super) dependency_watch: Option<tokio::task::JoinHandle<()>>,
    /// Readiness / liveness verdicts of the current process.
    pub(super) readiness: Health,
    pub(super) liveness: Health,
    /// Replied once the next process is spawned (or could not be).
    pub(super) start_waiters: Vec<ControlReply>,
    /// Replied once the process is gone.
    pub(super) stop_waiters: Vec<ControlReply>,
    /// The clone / install steps of the current start (install.rs), while they run.
    pub(super) setup: install::Setup,
    /// A detached service's launcher, daemon and stop path (unused otherwise).
    pub(super) detached: detached::Detached,
    /// The service's notify socket address (`Err`: why it could not be opened), when it
    /// uses the protocol. Boxed: most services do not.
    pub(super) notify_socket: Option<Box<Result<String, String>>>,
}

/// An automatic restart waiting for its backoff delay.
#[derive(Debug)]
pub(super) struct PendingRestart {
    /// How the run before it ended (the `restarting` event says so).
    pub(super) after: Ending,
    /// The delay passed while the runtime was paused; a resume starts it.
    pub(super) deferred: bool,
}

/// What exists only while the current run's process lives.
#[derive(Debug)]
pub(super) struct LiveRun {
    /// When it was spawned (for the backoff reset).
    pub(super) spawned_at: Instant,
    /// Why steward itself is taking it down (liveness, failed start, shutdown budget).
    pub(super) kill_cause: Option<KillCause>,
    /// The HealthChecker watches it (so it is told to stop exactly once).
    pub(super) probed: bool,
}

impl LiveRun {
    /// A run whose process was spawned (or adopted) now.
    pub(super) fn begun_now() -> Option<Box<Self>> {
        Some(Box::new(LiveRun {
            spawned_at: Instant::now(),
            kill_cause: None,
            probed: false,
        }))
    }
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("service", &self.def.id)
            .field("generation", &self.generation)
            .field("live", &self.live)
            .field("intent", &self.intent)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    pub(super) fn new(myself: ActorRef<ServerMsg>, args: ServerArgs) -> Self {
        let def = args.definition;
        // A restarted Server (one-for-all) keeps the row: restart count, last exit, reason.
        args.tables.ensure_state(&def.id, || {
            ServiceState::pending(&def.id, &def.name, &def.tags).of_kind(def.kind())
        });
        // Fixed for the definition: the runtime's cgroup mode decides it once.
        let unenforced = args.tables.tracking.limits_not_enforced(&def.limits);
        args.tables
            .update_state(&def.id, |row| row.limits_not_enforced = unenforced);
        ServerState {
            intensity: RestartIntensity::new(def.max_restarts, def.restart_window),
            def,
            tables: args.tables,
            port: None,
            health: None,
            generation: Generation::default(),
            live: None,
            intent: Intent::Stop,
            next_backoff: 0,
            pending_restart: None,
            dependency_watch: None,
            readiness: Health::Unknown,
            liveness: Health::Unknown,
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            setup: install::Setup::default(),
            detached: detached::Detached::new(myself),
            notify_socket: args.notify_socket.map(Box::new),
        }
    }

    /// The siblings are up. After a one-for-all restart while the service was meant to
    /// run, it is started again.
    pub(super) fn on_attach(
        &mut self,
        myself: ActorRef<ServerMsg>,
        port: ActorRef<PortManagerMsg>,
        health: Option<ActorRef<HealthCheckerMsg>>,
        recover: Option<String>,
    ) -> Work<'_> {
        self.port = Some(port);
        self.health = health;
        let cause = recover?;
        count_restart(&self.def.id, RestartReason::Crash);
        self.emit(Event::new(&self.def.id, EventKind::Restarting).cause(cause.clone()));
        self.intent = Intent::Run;
        Some(Box::pin(async move { self.start(&myself, &cause).await }))
    }

    /// The actor stops: every waiting request is answered, the dependency wait ends.
    pub(super) fn on_post_stop(&mut self) {
        let unavailable = || ControlError::Unavailable {
            id: self.def.id.clone(),
            reason: "the service's actors stopped".to_string(),
        };
        for w in self.start_waiters.drain(..) {
            let _ = w.send(Err(unavailable()));
        }
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(Err(unavailable()));
        }
        if let Some(watch) = self.dependency_watch.take() {
            watch.abort();
        }
    }

    /// True when a message carrying `run` is about the run whose process lives now: the
    /// one check that drops messages about a process that is gone.
    pub(super) fn is_current(&self, run: Generation) -> bool {
        self.live.is_some() && self.generation.is_current(run)
    }

    /// Starts a new generation (a spawn, a dependency wait, a detached phase): whatever
    /// carries an older one is stale from now on.
    pub(super) fn next_generation(&mut self) -> Generation {
        self.generation = self.generation.next();
        self.generation
    }

    /// Why steward is taking the current run down, if it is.
    pub(super) fn kill_cause(&self) -> Option<&KillCause> {
        self.live.as_ref().and_then(|l| l.kill_cause.as_ref())
    }

    /// Records why steward takes the current run down (the last word wins).
    pub(super) fn set_kill_cause(&mut self, cause: KillCause) {
        if let Some(live) = &mut self.live {
            live.kill_cause = Some(cause);
        }
    }

    /// Asks the HealthChecker to probe the current run.
    pub(super) fn watch(&mut self, env: Arc<Vec<(String, String)>>, user: crate::probe::ProbeUser) {
        let pid = self.row(|r| r.pid).flatten();
        let (Some(health), Some(live)) = (&self.health, &mut self.live) else {
            return;
        };
        live.probed = health
            .cast(HealthCheckerMsg::Watch {
                run: self.generation,
                env,
                user,
                pid,
            })
            .is_ok();
    }

    /// Tells the HealthChecker to stop probing the current run (once).
    pub(super) fn unwatch(&mut self) {
        let Some(live) = &mut self.live else {
            return;
        };
        if std::mem::take(&mut live.probed)
            && let Some(health) = &self.health
        {
            let _ = health.cast(HealthCheckerMsg::Unwatch);
        }
    }

    pub(super) fn status(&self) -> ServiceStatus {
        self.row(|r| r.status).unwrap_or(ServiceStatus::Pending)
    }

    pub(super) fn row<T>(&self, f: impl FnOnce(&ServiceState) -> T) -> Option<T> {
        self.tables.read_state(&self.def.id, f)
    }

    pub(super) fn pid(&self) -> Option<u32> {
        self.row(|r| r.pid).flatten()
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut ServiceState)) {
        self.tables.update_state(&self.def.id, f);
    }

    pub(super) fn snapshot(&self) -> Result<ServiceState, ControlError> {
        self.tables
            .state(&self.def.id)
            .ok_or_else(|| ControlError::NotFound(self.def.id.clone()))
    }

    pub(super) fn emit(&self, event: Event) {
        self.tables.events.emit(event);
    }

    /// Sets the status (and reason) and emits the event that announces it.
    pub(super) fn transition(&self, status: ServiceStatus, event: Event) {
        let reason = event.cause.clone();
        self.update(|r| {
            r.status = status;
            r.changed_at = Utc::now();
            if reason.is_some() {
                r.reason = reason;
            }
        });
        self.emit(event);
    }

    pub(super) fn reply_starts(&mut self, result: Result<ServiceState, ControlError>) {
        for w in self.start_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    /// Answers the starts (and restarts) still queued when a run ended and no start
    /// follows: a stop or kill asked for after them won. Each hears so, with the status
    /// now (DESIGN §10 "Every request is answered").
    pub(super) fn reply_superseded_starts(&mut self) {
        if self.start_waiters.is_empty() {
            return;
        }
        let superseded = ControlError::Superseded {
            id: self.def.id.clone(),
            action: "start".to_string(),
            by: "stop".to_string(),
            status: self.status().to_string(),
        };
        self.reply_starts(Err(superseded));
    }

    pub(super) fn reply_stops(&mut self) {
        let result = self.snapshot();
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    /// Records the process in the pid table that lets the next boot find it if steward
    /// dies: a read of `/proc/PID/stat` and a `pwrite` of one slot (no file is created
    /// per start: see `process::pid_table`).
    pub(super) fn record_pid(&self, pid: u32) {
        let Some(dir) = &self.tables.state_dir else {
            return;
        };
        let written = process::pid_file::PidRecord::of_process(&self.def.id, pid, false)
            .and_then(|record| process::pid_file::write(dir, &record));
        if let Err(e) = written {
            warn!(service = %self.def.id, pid, error = %e, "could not record the pid");
        }
    }

    pub(super) fn forget_pid(&self) {
        if let Some(dir) = &self.tables.state_dir
            && let Err(e) = process::pid_file::remove(dir, &self.def.id)
        {
            warn!(service = %self.def.id, error = %e, "could not clear the pid record");
        }
    }
}

/// Counts a restart in the `steward_restarts_total{service, reason}` metric.
pub(super) fn count_restart(service: &str, reason: RestartReason) {
    metrics::counter!("steward_restarts_total", "service" => service.to_string(), "reason" => reason.as_str())
        .increment(1);
}

/// The environment and user a spawned process got: what its command probes and a
/// detached service's `stop_command` get too.
/// (No `Debug`: the environment may hold secrets.)
#[derive(Clone)]
pub(super) struct ProbeIdentity {
    pub(super) env: Arc<Vec<(String, String)>>,
    /// `Err`: why the user could not be resolved (probes then fail, never run as steward).
    pub(super) user: crate::probe::ProbeUser,
}

impl Default for ProbeIdentity {
    fn default() -> Self {
        ProbeIdentity {
            env: Arc::default(),
            user: Ok(None),
        }
    }
}

impl ProbeIdentity {
    pub(super) fn of(plan: &SpawnPlan) -> Self {
        ProbeIdentity {
            env: Arc::new(plan.env.clone()),
            user: Ok(plan.user.clone()),
        }
    }
}
