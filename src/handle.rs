//! [`Steward`]: a small async handle over the root supervisor's messages.
//!
//! Every method sends one [`RootMsg`] and awaits its typed reply; an actor can send the
//! same messages itself (see [`Steward::root`]). Dropping the handle does not stop the
//! runtime; [`Steward::shutdown`] does, stopping every service first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, RpcReplyPort};

use crate::config::{self, Config, ReloadPlan, ServiceDefinition};
use crate::control::{BatchResult, ControlAction, RuntimeStatus, ServiceInfo};
use crate::error::{BootError, ControlError};
use crate::events::EventSubscription;
use crate::logs::{LogLine, LogSubscription};
use crate::process;
use crate::runtime::root::{Root, RootArgs, RootMsg};
use crate::runtime::{ActorKind, RuntimeState, Tables};
use crate::state::ServiceState;

/// A handle to a running steward runtime.
#[derive(Debug, Clone)]
pub struct Steward {
    root: ActorRef<RootMsg>,
    tables: Arc<Tables>,
}

impl Steward {
    /// Spawns an empty runtime (a root supervisor with no services) in the current tokio
    /// runtime.
    pub async fn spawn() -> Result<Steward, BootError> {
        Steward::spawn_with_state(None).await
    }

    /// Spawns an empty runtime that keeps pid files under `state_dir` (so a later
    /// runtime can clean up after this one if it dies; see [`Steward::recover`]).
    pub async fn spawn_with_state(state_dir: Option<PathBuf>) -> Result<Steward, BootError> {
        Steward::spawn_with_dirs(state_dir, None).await
    }

    /// Spawns an empty runtime with a state directory (pid files) and the config
    /// directory that [`Steward::reload`] reads and [`Steward::save`] writes.
    pub async fn spawn_with_dirs(
        state_dir: Option<PathBuf>,
        config_dir: Option<PathBuf>,
    ) -> Result<Steward, BootError> {
        Steward::spawn_with_cgroups(state_dir, config_dir, true).await
    }

    /// [`Steward::spawn_with_dirs`], choosing the process tracking: with `cgroups` each
    /// service runs in a cgroup of its own where a writable cgroup v2 hierarchy is found
    /// (`settings.cgroups`; `STEWARD_CGROUPS=off` in the environment overrides it);
    /// without, the process group plus the subreaper. [`Steward::status`] says which mode
    /// is in force and why.
    pub async fn spawn_with_cgroups(
        state_dir: Option<PathBuf>,
        config_dir: Option<PathBuf>,
        cgroups: bool,
    ) -> Result<Steward, BootError> {
        let tracking = process::cgroup::ProcessTracking::detect(cgroups, state_dir.as_deref());
        let tables = Arc::new(Tables::with_tracking(state_dir, config_dir, tracking));
        let (root, _) = Actor::spawn(
            None,
            Root,
            RootArgs {
                tables: tables.clone(),
            },
        )
        .await
        .map_err(|e| BootError::Spawn(e.to_string()))?;
        Ok(Steward { root, tables })
    }

    /// Spawns a runtime with every service of `config` defined, and starts the autostart
    /// ones in definition order.
    ///
    /// This is the one boot path; `steward up` takes the same steps with its own work in
    /// between (printing events, serving the API before the services start):
    ///
    /// 1. [`Steward::prepare`]: crash recovery in the config's `state_dir` (what a killed
    ///    steward left is stopped; a detached daemon is kept only while its service is
    ///    still defined as detached), then an empty runtime with the config's state and
    ///    config directories;
    /// 2. [`Steward::define_all`] with the config's services (none started);
    /// 3. [`Steward::start_all`]: the autostart services, dependencies first.
    pub async fn boot(config: Config) -> Result<Steward, BootError> {
        let steward = Steward::prepare(&config).await?;
        steward.define_all(config.services).await?;
        // A service that fails to start is reported in its state and events; boot goes on.
        steward.start_all().await?;
        Ok(steward)
    }

    /// The first step of [`Steward::boot`]: cleans up after a previous runtime that kept
    /// its pid files in the config's `state_dir` ([`Steward::recover`], then every
    /// detached daemon whose service `config` no longer defines as detached is stopped),
    /// and spawns an empty runtime with the config's state and config directories. Define
    /// and start the services next, as `boot` does.
    pub async fn prepare(config: &Config) -> Result<Steward, BootError> {
        let state_dir = config.settings.state_dir.clone();
        let recovered = Steward::recover(&state_dir).await;
        Steward::stop_unclaimed_daemons(&state_dir, &recovered, &config.services).await;
        Steward::spawn_with_cgroups(
            Some(state_dir),
            Some(config.dir.clone()),
            config.settings.cgroups,
        )
        .await
    }

