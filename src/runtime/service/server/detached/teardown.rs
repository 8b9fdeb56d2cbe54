//! A detached service's way down: `stop_command` as a run of its own (bounded by
//! `stop_timeout`), then the daemon's group gets `stop_signal` (SIGKILL for a kill) and
//! SIGKILL after `stop_timeout`; the end is reported like the exit of a process of
//! steward's own, so intent, restart policy and events are those of every other service.

use chrono::Utc;
use nix::sys::signal::Signal;
use tracing::{debug, info, warn};

use super::follow::{Follow, follow};
use super::{DetachedNotice, KILL_WAIT, LAUNCH_LIMIT, Phase, REAP_POLL};
use crate::config::CommandSpec;
use crate::error::ControlError;
use crate::process::pid_file::PidRecord;
use crate::process::{self, SpawnPlan, daemon};
use crate::runtime::service::decide::{Intent, KillCause};
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::runtime::service::server::{ServerMsg, ServerState};
use crate::state::ExitInfo;

impl ServerState {
    /// The way down starts (stop, kill, restart, failed probe, daemon gone). `kill`
    /// SIGKILLs the daemon at once; `stop_command` runs either way.
    pub(in crate::runtime::service::server) fn take_down_detached(&mut self, kill: bool) {
        self.detached.kill |= kill;
        match std::mem::replace(&mut self.detached.phase, Phase::Idle) {
            Phase::Idle => {}
            Phase::Launching { teardown } => {
                self.detached.phase = Phase::Launching { teardown: true };
                if !teardown || kill {
                    let run = self.generation;
                    let msg = if kill {
                        PortManagerMsg::Kill { run }
                    } else {
                        PortManagerMsg::Stop {
                            run,
                            signal: self.def.stop_signal,
                            timeout: self.def.stop_timeout,
                        }
                    };
                    if let Some(port) = &self.port {
                        let _ = port.cast(msg);
                    }
                }
            }
            Phase::Up { daemon } => {
                let daemon = daemon.or_else(|| self.find_daemon());
                if let Some(record) = &daemon {
                    // A paused daemon could not act on what stop_command does.
                    let signal = if kill {
                        Signal::SIGKILL
                    } else {
                        Signal::SIGCONT
                    };
                    self.signal_recorded(record, signal);
                    self.detached.killed |= kill;
                }
                self.run_stop_command(daemon);
            }
            Phase::StopCommand { daemon } => {
                if let Some(record) = daemon.as_ref().filter(|_| kill) {
                    self.signal_recorded(record, Signal::SIGKILL);
                    self.detached.killed = true;
                }
                self.detached.phase = Phase::StopCommand { daemon };
            }
            Phase::Reaping { daemon } => {
                if kill {
                    self.signal_recorded(&daemon, Signal::SIGKILL);
                    self.detached.killed = true;
                }
                self.detached.phase = Phase::Reaping { daemon };
            }
        }
    }

    pub(super) fn signal_recorded(&self, record: &PidRecord, signal: Signal) {
        match daemon::signal(record, signal) {
            Ok(sent) => {
                debug!(service = %self.def.id, pid = record.pid, signal = signal.as_str(), sent, "signalled the daemon")
            }
            Err(error) => {
                warn!(service = %self.def.id, pid = record.pid, signal = signal.as_str(), %error, "could not signal the daemon")
            }
        }
    }

    /// Runs `stop_command` as a run of its own, bounded by `stop_timeout`.
    pub(super) fn run_stop_command(&mut self, daemon: Option<PidRecord>) {
        // The stop_command's run is this phase's generation.
        let run = self.enter_phase(Phase::StopCommand { daemon });
        let not_run = |reason: String| DetachedNotice::StopCommandNotRun { run, reason };
        let plan = match &self.def.stop_command {
            Some(command) => self.command_plan(command),
            None => Err("the service has no stop_command".to_string()),
        };
        let (plan, port) = match (plan, &self.port) {
            (Ok(plan), Some(port)) => (plan, port.clone()),
            (Err(reason), _) => return self.detached.notify(not_run(reason)),
            (_, None) => {
                let reason = "the service's process manager is not attached".to_string();
                return self.detached.notify(not_run(reason));
            }
        };
        let (tx, rx) = ractor::concurrency::oneshot();
        if port
            .cast(PortManagerMsg::Spawn {
                run,
                plan,
                reply: tx.into(),
            })
            .is_err()
        {
            let reason = "the service's process manager is gone".to_string();
            return self.detached.notify(not_run(reason));
        }
        info!(service = %self.def.id, run = run.0, "running stop_command");
        let server = self.detached.myself.clone();
        tokio::spawn(async move {
            let reason = match rx.await {
                Ok(Ok(_pid)) => return,
                Ok(Err(error)) => error.to_string(),
                Err(_) => "the service's process manager did not answer".to_string(),
            };
            let _ = server.cast(ServerMsg::Detached(DetachedNotice::StopCommandNotRun {
                run,
                reason,
            }));
        });
        self.detached
            .myself
            .send_after(self.def.stop_timeout, move || {
                ServerMsg::Detached(DetachedNotice::Deadline { run })
            });
    }

