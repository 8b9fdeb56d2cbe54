//! An exit of the service's process, and the restart timer after it.
//!
//! An OS process exit is not an actor failure (DESIGN §1): the PortManager reports it once
//! its pipes are drained, and this file gathers the facts, asks
//! [`decide_exit`](crate::runtime::service::decide::decide_exit) what follows (`stopped`,
//! a manual restart, `exited`, `failed`, or `backoff` and a timer), and performs it. The
//! exit is logged once, here.

use std::time::{Duration, Instant};

use ractor::ActorRef;
use tracing::info;

use super::state::{PendingRestart, count_restart};
use super::{ServerMsg, ServerState, Work};
use crate::events::{Event, EventKind};
use crate::runtime::RuntimeState;
use crate::runtime::service::decide::{
    BackoffFacts, Ending, ExitFacts, ExitedCause, FunctionEnd, Intent, Outcome, RestartReason,
    decide_exit,
};
use crate::runtime::service::generation::Generation;
use crate::state::{ExitInfo, Health, ServiceStatus};

impl ServerState {
    /// `ProcessExited`: the exit of a clone or install step, of a detached service's
    /// launcher or `stop_command`, or of the service's process.
    pub(super) fn on_process_exited(
        &mut self,
        myself: ActorRef<ServerMsg>,
        run: Generation,
        exit: ExitInfo,
        forced_kill: bool,
    ) -> Work<'_> {
        if self.generation.is_current(run) && self.setup.is_running() {
            return Some(Box::pin(
                async move { self.on_setup_exit(&myself, exit).await },
            ));
        }
        if !self.is_current(run) {
            return None;
        }
        if self.def.detached {
            return Some(Box::pin(self.on_detached_exit(exit)));
        }
        Some(Box::pin(async move {
            self.on_exit(&myself, exit, forced_kill).await
        }))
    }

    /// The current run is over: row, events, and what the decision says follows.
    pub(super) async fn on_exit(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        exit: ExitInfo,
        forced_kill: bool,
    ) {
        self.run_ended(myself, exit, forced_kill, None).await;
    }

    /// The current run is over, a process's (`function: None`) or a function service's
    /// task (with its own account of the end): row, events, what the decision says.
    pub(super) async fn run_ended(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        exit: ExitInfo,
        forced_kill: bool,
        function: Option<FunctionEnd>,
    ) {
        let id = self.def.id.clone();
        self.unwatch();
        let Some(live) = self.live.take().map(|live| *live) else {
            return;
        };
        // While a restart may follow, the dead process's record stays until the new spawn
        // writes over it: an unlink here would delay every restart (a stale record is
        // harmless, recovery finds its process gone). Every other outcome removes it.
        let restart_may_follow =
            matches!(self.intent, Intent::Run | Intent::Restart) && !self.def.detached;
        if !restart_may_follow {
            self.forget_pid();
        }
        let pid = self.pid();
        self.update(|r| {
            r.pid = None;
            r.ready = false;
            r.health = Health::Unknown;
            r.notify_status = None;
            r.last_exit = Some(exit.clone());
            r.cpu_percent = None;
            r.rss_bytes = None;
        });
        let facts = ExitFacts {
            intent: self.intent,
            exit: exit.clone(),
            forced_kill,
            kill_cause: live.kill_cause,
            policy: self.def.restart,
            stop_timeout: self.def.stop_timeout,
            function: function.clone(),
        };
        info!(service = %id, pid, exit = %exit.describe(), forced_kill = facts.forced(), "exited");
        let backoff = BackoffFacts {
            delays: &self.def.backoff,
            next_index: self.next_backoff,
            ran_for: live.spawned_at.elapsed(),
        };
        let outcome = decide_exit(facts, backoff, &mut self.intensity, Instant::now());
        let exited = |cause: Option<ExitedCause>| {
            let mut event = Event::new(&id, EventKind::Exited).pid(pid);
            event.exit_code = exit.code;
            event.signal = exit.signal.clone();
            // A function's end on its own (a panic, an error) has no code or signal that
            // says it: its words are the cause.
            event.cause = cause
                .map(|c| c.to_string())
                .or_else(|| function.as_ref().map(ToString::to_string));
            event
        };
        match outcome {
            Outcome::Stopped {
                exited: cause,
                stopped,
            } => {
                self.emit(exited(Some(cause)));
                self.transition(
                    ServiceStatus::Stopped,
                    Event::new(&id, EventKind::Stopped).cause(stopped.to_string()),
                );
                self.reply_stops();
                // A start queued behind a stop, then another stop: the last word was stop.
                self.reply_superseded_starts();
            }
            Outcome::Restart {
                exited: cause,
                stopped,
            } => {
                self.emit(exited(Some(cause)));
                if !self.stop_waiters.is_empty() {
                    // A stop, then a start queued behind it: the stop did end the process,
                    // and its answer says `stopped` before the start begins.
                    self.transition(
                        ServiceStatus::Stopped,
                        Event::new(&id, EventKind::Stopped).cause(stopped.to_string()),
                    );
                    self.reply_stops();
                }
                self.intent = Intent::Run;
                self.start(myself, "restart requested").await;
            }
            Outcome::Exited { exited: cause } => {
                // Not restarted by policy: the process is done, the service `exited`.
                self.intent = Intent::Stop;
                self.forget_pid();
                self.transition(ServiceStatus::Exited, exited(Some(cause)));
                self.reply_stops();
            }
            Outcome::Failed {
                exited: cause,
                cause: gave_up,
            } => {
                self.emit(exited(cause));
                self.forget_pid();
                self.intent = Intent::Stop;
                self.transition(
                    ServiceStatus::Failed,
                    Event::new(&id, EventKind::Failed).cause(gave_up.to_string()),
                );
                self.reply_stops();
            }
            Outcome::Backoff {
                exited: cause,
                delay,
                next_index,
                reason,
                cause: ending,
            } => {
                self.emit(exited(cause));
                self.enter_backoff(myself, delay, next_index, reason, ending);
            }
        }
    }

    /// Status `backoff`: an automatic restart after `delay` (a crash, a failed liveness,
    /// a spawn that failed for a transient reason).
    pub(super) fn enter_backoff(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        delay: Duration,
        next_index: u32,
        reason: RestartReason,
        ending: Ending,
    ) {
        let id = self.def.id.clone();
        count_restart(&id, reason);
        self.next_backoff = next_index;
        self.update(|r| r.restart_count += 1);
        let mut event = Event::new(&id, EventKind::Backoff).cause(ending.to_string());
        self.pending_restart = Some(Box::new(PendingRestart {
            after: ending,
            deferred: false,
        }));
        event.delay_ms = Some(delay.as_millis() as u64);
        self.transition(ServiceStatus::Backoff, event);
        let run = self.generation;
        if delay.is_zero() {
            // A timer would round a zero delay up to the next tick (about 1 ms).
            let _ = myself.cast(ServerMsg::RestartDue { run });
        } else {
            self.forget_pid();
            myself.send_after(delay, move || ServerMsg::RestartDue { run });
        }
    }

    /// `RestartDue`: the backoff delay after the exit of `run` has passed. Stale when a
    /// run came after it, or no restart is pending any more (a stop, a start).
    pub(super) fn on_restart_due(
        &mut self,
        myself: ActorRef<ServerMsg>,
        run: Generation,
    ) -> Work<'_> {
        if !self.generation.is_current(run) || self.status() != ServiceStatus::Backoff {
            return None;
        }
        let paused = self.tables.runtime_state() == RuntimeState::Paused;
        let pending = self.pending_restart.as_mut()?;
        if paused {
            // Restarts never fire while the runtime is paused; resume starts it.
            pending.deferred = true;
            return None;
        }
        let after = self.pending_restart.take()?.after;
        self.emit(
            Event::new(&self.def.id, EventKind::Restarting)
                .cause(format!("backoff elapsed after {after}")),
        );
        Some(Box::pin(async move {
            self.start(&myself, "automatic restart").await
        }))
    }
}
