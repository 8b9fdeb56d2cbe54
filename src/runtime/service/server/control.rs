//! Pause, resume and stdin: requests that act on the running process without ending it.
//!
//! Pause freezes the group (SIGSTOP) and suspends probes, so a frozen process is never
//! declared unhealthy; resume thaws it (SIGCONT). While the runtime is paused, a service in
//! `backoff` holds its restart, and a resume starts it if the delay passed meanwhile.

use nix::sys::signal::Signal;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use super::{ControlReply, SPAWN_TIMEOUT, ServerMsg, ServerState, Work};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::runtime::RuntimeState;
use crate::runtime::service::health_checker::HealthCheckerMsg;
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::ServiceStatus;

impl ServerState {
    /// `Pause`.
    pub(super) fn on_pause(&mut self, reply: ControlReply) -> Work<'_> {
        if self.refuses_pause() {
            let _ = reply.send(Err(self.not_pausable("pause")));
            return None;
        }
        Some(Box::pin(self.pause(reply)))
    }

    async fn pause(&mut self, reply: ControlReply) {
        match self.status() {
            ServiceStatus::Paused => {
                let _ = reply.send(self.snapshot());
            }
            // Nothing to freeze; the runtime-wide pause holds its restart back.
            ServiceStatus::Backoff
            | ServiceStatus::Stopped
            | ServiceStatus::Exited
            | ServiceStatus::Failed
            | ServiceStatus::Pending
                if self.tables.runtime_state() == RuntimeState::Paused =>
            {
                let _ = reply.send(self.snapshot());
            }
            ServiceStatus::Running if self.live.is_some() => {
                if let Err(e) = self.signal(Signal::SIGSTOP).await {
                    let _ = reply.send(Err(e));
                    return;
                }
                if let Some(health) = &self.health {
                    let _ = health.cast(HealthCheckerMsg::Suspend);
                }
                self.update(|r| r.ready = false);
                self.transition(
                    ServiceStatus::Paused,
                    Event::new(&self.def.id, EventKind::Paused)
                        .pid(self.pid())
                        .cause("pause requested"),
                );
                let _ = reply.send(self.snapshot());
            }
            status => {
                let _ = reply.send(Err(ControlError::NotRunning {
                    id: self.def.id.clone(),
                    status: status.to_string(),
                }));
            }
        }
    }

    /// `Resume`.
    pub(super) fn on_resume(
        &mut self,
        myself: ActorRef<ServerMsg>,
        reply: ControlReply,
    ) -> Work<'_> {
        if self.refuses_pause() {
            let _ = reply.send(Err(self.not_pausable("resume")));
            return None;
        }
        Some(Box::pin(async move { self.resume(&myself, reply).await }))
    }

    async fn resume(&mut self, myself: &ActorRef<ServerMsg>, reply: ControlReply) {
        let deferred = self.pending_restart.as_ref().is_some_and(|p| p.deferred);
        if self.status() == ServiceStatus::Backoff && deferred {
            self.pending_restart = None;
            self.start_waiters.push(reply);
            self.emit(
                Event::new(&self.def.id, EventKind::Restarting)
                    .cause("runtime resumed; the backoff delay had passed"),
            );
            self.start(myself, "automatic restart").await;
            return;
        }
        if self.status() != ServiceStatus::Paused {
            let _ = reply.send(self.snapshot());
            return;
        }
        if let Err(e) = self.signal(Signal::SIGCONT).await {
            let _ = reply.send(Err(e));
            return;
        }
        if let Some(health) = &self.health {
            let _ = health.cast(HealthCheckerMsg::Resume);
        }
        let ready = self.is_ready();
        self.update(|r| r.ready = ready);
        self.transition(
            ServiceStatus::Running,
            Event::new(&self.def.id, EventKind::Resumed)
                .pid(self.pid())
                .cause("resume requested"),
        );
        let _ = reply.send(self.snapshot());
    }

    /// Sends `signal` to the current run's group (a detached service's daemon).
    async fn signal(&self, signal: Signal) -> Result<(), ControlError> {
        if self.def.detached {
            return self.signal_daemon(signal);
        }
        let unavailable = |reason: String| ControlError::Unavailable {
            id: self.def.id.clone(),
            reason,
        };
        let port = self
            .port
            .as_ref()
            .ok_or_else(|| unavailable("no process manager".into()))?;
        let run = self.generation;
        match port
            .call(
                |reply| PortManagerMsg::Signal { run, signal, reply },
                Some(SPAWN_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(Ok(()))) => Ok(()),
            Ok(CallResult::Success(Err(error))) => Err(unavailable(error.to_string())),
            _ => Err(unavailable("the process manager did not answer".into())),
        }
    }

    /// `Input`: bytes to the process's stdin. The PortManager answers at once (queued,
    /// or the queue is full), and the Server does not even wait for that: it passes the
    /// bytes on in order and a task words the answer, so input never holds up a stop.
    pub(super) fn on_input(
        &mut self,
        data: Vec<u8>,
        reply: RpcReplyPort<Result<(), ControlError>>,
    ) -> Work<'_> {
        let id = self.def.id.clone();
        let (Some(port), true) = (self.port.as_ref(), self.live.is_some()) else {
            let _ = reply.send(Err(ControlError::NotRunning {
                id,
                status: self.status().to_string(),
            }));
            return None;
        };
        let (answer, answered) = ractor::concurrency::oneshot();
        if port
            .cast(PortManagerMsg::Input {
                data,
                reply: answer.into(),
            })
            .is_err()
        {
            let _ = reply.send(Err(ControlError::Input {
                id,
                reason: "the process manager is gone".into(),
            }));
            return None;
        }
        tokio::spawn(async move {
            let result = match answered.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(ControlError::Input {
                    id,
                    reason: error.to_string(),
                }),
                Err(_) => Err(ControlError::Input {
                    id,
                    reason: "the process manager stopped before it answered".into(),
                }),
            };
            let _ = reply.send(result);
        });
        None
    }
}
