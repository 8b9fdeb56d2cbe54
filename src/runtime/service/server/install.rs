//! The setup of a start: clone the `source`, run `install` (DESIGN §10 "Install,
//! source, detached").
//!
//! A start first asks [`ServerState::begin_setup`] whether anything must happen before
//! the process: a clone when the service has a `source` and its effective cwd does not
//! exist (see [`crate::source`]), then `install` when the install marker does not hold
//! the fingerprint of the current `install` + `source` (or a fresh clone was just made).
//! Each step is a run of its own through the PortManager, built like the service's
//! process (same cwd, environment and user), so its output lands in the service's log,
//! its process group is killed on stop or when steward goes away, and it gets a pid file
//! for crash recovery. The service is `installing` meanwhile, one `installing` event per
//! step.
//!
//! ```text
//!  start ─▶ clone? ─▶ checkout ref? ─▶ install? ─▶ marker written ─▶ dependencies ─▶ spawn
//!              │            │              │
//!              └── non-zero exit or signal: failed (no marker; a manual start retries)
//!              └── stop / kill: the step's group is stopped, the service `stopped`
//! ```
//!
//! When every step succeeded the marker is written and the start carries on from the
//! top, which now finds nothing to set up. A restart after a crash finds the marker
//! current and goes straight to the dependencies and the spawn.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ractor::ActorRef;
use ractor::rpc::CallResult;
use tracing::{info, warn};

use super::{SPAWN_TIMEOUT, ServerMsg, ServerState};
use crate::config::CommandSpec;
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::process::{self, SpawnPlan, install_marker};
use crate::runtime::service::decide::Intent;
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::source;
use crate::state::{ExitInfo, ServiceStatus};

/// How many of a failed step's last output lines go into the `failed` reason.
pub(super) const FAILURE_LINES: usize = 5;

/// What the setup of the current start still has to do. Empty (the default) when no
/// setup runs.
#[derive(Debug, Default)]
pub(super) struct Setup {
    /// The step whose process runs now (its run is `ServerState::generation`). Boxed: a
    /// `Setup` lives in every Server's state, and most services never run a step.
    current: Option<Box<Step>>,
    /// The steps after it, in order.
    rest: VecDeque<Step>,
    /// `(staging, target)`: the clone is renamed into place once the source steps passed.
    clone_into: Option<(PathBuf, PathBuf)>,
    /// Written to the marker once every step succeeded.
    fingerprint: String,
    /// The last log line before the current step spawned: its output comes after.
    log_mark: u64,
    /// The cause of the start, carried on to the spawn.
    cause: String,
}

impl Setup {
    /// True while a clone or install process runs.
    pub(super) fn is_running(&self) -> bool {
        self.current.is_some()
    }
}

/// What [`ServerState::spawn_next_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextStep {
    /// A step's process runs; its exit carries the setup on.
    Running,
    /// It could not be spawned: the service is `failed`.
    Failed,
    /// No step was left.
    Done,
}

/// One clone, checkout or install run.
#[derive(Debug)]
struct Step {
    kind: StepKind,
    plan: SpawnPlan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepKind {
    Clone,
    Checkout,
    Install,
}

impl StepKind {
    fn is_source(self) -> bool {
        matches!(self, StepKind::Clone | StepKind::Checkout)
    }
}

impl ServerState {
    /// Starts the setup when the start needs one. Returns true when the start must not
    /// go on now: a step runs (its exit carries the start on), or the setup could not
    /// begin (the service is then `failed`).
    pub(super) async fn begin_setup(&mut self, cause: &str) -> bool {
        if self.def.install.is_none() && self.def.source.is_none() {
            return false;
        }
        match self.plan_setup(cause) {
            Ok(None) => false,
            Ok(Some(setup)) => {
                self.setup = setup;
                match self.spawn_next_step().await {
                    NextStep::Running | NextStep::Failed => true,
                    // Nothing had to run (a source already in place): marker, and on.
                    NextStep::Done => self.finish_setup().is_none(),
                }
            }
            Err(reason) => {
                self.transition(
                    ServiceStatus::Starting,
                    Event::new(&self.def.id, EventKind::Starting).cause(cause),
                );
                self.fail_start(reason);
                true
            }
        }
    }