    /// Crash recovery: stops what a previous runtime that kept its pid files in
    /// `state_dir` left running (matched by process group and start time, never by name),
    /// so nothing is started twice. Call it before booting services from the same
    /// `state_dir`; [`Steward::boot`] does.
    ///
    /// A detached service's daemon that still runs is not stopped: its record stays in
    /// `state_dir/pids` ([`Recovered::Adopt`](process::pid_file::Recovered::Adopt)), and
    /// when the service starts in a runtime with that `state_dir` it adopts the daemon
    /// (`running`, cause "adopted from a previous steward") instead of running `command`
    /// again.
    pub async fn recover(state_dir: &Path) -> Vec<process::pid_file::Recovered> {
        let dir = state_dir.to_path_buf();
        // The process groups first (they get their stop signal and grace), then whatever
        // is left in the cgroups of a steward that was killed (escaped processes).
        let recovered = tokio::task::spawn_blocking(move || {
            let recovered = process::pid_file::recover(&dir);
            process::cgroup::recover(&dir);
            recovered
        })
        .await
        .unwrap_or_default();
        for r in &recovered {
            match r {
                process::pid_file::Recovered::Stopped { record, forced, .. } => tracing::warn!(
                    service = %record.service,
                    pid = record.pid,
                    forced,
                    "stopped a process left by a previous steward"
                ),
                process::pid_file::Recovered::Adopt(record) => tracing::info!(
                    service = %record.service,
                    pid = record.pid,
                    "a detached daemon of a previous steward still runs: its service adopts it when it starts"
                ),
                _ => {}
            }
        }
        recovered
    }

    /// A daemon kept for adoption whose service is no longer defined as detached has no
    /// one to adopt it: it is stopped like any leftover (its group gets SIGTERM, then
    /// SIGKILL), since its `stop_command` is gone with the definition.
    async fn stop_unclaimed_daemons(
        state_dir: &Path,
        recovered: &[process::pid_file::Recovered],
        services: &[ServiceDefinition],
    ) {
        let mut unclaimed = 0;
        for r in recovered {
            let process::pid_file::Recovered::Adopt(record) = r else {
                continue;
            };
            if services
                .iter()
                .any(|d| d.id == record.service && d.detached)
            {
                continue;
            }
            tracing::warn!(service = %record.service, pid = record.pid, "a detached daemon whose service is no longer detached: stopping it");
            let leftover = process::PidRecord {
                detached: false,
                ..record.clone()
            };
            if let Err(e) = process::pid_file::write(state_dir, &leftover) {
                tracing::warn!(service = %record.service, error = %e, "could not rewrite the pid file");
            } else {
                unclaimed += 1;
            }
        }
        if unclaimed > 0 {
            Steward::recover(state_dir).await;
        }
    }

    /// Loads `dir` (services.yml + services.d/*.yml) and boots it.
    pub async fn boot_dir(dir: &Path) -> Result<Steward, BootError> {
        let config = config::load_dir(dir)?;
        Steward::boot(config).await
    }

    /// The root supervisor, for actors that send [`RootMsg`]s themselves.
    pub fn root(&self) -> ActorRef<RootMsg> {
        self.root.clone()
    }

    /// The runtime's shared tables (read-only use: status rows, rings, events).
    pub fn tables(&self) -> &Arc<Tables> {
        &self.tables
    }

