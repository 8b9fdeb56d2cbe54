//! HealthChecker: runs a service's startup, readiness and liveness probes and reports
//! verdicts (after the thresholds) to the Server.
//!
//! In OTP terms this is a worker beside the Server under the service's one-for-all
//! supervisor; its only output is `ServerMsg::ProbeVerdict`, sent when a probe's verdict
//! *changes*. What a verdict means (health, ready, a liveness restart, a failed start) is
//! the Server's decision.
//!
//! How it runs, and the guarantees it keeps:
//!
//! * Each probe run happens in a spawned task (first a sleep for the delay, then
//!   [`run_probe`]) that sends its outcome back as [`HealthCheckerMsg::Outcome`]. `handle`
//!   never waits on a probe, so a slow probe delays neither other probes nor control
//!   messages.
//! * A probe is a chain: its next run is scheduled `interval` after the previous outcome
//!   arrived, so at most one run of each probe is in flight.
//! * Every stop or restart of probing (`Watch`, `Unwatch`, `Suspend`, `Resume`) bumps a
//!   generation and aborts the tasks in flight (a command probe's process group is killed
//!   with its task); an outcome from an older generation that was already in the mailbox
//!   is ignored. A suspended (frozen) process is therefore never declared unhealthy.
//! * With a startup probe, readiness and liveness wait until it passes once; failing
//!   `failure_threshold` times in a row ends probing for that run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::AbortHandle;

use crate::config::{ProbeCheck, ProbeKind, ServiceDefinition};
use crate::probe::{ProbeContext, ProbeOutcome, ProbeUser, run_probe};
use crate::process::secrets::MaskedEnv;
use crate::runtime::service::decide::VerdictCause;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::server::ServerMsg;

mod notify;
mod track;

pub use notify::ServiceNotice;
pub(crate) use track::ProbeTrack;

/// Messages to a HealthChecker. Their `Debug` shows an environment's names only.
pub enum HealthCheckerMsg {
    /// A process started: begin probing it (startup first, if any).
    Watch {
        /// The Server's generation of the run, echoed in verdicts.
        run: Generation,
        /// The environment the service's process got (with `user:`, including that
        /// user's HOME, USER and LOGNAME), for command probes.
        env: Arc<Vec<(String, String)>>,
        /// The user the service's process runs as; command probes run as it too.
        user: ProbeUser,
        /// The main process: notify datagrams count only from its process tree.
        pid: Option<u32>,
    },
    /// The process is gone: stop probing, forget counters.
    Unwatch,
    /// The process group is frozen: stop probing without a verdict.
    Suspend,
    /// The process group is thawed: probe again (counters start afresh).
    Resume,
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
    /// Internal: a datagram arrived on the service's notify socket (from its reader task).
    Datagram(crate::notify::service::Datagram),
    /// Internal: a watchdog timer ran out (`armed` numbers the timer; older ones are stale).
    WatchdogDue {
        /// The probing generation the timer was armed in.
        generation: u64,
        /// Which arming of the timer.
        armed: u64,
    },
    /// Internal: a probe run finished. Sent only by the HealthChecker's own probe tasks.
    Outcome {
        /// Which probe ran.
        probe: ProbeKind,
        /// The generation the run was scheduled in; outcomes of older ones are stale.
        generation: u64,
        /// What the run found.
        outcome: ProbeOutcome,
    },
}

impl std::fmt::Debug for HealthCheckerMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthCheckerMsg::Watch {
                run,
                env,
                user,
                pid,
            } => f
                .debug_struct("Watch")
                .field("run", run)
                .field("env", &MaskedEnv(env))
                .field("user", user)
                .field("pid", pid)
                .finish(),
            HealthCheckerMsg::Datagram(datagram) => {
                f.debug_tuple("Datagram").field(datagram).finish()
            }
            HealthCheckerMsg::WatchdogDue { generation, armed } => f
                .debug_struct("WatchdogDue")
                .field("generation", generation)
                .field("armed", armed)
                .finish(),
            HealthCheckerMsg::Unwatch => f.write_str("Unwatch"),
            HealthCheckerMsg::Suspend => f.write_str("Suspend"),
            HealthCheckerMsg::Resume => f.write_str("Resume"),
            HealthCheckerMsg::Panic(why) => f.debug_tuple("Panic").field(why).finish(),
            HealthCheckerMsg::Outcome {
                probe,
                generation,
                outcome,
            } => f
                .debug_struct("Outcome")
                .field("probe", probe)
                .field("generation", generation)
                .field("outcome", outcome)
                .finish(),
        }
    }
}

