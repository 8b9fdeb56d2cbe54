//! ServiceSupervisor: the one-for-all supervisor of one service's four actors.
//!
//! ractor has no built-in `one_for_all`; this actor implements it in
//! `handle_supervisor_evt`, as OTP's supervisor would:
//!
//! * children start in order LogBuffer → Server → PortManager → HealthChecker (the last
//!   only when the service has probes), and the Server is then told who its siblings are;
//! * when any child fails (panics) or stops on its own, every other child is stopped in
//!   reverse start order (`stop_and_wait`), and all are started again; the Server is told
//!   to bring the process back if the service was meant to run;
//! * a generation of children is identified by their actor ids, so the termination
//!   events of the children it stopped itself are recognised and ignored;
//! * restart intensity: more than [`ACTOR_MAX_RESTARTS`] actor restarts within
//!   [`ACTOR_RESTART_WINDOW`] and it gives up: the children are stopped, the service is
//!   `failed` (with the cause), and the supervisor waits, childless, for a `start` that
//!   brings up a fresh generation. The root and every other service stay up.
//!
//! The OS process dies with its PortManager (a drop guard kills the group), and the new
//! generation is started only once the old group is gone (a SIGKILL takes effect when each
//! process next runs), so a one-for-all restart never leaves the old process running
//! beside the new one. The log ring is owned by the root, so the history survives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tracing::{error, warn};

use crate::config::ServiceDefinition;
use crate::error::ControlError;
use crate::process::pid_file::{self, PidRecord};
use crate::restart::RestartIntensity;
use crate::runtime::service::health_checker::{HealthChecker, HealthCheckerArgs, HealthCheckerMsg};
use crate::runtime::service::log_buffer::{LogBuffer, LogBufferArgs, LogBufferMsg, LogFileSpec};
use crate::runtime::service::port_manager::{PortManager, PortManagerArgs, PortManagerMsg};
use crate::runtime::service::server::{Server, ServerArgs, ServerMsg};
use crate::runtime::{ActorKind, Tables};

/// Actor restarts allowed within [`ACTOR_RESTART_WINDOW`] before the service is failed.
pub const ACTOR_MAX_RESTARTS: u32 = 3;
/// The window of the actor restart intensity.
pub const ACTOR_RESTART_WINDOW: Duration = Duration::from_secs(10);
/// How long a child may take to stop before it is left behind.
const CHILD_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Messages to a ServiceSupervisor.
#[derive(Debug)]
pub enum ServiceSupervisorMsg {
    /// Forward a control message to the current Server.
    Control(ServerMsg),
    /// Make one child panic (chaos testing of the supervision tree).
    InjectPanic {
        /// Which child.
        actor: ActorKind,
        /// Done, or why not (no such child).
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
}

/// Arguments of a ServiceSupervisor.
#[derive(Debug, Clone)]
pub struct ServiceSupervisorArgs {
    /// The service.
    pub definition: Arc<ServiceDefinition>,
    /// The runtime's tables.
    pub tables: Arc<Tables>,
}

/// One generation of children.
#[derive(Debug)]
struct Children {
    log_buffer: ActorRef<LogBufferMsg>,
    server: ActorRef<ServerMsg>,
    port: ActorRef<PortManagerMsg>,
    health: Option<ActorRef<HealthCheckerMsg>>,
}

impl Children {
    fn ids(&self) -> Vec<(ActorId, ActorKind)> {
        let mut ids = vec![
            (self.log_buffer.get_id(), ActorKind::LogBuffer),
            (self.server.get_id(), ActorKind::Server),
            (self.port.get_id(), ActorKind::PortManager),
        ];
        if let Some(h) = &self.health {
            ids.push((h.get_id(), ActorKind::HealthChecker));
        }
        ids
    }

