//! The Server's detached side: a service whose `command` launches something and exits,
//! like `docker compose up -d` or a server that daemonizes itself (DESIGN §2 `detached`,
//! `stop_command`, `pid_file`; §10 "Install, source, detached"). In OTP terms the daemon
//! is a process steward monitors but does not link to.
//!
//! ```text
//!  starting ── launcher exits 0 ──▶ running (pid from pid_file, else null) ── probes decide
//!     │                               │
//!     └ launcher fails ─┐             └ stop / kill / restart / liveness / daemon gone
//!                       ▼                                   ▼
//!            stop_command, then the   stopping: stop_command (≤ stop_timeout), then the
//!            restart policy           daemon's group gets stop_signal, SIGKILL after
//!                                     stop_timeout → stopped, or the restart policy
//! ```
//!
//! * The launcher runs through the PortManager like any process, but without
//!   `PR_SET_PDEATHSIG` and without its group being killed when it exits: what it leaves
//!   behind is the service.
//! * While it runs the service is `starting`; exit 0 makes it `running`, any other exit is
//!   a failed start (`stop_command` cleans up, then the restart policy, backoff and
//!   intensity apply as to a crash).
//! * The daemon is known only from `pid_file`, by pid and start time (a pid file naming a
//!   process older than the launcher is stale). A task follows it: it rereads the pid file
//!   until it names a live process, and, when the service has no liveness probe, polls
//!   `/proc` every second and reports the daemon's disappearance as the service exiting.
//!   Without `pid_file` and without liveness probe, the service stays `running`.
//! * Every way down (stop, kill, manual restart, failed liveness, daemon gone) is one
//!   path: `stop_command` as a run of its own (the service's cwd, environment and user;
//!   output in the service's log), bounded by `stop_timeout`; then, if the daemon still
//!   runs, `stop_signal` (SIGKILL for a kill) to its process group and SIGKILL after
//!   `stop_timeout`. The end goes through `on_exit`, so intent, restart policy and events
//!   are those of every other service.
//! * While the daemon runs, steward's pid table holds its record with `detached: true`;
//!   a steward that was SIGKILLed leaves it behind, crash recovery keeps it (`Adopt`), and
//!   the next start of the service adopts the daemon instead of launching again.
//!
//! This file holds the way up (launch, adoption, the daemon found); `teardown.rs` the way
//! down; `follow.rs` the task that follows the daemon.
//!
//! Length: about 500 lines for the way up (launch, adoption, pid file, follow); the way
//! down is in `teardown.rs`, the follow task in `follow.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;
use ractor::ActorRef;
use tracing::{debug, info, warn};

use super::state::{LiveRun, ProbeIdentity};
use super::{ServerMsg, ServerState, Work};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::process::pid_file::{self, PidRecord};
use crate::process::{self, daemon};
use crate::runtime::service::decide::{Intent, KillCause};
use crate::runtime::service::generation::Generation;
use crate::state::{ExitInfo, Health, ServiceStatus};

mod follow;
mod teardown;

use follow::{Follow, follow};

/// How often the follow task looks at the daemon (and rereads the pid file).
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// How often the daemon is looked at while steward waits for it to stop.
const REAP_POLL: Duration = Duration::from_millis(50);

/// How long a SIGKILLed daemon may take to disappear before steward reports it and moves on
/// (a process in uninterruptible sleep can take a while).
const KILL_WAIT: Duration = Duration::from_secs(2);

/// How long a launcher may run before its start counts as failed: a detached `command`
/// must launch and exit (`docker compose up -d`, not `up`). As long as a dependency wait.
const LAUNCH_LIMIT: Duration = super::DEPENDENCY_WAIT_LIMIT;

/// The cause of the `started` event of a daemon found running by a new steward.
const ADOPTED: &str = "adopted from a previous steward";

/// The cause of the `started` event when the service's actors were restarted while it ran.
const KEPT: &str = "adopted: still running after the service's actors restarted";

/// Notices from a detached service's own follow task and timers. Each carries the
/// generation of the phase it is about (a phase change starts a generation, except the
/// launch, which is the launcher's run); stale ones are ignored. Only the Server sends
/// them to itself.
#[derive(Debug)]
pub enum DetachedNotice {
    /// The pid file names a live process started after the launcher: the daemon.
    DaemonFound {
        /// Which follow task.
        run: Generation,
        /// The daemon, by pid and start time.
        record: PidRecord,
    },
    /// The daemon being followed is gone.
    DaemonGone {
        /// Which follow task.
        run: Generation,
    },
    /// A deadline of the way down passed (`stop_command`, or the daemon after its signal).
    Deadline {
        /// Which step.
        run: Generation,
    },
    /// `stop_command` could not be run; the way down goes on with the daemon.
    StopCommandNotRun {
        /// Which step.
        run: Generation,
        /// Why.
        reason: String,
    },
}