/// Arguments of a HealthChecker.
#[derive(Debug, Clone)]
pub struct HealthCheckerArgs {
    /// The service.
    pub definition: Arc<ServiceDefinition>,
    /// Where verdicts go.
    pub server: ActorRef<ServerMsg>,
    /// Shared HTTP client.
    pub http: reqwest::Client,
    /// The service's notify socket (`readiness: { notify: true }` or `watchdog`), opened
    /// before the Server so that its address can go into `NOTIFY_SOCKET`; read here.
    pub notify_socket: Option<Arc<crate::notify::ServiceNotifySocket>>,
}

/// State of a HealthChecker.
#[derive(Debug)]
pub struct HealthCheckerState {
    /// The service, for its probe specs and cwd.
    definition: Arc<ServiceDefinition>,
    /// Where verdicts go.
    server: ActorRef<ServerMsg>,
    /// Shared by every HTTP probe run.
    http: reqwest::Client,
    /// Bumped each time probing stops or restarts, so late outcomes can be told apart.
    /// Not the Server's [`Generation`]: probing also stops and restarts within one run
    /// (suspend, resume), and outcomes of a suspended round must be dropped too.
    generation: u64,
    /// The process being probed; `None` between `Unwatch` and the next `Watch`.
    watched: Option<Watched>,
    /// Probe runs in flight or waiting for their delay; aborted when probing stops.
    tasks: ProbeTasks,
    /// The notify socket's reader, when the service has a socket (dropped with the actor).
    _notify: Option<notify::NotifyEndpoint>,
}

/// What the HealthChecker knows about the run it watches. Its `Debug` shows the
/// environment's names only.
struct Watched {
    /// Echoed in verdicts so the Server can drop those of an older process.
    run: Generation,
    /// Command probes run with the service's environment (plus, with `user:`, that
    /// user's `HOME`, `USER` and `LOGNAME`, as the service got them).
    env: Arc<Vec<(String, String)>>,
    /// Command probes run as the service's user; `Err` says why it could not be resolved.
    user: ProbeUser,
    /// Which probes are due.
    phase: Phase,
    /// While true (process frozen), nothing runs.
    suspended: bool,
    /// Counters and last verdict per probe.
    tracks: HashMap<ProbeKind, ProbeTrack>,
    /// `READY=1` and the watchdog timer of this run.
    notify: notify::RunNotify,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("run", &self.run)
            .field("env", &MaskedEnv(&self.env))
            .field("user", &self.user)
            .field("phase", &self.phase)
            .field("suspended", &self.suspended)
            .field("tracks", &self.tracks)
            .field("notify", &self.notify)
            .finish()
    }
}

/// Where a run is in its probe lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Only the startup probe runs, until it passes once or gives up.
    Startup,
    /// Readiness and liveness run (startup passed, or there is none).
    Steady,
    /// Startup failed `failure_threshold` times in a row: no more probing for this run.
    GaveUp,
}

/// Owns the abort handles of the probe tasks; aborts them all when dropped, so an actor
/// that stops (or panics) leaves no probe running behind it.
#[derive(Debug, Default)]
struct ProbeTasks(HashMap<ProbeKind, AbortHandle>);

impl ProbeTasks {
    fn abort_all(&mut self) {
        for (_, handle) in self.0.drain() {
            handle.abort();
        }
    }
}

impl Drop for ProbeTasks {
    fn drop(&mut self) {
        self.abort_all();
    }
}

/// The HealthChecker actor.
#[derive(Debug, Default)]
pub struct HealthChecker;