    async fn ask<T, F>(&self, make: F) -> Result<T, ControlError>
    where
        F: FnOnce(RpcReplyPort<T>) -> RootMsg,
        T: Send + 'static,
    {
        match self.root.call(make, None).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(ControlError::Runtime("timed out".into())),
            Ok(CallResult::SenderError) => Err(ControlError::Runtime(REPLY_DROPPED.into())),
            Err(e) => Err(ControlError::Runtime(e.to_string())),
        }
    }

    /// Applies a verb to one service; returns once it is done (see [`RootMsg::Control`]).
    pub async fn control(
        &self,
        id: &str,
        action: ControlAction,
    ) -> Result<ServiceState, ControlError> {
        self.ask(|reply| RootMsg::Control {
            id: id.to_string(),
            action,
            reply,
        })
        .await
        .map_err(|e| actors_stopped(id, e))?
    }

    /// Applies a verb to one service; returns as soon as its Server has acted on it (a
    /// stop: the stop signal is sent and the state is `stopping`), with the state then.
    /// See [`RootMsg::ControlNoWait`].
    pub async fn control_no_wait(
        &self,
        id: &str,
        action: ControlAction,
    ) -> Result<ServiceState, ControlError> {
        self.ask(|reply| RootMsg::ControlNoWait {
            id: id.to_string(),
            action,
            reply,
        })
        .await
        .map_err(|e| actors_stopped(id, e))?
    }

    /// Defines a service; starts it when `autostart` is true. Returns its state.
    pub async fn define(
        &self,
        definition: ServiceDefinition,
    ) -> Result<ServiceState, ControlError> {
        self.ask(|reply| RootMsg::Define {
            definition: Box::new(definition),
            reply,
        })
        .await?
    }

    /// Defines many services without starting any; all are checked before any is defined.
    pub async fn define_all(
        &self,
        definitions: Vec<ServiceDefinition>,
    ) -> Result<(), ControlError> {
        self.ask(|reply| RootMsg::DefineAll { definitions, reply })
            .await?
    }

    /// Removes a service that is not running.
    pub async fn remove(&self, id: &str) -> Result<(), ControlError> {
        self.ask(|reply| RootMsg::Remove {
            id: id.to_string(),
            reply,
        })
        .await?
    }

    /// Starts a service; returns once its process is spawned (or it failed to start).
    pub async fn start(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Start).await
    }

    /// Stops a service gracefully; returns once its process is gone.
    pub async fn stop(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Stop).await
    }

    /// Restarts a service; returns once the new process is spawned.
    pub async fn restart(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Restart).await
    }

    /// Re-reads the config directory and applies the difference: new services defined (and
    /// started if autostart), removed ones stopped and removed, changed ones replaced (and
    /// restarted if they were running), unchanged ones untouched. With `dry_run`, only
    /// returns the plan. A config with errors changes nothing.
    pub async fn reload(&self, dry_run: bool) -> Result<ReloadPlan, ControlError> {
        self.ask(|reply| RootMsg::Reload { dry_run, reply }).await?
    }

    /// Writes a service's definition to `<config dir>/services.d/<id>.yml`.
    pub async fn save(&self, id: &str) -> Result<PathBuf, ControlError> {
        self.ask(|reply| RootMsg::Save {
            id: id.to_string(),
            reply,
        })
        .await?
    }

    /// Stops a service and, first, every running service that depends on it: dependents
    /// of dependents before them, each level once the one before is stopped. One result
    /// per stopped service, in the order they stopped (the service itself last); an
    /// unknown id is one `NotFound` entry.
    pub async fn stop_cascade(&self, id: &str) -> Result<BatchResult, ControlError> {
        self.ask(|reply| RootMsg::StopCascade {
            id: id.to_string(),
            reply,
        })
        .await
    }

    /// SIGKILLs a service's process group; returns once it is gone.
    pub async fn kill(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Kill).await
    }

    /// Freezes a service's process group (SIGSTOP) and suspends its probes.
    pub async fn pause(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Pause).await
    }

    /// Thaws a paused service (SIGCONT) and resumes its probes.
    pub async fn resume(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.control(id, ControlAction::Resume).await
    }

    /// A service's state and definition.
    pub async fn get(&self, id: &str) -> Result<ServiceInfo, ControlError> {
        self.ask(|reply| RootMsg::Get {
            id: id.to_string(),
            reply,
        })
        .await?
    }

    /// Every service's state, in definition order.
    pub async fn list(&self) -> Result<Vec<ServiceState>, ControlError> {
        self.ask(|reply| RootMsg::List { tag: None, reply }).await
    }

    /// The states of the services that have `tag`.
    pub async fn list_by_tag(&self, tag: &str) -> Result<Vec<ServiceState>, ControlError> {
        self.ask(|reply| RootMsg::List {
            tag: Some(tag.to_string()),
            reply,
        })
        .await
    }

    /// The last `tail` log lines of a service.
    pub async fn logs(&self, id: &str, tail: usize) -> Result<Vec<LogLine>, ControlError> {
        self.ask(|reply| RootMsg::Logs {
            id: id.to_string(),
            tail,
            reply,
        })
        .await?
    }

    /// Subscribes to a service's log: the last 100 lines (or every line after `since`),
    /// then live lines.
    pub async fn subscribe_logs(
        &self,
        id: &str,
        since: Option<u64>,
    ) -> Result<LogSubscription, ControlError> {
        self.ask(|reply| RootMsg::SubscribeLogs {
            id: id.to_string(),
            since,
            reply,
        })
        .await?
    }

    /// Subscribes to the event stream (replaying the events after `since` still in the ring).
    pub async fn subscribe_events(
        &self,
        since: Option<u64>,
    ) -> Result<EventSubscription, ControlError> {
        self.ask(|reply| RootMsg::SubscribeEvents { since, reply })
            .await
    }

    /// Writes bytes to a service's stdin, as they are. Returns once they are queued for
    /// the process, in order, without waiting for it to read them; refused at once
    /// ([`ControlError::Input`], "stdin buffer full") when the process already has 1 MiB of
    /// input it has not read.
    pub async fn input(&self, id: &str, data: impl Into<Vec<u8>>) -> Result<(), ControlError> {
        let data = data.into();
        self.ask(|reply| RootMsg::Input {
            id: id.to_string(),
            data,
            reply,
        })
        .await?
    }

    /// Starts every autostart service in definition order.
    pub async fn start_all(&self) -> Result<BatchResult, ControlError> {
        self.ask(|reply| RootMsg::StartAll { reply }).await
    }

    /// Stops every service, in the reverse of definition order.
    pub async fn stop_all(&self) -> Result<BatchResult, ControlError> {
        self.ask(|reply| RootMsg::StopAll { reply }).await
    }

    /// Applies a verb to the whole runtime (see [`RootMsg::Lifecycle`]).
    pub async fn lifecycle(&self, action: ControlAction) -> Result<BatchResult, ControlError> {
        self.ask(|reply| RootMsg::Lifecycle { action, reply }).await
    }

    /// The runtime's own status.
    pub async fn status(&self) -> Result<RuntimeStatus, ControlError> {
        self.ask(|reply| RootMsg::Status { reply }).await
    }

    /// Makes one actor of a service panic, to watch the supervision tree recover.
    pub async fn inject_panic(&self, id: &str, actor: ActorKind) -> Result<(), ControlError> {
        self.ask(|reply| RootMsg::InjectPanic {
            id: id.to_string(),
            actor,
            reply,
        })
        .await?
    }

    /// Stops every service gracefully, then the runtime itself.
    pub async fn shutdown(self) -> Result<(), ControlError> {
        self.shutdown_within(Duration::from_secs(3600)).await
    }

    /// Stops every service gracefully within `budget` (each still gets at most its own
    /// `stop_timeout`); whatever is left when the budget runs out is SIGKILLed. Then
    /// stops the runtime itself. Returns once no process of the runtime is left.
    pub async fn shutdown_within(self, budget: Duration) -> Result<(), ControlError> {
        self.tables.set_runtime_state(RuntimeState::Stopping);
        let result = match tokio::time::timeout(budget, self.stop_all()).await {
            Ok(r) => r.map(|_| ()),
            // Each Server that still has a process warns with its id and pid, and its
            // events say the budget forced the kill.
            Err(_) => self
                .ask(|reply| RootMsg::ShutdownKill { budget, reply })
                .await
                .map(|_| ()),
        };
        self.root
            .stop_and_wait(Some("shutdown".into()), None)
            .await
            .map_err(|e| ControlError::Runtime(e.to_string()))?;
        // Every service's actors are gone: remove the runtime's cgroups now rather than
        // when the last handle drops.
        let tables = self.tables.clone();
        let _ = tokio::task::spawn_blocking(move || tables.tracking.release()).await;
        result
    }
}

/// Why [`Steward::ask`] failed when the answer's port was dropped unanswered.
const REPLY_DROPPED: &str = "the reply was dropped (the service's actors stopped)";

/// A verb on one service whose reply was dropped: its actors stopped while they held it
/// (an actor failed and its supervisor is restarting them, or the service gave up). That
/// is the service being unavailable for a moment, not the runtime failing: the caller
/// gets `Unavailable` (HTTP 409 `unavailable`, try again), not an internal error (found
/// by reliability/run's chaos soak, which injects actor panics).
fn actors_stopped(id: &str, error: ControlError) -> ControlError {
    match error {
        ControlError::Runtime(reason) if reason == REPLY_DROPPED => ControlError::Unavailable {
            id: id.to_string(),
            reason: "its actors stopped before answering (an actor failed and is being restarted); try again".to_string(),
        },
        other => other,
    }
}