    /// Cells in reverse start order.
    /// The children other than the LogBuffer, last started first.
    fn cells_reversed(&self) -> Vec<ActorCell> {
        let mut cells = Vec::with_capacity(3);
        if let Some(h) = &self.health {
            cells.push(h.get_cell());
        }
        cells.push(self.port.get_cell());
        cells.push(self.server.get_cell());
        cells
    }
}

/// State of a ServiceSupervisor.
#[derive(Debug)]
pub struct ServiceSupervisorState {
    def: Arc<ServiceDefinition>,
    tables: Arc<Tables>,
    children: Option<Children>,
    intensity: RestartIntensity,
}

/// The ServiceSupervisor actor.
#[derive(Debug, Default)]
pub struct ServiceSupervisor;

impl Actor for ServiceSupervisor {
    type Msg = ServiceSupervisorMsg;
    type State = ServiceSupervisorState;
    type Arguments = ServiceSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ServiceSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let children = spawn_children(&myself, &args.definition, &args.tables, None).await?;
        Ok(ServiceSupervisorState {
            def: args.definition,
            tables: args.tables,
            children: Some(children),
            intensity: RestartIntensity::new(ACTOR_MAX_RESTARTS, ACTOR_RESTART_WINDOW),
        })
    }

    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // Handled before the future exists, like the Server's messages: ractor keeps this
        // future inlined (twice) in the actor's resident loop, so only the rare path that
        // waits (a fresh generation of children) is a future, boxed.
        let work: Option<BoxFuture<'_, Result<(), ActorProcessingErr>>> = match msg {
            ServiceSupervisorMsg::Control(msg) => {
                if state.children.is_none()
                    && matches!(
                        msg,
                        ServerMsg::Start(_) | ServerMsg::StartNeeded { .. } | ServerMsg::Restart(_)
                    )
                {
                    // Gave up earlier; a start asks for a fresh generation.
                    Some(Box::pin(async move {
                        state.intensity.reset();
                        state.children =
                            Some(spawn_children(&myself, &state.def, &state.tables, None).await?);
                        forward_control(state, msg);
                        Ok(())
                    }))
                } else {
                    forward_control(state, msg);
                    None
                }
            }
            ServiceSupervisorMsg::InjectPanic { actor, reply } => {
                let why = format!("injected panic in {}", actor.as_str());
                let sent = match (&state.children, actor) {
                    (Some(c), ActorKind::Server) => c.server.cast(ServerMsg::Panic(why)).is_ok(),
                    (Some(c), ActorKind::PortManager) => {
                        c.port.cast(PortManagerMsg::Panic(why)).is_ok()
                    }
                    (Some(c), ActorKind::LogBuffer) => {
                        c.log_buffer.cast(LogBufferMsg::Panic(why)).is_ok()
                    }
                    (Some(c), ActorKind::HealthChecker) => c
                        .health
                        .as_ref()
                        .is_some_and(|h| h.cast(HealthCheckerMsg::Panic(why)).is_ok()),
                    (None, _) => false,
                };
                let _ = reply.send(if sent {
                    Ok(())
                } else {
                    Err(ControlError::Unavailable {
                        id: state.def.id.clone(),
                        reason: format!("the service has no {} actor running", actor.as_str()),
                    })
                });
                None
            }
        };
        async move {
            match work {
                Some(work) => work.await,
                None => Ok(()),
            }
        }
    }

    fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // Every child's start and stop comes here too; only a failure waits (stops and
        // spawns a generation), in a boxed future, so the resident loop stays small.
        let failed = crate::runtime::describe_exit(&event, "stopped unexpectedly").and_then(
            |(cell, why)| {
                // Events from an older generation (children this supervisor stopped itself)
                // are expected and ignored.
                state.children.as_ref().and_then(|c| {
                    c.ids()
                        .into_iter()
                        .find(|(id, _)| *id == cell.get_id())
                        .map(|(_, kind)| (kind, why))
                })
            },
        );
        let work: Option<BoxFuture<'_, Result<(), ActorProcessingErr>>> = failed.map(
            |(kind, why)| -> BoxFuture<'_, Result<(), ActorProcessingErr>> {
                Box::pin(restart_children(myself, state, kind, why))
            },
        );
        async move {
            match work {
                Some(work) => work.await,
                None => Ok(()),
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // ractor would kill the children without their post_stop; stop them properly.
        if let Some(children) = state.children.take() {
            stop_in_reverse(&children).await;
        }
        Ok(())
    }
}

