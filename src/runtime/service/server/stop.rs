//! Taking a run down: stop, kill, restart, and the kill when steward's shutdown budget is
//! spent. OTP's `shutdown` for one child: the stop signal, SIGKILL after `stop_timeout`
//! (or at once for a kill).
//!
//! Manual actions are not crashes (DESIGN §10): what follows the exit is decided with the
//! intent they set (`stop` → `stopped`, `restart` → start again), never the restart
//! policy, so they never count towards `max_restarts` or the backoff.

use std::time::Duration;

use ractor::ActorRef;
use tracing::warn;

use super::state::count_restart;
use super::{ControlReply, ServerMsg, ServerState, Work};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::runtime::service::decide::{Intent, KillCause, RestartReason};
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::ServiceStatus;

/// How a stop request takes the run down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takedown {
    /// The stop signal, SIGKILL after `stop_timeout`.
    Stop,
    /// SIGKILL now.
    Kill,
    /// SIGKILL now: steward's shutdown budget (this long) is spent.
    ShutdownBudget(Duration),
}

impl Takedown {
    fn kills(self) -> bool {
        !matches!(self, Takedown::Stop)
    }

    /// The `stopping` event's cause.
    fn words(self) -> String {
        match self {
            Takedown::Stop => "stop requested".to_string(),
            Takedown::Kill => "kill requested".to_string(),
            Takedown::ShutdownBudget(budget) => KillCause::ShutdownBudget(budget).to_string(),
        }
    }
}

impl ServerState {
    /// `Stop` / `Kill`.
    pub(super) fn on_stop(&mut self, reply: ControlReply, how: Takedown) -> Work<'_> {
        self.stop_run(reply, how);
        None
    }

    /// `MemoryExceeded`: the run's process tree passed `max_memory`; taken down like a
    /// failed liveness probe (stop signal, then the restart policy), with the figures as
    /// the cause.
    pub(super) fn on_memory_exceeded(
        &mut self,
        run: crate::runtime::service::generation::Generation,
        used: u64,
        limit: u64,
    ) -> Work<'_> {
        if !self.is_current(run) || self.kill_cause().is_some() || self.live.is_none() {
            return None;
        }
        let cause = KillCause::MemoryExceeded { used, limit };
        warn!(service = %self.def.id, pid = self.pid(), used, limit, "{cause}; restarting");
        self.set_kill_cause(cause);
        self.take_down(false);
        None
    }

    /// `OutOfMemory`: the kernel ended the run's process; its exit (next in the mailbox)
    /// is reported with that cause, unless steward was already taking it down itself.
    pub(super) fn on_out_of_memory(
        &mut self,
        run: crate::runtime::service::generation::Generation,
        limit: Option<u64>,
    ) -> Work<'_> {
        if !self.is_current(run) || self.kill_cause().is_some() {
            return None;
        }
        let cause = KillCause::OutOfMemory { limit };
        warn!(service = %self.def.id, pid = self.pid(), limit, "{cause}");
        self.set_kill_cause(cause);
        None
    }

    /// `ShutdownKill`: a kill that says why, with a warning naming the process.
    pub(super) fn on_shutdown_kill(&mut self, reply: ControlReply, budget: Duration) -> Work<'_> {
        if self.live.is_some() {
            let cause = KillCause::ShutdownBudget(budget);
            warn!(
                service = %self.def.id,
                pid = self.pid(),
                budget = %humantime::format_duration(budget),
                "{cause}; killing"
            );
            self.set_kill_cause(cause);
        }
        self.stop_run(reply, Takedown::ShutdownBudget(budget));
        None
    }

    fn stop_run(&mut self, reply: ControlReply, how: Takedown) {
        let id = self.def.id.clone();
        if self.setup.is_running() {
            return self.stop_setup(reply, how.kills());
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
                // The restart timer finds none pending: it is stale.
                self.intent = Intent::Stop;
                self.pending_restart = None;
                self.transition(
                    ServiceStatus::Stopped,
                    Event::new(&id, EventKind::Stopped)
                        .cause("stop requested while waiting to restart"),
                );
                let _ = reply.send(self.snapshot());
            }
            _ if self.live.is_some() => {
                self.intent = Intent::Stop;
                self.stop_waiters.push(reply);
                if self.status() != ServiceStatus::Stopping || how.kills() {
                    self.transition(
                        ServiceStatus::Stopping,
                        Event::new(&id, EventKind::Stopping)
                            .pid(self.pid())
                            .cause(how.words()),
                    );
                }
                self.take_down(how.kills());
            }
            _ => {
                let _ = reply.send(self.snapshot());
            }
        }
    }

    /// `Restart`: take the run down, then start again (a manual restart, never counted
    /// by the restart intensity).
    pub(super) fn on_restart(
        &mut self,
        myself: ActorRef<ServerMsg>,
        reply: ControlReply,
    ) -> Work<'_> {
        if self.live.is_none() {
            return Some(Box::pin(async move {
                self.request_start(&myself, reply, "restart requested")
                    .await
            }));
        }
        let id = self.def.id.clone();
        let pid = self.pid();
        self.intent = Intent::Restart;
        self.start_waiters.push(reply);
        count_restart(&id, RestartReason::Manual);
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
        None
    }

    /// Ends the current run (stop signal, or SIGKILL), probes first.
    pub(super) fn take_down(&mut self, kill: bool) {
        self.unwatch();
        if self.def.detached {
            return self.take_down_detached(kill);
        }
        self.end_current_run(kill);
    }

    /// Asks the PortManager to end the group of the current run, whatever it runs (the
    /// service, or a clone / install step): the stop signal (SIGKILL after
    /// `stop_timeout`), or SIGKILL now.
    pub(super) fn end_current_run(&self, kill: bool) {
        let Some(port) = &self.port else {
            return;
        };
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
        if port.cast(msg).is_err() {
            warn!(service = %self.def.id, run = run.0, "the process manager is gone");
        }
    }
}
