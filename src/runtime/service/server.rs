//! Server: the lifecycle coordinator of one service (the `gen_server` at the heart of
//! each service's subtree).
//!
//! It owns the service's state machine (DESIGN §3) and is the only writer of the service's
//! status row. It asks the PortManager to spawn, stop and signal the process, hears back
//! when the process exits, hears probe verdicts from the HealthChecker, and applies the
//! restart policy, the backoff and the restart intensity (`crate::restart`). Every
//! transition emits exactly one event, with a cause when it is a consequence.
//!
//! ```text
//!  pending ─start─▶ starting ─spawned─▶ running ─exit─▶ backoff ─delay─▶ starting …
//!     ▲                │                 │  ▲ │            │
//!     │          bad env/cwd          pause resume      intensity passed
//!     │                ▼                 ▼  │ │            ▼
//!     │              failed            paused │         failed
//!     │                                       ├─exit, policy says no─▶ exited
//!     └──────────────── stopped ◀─ stopping ◀─┘ stop / kill
//! ```
//!
//! Manual actions (stop, kill, restart, start) never count towards `max_restarts` or the
//! backoff (DESIGN §10).
//!
//! A detached service (`command` launches a daemon and exits) runs the same machine with
//! its own launch, stop and adoption steps, kept in the `detached` submodule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::future::BoxFuture;
use nix::sys::signal::Signal;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{info, warn};

use crate::config::{Dependency, ProbeKind, RestartPolicy, ServiceDefinition};
use crate::dependencies::{Verdict, condition_met};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::process::{self, SpawnPlan};
use crate::restart::{self, RestartIntensity};
use crate::runtime::service::health_checker::HealthCheckerMsg;
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::runtime::{RuntimeState, Tables};
use crate::state::{ExitInfo, Health, ServiceState, ServiceStatus};

mod detached;
mod install;

pub use detached::DetachedNotice;

/// The reply to a control message: the service's state once the action is done.
pub type ControlReply = RpcReplyPort<Result<ServiceState, ControlError>>;

/// Messages to a Server.
#[derive(Debug)]
pub enum ServerMsg {
    /// From the ServiceSupervisor, right after spawning its siblings.
    Attach {
        /// The PortManager.
        port: ActorRef<PortManagerMsg>,
        /// The HealthChecker, when the service has probes.
        health: Option<ActorRef<HealthCheckerMsg>>,
        /// `Some(cause)` when the actors were restarted (one-for-all) while the service was
        /// meant to run: start it again.
        recover: Option<String>,
    },
    /// Start the process (a no-op when it runs). Replies once it is spawned, or failed.
    Start(ControlReply),
    /// Start because another service needs it (the event says so). Replies like `Start`.
    StartNeeded {
        /// The service that needs this one.
        by: String,
        /// The state once spawned.
        reply: ControlReply,
    },
    /// Stop gracefully. Replies once it is stopped.
    Stop(ControlReply),
    /// Stop, then start. Replies once the new process is spawned.
    Restart(ControlReply),
    /// SIGKILL the group now. Replies once it is stopped.
    Kill(ControlReply),
    /// SIGSTOP the group, suspend probes.
    Pause(ControlReply),
    /// SIGCONT the group, resume probes.
    Resume(ControlReply),
    /// Write bytes to stdin.
    Input {
        /// The bytes.
        data: Vec<u8>,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
    /// From the PortManager: the process of `run` exited and its pipes are drained.
    ProcessExited {
        /// Which run.
        run: u64,
        /// How it ended.
        exit: ExitInfo,
        /// True when it had to be SIGKILLed after `stop_timeout`.
        forced_kill: bool,
    },
    /// From the HealthChecker: a probe's verdict changed (thresholds already applied).
    ProbeVerdict {
        /// Which run.
        run: u64,
        /// Which probe.
        probe: ProbeKind,
        /// The new verdict.
        healthy: bool,
        /// Words for the event (`liveness http 503 ×3`).
        cause: String,
    },
    /// From the dependency watcher: every `depends_on` condition holds.
    DependenciesMet {
        /// Which wait (stale ones are ignored).
        token: u64,
    },
    /// From the dependency watcher: a dependency will not meet its condition.
    DependencyFailed {
        /// Which wait.
        token: u64,
        /// The dependency.
        dependency: String,
        /// Why, in words.
        reason: String,
    },
    /// Timer: the backoff delay before a restart has passed.
    RestartDue {
        /// Which restart (stale timers are ignored).
        attempt_token: u64,
    },
    /// A detached service's own watch task and deadlines (see [`DetachedNotice`]).
    Detached(DetachedNotice),
    /// Replies once every message sent before it has been handled (used to send stop
    /// signals to many services strictly in order without waiting for their exits).
    Sync(RpcReplyPort<()>),
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
}

/// Arguments of a Server.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// The service.
    pub definition: Arc<ServiceDefinition>,
    /// The runtime's tables (the Server writes its own status row).
    pub tables: Arc<Tables>,
}