/// Passes a control message to the Server, or answers it when the service gave up.
fn forward_control(state: &ServiceSupervisorState, msg: ServerMsg) {
    match &state.children {
        Some(children) => {
            if let Err(e) = children.server.cast(msg) {
                warn!(service = %state.def.id, error = %e, "control message not delivered");
            }
        }
        None => reply_unavailable(msg, &state.def.id),
    }
}

/// One-for-all: a child of `kind` failed; stops the others and starts a new generation,
/// unless the restart intensity is exceeded.
async fn restart_children(
    myself: ActorRef<ServiceSupervisorMsg>,
    state: &mut ServiceSupervisorState,
    kind: ActorKind,
    why: String,
) -> Result<(), ActorProcessingErr> {
    let id = state.def.id.clone();
    let cause = format!("actor {} {why}", kind.as_str());
    error!(service = %id, %cause, "one-for-all restart of the service's actors");
    let was_active = state
        .tables
        .read_state(&id, |r| r.status.is_active())
        .unwrap_or(false);
    // The old process, read before its PortManager goes (whose guard SIGKILLs its group).
    let old_process = old_process(state);
    if let Some(old) = state.children.take() {
        stop_in_reverse(&old).await;
    }
    if let Some(record) = old_process {
        wait_until_gone(&id, &record).await;
    }
    if let Err(limit) = state.intensity.record(Instant::now()) {
        let reason = format!("{cause}; gave up: {limit} actor restarts");
        state.tables.mark_failed(&id, reason);
        return Ok(());
    }
    let recover = if was_active {
        Some(format!(
            "{cause}; restarted the service's actors (one-for-all)"
        ))
    } else {
        None
    };
    state.children = Some(spawn_children(&myself, &state.def, &state.tables, recover).await?);
    Ok(())
}

/// How long a one-for-all restart waits for the SIGKILLed old process group to be gone.
const OLD_GROUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The record of the service's running process (not a detached daemon, which is left
/// alone), to wait for it after a one-for-all restart.
fn old_process(state: &ServiceSupervisorState) -> Option<PidRecord> {
    if state.def.detached {
        return None;
    }
    let pid = state
        .tables
        .read_state(&state.def.id, |r| r.pid)
        .flatten()?;
    // The leader may be dead already (the guard fired when the PortManager panicked); its
    // group, named after it, may still hold members. Start time 0: any of them counts.
    Some(
        PidRecord::of_process(&state.def.id, pid, false).unwrap_or(PidRecord {
            service: state.def.id.clone(),
            pid,
            pgid: pid,
            start_time: 0,
            detached: false,
        }),
    )
}