    /// A plan for one of the service's own commands (`stop_command`): its cwd, the
    /// environment the launcher got, its user.
    fn command_plan(&self, command: &CommandSpec) -> Result<SpawnPlan, String> {
        process::check_cwd(&self.def)?;
        let identity = &self.detached.identity;
        let mut plan = SpawnPlan::new(
            process::argv_for(command),
            self.def.cwd.clone(),
            identity.env.to_vec(),
        );
        plan.user = identity.user.clone()?;
        Ok(plan)
    }

    /// `stop_command` is done (or could not run): the daemon, if it still runs, gets
    /// `stop_signal` (SIGKILL on a kill) and SIGKILL after `stop_timeout`.
    pub(super) async fn after_stop_command(&mut self, daemon: Option<PidRecord>) {
        let Some(record) = daemon.filter(daemon::is_running) else {
            return self.finish().await;
        };
        let kill = self.detached.kill;
        let signals: &[Signal] = if kill {
            &[Signal::SIGKILL]
        } else {
            &[self.def.stop_signal, Signal::SIGCONT]
        };
        info!(service = %self.def.id, pid = record.pid, "the daemon outlived stop_command: signalling its group");
        for signal in signals {
            self.signal_recorded(&record, *signal);
        }
        self.detached.killed |= kill;
        let run = self.enter_phase(Phase::Reaping {
            daemon: record.clone(),
        });
        let task = follow(Follow {
            server: self.detached.myself.clone(),
            run,
            service: self.def.id.clone(),
            path: None,
            known: Some(record),
            not_before: None,
            watch_exit: true,
            poll: REAP_POLL,
        });
        self.detached.follower.0 = Some(tokio::spawn(task));
        let wait = if kill {
            KILL_WAIT
        } else {
            self.def.stop_timeout
        };
        self.detached.myself.send_after(wait, move || {
            ServerMsg::Detached(DetachedNotice::Deadline { run })
        });
    }

    pub(super) async fn on_deadline(&mut self) {
        let id = self.def.id.clone();
        match &self.detached.phase {
            Phase::StopCommand { .. } => {
                warn!(service = %id, "stop_command did not finish within stop_timeout: killing it");
                if let Some(port) = &self.port {
                    let _ = port.cast(PortManagerMsg::Kill {
                        run: self.generation,
                    });
                }
            }
            Phase::Reaping { daemon } if !self.detached.killed => {
                let record = daemon.clone();
                warn!(service = %id, pid = record.pid, "the daemon did not stop within stop_timeout: SIGKILL to its group");
                self.signal_recorded(&record, Signal::SIGKILL);
                self.detached.killed = true;
                self.detached.forced = true;
                let run = self.generation;
                self.detached.myself.send_after(KILL_WAIT, move || {
                    ServerMsg::Detached(DetachedNotice::Deadline { run })
                });
            }
            Phase::Reaping { daemon } => {
                warn!(service = %id, pid = daemon.pid, "the daemon is still there after SIGKILL");
                self.finish().await;
            }
            Phase::Launching { teardown: false } if self.kill_cause().is_none() => {
                let cause = KillCause::LauncherTimeout(LAUNCH_LIMIT);
                warn!(service = %id, %cause, "detached launch failed");
                self.reply_starts(Err(ControlError::StartFailed {
                    id,
                    reason: cause.to_string(),
                }));
                self.set_kill_cause(cause);
                self.take_down(false);
            }
            Phase::Idle | Phase::Launching { .. } | Phase::Up { .. } => {}
        }
    }

    /// The way down is over: report it like the exit of a process of steward's own.
    pub(super) async fn finish(&mut self) {
        self.tables.clear_detached_up(&self.def.id);
        self.enter_phase(Phase::Idle);
        let d = &mut self.detached;
        let forced = std::mem::take(&mut d.forced);
        let killed = std::mem::take(&mut d.killed);
        d.kill = false;
        let exit = d.launch_exit.take().unwrap_or_else(|| ExitInfo {
            code: None,
            signal: killed.then(|| "SIGKILL".to_string()),
            at: Utc::now(),
        });
        if self.intent == Intent::Stop {
            let reason = "stopped before its launcher finished".to_string();
            self.reply_starts(Err(ControlError::Unavailable {
                id: self.def.id.clone(),
                reason,
            }));
        }
        let myself = self.detached.myself.clone();
        self.on_exit(&myself, exit, forced).await;
    }
}
