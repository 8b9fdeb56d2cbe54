//! The HealthChecker's notify side: what a service says over its notify socket
//! (`readiness: { notify: true }`, `watchdog:`), turned into what the Server acts on.
//!
//! The socket is opened by the ServiceSupervisor before the Server exists (the Server
//! puts its address in `NOTIFY_SOCKET` at each spawn) and owned here: a reader task
//! forwards each datagram as [`HealthCheckerMsg::Datagram`], and the task ends with the
//! actor (its abort handle is dropped with the state), which closes the socket.
//!
//! * A datagram counts only when its sender belongs to the watched run's process tree
//!   ([`sender_belongs_to_service`]); others are logged at debug level with their pid and
//!   counted (`steward_notify_ignored_total`). Between runs nothing counts.
//! * `READY=1` is a readiness verdict like a probe's (`readiness notify READY=1`), sent
//!   once per run, and, with a startup probe, only after it passed.
//! * `STATUS=`, `STOPPING=1`, `RELOADING=1` go to the Server as [`ServiceNotice`]s.
//! * `WATCHDOG=1` re-arms the watchdog timer. The first deadline is `watchdog` after the
//!   spawn (READY need not come first: a slow start must ping too); a pause stops the
//!   timer and a resume starts a full period. When it runs out, the Server hears
//!   [`ServiceNotice::Watchdog`] and takes the process down through the restart policy.

use std::sync::Arc;

use ractor::ActorRef;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::{HealthCheckerMsg, HealthCheckerState, Phase};
use crate::config::ProbeKind;
use crate::notify::service::Datagram;
use crate::notify::{NotifyMessage, ServiceNotifySocket, sender_belongs_to_service};
use crate::runtime::service::decide::{VerdictCause, WatchdogCause};
use crate::runtime::service::server::ServerMsg;

/// What a service told steward that the Server acts on (besides `READY=1`, which is a
/// readiness verdict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceNotice {
    /// `STATUS=…`: shown in the service's state (`notify_status`).
    Status(String),
    /// `STOPPING=1`: noted as a `notified` event.
    Stopping,
    /// `RELOADING=1`: noted as a `notified` event.
    Reloading,
    /// The watchdog went off: a liveness failure.
    Watchdog(WatchdogCause),
}

/// Aborts a task when dropped (the socket reader, a watchdog timer).
#[derive(Debug)]
pub(super) struct TaskGuard(AbortHandle);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The socket's reader task; the socket closes when it is dropped.
#[derive(Debug)]
pub(super) struct NotifyEndpoint {
    _reader: TaskGuard,
}

/// What the notify side knows about the watched run.
#[derive(Debug, Default)]
pub(super) struct RunNotify {
    /// The run's main process: senders must belong to its tree.
    main_pid: Option<u32>,
    /// `READY=1` arrived in this run.
    ready_seen: bool,
    /// The readiness verdict for it went to the Server.
    ready_sent: bool,
    /// The armed watchdog timer, and its number (a timer that fires after a newer one
    /// was armed is stale).
    timer: Option<TaskGuard>,
    armed: u64,
}

impl RunNotify {
    /// A run whose main process is `main_pid`.
    pub(super) fn new(main_pid: Option<u32>) -> Self {
        RunNotify {
            main_pid,
            ..RunNotify::default()
        }
    }
}

/// Starts reading `socket` (when the service has one); datagrams come back as messages.
pub(super) fn start_reader(
    myself: &ActorRef<HealthCheckerMsg>,
    service: &str,
    socket: Option<Arc<ServiceNotifySocket>>,
) -> Option<NotifyEndpoint> {
    let socket = socket?;
    let myself = myself.clone();
    let service = service.to_string();
    let task = tokio::spawn(async move {
        loop {
            match socket.recv().await {
                Ok(datagram) => {
                    if myself.cast(HealthCheckerMsg::Datagram(datagram)).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    warn!(service = %service, %error, "notify socket unreadable; no more notifications");
                    return;
                }
            }
        }
    });
    Some(NotifyEndpoint {
        _reader: TaskGuard(task.abort_handle()),
    })
}