/// A SIGKILL takes effect when each process next runs; until then the old group is still
/// there. The new generation starts its process only once the old one is gone (bounded), so
/// two instances of the service are never alive at once.
async fn wait_until_gone(id: &str, record: &PidRecord) {
    let deadline = Instant::now() + OLD_GROUP_TIMEOUT;
    loop {
        let left = pid_file::leftovers(record);
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            warn!(service = %id, pgid = record.pgid, ?left, "the old process group outlived its SIGKILL; starting the new generation anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn spawn_children(
    myself: &ActorRef<ServiceSupervisorMsg>,
    def: &Arc<ServiceDefinition>,
    tables: &Arc<Tables>,
    recover: Option<String>,
) -> Result<Children, ActorProcessingErr> {
    let supervisor = myself.get_cell();
    // The children run with the effective cwd (a `source` without `cwd` runs in
    // `state_dir/src/<id>`); the table of definitions keeps the definition as given.
    let def = &crate::source::effective_definition(def, tables.state_dir.as_deref());
    let ring = tables
        .ring(&def.id)
        .ok_or_else(|| format!("no log ring for service {}", def.id))?;
    let file = def.log_file.as_ref().map(|path| LogFileSpec {
        path: path.clone(),
        max_size: def.log_max_size,
        max_files: def.log_max_files,
    });
    let (log_buffer, _) = Actor::spawn_linked(
        None,
        LogBuffer,
        LogBufferArgs {
            service: def.id.clone(),
            ring,
            file,
            tables: Some(tables.clone()),
        },
        supervisor.clone(),
    )
    .await?;
    // The notify socket exists before the Server, which names it in NOTIFY_SOCKET at
    // each spawn; the HealthChecker reads it (and closes it when it stops).
    let notify_socket = def.uses_notify().then(|| {
        crate::notify::ServiceNotifySocket::open(&def.id)
            .map(Arc::new)
            .map_err(|e| format!("cannot open the service's notify socket: {e}"))
    });
    let (server, _) = Actor::spawn_linked(
        None,
        Server,
        ServerArgs {
            definition: def.clone(),
            tables: tables.clone(),
            notify_socket: notify_socket.as_ref().map(|s| {
                s.as_ref()
                    .map(|s| s.address().to_string())
                    .map_err(Clone::clone)
            }),
        },
        supervisor.clone(),
    )
    .await?;
    let (port, _) = Actor::spawn_linked(
        None,
        PortManager,
        PortManagerArgs {
            service: def.id.clone(),
            server: server.clone(),
            log_buffer: log_buffer.clone(),
            tracking: Some(tables.tracking.clone()),
            max_memory: def.max_memory,
            limits: def.limits,
        },
        supervisor.clone(),
    )
    .await?;
    let health = if def.has_probes() {
        let (health, _) = Actor::spawn_linked(
            None,
            HealthChecker,
            HealthCheckerArgs {
                definition: def.clone(),
                server: server.clone(),
                http: tables.http.clone(),
                notify_socket: notify_socket.and_then(Result::ok),
            },
            supervisor.clone(),
        )
        .await?;
        Some(health)
    } else {
        None
    };
    server.cast(ServerMsg::Attach {
        port: port.clone(),
        health: health.clone(),
        recover,
    })?;
    Ok(Children {
        log_buffer,
        server,
        port,
        health,
    })
}

/// Stops the children, last started first; the LogBuffer, started first, goes last. The
/// lines of an ended process are in the ring before its exit is reported (the watcher's
/// barrier, quick because the backlog is bounded), so stopping does not lose them.
async fn stop_in_reverse(children: &Children) {
    let mut cells = children.cells_reversed();
    cells.push(children.log_buffer.get_cell());
    for cell in cells {
        if let Err(e) = cell
            .stop_and_wait(Some("one-for-all".to_string()), Some(CHILD_STOP_TIMEOUT))
            .await
        {
            warn!(error = %e, "child did not stop in time");
        }
    }
}

/// Answers a control message that cannot be delivered because the service gave up.
fn reply_unavailable(msg: ServerMsg, id: &str) {
    let err = || ControlError::Unavailable {
        id: id.to_string(),
        reason: "the service failed after too many actor restarts; start it again".to_string(),
    };
    match msg {
        ServerMsg::Start(r)
        | ServerMsg::Stop(r)
        | ServerMsg::Restart(r)
        | ServerMsg::Kill(r)
        | ServerMsg::Pause(r)
        | ServerMsg::Resume(r)
        | ServerMsg::StartNeeded { reply: r, .. }
        | ServerMsg::ShutdownKill { reply: r, .. } => {
            let _ = r.send(Err(err()));
        }
        ServerMsg::Input { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        _ => {}
    }
}