impl Actor for HealthChecker {
    type Msg = HealthCheckerMsg;
    type State = HealthCheckerState;
    type Arguments = HealthCheckerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: HealthCheckerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let notify = notify::start_reader(&myself, &args.definition.id, args.notify_socket);
        Ok(HealthCheckerState {
            definition: args.definition,
            server: args.server,
            http: args.http,
            generation: 0,
            watched: None,
            tasks: ProbeTasks::default(),
            _notify: notify,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HealthCheckerMsg::Watch {
                run,
                env,
                user,
                pid,
            } => on_watch(&myself, state, run, env, user, pid),
            HealthCheckerMsg::Unwatch => on_unwatch(state),
            HealthCheckerMsg::Suspend => on_suspend(state),
            HealthCheckerMsg::Resume => on_resume(&myself, state),
            HealthCheckerMsg::Outcome {
                probe,
                generation,
                outcome,
            } => on_outcome(&myself, state, probe, generation, outcome),
            HealthCheckerMsg::Datagram(datagram) => notify::on_datagram(&myself, state, datagram),
            HealthCheckerMsg::WatchdogDue { generation, armed } => {
                notify::on_watchdog_due(state, generation, armed)
            }
            HealthCheckerMsg::Panic(why) => panic!("{why}"),
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.tasks.abort_all();
        Ok(())
    }
}

/// Stops whatever runs and makes every outcome still on its way stale.
fn stop_probing(state: &mut HealthCheckerState) {
    state.generation = state.generation.wrapping_add(1);
    state.tasks.abort_all();
}

fn on_watch(
    myself: &ActorRef<HealthCheckerMsg>,
    state: &mut HealthCheckerState,
    run: Generation,
    env: Arc<Vec<(String, String)>>,
    user: ProbeUser,
    pid: Option<u32>,
) {
    stop_probing(state);
    let phase = if state.definition.startup.is_some() {
        Phase::Startup
    } else {
        Phase::Steady
    };
    tracing::debug!(service = %state.definition.id, run = run.0, "probing a new run");
    state.watched = Some(Watched {
        run,
        env,
        user,
        phase,
        suspended: false,
        tracks: HashMap::new(),
        notify: notify::RunNotify::new(pid),
    });
    start_phase(myself, state, FirstRun::AfterInitialDelay);
    // The first watchdog deadline counts from the spawn.
    notify::arm_watchdog(myself, state);
}

fn on_unwatch(state: &mut HealthCheckerState) {
    stop_probing(state);
    state.watched = None;
}

fn on_suspend(state: &mut HealthCheckerState) {
    let already = match &state.watched {
        Some(watched) => watched.suspended,
        None => return,
    };
    if !already {
        stop_probing(state);
        notify::disarm_watchdog(state);
        if let Some(watched) = &mut state.watched {
            watched.suspended = true;
        }
    }
}

fn on_resume(myself: &ActorRef<HealthCheckerMsg>, state: &mut HealthCheckerState) {
    let Some(watched) = &mut state.watched else {
        return;
    };
    // A Resume without a Suspend must not start a second chain of each probe.
    if !watched.suspended {
        return;
    }
    watched.suspended = false;
    for track in watched.tracks.values_mut() {
        track.reset_counters();
    }
    stop_probing(state);
    start_phase(myself, state, FirstRun::AfterInterval);
    // A frozen process could not ping: it gets a full period from the thaw.
    notify::arm_watchdog(myself, state);
}

/// When the first run of a (re)started probe happens.
#[derive(Debug, Clone, Copy)]
enum FirstRun {
    /// The process just started: honour `initial_delay`.
    AfterInitialDelay,
    /// The process was thawed: it had its initial delay; give it one interval.
    AfterInterval,
}

/// Schedules the first run of each probe due in the current phase.
fn start_phase(
    myself: &ActorRef<HealthCheckerMsg>,
    state: &mut HealthCheckerState,
    first: FirstRun,
) {
    let Some(watched) = &state.watched else {
        return;
    };
    let kinds: &[ProbeKind] = match watched.phase {
        Phase::Startup => &[ProbeKind::Startup],
        Phase::Steady => &[ProbeKind::Readiness, ProbeKind::Liveness],
        Phase::GaveUp => &[],
    };
    for &kind in kinds {
        let Some(spec) = state.definition.probe(kind) else {
            continue;
        };
        // Notify readiness is the service's READY=1 (notify.rs): nothing to poll.
        if spec.check == ProbeCheck::Notify {
            continue;
        }
        let delay = match first {
            FirstRun::AfterInitialDelay => spec.initial_delay,
            FirstRun::AfterInterval => spec.interval,
        };
        schedule(myself, state, kind, delay);
    }
}

/// Spawns one run of `kind` after `delay`; its outcome comes back as a message.
fn schedule(
    myself: &ActorRef<HealthCheckerMsg>,
    state: &mut HealthCheckerState,
    kind: ProbeKind,
    delay: Duration,
) {
    let (Some(spec), Some(watched)) = (state.definition.probe(kind), &state.watched) else {
        return;
    };
    let check = spec.check.clone();
    let timeout = spec.timeout;
    let ctx = ProbeContext {
        http: state.http.clone(),
        cwd: state.definition.cwd.clone(),
        env: Arc::clone(&watched.env),
        user: watched.user.clone(),
    };
    let generation = state.generation;
    let myself = myself.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let outcome = run_probe(&check, timeout, &ctx).await;
        // The actor may be gone (stopped or restarted); the outcome is moot then.
        let _ = myself.cast(HealthCheckerMsg::Outcome {
            probe: kind,
            generation,
            outcome,
        });
    });
    if let Some(previous) = state.tasks.0.insert(kind, task.abort_handle()) {
        // Unreachable by construction (one chain per probe); abort rather than run two.
        previous.abort();
    }
}