/// Where a detached service is.
#[derive(Debug)]
enum Phase {
    /// Nothing of it runs, as far as steward knows.
    Idle,
    /// The launcher (run `ServerState::generation`) runs. `teardown`: it was asked to go down.
    Launching { teardown: bool },
    /// The launcher exited 0; the daemon runs (known when the pid file named it).
    Up { daemon: Option<PidRecord> },
    /// `stop_command` (run `ServerState::generation`) runs.
    StopCommand { daemon: Option<PidRecord> },
    /// The daemon got its stop signal; waiting for it to disappear.
    Reaping { daemon: PidRecord },
}

/// The detached side of a Server's state.
pub(super) struct Detached {
    /// The Server itself, for the notices of tasks and timers started from sync code.
    pub(in crate::runtime::service::server) myself: ActorRef<ServerMsg>,
    phase: Phase,
    /// The task following the daemon (aborted when dropped).
    follower: Follower,
    /// The environment and user the launcher got: `stop_command` and probes get the same.
    identity: ProbeIdentity,
    /// The launcher's start time: a pid file naming an older process is stale.
    launcher_started: Option<u64>,
    /// A kill was asked for on this way down.
    kill: bool,
    /// The daemon was SIGKILLed (asked for, or after `stop_timeout`).
    killed: bool,
    /// It had to be SIGKILLed after `stop_timeout`.
    forced: bool,
    /// A failed launcher's exit, reported once `stop_command` has cleaned up.
    launch_exit: Option<ExitInfo>,
}

impl Detached {
    pub(super) fn new(myself: ActorRef<ServerMsg>) -> Self {
        Detached {
            myself,
            phase: Phase::Idle,
            follower: Follower(None),
            identity: ProbeIdentity::default(),
            launcher_started: None,
            kill: false,
            killed: false,
            forced: false,
            launch_exit: None,
        }
    }

    /// Enters `phase` within the current generation (the launcher's run).
    fn enter(&mut self, phase: Phase) {
        self.follower.stop();
        self.phase = phase;
    }

    fn notify(&self, notice: DetachedNotice) {
        let _ = self.myself.cast(ServerMsg::Detached(notice));
    }
}

/// Owns the follow task: aborts it when replaced or dropped (the Server stopped).
struct Follower(Option<tokio::task::JoinHandle<()>>);

impl Follower {
    fn stop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ServerState {
    /// True while a detached launcher runs (a start then waits for its end).
    pub(super) fn launching(&self) -> bool {
        matches!(self.detached.phase, Phase::Launching { teardown: false })
    }

    /// Enters `phase` in a generation of its own, making every notice of the previous
    /// phase stale.
    fn enter_phase(&mut self, phase: Phase) -> Generation {
        self.detached.enter(phase);
        self.next_generation()
    }

    /// The launcher is spawned (run `self.generation`): the service stays `starting` until
    /// it exits; start waiters are answered then.
    pub(super) fn launcher_spawned(&mut self, pid: u32, identity: ProbeIdentity) {
        let run = self.generation;
        let d = &mut self.detached;
        d.identity = identity;
        d.launcher_started = process::start_time(pid);
        d.kill = false;
        d.killed = false;
        d.forced = false;
        d.launch_exit = None;
        d.enter(Phase::Launching { teardown: false });
        d.myself.send_after(LAUNCH_LIMIT, move || {
            ServerMsg::Detached(DetachedNotice::Deadline { run })
        });
        self.update(|r| {
            r.pid = Some(pid);
            r.started_at = Some(Utc::now());
            r.health = Health::Unknown;
            r.ready = false;
        });
        info!(service = %self.def.id, pid, run = run.0, "detached launcher started");
    }

    /// A process of the current run exited: the launcher, or `stop_command`.
    pub(super) async fn on_detached_exit(&mut self, exit: ExitInfo) {
        let id = self.def.id.clone();
        match &self.detached.phase {
            Phase::Launching { teardown: false } if exit.success() => self.daemon_up(),
            Phase::Launching { teardown } => {
                if !*teardown {
                    let cause = KillCause::LauncherFailed(exit.clone());
                    warn!(service = %id, %cause, "detached launch failed");
                    self.reply_starts(Err(ControlError::StartFailed {
                        id: id.clone(),
                        reason: cause.to_string(),
                    }));
                    self.set_kill_cause(cause);
                    self.detached.launch_exit = Some(exit);
                }
                // Whatever it got as far as launching is cleaned up by stop_command.
                self.run_stop_command(None);
            }
            Phase::StopCommand { daemon } => {
                let daemon = daemon.clone();
                if exit.success() {
                    info!(service = %id, "stop_command done");
                } else {
                    warn!(service = %id, exit = %exit.describe(), "stop_command failed");
                }
                self.after_stop_command(daemon).await;
            }
            Phase::Idle | Phase::Up { .. } | Phase::Reaping { .. } => {}
        }
    }

    /// `Detached`: a notice of the follow task or a timer.
    pub(super) fn on_detached(&mut self, notice: DetachedNotice) -> Work<'_> {
        Some(Box::pin(self.on_detached_notice(notice)))
    }