    /// The steps this start needs (`None`: nothing to do), or why they cannot run.
    fn plan_setup(&self, cause: &str) -> Result<Option<Setup>, String> {
        let def = &self.def;
        let keys = match (&def.install, &def.source) {
            (Some(_), Some(_)) => "`install` and `source` need",
            (Some(_), None) => "`install` needs",
            _ => "`source` needs",
        };
        let Some(state_dir) = self.tables.state_dir.clone() else {
            return Err(format!(
                "{keys} a state directory (for the clone and the install marker) and this \
                 runtime has none: set `settings.state_dir`, or spawn the runtime with one"
            ));
        };
        let fingerprint = install_marker::fingerprint(def.install.as_ref(), def.source.as_ref());
        let installed = install_marker::is_current(&state_dir, &def.id, &fingerprint);
        let mut steps = VecDeque::new();
        let mut clone_into = None;
        let needs_clone = def.source.is_some() && !def.cwd.exists();
        if installed && !needs_clone {
            return Ok(None);
        }
        // Every step runs like the service's process, clone and checkout with git's
        // no-prompt settings added.
        let like_service = self.service_plan(Vec::new())?;
        let user = like_service.user.clone();
        let plan = |argv: Vec<String>, cwd: &Path, git: bool| {
            let mut plan = like_service.clone();
            plan.argv = argv;
            plan.cwd = cwd.to_path_buf();
            if git {
                plan.env.extend(source::git_env());
            }
            plan
        };
        if let (Some(src), true) = (&def.source, needs_clone) {
            let target = def.cwd.clone();
            let staging = source::staging_dir(&target);
            let parent = staging
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            prepare_staging(&staging, user.as_ref().map(|u| (u.uid, u.gid))).map_err(|e| {
                format!(
                    "cannot prepare {} for the clone of {}: {e}",
                    staging.display(),
                    src.git
                )
            })?;
            steps.push_back(Step {
                kind: StepKind::Clone,
                plan: plan(source::clone_argv(src, &staging), &parent, true),
            });
            if let Some(reference) = &src.reference {
                steps.push_back(Step {
                    kind: StepKind::Checkout,
                    plan: plan(source::checkout_argv(&staging, reference), &parent, true),
                });
            }
            clone_into = Some((staging, target));
        }
        if let Some(install) = &def.install {
            // A fresh clone is a fresh tree: whatever install made lived in the old one.
            steps.push_back(Step {
                kind: StepKind::Install,
                plan: plan(process::argv_for(install), &def.cwd, false),
            });
        }
        Ok(Some(Setup {
            current: None,
            rest: steps,
            clone_into,
            fingerprint,
            log_mark: 0,
            cause: cause.to_string(),
        }))
    }

    /// Spawns the next step through the PortManager (`Done` when none is left).
    async fn spawn_next_step(&mut self) -> NextStep {
        let Some(step) = self.setup.rest.pop_front() else {
            return NextStep::Done;
        };
        let Some(port) = self.port.clone() else {
            self.abandon_setup();
            self.fail_start("the service's process manager is not attached".to_string());
            return NextStep::Failed;
        };
        self.setup.log_mark = self.log_mark();
        let run = self.next_generation();
        let plan = step.plan.clone();
        let spawned = port
            .call(
                |reply| PortManagerMsg::Spawn { run, plan, reply },
                Some(SPAWN_TIMEOUT),
            )
            .await;
        let what = self.step_words(&step);
        let pid = match spawned {
            Ok(CallResult::Success(Ok(pid))) => pid,
            failed => {
                let reason = match failed {
                    Ok(CallResult::Success(Err(error))) => error.to_string(),
                    Ok(CallResult::Timeout) => "spawning timed out".to_string(),
                    _ => "the service's process manager is gone".to_string(),
                };
                self.abandon_setup();
                self.fail_start(format!("{what} could not start: {reason}"));
                return NextStep::Failed;
            }
        };
        self.record_pid(pid);
        self.setup.current = Some(Box::new(step));
        self.update(|r| r.pid = Some(pid));
        info!(service = %self.def.id, pid, run = run.0, step = %what, "installing");
        self.transition(
            ServiceStatus::Installing,
            Event::new(&self.def.id, EventKind::Installing)
                .pid(Some(pid))
                .cause(format!("{}; {what}", self.setup.cause)),
        );
        NextStep::Running
    }