/// What the service should do once its current process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Keep it running: apply the restart policy to an exit.
    Run,
    /// A person or actor asked it to stop.
    Stop,
    /// A person or actor asked for a restart: start again once the process is gone.
    Restart,
}

/// State of a Server.
pub struct ServerState {
    def: Arc<ServiceDefinition>,
    tables: Arc<Tables>,
    port: Option<ActorRef<PortManagerMsg>>,
    health: Option<ActorRef<HealthCheckerMsg>>,
    /// Number of the current (or last) spawned process; messages about others are stale.
    run: u64,
    /// A process of `run` exists.
    alive: bool,
    /// When the current process was spawned (for the backoff reset).
    spawned_at: Option<Instant>,
    intent: Intent,
    /// Index into `backoff` for the next automatic restart.
    next_backoff: u32,
    intensity: RestartIntensity,
    /// Identifies the pending restart timer; bumping it cancels the timer.
    restart_token: u64,
    /// The backoff delay passed while the runtime was paused; resume restarts it.
    restart_deferred: bool,
    /// The current wait for dependencies (stale watcher messages carry older tokens).
    dependency_token: u64,
    /// The task watching the dependencies, while the service waits for them.
    dependency_watch: Option<tokio::task::JoinHandle<()>>,
    /// Why the current process is being taken down by steward itself (liveness, startup).
    kill_cause: Option<String>,
    /// Readiness / liveness verdicts of the current process.
    readiness: Health,
    liveness: Health,
    /// Replied once the next process is spawned (or could not be).
    start_waiters: Vec<ControlReply>,
    /// Replied once the process is gone.
    stop_waiters: Vec<ControlReply>,
    /// The clone / install steps of the current start (install.rs), while they run.
    setup: install::Setup,
    /// A detached service's launcher, daemon and stop path (unused otherwise).
    detached: detached::Detached,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("service", &self.def.id)
            .field("run", &self.run)
            .field("alive", &self.alive)
            .field("intent", &self.intent)
            .finish_non_exhaustive()
    }
}

/// The Server actor.
#[derive(Debug, Default)]
pub struct Server;