/// A datagram arrived on the service's socket.
pub(super) fn on_datagram(
    myself: &ActorRef<HealthCheckerMsg>,
    state: &mut HealthCheckerState,
    datagram: Datagram,
) {
    let service = state.definition.id.clone();
    let Some(watched) = &mut state.watched else {
        debug!(service = %service, pid = datagram.pid, "notify datagram between runs ignored");
        return;
    };
    let belongs = watched
        .notify
        .main_pid
        .is_some_and(|main| sender_belongs_to_service(datagram.pid, main));
    if !belongs {
        debug!(service = %service, pid = datagram.pid, main_pid = ?watched.notify.main_pid,
            "notify datagram from a process outside the service ignored");
        metrics::counter!(crate::metrics::NOTIFY_IGNORED_TOTAL, "service" => service).increment(1);
        return;
    }
    let message = NotifyMessage::parse(&datagram.text);
    debug!(service = %service, pid = datagram.pid, ?message, "notify datagram");
    let run = watched.run;
    let notices = [
        message.status.map(ServiceNotice::Status),
        message.stopping.then_some(ServiceNotice::Stopping),
        message.reloading.then_some(ServiceNotice::Reloading),
    ];
    for notice in notices.into_iter().flatten() {
        let _ = state.server.cast(ServerMsg::Notified { run, notice });
    }
    if message.ready && state.definition.notify_readiness() {
        if let Some(watched) = &mut state.watched {
            watched.notify.ready_seen = true;
        }
        send_ready(state);
    }
    if state.definition.watchdog.is_some() {
        if message.watchdog_trigger {
            fire(state, WatchdogCause::Triggered);
        } else if message.watchdog_ping {
            arm_watchdog(myself, state);
        }
    }
}

/// Sends the readiness verdict of `READY=1` once per run, when readiness is due (after a
/// startup probe, if any, passed).
pub(super) fn send_ready(state: &mut HealthCheckerState) {
    let Some(watched) = &mut state.watched else {
        return;
    };
    if !watched.notify.ready_seen || watched.notify.ready_sent || watched.phase != Phase::Steady {
        return;
    }
    watched.notify.ready_sent = true;
    let cause = VerdictCause {
        probe: ProbeKind::Readiness,
        detail: "notify READY=1".to_string(),
        streak: 1,
    };
    info!(service = %state.definition.id, run = watched.run.0, "READY=1 from the service");
    let report = ServerMsg::ProbeVerdict {
        run: watched.run,
        healthy: true,
        cause,
    };
    if let Err(e) = state.server.cast(report) {
        warn!(service = %state.definition.id, error = %e, "server gone; READY=1 dropped");
    }
}

/// (Re)starts the watchdog timer for a full `watchdog` period, when the service has one
/// and a run is watched and not frozen.
pub(super) fn arm_watchdog(myself: &ActorRef<HealthCheckerMsg>, state: &mut HealthCheckerState) {
    let Some(limit) = state.definition.watchdog else {
        return;
    };
    let generation = state.generation;
    let Some(watched) = &mut state.watched else {
        return;
    };
    if watched.suspended {
        return;
    }
    watched.notify.armed = watched.notify.armed.wrapping_add(1);
    let armed = watched.notify.armed;
    let myself = myself.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        let _ = myself.cast(HealthCheckerMsg::WatchdogDue { generation, armed });
    });
    // Dropping the previous guard aborts the previous timer.
    watched.notify.timer = Some(TaskGuard(task.abort_handle()));
}

/// Stops the watchdog timer (a pause; the run's end drops it with the run).
pub(super) fn disarm_watchdog(state: &mut HealthCheckerState) {
    if let Some(watched) = &mut state.watched {
        watched.notify.timer = None;
    }
}

/// A watchdog timer ran out.
pub(super) fn on_watchdog_due(state: &mut HealthCheckerState, generation: u64, armed: u64) {
    let Some(limit) = state.definition.watchdog else {
        return;
    };
    let current = state
        .watched
        .as_ref()
        .is_some_and(|w| generation == state.generation && armed == w.notify.armed && !w.suspended);
    if current {
        fire(state, WatchdogCause::Missed(limit));
    }
}

/// The watchdog went off: the Server takes the process down. No timer runs after it.
fn fire(state: &mut HealthCheckerState, cause: WatchdogCause) {
    let Some(watched) = &mut state.watched else {
        return;
    };
    watched.notify.timer = None;
    warn!(service = %state.definition.id, run = watched.run.0, %cause, "watchdog went off");
    let notice = ServerMsg::Notified {
        run: watched.run,
        notice: ServiceNotice::Watchdog(cause),
    };
    if let Err(e) = state.server.cast(notice) {
        warn!(service = %state.definition.id, error = %e, "server gone; watchdog dropped");
    }
}
