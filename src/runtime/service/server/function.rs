//! A function service's run, as the Server sees it (see [`crate::function`]): the same
//! state machine, events and decisions as a process, with a task instead of a pid.
//!
//! * the spawn asks the PortManager for a task (`SpawnFunction`), then the service is
//!   `running` with pid null; it is `ready` at once, unless the function reports its
//!   readiness itself ([`FunctionService::reports_ready`]) or has a readiness probe;
//! * its end comes as `FunctionExited`, and goes the way of a process's exit
//!   (`exit.rs`), the decision told how the function ended (`returned an error: …`,
//!   `panicked: …`);
//! * pause and resume of a running function are refused (`control.rs` asks here), unless
//!   it honours them ([`FunctionService::pausable`]): then they go the process's way, with
//!   the PortManager turning SIGSTOP / SIGCONT into the run's pause signal.

use std::sync::Arc;

use chrono::Utc;
use ractor::ActorRef;
use ractor::rpc::CallResult;
use tracing::info;

use super::{SPAWN_TIMEOUT, ServerMsg, ServerState, Work};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::function::FunctionService;
use crate::process;
use crate::runtime::service::decide::FunctionEnd;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::port_manager::PortManagerMsg;
use crate::state::{ExitInfo, Health, ServiceStatus};

use super::state::LiveRun;

impl ServerState {
    /// Spawns the function's task; replies to every start waiter.
    pub(super) async fn spawn_function(&mut self, cause: &str, function: FunctionService) {
        let id = self.def.id.clone();
        self.transition(
            ServiceStatus::Starting,
            Event::new(&id, EventKind::Starting).cause(cause),
        );
        // Command probes run with the service's environment, as for a process; a missing
        // `required_env` fails the start the same way.
        let env = match process::environment::resolve(&self.def) {
            Ok(env) => Arc::new(env),
            Err(reason) => return self.fail_start(reason),
        };
        let Some(port) = self.port.clone() else {
            return self.fail_start("the service's process manager is not attached".to_string());
        };
        let run = self.next_generation();
        let spawned = port
            .call(
                |reply| PortManagerMsg::SpawnFunction {
                    run,
                    function,
                    reply,
                },
                Some(SPAWN_TIMEOUT),
            )
            .await;
        match spawned {
            Ok(CallResult::Success(Ok(()))) => {}
            Ok(CallResult::Success(Err(error))) => return self.fail_start(error.to_string()),
            Ok(CallResult::Timeout) => {
                return self.fail_start("starting the function timed out".to_string());
            }
            Ok(CallResult::SenderError) | Err(_) => {
                return self.fail_start("the service's process manager is gone".to_string());
            }
        }
        self.live = LiveRun::begun_now();
        self.readiness = Health::Unknown;
        self.liveness = Health::Unknown;
        let ready = !self.def.has_readiness_gate();
        self.update(|r| {
            r.pid = None;
            r.started_at = Some(Utc::now());
            r.health = Health::Unknown;
            r.ready = ready;
        });
        info!(service = %id, run = run.0, "started");
        self.transition(
            ServiceStatus::Running,
            Event::new(&id, EventKind::Started).pid(None),
        );
        if ready {
            self.emit(Event::new(&id, EventKind::Ready).cause("no readiness probe"));
        }
        self.watch(env, Ok(None));
        let result = self.snapshot();
        self.reply_starts(result);
    }

    /// `FunctionExited`: the task of `run` ended.
    pub(super) fn on_function_exited(
        &mut self,
        myself: ActorRef<ServerMsg>,
        run: Generation,
        exit: ExitInfo,
        end: FunctionEnd,
        forced_kill: bool,
    ) -> Work<'_> {
        if !self.is_current(run) {
            return None;
        }
        Some(Box::pin(async move {
            self.run_ended(&myself, exit, forced_kill, Some(end)).await
        }))
    }

    /// True while a function service's task runs and the function does not honour pause
    /// itself: pause and resume are refused.
    pub(super) fn refuses_pause(&self) -> bool {
        self.def.function.as_ref().is_some_and(|f| !f.pausable) && self.live.is_some()
    }

    /// The refusal of a pause or resume of a function service.
    pub(super) fn not_pausable(&self, action: &str) -> ControlError {
        ControlError::FunctionNotPausable {
            id: self.def.id.clone(),
            action: action.to_string(),
        }
    }
}