impl Actor for Server {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = ServerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ServerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let def = args.definition;
        // A restarted Server (one-for-all) keeps the row: restart count, last exit, reason.
        args.tables
            .states
            .entry(def.id.clone())
            .or_insert_with(|| ServiceState::pending(&def.id, &def.name, &def.tags));
        Ok(ServerState {
            intensity: RestartIntensity::new(def.max_restarts, def.restart_window),
            def,
            tables: args.tables,
            port: None,
            health: None,
            run: 0,
            alive: false,
            spawned_at: None,
            intent: Intent::Stop,
            next_backoff: 0,
            restart_token: 0,
            restart_deferred: false,
            dependency_token: 0,
            dependency_watch: None,
            kill_cause: None,
            readiness: Health::Unknown,
            liveness: Health::Unknown,
            start_waiters: Vec::new(),
            stop_waiters: Vec::new(),
            setup: install::Setup::default(),
            detached: detached::Detached::new(myself),
        })
    }

    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // ractor keeps the largest form of this future inlined (twice) in the actor's
        // resident message loop, for as long as the service is defined. So the message is
        // handled here, before the future exists: what does not wait is done at once, and
        // what waits (a start, an exit, a pause) becomes a boxed future of its own; the
        // future left holds only that box. A control message is rare; its box is not.
        let work: Option<BoxFuture<'_, ()>> = match msg {
            ServerMsg::Attach {
                port,
                health,
                recover,
            } => {
                state.port = Some(port);
                state.health = health;
                recover.map(|cause| -> BoxFuture<'_, ()> {
                    count_restart(&state.def.id, "crash");
                    state.emit(
                        Event::new(&state.def.id, EventKind::Restarting).cause(cause.clone()),
                    );
                    state.intent = Intent::Run;
                    Box::pin(async move { state.start(&myself, &cause).await })
                })
            }
            ServerMsg::Start(reply) => Some(Box::pin(async move {
                state.on_start(&myself, reply, "start requested").await
            })),
            ServerMsg::StartNeeded { by, reply } => Some(Box::pin(async move {
                let cause = format!("needed by {by}");
                state.on_start(&myself, reply, &cause).await
            })),
            ServerMsg::DependenciesMet { token } => {
                if token == state.dependency_token && state.dependency_watch.take().is_some() {
                    Some(Box::pin(state.spawn_process("dependencies met")))
                } else {
                    None
                }
            }
            ServerMsg::DependencyFailed {
                token,
                dependency,
                reason,
            } => {
                if token == state.dependency_token && state.dependency_watch.take().is_some() {
                    state.fail_dependency(dependency, reason);
                }
                None
            }
            ServerMsg::Stop(reply) => {
                state.on_stop(reply, false);
                None
            }
            ServerMsg::Kill(reply) => {
                state.on_stop(reply, true);
                None
            }
            ServerMsg::Restart(reply) => {
                Some(Box::pin(
                    async move { state.on_restart(&myself, reply).await },
                ))
            }
            ServerMsg::Pause(reply) => Some(Box::pin(state.on_pause(reply))),
            ServerMsg::Resume(reply) => {
                Some(Box::pin(
                    async move { state.on_resume(&myself, reply).await },
                ))
            }
            ServerMsg::Input { data, reply } => Some(Box::pin(state.on_input(data, reply))),
            ServerMsg::ProcessExited {
                run,
                exit,
                forced_kill,
            } => {
                if run == state.run && state.setup.is_running() {
                    Some(Box::pin(
                        async move { state.on_setup_exit(&myself, exit).await },
                    ))
                } else if state.def.detached {
                    Some(Box::pin(state.on_detached_exit(run, exit)))
                } else if run == state.run && state.alive {
                    Some(Box::pin(async move {
                        state.on_exit(&myself, exit, forced_kill).await
                    }))
                } else {
                    None
                }
            }
            ServerMsg::Detached(notice) => Some(Box::pin(state.on_detached_notice(notice))),
            ServerMsg::ProbeVerdict {
                run,
                probe,
                healthy,
                cause,
            } => {
                if run == state.run && state.alive {
                    state.on_verdict(probe, healthy, cause);
                }
                None
            }
            ServerMsg::RestartDue { attempt_token } => {
                if attempt_token == state.restart_token
                    && state.status() == ServiceStatus::Backoff
                    && state.tables.runtime_state() == RuntimeState::Paused
                {
                    // Restarts never fire while the runtime is paused; resume starts it.
                    state.restart_deferred = true;
                    None
                } else if attempt_token == state.restart_token
                    && state.status() == ServiceStatus::Backoff
                {
                    let cause = state
                        .row(|r| r.reason.clone())
                        .flatten()
                        .unwrap_or_else(|| "restart".to_string());
                    state.emit(
                        Event::new(&state.def.id, EventKind::Restarting)
                            .cause(format!("backoff elapsed after {cause}")),
                    );
                    Some(Box::pin(async move {
                        state.start(&myself, "automatic restart").await
                    }))
                } else {
                    None
                }
            }
            ServerMsg::Sync(reply) => {
                let _ = reply.send(());
                None
            }
            ServerMsg::Panic(why) => panic!("{why}"),
        };
        async move {
            if let Some(work) = work {
                work.await;
            }
            Ok(())
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let unavailable = || ControlError::Unavailable {
            id: state.def.id.clone(),
            reason: "the service's actors stopped".to_string(),
        };
        for w in state.start_waiters.drain(..) {
            let _ = w.send(Err(unavailable()));
        }
        for w in state.stop_waiters.drain(..) {
            let _ = w.send(Err(unavailable()));
        }
        if let Some(watch) = state.dependency_watch.take() {
            watch.abort();
        }
        Ok(())
    }
}

impl ServerState {
    fn status(&self) -> ServiceStatus {
        self.row(|r| r.status).unwrap_or(ServiceStatus::Pending)
    }

    fn row<T>(&self, f: impl FnOnce(&ServiceState) -> T) -> Option<T> {
        self.tables.states.get(&self.def.id).map(|r| f(&r))
    }

    fn update(&self, f: impl FnOnce(&mut ServiceState)) {
        if let Some(mut row) = self.tables.states.get_mut(&self.def.id) {
            f(&mut row);
        }
    }

    fn snapshot(&self) -> Result<ServiceState, ControlError> {
        self.tables
            .states
            .get(&self.def.id)
            .map(|r| r.clone())
            .ok_or_else(|| ControlError::NotFound(self.def.id.clone()))
    }

    fn emit(&self, event: Event) {
        self.tables.events.emit(event);
    }