    async fn on_detached_notice(&mut self, notice: DetachedNotice) {
        let current = self.generation;
        match notice {
            DetachedNotice::DaemonFound { run, record } if current.is_current(run) => {
                if let Phase::Up { daemon: None } = self.detached.phase {
                    self.daemon_found(&record);
                    self.detached.phase = Phase::Up {
                        daemon: Some(record),
                    };
                }
            }
            DetachedNotice::DaemonGone { run } if current.is_current(run) => {
                match &self.detached.phase {
                    Phase::Up {
                        daemon: Some(record),
                    } if self.intent == Intent::Run && self.kill_cause().is_none() => {
                        let cause = KillCause::DaemonGone {
                            pid: record.pid,
                            pid_file: self.pid_file_path().unwrap_or_default(),
                        };
                        info!(service = %self.def.id, %cause, "detached daemon gone; restarting");
                        self.set_kill_cause(cause);
                        self.take_down(false);
                    }
                    Phase::Reaping { .. } => self.finish().await,
                    _ => {}
                }
            }
            DetachedNotice::Deadline { run } if current.is_current(run) => self.on_deadline().await,
            DetachedNotice::StopCommandNotRun { run, reason } if current.is_current(run) => {
                if let Phase::StopCommand { daemon } = &self.detached.phase {
                    let daemon = daemon.clone();
                    warn!(service = %self.def.id, %reason, "stop_command not run");
                    self.after_stop_command(daemon).await;
                }
            }
            stale => debug!(service = %self.def.id, ?stale, "stale detached notice ignored"),
        }
    }

    /// The launcher exited 0: the service is `running`, its probes decide from now on.
    fn daemon_up(&mut self) {
        let id = self.def.id.clone();
        let daemon = self.find_daemon();
        let pid = daemon.as_ref().map(|d| d.pid);
        match &daemon {
            Some(record) => self.daemon_found(record),
            // The launcher's record (crash recovery would stop it) no longer applies.
            None => self.forget_pid(),
        }
        self.enter_phase(Phase::Up { daemon });
        let cause = match pid {
            Some(pid) => format!("launcher exited 0; pid {pid} from pid_file"),
            None => "launcher exited 0".to_string(),
        };
        self.went_up(pid, cause);
        info!(service = %id, pid, "detached service running");
    }

    /// `running` with `pid`: row, events, probes, the follow task, start waiters.
    fn went_up(&mut self, pid: Option<u32>, cause: String) {
        let id = self.def.id.clone();
        let ready = self.def.readiness.is_none();
        self.update(|r| {
            r.pid = pid;
            r.started_at = Some(Utc::now());
            r.health = Health::Unknown;
            r.ready = ready;
        });
        let daemon = match &self.detached.phase {
            Phase::Up { daemon } => daemon.clone(),
            _ => None,
        };
        self.tables.set_detached_up(&id, daemon);
        self.transition(
            ServiceStatus::Running,
            Event::new(&id, EventKind::Started).pid(pid).cause(cause),
        );
        if ready {
            self.emit(
                Event::new(&id, EventKind::Ready)
                    .pid(pid)
                    .cause("no readiness probe"),
            );
        }
        self.watch(
            self.detached.identity.env.clone(),
            self.detached.identity.user.clone(),
        );
        self.follow_daemon();
        let result = self.snapshot();
        self.reply_starts(result);
    }

    /// The daemon is known: show its pid and keep its record for crash recovery.
    fn daemon_found(&self, record: &PidRecord) {
        let pid = record.pid;
        self.update(|r| r.pid = Some(pid));
        self.tables
            .update_detached_up(&self.def.id, |up| *up = Some(record.clone()));
        if let Some(dir) = &self.tables.state_dir
            && let Err(e) = pid_file::write(dir, record)
        {
            warn!(service = %self.def.id, pid, error = %e, "could not record the pid");
        }
        info!(service = %self.def.id, pid, "detached daemon known from pid_file");
    }

