//! What a service says over its notify socket, as the Server acts on it: `STATUS=` text
//! in its state, `STOPPING=1` and `RELOADING=1` as `notified` events, and a watchdog that
//! went off taking the process down through the restart policy (DESIGN §2, issue 17).
//! `READY=1` is not here: it is a readiness verdict (`verdict.rs`). The socket itself is
//! the HealthChecker's (`health_checker/notify.rs`).

use tracing::info;

use super::{ServerState, Work};
use crate::events::{Event, EventKind};
use crate::process::{self, SpawnPlan};
use crate::runtime::service::decide::decide_watchdog;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::health_checker::ServiceNotice;

impl ServerState {
    /// `Notified`: the current run's process said something, or its watchdog went off.
    pub(super) fn on_notified(&mut self, run: Generation, notice: ServiceNotice) -> Work<'_> {
        if !self.is_current(run) {
            return None;
        }
        let id = self.def.id.clone();
        match notice {
            ServiceNotice::Status(text) => self.update(|r| r.notify_status = Some(text)),
            ServiceNotice::Stopping => self.emit(
                Event::new(&id, EventKind::Notified)
                    .pid(self.pid())
                    .cause("the service sent STOPPING=1"),
            ),
            ServiceNotice::Reloading => self.emit(
                Event::new(&id, EventKind::Notified)
                    .pid(self.pid())
                    .cause("the service sent RELOADING=1"),
            ),
            ServiceNotice::Watchdog(cause) => {
                if let Some(kill) = decide_watchdog(cause, self.kill_cause().is_some()) {
                    info!(service = %id, cause = %kill, "watchdog went off; restarting");
                    self.set_kill_cause(kill);
                    self.take_down(false);
                }
            }
        }
        None
    }

    /// The plan with `NOTIFY_SOCKET` (and `WATCHDOG_USEC`) when the service uses the
    /// notification protocol; `Err` when its socket could not be opened.
    pub(super) fn with_notify_socket(&self, mut plan: SpawnPlan) -> Result<SpawnPlan, String> {
        match self.notify_socket.as_deref() {
            None => Ok(plan),
            Some(Err(reason)) => Err(reason.clone()),
            Some(Ok(address)) => {
                process::environment::add_notify_vars(&mut plan.env, address, self.def.watchdog);
                Ok(plan)
            }
        }
    }
}