    /// Sets the status (and reason) and emits the event that announces it.
    fn transition(&self, status: ServiceStatus, event: Event) {
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

    fn reply_starts(&mut self, result: Result<ServiceState, ControlError>) {
        for w in self.start_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    fn reply_stops(&mut self) {
        let result = self.snapshot();
        for w in self.stop_waiters.drain(..) {
            let _ = w.send(result.clone());
        }
    }

    async fn on_start(&mut self, myself: &ActorRef<ServerMsg>, reply: ControlReply, cause: &str) {
        match self.status() {
            ServiceStatus::Starting if self.dependency_watch.is_some() || self.launching() => {
                self.start_waiters.push(reply);
            }
            ServiceStatus::Installing if self.setup.is_running() => {
                self.start_waiters.push(reply);
            }
            ServiceStatus::Running | ServiceStatus::Paused | ServiceStatus::Starting => {
                let _ = reply.send(self.snapshot());
            }
            ServiceStatus::Stopping => {
                // Start again as soon as the old process is gone.
                self.intent = Intent::Restart;
                self.start_waiters.push(reply);
            }
            _ => {
                // A manual start is a fresh start: backoff and intensity forget the past.
                self.restart_token += 1;
                self.intensity.reset();
                self.next_backoff = 0;
                self.intent = Intent::Run;
                self.start_waiters.push(reply);
                self.start(myself, cause).await;
            }
        }
    }

    /// Starts the service: clones and installs first when needed (install.rs), waits for
    /// its dependencies when it has any, then spawns.
    async fn start(&mut self, myself: &ActorRef<ServerMsg>, cause: &str) {
        if self.def.detached && self.adopt_left_behind() {
            return;
        }
        if self.begin_setup(cause).await {
            return; // a clone or install runs; its exit carries the start on
        }
        if self.def.depends_on.is_empty() {
            return self.spawn_process(cause).await;
        }
        let waiting_for = self
            .def
            .depends_on
            .iter()
            .map(|d| format!("{}: {}", d.service, d.condition.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        self.transition(
            ServiceStatus::Starting,
            Event::new(&self.def.id, EventKind::Starting)
                .cause(format!("{cause}; waiting for {waiting_for}")),
        );
        self.dependency_token += 1;
        if let Some(old) = self.dependency_watch.take() {
            old.abort();
        }
        self.dependency_watch = Some(tokio::spawn(watch_dependencies(
            self.tables.clone(),
            self.def.depends_on.clone(),
            myself.clone(),
            self.dependency_token,
        )));
    }

    fn fail_dependency(&mut self, dependency: String, reason: String) {
        let cause = format!("dependency {dependency} {reason}");
        warn!(service = %self.def.id, %cause, "could not start");
        self.intent = Intent::Stop;
        self.transition(
            ServiceStatus::Failed,
            Event::new(&self.def.id, EventKind::Failed).cause(cause),
        );
        let err = ControlError::DependencyFailed {
            id: self.def.id.clone(),
            dependency,
            reason,
        };
        self.reply_starts(Err(err));
    }

    /// Spawns a process for the service; replies to every start waiter.
    async fn spawn_process(&mut self, cause: &str) {
        let id = self.def.id.clone();
        self.transition(
            ServiceStatus::Starting,
            Event::new(&id, EventKind::Starting).cause(cause),
        );
        let plan = match process::environment::check_cwd(&self.def)
            .and_then(|()| self.service_plan(process::argv_for(&self.def.command)))
        {
            Ok(plan) => plan.detached(self.def.detached),
            Err(reason) => return self.fail_start(reason),
        };
        let Some(port) = self.port.clone() else {
            return self.fail_start("the service's process manager is not attached".to_string());
        };
        if self.def.write_env_file {
            if let Err(reason) = process::write_env_file(&self.def) {
                return self.fail_start(reason);
            }
        }
        // Command probes (and a detached service's stop_command) run like this process.
        let like_this = ProbeIdentity::of(&plan);
        let run = self.run + 1;
        let spawned = port
            .call(
                |reply| PortManagerMsg::Spawn { run, plan, reply },
                Some(SPAWN_TIMEOUT),
            )
            .await;
        let pid = match spawned {
            Ok(CallResult::Success(Ok(pid))) => pid,
            Ok(CallResult::Success(Err(reason))) => return self.fail_start(reason),
            Ok(CallResult::Timeout) => {
                return self.fail_start("spawning the process timed out".to_string());
            }
            Ok(CallResult::SenderError) | Err(_) => {
                return self.fail_start("the service's process manager is gone".to_string());
            }
        };
        self.run = run;
        self.alive = true;
        self.record_pid(pid);
        self.kill_cause = None;
        self.spawned_at = Some(Instant::now());
        self.readiness = Health::Unknown;
        self.liveness = Health::Unknown;
        if self.def.detached {
            return self.launcher_spawned(pid, like_this);
        }
        let ready = self.def.readiness.is_none();
        self.update(|r| {
            r.pid = Some(pid);
            r.started_at = Some(Utc::now());
            r.health = Health::Unknown;
            r.ready = ready;
        });
        info!(service = %id, pid, run, "started");
        self.transition(
            ServiceStatus::Running,
            Event::new(&id, EventKind::Started).pid(Some(pid)),
        );
        if ready {
            self.emit(
                Event::new(&id, EventKind::Ready)
                    .pid(Some(pid))
                    .cause("no readiness probe"),
            );
        }
        if let Some(health) = &self.health {
            let _ = health.cast(HealthCheckerMsg::Watch {
                run,
                env: like_this.env,
                user: like_this.user,
            });
        }
        let result = self.snapshot();
        self.reply_starts(result);
    }

    /// How the service's own commands run — its process, clone and install steps,
    /// `stop_command`, command probes (DESIGN §10): in its cwd, with its resolved
    /// environment, as its user (with that user's HOME, USER and LOGNAME).
    fn service_plan(&self, argv: Vec<String>) -> Result<SpawnPlan, String> {
        let env = process::environment::resolve(&self.def)?;
        let mut plan = SpawnPlan::new(argv, self.def.cwd.clone(), env);
        if let Some(name) = &self.def.user {
            let user = process::resolve_user(name, self.def.group.as_deref())?;
            plan = plan.run_as(user, &self.def.env);
        }
        Ok(plan)
    }

    /// Writes the pid file that lets the next boot find this process if steward dies.
    fn record_pid(&self, pid: u32) {
        let Some(dir) = &self.tables.state_dir else {
            return;
        };
        let written = process::pid_file::PidRecord::of_process(&self.def.id, pid, false)
            .and_then(|record| process::pid_file::write(dir, &record));
        if let Err(e) = written {
            warn!(service = %self.def.id, pid, error = %e, "could not write the pid file");
        }
    }

    fn forget_pid(&self) {
        if let Some(dir) = &self.tables.state_dir {
            if let Err(e) = process::pid_file::remove(dir, &self.def.id) {
                warn!(service = %self.def.id, error = %e, "could not remove the pid file");
            }
        }
    }

    fn fail_start(&mut self, reason: String) {
        warn!(service = %self.def.id, %reason, "could not start");
        // A restart that fails leaves no record of the process before it.
        self.forget_pid();
        self.intent = Intent::Stop;
        self.update(|r| {
            r.pid = None;
            r.ready = false;
        });
        self.transition(
            ServiceStatus::Failed,
            Event::new(&self.def.id, EventKind::Failed).cause(reason.clone()),
        );
        let err = ControlError::StartFailed {
            id: self.def.id.clone(),
            reason,
        };
        self.reply_starts(Err(err));
    }

    fn on_stop(&mut self, reply: ControlReply, kill: bool) {
        let id = self.def.id.clone();
        if self.setup.is_running() {
            return self.stop_setup(reply, kill);
        }
        if let Some(watch) = self.dependency_watch.take() {
            // Still waiting for dependencies: nothing runs yet, just stop waiting.
            watch.abort();
            self.intent = Intent::Stop;
            self.transition(
                ServiceStatus::Stopped,
                Event::new(&id, EventKind::Stopped)
                    .cause("stop requested while waiting for dependencies"),
            );
            let unavailable = ControlError::Unavailable {
                id: id.clone(),
                reason: "stopped while waiting for its dependencies".to_string(),
            };
            self.reply_starts(Err(unavailable));
            let _ = reply.send(self.snapshot());
            return;
        }
        match self.status() {
            ServiceStatus::Backoff => {
                self.restart_token += 1;
                self.intent = Intent::Stop;
                self.transition(
                    ServiceStatus::Stopped,
                    Event::new(&id, EventKind::Stopped)
                        .cause("stop requested while waiting to restart"),
                );
                let _ = reply.send(self.snapshot());
            }
            _ if self.alive => {
                self.intent = Intent::Stop;
                self.stop_waiters.push(reply);
                let pid = self.row(|r| r.pid).flatten();
                let cause = if kill {
                    "kill requested"
                } else {
                    "stop requested"
                };
                if self.status() != ServiceStatus::Stopping || kill {
                    self.transition(
                        ServiceStatus::Stopping,
                        Event::new(&id, EventKind::Stopping).pid(pid).cause(cause),
                    );
                }
                self.take_down(kill);
            }
            _ => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    /// Asks the PortManager to end the current process (stop signal, or SIGKILL).
    fn take_down(&mut self, kill: bool) {
        if let Some(health) = &self.health {
            let _ = health.cast(HealthCheckerMsg::Unwatch);
        }
        if self.def.detached {
            return self.take_down_detached(kill);
        }
        self.end_current_run(kill);
    }

    /// Asks the PortManager to end the group of the current run, whatever it runs (the
    /// service, or a clone / install step): the stop signal (SIGKILL after
    /// `stop_timeout`), or SIGKILL now.
    fn end_current_run(&self, kill: bool) {
        let Some(port) = &self.port else {
            return;
        };
        let msg = if kill {
            PortManagerMsg::Kill { run: self.run }
        } else {
            PortManagerMsg::Stop {
                run: self.run,
                signal: self.def.stop_signal,
                timeout: self.def.stop_timeout,
            }
        };
        if port.cast(msg).is_err() {
            warn!(service = %self.def.id, run = self.run, "the process manager is gone");
        }
    }

    async fn on_restart(&mut self, myself: &ActorRef<ServerMsg>, reply: ControlReply) {
        if self.alive {
            let id = self.def.id.clone();
            let pid = self.row(|r| r.pid).flatten();
            self.intent = Intent::Restart;
            self.start_waiters.push(reply);
            count_restart(&id, "manual");
            self.emit(
                Event::new(&id, EventKind::Restarting)
                    .pid(pid)
                    .cause("restart requested"),
            );
            self.transition(
                ServiceStatus::Stopping,
                Event::new(&id, EventKind::Stopping)
                    .pid(pid)
                    .cause("restart requested"),
            );
            self.take_down(false);
        } else {
            self.on_start(myself, reply, "restart requested").await;
        }
    }

    async fn on_pause(&mut self, reply: ControlReply) {
        match self.status() {
            ServiceStatus::Paused => {
                let _ = reply.send(self.snapshot());
            }
            // Nothing to freeze; the runtime-wide pause holds its restart back.
            ServiceStatus::Backoff
            | ServiceStatus::Stopped
            | ServiceStatus::Exited
            | ServiceStatus::Failed
            | ServiceStatus::Pending
                if self.tables.runtime_state() == RuntimeState::Paused =>
            {
                let _ = reply.send(self.snapshot());
            }
            ServiceStatus::Running if self.alive => {
                if let Err(e) = self.signal(Signal::SIGSTOP).await {
                    let _ = reply.send(Err(e));
                    return;
                }
                if let Some(health) = &self.health {
                    let _ = health.cast(HealthCheckerMsg::Suspend);
                }
                let pid = self.row(|r| r.pid).flatten();
                self.update(|r| r.ready = false);
                self.transition(
                    ServiceStatus::Paused,
                    Event::new(&self.def.id, EventKind::Paused)
                        .pid(pid)
                        .cause("pause requested"),
                );
                let _ = reply.send(self.snapshot());
            }
            status => {
                let _ = reply.send(Err(ControlError::NotRunning {
                    id: self.def.id.clone(),
                    status: status.to_string(),
                }));
            }
        }
    }

    async fn on_resume(&mut self, myself: &ActorRef<ServerMsg>, reply: ControlReply) {
        if self.status() == ServiceStatus::Backoff && self.restart_deferred {
            self.restart_deferred = false;
            self.start_waiters.push(reply);
            self.emit(
                Event::new(&self.def.id, EventKind::Restarting)
                    .cause("runtime resumed; the backoff delay had passed"),
            );
            self.start(myself, "automatic restart").await;
            return;
        }
        if self.status() != ServiceStatus::Paused {
            let _ = reply.send(self.snapshot());
            return;
        }
        if let Err(e) = self.signal(Signal::SIGCONT).await {
            let _ = reply.send(Err(e));
            return;
        }
        if let Some(health) = &self.health {
            let _ = health.cast(HealthCheckerMsg::Resume);
        }
        let pid = self.row(|r| r.pid).flatten();
        let ready = self.is_ready();
        self.update(|r| r.ready = ready);
        self.transition(
            ServiceStatus::Running,
            Event::new(&self.def.id, EventKind::Resumed)
                .pid(pid)
                .cause("resume requested"),
        );
        let _ = reply.send(self.snapshot());
    }

    async fn signal(&self, signal: Signal) -> Result<(), ControlError> {
        if self.def.detached {
            return self.signal_daemon(signal);
        }
        let unavailable = |reason: String| ControlError::Unavailable {
            id: self.def.id.clone(),
            reason,
        };
        let port = self
            .port
            .as_ref()
            .ok_or_else(|| unavailable("no process manager".into()))?;
        let run = self.run;
        match port
            .call(
                |reply| PortManagerMsg::Signal { run, signal, reply },
                Some(SPAWN_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(Ok(()))) => Ok(()),
            Ok(CallResult::Success(Err(reason))) => Err(unavailable(reason)),
            _ => Err(unavailable("the process manager did not answer".into())),
        }
    }

    async fn on_input(&self, data: Vec<u8>, reply: RpcReplyPort<Result<(), ControlError>>) {
        let id = self.def.id.clone();
        let (Some(port), true) = (&self.port, self.alive) else {
            let _ = reply.send(Err(ControlError::NotRunning {
                id,
                status: self.status().to_string(),
            }));
            return;
        };
        let result = match port
            .call(
                |r| PortManagerMsg::Input { data, reply: r },
                Some(SPAWN_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(Ok(()))) => Ok(()),
            Ok(CallResult::Success(Err(reason))) => Err(ControlError::Input { id, reason }),
            _ => Err(ControlError::Input {
                id,
                reason: "the process manager did not answer".into(),
            }),
        };
        let _ = reply.send(result);
    }

    fn is_ready(&self) -> bool {
        self.alive && (self.def.readiness.is_none() || self.readiness == Health::Healthy)
    }

    /// The health shown for the service: readiness when it has that probe, else liveness.
    fn shown_health(&self) -> Health {
        if self.def.readiness.is_some() {
            self.readiness
        } else {
            self.liveness
        }
    }

    fn on_verdict(&mut self, probe: ProbeKind, healthy: bool, cause: String) {
        let id = self.def.id.clone();
        let verdict = if healthy {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        let before_health = self.shown_health();
        let was_ready = self.is_ready();
        match probe {
            ProbeKind::Startup => {
                if !healthy {
                    // A startup probe that never passes is a failed start: take the
                    // process down and let the restart policy decide.
                    self.kill_cause = Some(format!("failed start: {cause}"));
                    self.take_down(false);
                }
                return;
            }
            ProbeKind::Readiness => self.readiness = verdict,
            ProbeKind::Liveness => self.liveness = verdict,
        }
        let health = self.shown_health();
        if health != before_health {
            self.update(|r| r.health = health);
            let mut event = Event::new(&id, EventKind::HealthChanged).cause(cause.clone());
            event.health = Some(health);
            self.emit(event);
        }
        let paused = self.status() == ServiceStatus::Paused;
        let ready = self.is_ready() && !paused;
        if ready != was_ready {
            self.update(|r| r.ready = ready);
            if ready {
                let pid = self.row(|r| r.pid).flatten();
                self.emit(
                    Event::new(&id, EventKind::Ready)
                        .pid(pid)
                        .cause(cause.clone()),
                );
            }
        }
        if probe == ProbeKind::Liveness && !healthy && self.kill_cause.is_none() {
            info!(service = %id, %cause, "liveness failed; restarting");
            self.kill_cause = Some(cause);
            self.take_down(false);
        }
    }

    async fn on_exit(&mut self, myself: &ActorRef<ServerMsg>, exit: ExitInfo, forced_kill: bool) {
        let id = self.def.id.clone();
        self.alive = false;
        // While a restart may follow, the dead process's record stays until the new spawn
        // writes over it: an unlink here would delay every restart (a stale record is
        // harmless, recovery finds its process gone). Every other outcome removes it.
        let restart_may_follow =
            matches!(self.intent, Intent::Run | Intent::Restart) && !self.def.detached;
        if !restart_may_follow {
            self.forget_pid();
        }
        let ran_for = self
            .spawned_at
            .take()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        let pid = self.row(|r| r.pid).flatten();
        if let Some(health) = &self.health {
            let _ = health.cast(HealthCheckerMsg::Unwatch);
        }
        self.update(|r| {
            r.pid = None;
            r.ready = false;
            r.health = Health::Unknown;
            r.last_exit = Some(exit.clone());
            r.cpu_percent = None;
            r.rss_bytes = None;
        });
        let kill_cause = self.kill_cause.take();
        let mut exited = Event::new(&id, EventKind::Exited).pid(pid);
        exited.exit_code = exit.code;
        exited.signal = exit.signal.clone();
        exited.cause = match (&kill_cause, self.intent, forced_kill) {
            (_, Intent::Stop | Intent::Restart, true) => Some(format!(
                "did not exit within stop_timeout {}; killed with SIGKILL",
                humantime::format_duration(self.def.stop_timeout)
            )),
            (Some(cause), _, _) => Some(cause.clone()),
            (None, Intent::Stop, _) => Some("stopped on request".to_string()),
            (None, Intent::Restart, _) => Some("restart requested".to_string()),
            (None, Intent::Run, _) => None,
        };
        if forced_kill {
            warn!(service = %id, "did not stop in time; the process group was SIGKILLed");
        }
        info!(service = %id, exit = %exit.describe(), "exited");

        match self.intent {
            Intent::Stop => {
                self.emit(exited);
                let cause = if forced_kill {
                    "stopped (SIGKILL after stop_timeout)"
                } else {
                    "stopped on request"
                };
                self.transition(
                    ServiceStatus::Stopped,
                    Event::new(&id, EventKind::Stopped).cause(cause),
                );
                self.reply_stops();
            }
            Intent::Restart => {
                self.emit(exited);
                self.reply_stops();
                self.intent = Intent::Run;
                self.start(myself, "restart requested").await;
            }
            Intent::Run => {
                let what = kill_cause.unwrap_or_else(|| exit.describe());
                if !exit_restarts(&what, &exit, self.def.restart) {
                    // Not restarted by policy: the process is done, the service `exited`.
                    self.intent = Intent::Stop;
                    exited.cause = Some(format!(
                        "{what}; restart policy {} does not restart it",
                        self.def.restart.as_str()
                    ));
                    self.forget_pid();
                    self.transition(ServiceStatus::Exited, exited);
                    self.reply_stops();
                    return;
                }
                self.emit(exited);
                if let Err(cause) = self.intensity.record(Instant::now()) {
                    self.forget_pid();
                    self.intent = Intent::Stop;
                    self.transition(
                        ServiceStatus::Failed,
                        Event::new(&id, EventKind::Failed).cause(format!("{cause} (last: {what})")),
                    );
                    self.reply_stops();
                    return;
                }
                let reason = if what.starts_with("liveness") {
                    "liveness"
                } else {
                    "crash"
                };
                count_restart(&id, reason);
                let index = restart::backoff_index(self.next_backoff, ran_for, &self.def.backoff);
                let delay = restart::backoff_delay(&self.def.backoff, index);
                self.next_backoff = index.saturating_add(1);
                self.restart_token += 1;
                self.update(|r| r.restart_count += 1);
                let mut event = Event::new(&id, EventKind::Backoff).cause(what);
                event.delay_ms = Some(delay.as_millis() as u64);
                self.transition(ServiceStatus::Backoff, event);
                let token = self.restart_token;
                if !delay.is_zero() {
                    self.forget_pid();
                }
                if delay.is_zero() {
                    // A timer would round a zero delay up to the next tick (about 1 ms).
                    let _ = myself.cast(ServerMsg::RestartDue {
                        attempt_token: token,
                    });
                } else {
                    myself.send_after(delay, move || ServerMsg::RestartDue {
                        attempt_token: token,
                    });
                }
            }
        }
    }
}

/// Whether an exit leads to a restart under `policy`. A process steward took down itself
/// (failed liveness or startup probe) is a failure even if it exited 0 on the stop signal.
fn exit_restarts(what: &str, exit: &ExitInfo, policy: RestartPolicy) -> bool {
    let by_probe = what.starts_with("liveness") || what.starts_with("failed start");
    match policy {
        RestartPolicy::Permanent => true,
        RestartPolicy::Transient => by_probe || restart::wants_restart(policy, exit),
        RestartPolicy::Temporary => false,
    }
}

/// Watches the dependencies' status rows until every condition holds (→
/// `DependenciesMet`) or one never will (→ `DependencyFailed`), re-checking after every
/// event of the runtime.
async fn watch_dependencies(
    tables: Arc<Tables>,
    deps: Vec<Dependency>,
    server: ActorRef<ServerMsg>,
    token: u64,
) {
    // Subscribe before the first check so no change falls between the two.
    let mut events = tables.events.subscribe(None);
    let deadline = tokio::time::Instant::now() + DEPENDENCY_WAIT_LIMIT;
    loop {
        let mut all_met = true;
        for dep in &deps {
            let verdict = match tables.states.get(&dep.service) {
                Some(row) => condition_met(&row, dep.condition),
                None => Verdict::Failed("is not defined".to_string()),
            };
            match verdict {
                Verdict::Met => {}
                Verdict::Waiting => all_met = false,
                Verdict::Failed(reason) => {
                    let _ = server.cast(ServerMsg::DependencyFailed {
                        token,
                        dependency: dep.service.clone(),
                        reason,
                    });
                    return;
                }
            }
        }
        if all_met {
            let _ = server.cast(ServerMsg::DependenciesMet { token });
            return;
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(_)) => continue,
            Ok(None) => return,
            Err(_) => {
                let pending = deps
                    .iter()
                    .filter(|d| {
                        tables
                            .states
                            .get(&d.service)
                            .is_none_or(|row| condition_met(&row, d.condition) != Verdict::Met)
                    })
                    .map(|d| d.service.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = server.cast(ServerMsg::DependencyFailed {
                    token,
                    dependency: pending,
                    reason: format!(
                        "did not meet its condition within {}",
                        humantime::format_duration(DEPENDENCY_WAIT_LIMIT)
                    ),
                });
                return;
            }
        }
    }
}

/// How long a service waits for its dependencies' conditions before it fails.
pub const DEPENDENCY_WAIT_LIMIT: Duration = Duration::from_secs(300);

/// Counts a restart in the `steward_restarts_total{service, reason}` metric
/// (`crash`, `liveness`, `manual`, `dependency`).
fn count_restart(service: &str, reason: &'static str) {
    metrics::counter!("steward_restarts_total", "service" => service.to_string(), "reason" => reason)
        .increment(1);
}

/// The environment and user a spawned process got: what its command probes and a
/// detached service's `stop_command` get too.
/// (No `Debug`: the environment may hold secrets.)
#[derive(Clone)]
struct ProbeIdentity {
    env: Arc<Vec<(String, String)>>,
    /// `Err`: why the user could not be resolved (probes then fail, never run as steward).
    user: crate::probe::ProbeUser,
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
    fn of(plan: &SpawnPlan) -> Self {
        ProbeIdentity {
            env: Arc::new(plan.env.clone()),
            user: Ok(plan.user.clone()),
        }
    }
}

/// How long a spawn (or a signal, or a stdin write) may take before the Server gives up.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(10);