    fn pid_file_path(&self) -> Option<PathBuf> {
        self.def.pid_file.as_ref().map(|p| self.def.cwd.join(p))
    }

    /// The daemon the pid file names now, if any.
    fn find_daemon(&self) -> Option<PidRecord> {
        let path = self.pid_file_path()?;
        match daemon::find(&self.def.id, &path, self.detached.launcher_started) {
            Ok(record) => Some(record),
            Err(why) => {
                debug!(service = %self.def.id, %why, "no daemon from pid_file yet");
                None
            }
        }
    }

    /// Starts the follow task when there is something to follow: the pid file until it
    /// names the daemon, then (without a liveness probe) the daemon until it is gone.
    fn follow_daemon(&mut self) {
        let Phase::Up { daemon } = &self.detached.phase else {
            return;
        };
        let Some(path) = self.pid_file_path() else {
            return;
        };
        let watch_exit = self.def.liveness.is_none();
        if daemon.is_some() && !watch_exit {
            return;
        }
        let task = follow(Follow {
            server: self.detached.myself.clone(),
            run: self.generation,
            service: self.def.id.clone(),
            path: Some(path),
            known: daemon.clone(),
            not_before: self.detached.launcher_started,
            watch_exit,
            poll: FOLLOW_POLL,
        });
        self.detached.follower.0 = Some(tokio::spawn(task));
    }

    /// Pause and resume signal the daemon's group; without a known daemon they are refused.
    pub(super) fn signal_daemon(&self, signal: Signal) -> Result<(), ControlError> {
        let id = self.def.id.clone();
        let action = if signal == Signal::SIGSTOP {
            "pause"
        } else {
            "resume"
        };
        let Phase::Up {
            daemon: Some(record),
        } = &self.detached.phase
        else {
            return Err(ControlError::Unsupported {
                id,
                action: action.to_string(),
                reason: "it is detached and steward knows no pid of it: give it a `pid_file` \
                         so that pause and resume can signal its process group"
                    .to_string(),
            });
        };
        match daemon::signal(record, signal) {
            Ok(true) => Ok(()),
            Ok(false) => Err(ControlError::Unavailable {
                id,
                reason: format!("its daemon (pid {}) is gone", record.pid),
            }),
            Err(e) => Err(ControlError::Unavailable {
                id,
                reason: format!("cannot signal its daemon (pid {}): {e}", record.pid),
            }),
        }
    }

    /// At start: what is already up is adopted instead of launched again, so nothing runs
    /// twice. That is a service whose actors were restarted (one-for-all) while it ran
    /// ([`Tables::detached_up`](crate::runtime::Tables)), or a daemon a previous, killed steward left running (its
    /// record in `state_dir/pids`, kept by crash recovery). False when there is none.
    pub(super) fn adopt_left_behind(&mut self) -> bool {
        let id = self.def.id.clone();
        let (daemon, cause) = match self.tables.detached_up(&id) {
            Some(daemon) => (daemon, KEPT),
            None => match self
                .tables
                .state_dir
                .as_ref()
                .map(|d| pid_file::read(d, &id))
            {
                Some(Ok(Some(record))) if record.detached => (Some(record), ADOPTED),
                _ => return false,
            },
        };
        if daemon.as_ref().is_some_and(|d| !daemon::is_running(d)) {
            self.tables.clear_detached_up(&id);
            self.forget_pid();
            return false;
        }
        // Probes and stop_command run as the service's process would have; when that cannot
        // be worked out any more, they fail with the reason instead of running as steward.
        let identity = self.service_plan(Vec::new()).map_or_else(
            |reason| {
                warn!(service = %id, %reason, "probes and stop_command of the adopted daemon cannot run");
                ProbeIdentity {
                    env: Arc::default(),
                    user: Err(reason),
                }
            },
            |plan| ProbeIdentity::of(&plan),
        );
        let pid = daemon.as_ref().map(|d| d.pid);
        info!(service = %id, pid, %cause, "adopting a detached service that is up");
        self.live = LiveRun::begun_now();
        self.readiness = Health::Unknown;
        self.liveness = Health::Unknown;
        let d = &mut self.detached;
        d.identity = identity;
        d.launcher_started = None;
        d.kill = false;
        d.killed = false;
        d.forced = false;
        d.launch_exit = None;
        self.enter_phase(Phase::Up { daemon });
        self.went_up(pid, cause.to_string());
        true
    }
}
