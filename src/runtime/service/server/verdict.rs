//! Probe verdicts of the current run: health, `ready`, and the takedowns they call for
//! (a startup probe that never passes is a failed start; a failed liveness probe takes
//! the process down). What a verdict means is decided by
//! [`decide_verdict`](crate::runtime::service::decide::decide_verdict); this file shows it.

use tracing::info;

use super::{ServerState, Work};
use crate::events::{Event, EventKind};
use crate::runtime::service::decide::{Gate, VerdictCause, VerdictEffect, decide_verdict};
use crate::runtime::service::generation::Generation;
use crate::state::{Health, ServiceStatus};

impl ServerState {
    /// `ProbeVerdict`: a probe's verdict about `run` changed.
    pub(super) fn on_verdict(
        &mut self,
        run: Generation,
        healthy: bool,
        cause: VerdictCause,
    ) -> Work<'_> {
        if !self.is_current(run) {
            return None;
        }
        let taking_down = self.kill_cause().is_some();
        match decide_verdict(healthy, cause.clone(), taking_down) {
            VerdictEffect::Nothing => {}
            VerdictEffect::TakeDown(kill) => {
                self.set_kill_cause(kill);
                self.take_down(false);
            }
            VerdictEffect::Record {
                gate,
                health,
                take_down,
            } => {
                self.record_health(gate, health, &cause);
                if let Some(kill) = take_down {
                    info!(service = %self.def.id, cause = %kill, "liveness failed; restarting");
                    self.set_kill_cause(kill);
                    self.take_down(false);
                }
            }
        }
        None
    }

    /// A readiness or liveness verdict: the health shown and `ready`, with their events.
    fn record_health(&mut self, gate: Gate, health: Health, cause: &VerdictCause) {
        let id = self.def.id.clone();
        let before_health = self.shown_health();
        let was_ready = self.is_ready();
        match gate {
            Gate::Readiness => self.readiness = health,
            Gate::Liveness => self.liveness = health,
        }
        let shown = self.shown_health();
        if shown != before_health {
            self.update(|r| r.health = shown);
            let mut event = Event::new(&id, EventKind::HealthChanged).cause(cause.to_string());
            event.health = Some(shown);
            self.emit(event);
        }
        let paused = self.status() == ServiceStatus::Paused;
        let ready = self.is_ready() && !paused;
        if ready != was_ready {
            self.update(|r| r.ready = ready);
            if ready {
                self.emit(
                    Event::new(&id, EventKind::Ready)
                        .pid(self.pid())
                        .cause(cause.to_string()),
                );
            }
        }
    }

    /// `ready`: running, and its readiness probe (or a function's own report), if any,
    /// healthy.
    pub(super) fn is_ready(&self) -> bool {
        self.live.is_some() && (!self.def.has_readiness_gate() || self.readiness == Health::Healthy)
    }

    /// The health shown for the service: readiness when it has that probe (or reports
    /// it), else liveness.
    fn shown_health(&self) -> Health {
        if self.def.has_readiness_gate() {
            self.readiness
        } else {
            self.liveness
        }
    }
}