fn on_outcome(
    myself: &ActorRef<HealthCheckerMsg>,
    state: &mut HealthCheckerState,
    kind: ProbeKind,
    generation: u64,
    outcome: ProbeOutcome,
) {
    if generation != state.generation {
        return;
    }
    state.tasks.0.remove(&kind);
    let service = state.definition.id.clone();
    let Some(spec) = state.definition.probe(kind).cloned() else {
        return;
    };
    let Some(watched) = &mut state.watched else {
        return;
    };
    if watched.suspended {
        return;
    }
    tracing::debug!(
        service = %service,
        probe = kind.as_str(),
        ok = outcome.ok,
        latency_ms = outcome.latency.as_secs_f64() * 1000.0,
        detail = %outcome.detail,
        "probe ran"
    );
    metrics::histogram!(
        "steward_probe_duration_seconds",
        "service" => service.clone(),
        "probe" => kind.as_str(),
    )
    .record(outcome.latency.as_secs_f64());
    crate::metrics::sample_recorded();

    // The startup probe passes once: its success threshold is always 1.
    let success_threshold = match kind {
        ProbeKind::Startup => 1,
        _ => spec.success_threshold,
    };
    let track = watched.tracks.entry(kind).or_default();
    let changed = track.record(outcome.ok, success_threshold, spec.failure_threshold);
    let streak = track.streak();
    let verdict = track.verdict();
    let run = watched.run;

    if let Some(healthy) = changed {
        let cause = VerdictCause {
            probe: kind,
            detail: outcome.detail.clone(),
            streak,
        };
        tracing::info!(service = %service, run = run.0, probe = kind.as_str(), healthy, cause = %cause, "probe verdict");
        let report = ServerMsg::ProbeVerdict {
            run,
            healthy,
            cause,
        };
        if let Err(e) = state.server.cast(report) {
            tracing::warn!(service = %service, error = %e, "server gone; verdict dropped");
        }
    }

    match (kind, verdict) {
        (ProbeKind::Startup, Some(true)) => {
            watched.phase = Phase::Steady;
            start_phase(myself, state, FirstRun::AfterInitialDelay);
            // A READY=1 that came during start-up counts now.
            notify::send_ready(state);
        }
        (ProbeKind::Startup, Some(false)) => {
            watched.phase = Phase::GaveUp;
        }
        _ => schedule(myself, state, kind, spec.interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_env_names_only() {
        let msg = HealthCheckerMsg::Watch {
            run: Generation(1),
            env: Arc::new(vec![("DB_URL".into(), "postgres://u:pw@h/db".into())]),
            user: Ok(None),
            pid: Some(1),
        };
        let text = format!("{msg:?}");
        assert!(text.contains("DB_URL") && !text.contains("pw@h"), "{text}");
    }
}