    /// The PortManager reports the exit of the current step (its pipes are drained).
    pub(super) async fn on_setup_exit(&mut self, myself: &ActorRef<ServerMsg>, exit: ExitInfo) {
        let Some(step) = self.setup.current.take() else {
            return;
        };
        self.forget_pid();
        self.update(|r| r.pid = None);
        let what = self.step_words(&step);
        match self.intent {
            Intent::Stop => {
                self.abandon_setup();
                self.transition(
                    ServiceStatus::Stopped,
                    Event::new(&self.def.id, EventKind::Stopped)
                        .cause(format!("stopped while installing ({what})")),
                );
                self.reply_stops();
                let stopped = ControlError::Unavailable {
                    id: self.def.id.clone(),
                    reason: "stopped while installing".to_string(),
                };
                self.reply_starts(Err(stopped));
                return;
            }
            Intent::Restart => {
                // Stopped, and a start came in meanwhile: begin again.
                self.abandon_setup();
                self.reply_stops();
                self.intent = Intent::Run;
                return self.start(myself, "start requested").await;
            }
            Intent::Run => {}
        }
        if !exit.success() {
            let lines = self.output_since(self.setup.log_mark);
            let reason = if lines.is_empty() {
                format!("{what} failed: {} (no output)", exit.describe())
            } else {
                format!(
                    "{what} failed: {}; last output: {}",
                    exit.describe(),
                    lines.join(" | ")
                )
            };
            self.abandon_setup();
            return self.fail_start(reason);
        }
        let source_done = step.kind.is_source()
            && !self
                .setup
                .rest
                .front()
                .is_some_and(|next| next.kind.is_source());
        if source_done
            && let Some((staging, target)) = self.setup.clone_into.take()
            && let Err(e) = std::fs::rename(&staging, &target)
        {
            let _ = std::fs::remove_dir_all(&staging);
            self.abandon_setup();
            return self.fail_start(format!(
                "cannot move the clone into {}: {e}",
                target.display()
            ));
        }
        if self.spawn_next_step().await == NextStep::Done
            && let Some(cause) = self.finish_setup()
        {
            // The marker is current now: this start goes to the dependencies and
            // the spawn.
            self.start(myself, &cause).await;
        }
    }

    /// Every step passed: writes the marker and forgets the setup. Returns the cause to
    /// carry the start on with, or `None` when the service failed (marker not written).
    fn finish_setup(&mut self) -> Option<String> {
        let setup = std::mem::take(&mut self.setup);
        if let Some(dir) = self.tables.state_dir.clone()
            && let Err(e) = install_marker::write(&dir, &self.def.id, &setup.fingerprint)
        {
            self.fail_start(format!(
                "the install marker could not be written under {}: {e}",
                install_marker::marker_dir(&dir).display()
            ));
            return None;
        }
        info!(service = %self.def.id, "installed");
        Some(setup.cause)
    }

    /// Stop or kill while a step runs: its group gets the stop signal (SIGKILL after
    /// `stop_timeout`) or SIGKILL now; its exit leaves the service `stopped`.
    pub(super) fn stop_setup(&mut self, reply: super::ControlReply, kill: bool) {
        self.intent = Intent::Stop;
        self.stop_waiters.push(reply);
        if self.status() != ServiceStatus::Stopping || kill {
            let pid = self.row(|r| r.pid).flatten();
            let cause = if kill {
                "kill requested while installing"
            } else {
                "stop requested while installing"
            };
            self.transition(
                ServiceStatus::Stopping,
                Event::new(&self.def.id, EventKind::Stopping)
                    .pid(pid)
                    .cause(cause),
            );
        }
        self.end_current_run(kill);
    }

    /// Drops what is left of the setup, and a clone that will not be moved into place.
    fn abandon_setup(&mut self) {
        let setup = std::mem::take(&mut self.setup);
        if let Some((staging, _)) = setup.clone_into
            && let Err(e) = std::fs::remove_dir_all(&staging)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(service = %self.def.id, dir = %staging.display(), error = %e, "could not remove an unfinished clone");
        }
    }

    fn step_words(&self, step: &Step) -> String {
        let git = self
            .def
            .source
            .as_ref()
            .map(|s| s.git.as_str())
            .unwrap_or("");
        match step.kind {
            StepKind::Clone => format!("cloning {git}"),
            StepKind::Checkout => {
                let reference = self
                    .def
                    .source
                    .as_ref()
                    .and_then(|s| s.reference.as_deref())
                    .unwrap_or("");
                format!("checking out {reference} of {git}")
            }
            StepKind::Install => match &self.def.install {
                Some(CommandSpec::Line(line)) => format!("install `{line}`"),
                Some(CommandSpec::Argv(argv)) => format!("install `{}`", argv.join(" ")),
                None => "install".to_string(),
            },
        }
    }

    /// The sequence number of the newest line of the service's log.
    fn log_mark(&self) -> u64 {
        self.tables
            .ring(&self.def.id)
            .map(|ring| ring.last_seq())
            .unwrap_or(0)
    }

    /// The last [`FAILURE_LINES`] lines logged after `mark`.
    fn output_since(&self, mark: u64) -> Vec<String> {
        self.tables
            .ring(&self.def.id)
            .map(|ring| {
                ring.tail(FAILURE_LINES)
                    .into_iter()
                    .filter(|line| line.seq > mark)
                    .map(|line| String::from(line.line))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An empty staging directory for a clone (a leftover of an interrupted clone is
/// removed), owned by the service's user when it has one so the clone can write it.
fn prepare_staging(staging: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    match std::fs::remove_dir_all(staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(staging)?;
    if let Some((uid, gid)) = owner {
        nix::unistd::chown(
            staging,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .map_err(std::io::Error::from)?;
    }
    Ok(())
}
