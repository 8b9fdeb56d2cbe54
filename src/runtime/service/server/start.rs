//! Starting a service: a start request, the way to the spawn (adopt a detached daemon
//! left up, clone and install, wait for dependencies) and the spawn itself, and a start
//! that fails (`failed`, with the reason in words).
//!
//! A manual start is a fresh start: backoff and restart intensity forget the past
//! (DESIGN §10 "Manual actions are not crashes").

use std::time::{Duration, Instant};

use chrono::Utc;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use tracing::{info, warn};

use super::state::{LiveRun, ProbeIdentity};
use super::{ControlReply, SPAWN_TIMEOUT, ServerMsg, ServerState, Work};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::process::{self, SpawnPlan};
use crate::runtime::service::decide::{BackoffFacts, Intent, Outcome, decide_spawn_failure};
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::{Health, ServiceStatus};

impl ServerState {
    /// `Start` / `StartNeeded`.
    pub(super) fn on_start(
        &mut self,
        myself: ActorRef<ServerMsg>,
        reply: ControlReply,
        cause: String,
    ) -> Work<'_> {
        Some(Box::pin(async move {
            self.request_start(&myself, reply, &cause).await
        }))
    }

    /// A start asked for by a person or an actor: answered at once when it runs, queued
    /// behind a start or stop under way, else a fresh start.
    pub(super) async fn request_start(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        reply: ControlReply,
        cause: &str,
    ) {
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
                // (A restart timer still pending is stale once this start mints its
                // generation, or finds the status no longer `backoff`.)
                self.intensity.reset();
                self.next_backoff = 0;
                self.pending_restart = None;
                self.intent = Intent::Run;
                self.start_waiters.push(reply);
                self.start(myself, cause).await;
            }
        }
    }

    /// Starts the service: clones and installs first when needed (install.rs), waits for
    /// its dependencies when it has any, then spawns.
    pub(super) async fn start(&mut self, myself: &ActorRef<ServerMsg>, cause: &str) {
        if self.def.detached && self.adopt_left_behind() {
            return;
        }
        if self.begin_setup(cause).await {
            return; // a clone or install runs; its exit carries the start on
        }
        if self.def.depends_on.is_empty() {
            return self.spawn_process(cause).await;
        }
        self.wait_for_dependencies(myself, cause);
    }

    /// Spawns a process for the service; replies to every start waiter.
    pub(super) async fn spawn_process(&mut self, cause: &str) {
        if let Some(function) = self.def.function.clone() {
            return self.spawn_function(cause, function).await;
        }
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
        if self.def.write_env_file
            && let Err(reason) = process::write_env_file(&self.def)
        {
            return self.fail_start(reason);
        }
        // Command probes (and a detached service's stop_command) run like this process.
        let like_this = ProbeIdentity::of(&plan);
        // The process (not its probes) gets the notify socket.
        let plan = match self.with_notify_socket(plan) {
            Ok(plan) => plan,
            Err(reason) => return self.fail_start(reason),
        };
        let run = self.next_generation();
        let spawned = port
            .call(
                |reply| PortManagerMsg::Spawn { run, plan, reply },
                Some(SPAWN_TIMEOUT),
            )
            .await;
        let pid = match spawned {
            Ok(CallResult::Success(Ok(pid))) => pid,
            Ok(CallResult::Success(Err(error))) if error.is_transient() => {
                return self.spawn_failed_for_now(error.to_string());
            }
            Ok(CallResult::Success(Err(error))) => return self.fail_start(error.to_string()),
            Ok(CallResult::Timeout) => {
                return self.fail_start("spawning the process timed out".to_string());
            }
            Ok(CallResult::SenderError) | Err(_) => {
                return self.fail_start("the service's process manager is gone".to_string());
            }
        };
        self.live = LiveRun::begun_now();
        self.record_pid(pid);
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
            r.notify_status = None;
        });
        info!(service = %id, pid, run = run.0, "started");
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
        self.watch(like_this.env, like_this.user);
        let result = self.snapshot();
        self.reply_starts(result);
    }

    /// How the service's own commands run — its process, clone and install steps,
    /// `stop_command`, command probes (DESIGN §10): in its cwd, with its resolved
    /// environment, as its user (with that user's HOME, USER and LOGNAME).
    pub(super) fn service_plan(&self, argv: Vec<String>) -> Result<SpawnPlan, String> {
        let env = process::environment::resolve(&self.def)?;
        let mut plan = SpawnPlan::new(argv, self.def.cwd.clone(), env);
        if let Some(name) = &self.def.user {
            let user = process::resolve_user(name, self.def.group.as_deref())?;
            plan = plan.run_as(user, &self.def.env);
        }
        Ok(plan)
    }

    /// The spawn failed for a reason that passes (EMFILE, ENFILE, EAGAIN, ENOMEM): like a
    /// crash, the service goes through backoff and the restart intensity instead of being
    /// `failed` for good; every start waiter hears why, and that it will be retried.
    fn spawn_failed_for_now(&mut self, reason: String) {
        warn!(service = %self.def.id, %reason, "could not spawn; retrying after the backoff delay");
        let backoff = BackoffFacts {
            delays: &self.def.backoff,
            next_index: self.next_backoff,
            ran_for: Duration::ZERO,
        };
        let outcome =
            decide_spawn_failure(reason.clone(), backoff, &mut self.intensity, Instant::now());
        let myself = self.detached.myself.clone();
        match outcome {
            Outcome::Backoff {
                delay,
                next_index,
                reason: counted,
                cause,
                ..
            } => {
                self.update(|r| {
                    r.pid = None;
                    r.ready = false;
                });
                self.enter_backoff(&myself, delay, next_index, counted, cause);
                let err = ControlError::StartFailed {
                    id: self.def.id.clone(),
                    reason: format!(
                        "{reason}; retrying in {}",
                        humantime::format_duration(delay)
                    ),
                };
                self.reply_starts(Err(err));
            }
            Outcome::Failed { cause, .. } => self.fail_start(cause.to_string()),
            other => self.fail_start(format!("{reason} ({other:?})")),
        }
    }

    /// The start could not happen: the service is `failed` with `reason`, and every start
    /// waiter hears why.
    pub(super) fn fail_start(&mut self, reason: String) {
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
}
