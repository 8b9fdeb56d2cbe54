//! Root: the runtime's top supervisor, one-for-one over services (OTP's
//! `one_for_one` supervisor at the top of the tree).
//!
//! It owns the runtime's [`Tables`] (definitions, status rows, log rings, the event bus)
//! and one ServiceSupervisor per service. Every operation of the library, the CLI and the
//! HTTP API is a [`RootMsg`] with a typed reply; the [`crate::Steward`] handle only wraps
//! these messages. Long operations (a stop that waits for the process) never block the
//! root: the reply port travels to the service's Server, or to a task that gathers the
//! replies of many services.
//!
//! One-for-one: a ServiceSupervisor that fails is restarted alone, at most
//! [`SUPERVISOR_MAX_RESTARTS`] times within [`SUPERVISOR_RESTART_WINDOW`]; past that its
//! service is marked `failed` and the root and the other services carry on.
//!
//! This file holds the messages and the actor; `handle` only dispatches to `on_*`
//! methods. The rest is split by concept:
//!
//! * `registry` — which services exist, in which order, under which supervisor;
//! * `batch` — defining many services (a boot) a slice per message;
//! * `fan_out` — applying a verb to one service, a dependency chain or everyone;
//! * `reload` — re-reading the config directory and applying the difference.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{error, warn};

use crate::config::{self, ReloadPlan, ServiceDefinition};
use crate::control::{BatchResult, ControlAction, RuntimeStatus, ServiceInfo};
use crate::error::ControlError;
use crate::events::EventSubscription;
use crate::logs::{LogLine, LogSubscription};
use crate::restart::RestartIntensity;
use crate::runtime::service::server::{ControlReply, ServerMsg};
use crate::runtime::service::supervisor::ServiceSupervisorMsg;
use crate::runtime::{ActorKind, Tables};
use crate::state::ServiceState;

mod batch;
mod fan_out;
mod graph;
mod registry;
mod reload;

pub use batch::{DEFINE_CHUNK, DEFINE_SLICE, DefineBatch};
use fan_out::Answer;
use graph::ServiceGraph;

/// ServiceSupervisor restarts allowed within [`SUPERVISOR_RESTART_WINDOW`].
pub const SUPERVISOR_MAX_RESTARTS: u32 = 3;
/// Window of the ServiceSupervisor restart intensity.
pub const SUPERVISOR_RESTART_WINDOW: Duration = Duration::from_secs(10);
const SUPERVISOR_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Messages to the root supervisor: the whole control surface of a runtime.
#[derive(Debug)]
pub enum RootMsg {
    /// Define a service; starts it when `autostart` is true (the default).
    Define {
        /// The definition (boxed: it is large and the other messages are small).
        definition: Box<ServiceDefinition>,
        /// The new state (after the start, if it was started).
        reply: RpcReplyPort<Result<ServiceState, ControlError>>,
    },
    /// Define many services without starting any (boot); all are checked before any is
    /// defined. They are defined a slice at a time (see [`DefineBatch`]), other requests
    /// answered in between; the reply comes once the last one is defined.
    DefineAll {
        /// The definitions, in start order.
        definitions: Vec<ServiceDefinition>,
        /// Done, or the first problem.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
    /// The rest of a [`RootMsg::DefineAll`], which the root sends to itself after each
    /// slice (only the root can make a [`DefineBatch`]).
    DefineMore(DefineBatch),
    /// Remove a stopped service (refused while it runs).
    Remove {
        /// The service.
        id: String,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
    /// Re-read the config directory and apply the difference (or only plan it).
    Reload {
        /// Only return the plan.
        dry_run: bool,
        /// The plan (applied unless `dry_run`), or the config's errors.
        reply: RpcReplyPort<Result<ReloadPlan, ControlError>>,
    },
    /// Write a service's definition to `<config dir>/services.d/<id>.yml`.
    Save {
        /// The service.
        id: String,
        /// The file written.
        reply: RpcReplyPort<Result<std::path::PathBuf, ControlError>>,
    },
    /// Stop a service and, first, every running service that depends on it (dependents
    /// first, each level once the one before is stopped).
    StopCascade {
        /// The service.
        id: String,
        /// One result per stopped service, in the order they stopped (the service last).
        reply: RpcReplyPort<BatchResult>,
    },
    /// Start, stop, restart, kill, pause or resume one service. Starting a service starts
    /// what it depends on first; stopping one that running services depend on is refused
    /// (see `StopCascade`).
    Control {
        /// The service.
        id: String,
        /// The verb.
        action: ControlAction,
        /// The state once the action is done.
        reply: ControlReply,
    },
    /// [`RootMsg::Control`] answered as soon as the service's Server has acted on the
    /// verb (a stop: its signal sent, `stopping`), with the state then, instead of once
    /// the verb is done. What follows shows in the state and the events. Refusals
    /// (unknown service, running dependents, not running) are answered as by `Control`.
    ControlNoWait {
        /// The service.
        id: String,
        /// The verb.
        action: ControlAction,
        /// The state right after the Server acted.
        reply: ControlReply,
    },
    /// One service's state and definition.
    Get {
        /// The service.
        id: String,
        /// State and definition.
        reply: RpcReplyPort<Result<ServiceInfo, ControlError>>,
    },
    /// Every service's state in definition order, optionally only those with a tag.
    List {
        /// Only services with this tag.
        tag: Option<String>,
        /// The states.
        reply: RpcReplyPort<Vec<ServiceState>>,
    },
    /// The last `tail` log lines of a service.
    Logs {
        /// The service.
        id: String,
        /// How many lines.
        tail: usize,
        /// The lines, oldest first.
        reply: RpcReplyPort<Result<Vec<LogLine>, ControlError>>,
    },
    /// Subscribe to a service's log (the last 100 lines or those after `since`, then live).
    SubscribeLogs {
        /// The service.
        id: String,
        /// Resume after this line sequence number.
        since: Option<u64>,
        /// The subscription.
        reply: RpcReplyPort<Result<LogSubscription, ControlError>>,
    },
    /// Subscribe to the event stream (replaying events after `since` from the ring).
    SubscribeEvents {
        /// Resume after this event sequence number.
        since: Option<u64>,
        /// The subscription.
        reply: RpcReplyPort<EventSubscription>,
    },
    /// Write bytes to a service's stdin.
    Input {
        /// The service.
        id: String,
        /// The bytes, as they are.
        data: Vec<u8>,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
    /// Start every autostart service, in definition order.
    StartAll {
        /// One result per service.
        reply: RpcReplyPort<BatchResult>,
    },
    /// Stop every service, in the reverse of definition order.
    StopAll {
        /// One result per service.
        reply: RpcReplyPort<BatchResult>,
    },
    /// Apply a verb to the whole runtime: `Start` starts the autostart services, `Stop`
    /// stops every service (the runtime stays up), `Restart` does both, `Pause` freezes
    /// every service and holds restarts back, `Resume` undoes it.
    Lifecycle {
        /// The verb.
        action: ControlAction,
        /// One result per service.
        reply: RpcReplyPort<BatchResult>,
    },
    /// The shutdown budget is spent: SIGKILL every service's process group now, dependents
    /// first. Each forced kill is a warning naming the service and its pid, and the events'
    /// cause names the budget (`shutdown budget 30s spent`).
    ShutdownKill {
        /// The budget that was spent.
        budget: std::time::Duration,
        /// One result per service.
        reply: RpcReplyPort<BatchResult>,
    },
    /// The runtime's own status: state, uptime, counts by status, restarts.
    Status {
        /// The status.
        reply: RpcReplyPort<RuntimeStatus>,
    },
    /// Make one actor of a service panic (chaos testing of the supervision tree).
    InjectPanic {
        /// The service.
        id: String,
        /// Which of its actors.
        actor: ActorKind,
        /// Done, or why not.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
}

/// Arguments of the root.
#[derive(Debug, Clone)]
pub struct RootArgs {
    /// The tables the root owns (pass fresh ones; shared so the handle can read them).
    pub tables: Arc<Tables>,
}

/// State of the root.
#[derive(Debug)]
pub struct RootState {
    /// The tables this root owns and the handle reads.
    tables: Arc<Tables>,
    /// Service ids in definition order (start order) and their dependency edges.
    graph: ServiceGraph,
    /// Each service's supervisor, to send it messages.
    supervisors: HashMap<String, ActorRef<ServiceSupervisorMsg>>,
    /// Which service a supervision event is about.
    by_actor: HashMap<ActorId, String>,
    /// Supervisor restarts per service (one-for-one intensity).
    intensity: HashMap<String, RestartIntensity>,
    /// Fingerprint of each definition (and its env_file) when it was defined, for reloads.
    fingerprints: HashMap<String, u64>,
    /// Services of a [`RootMsg::DefineAll`] under way, not defined yet (see `batch`).
    reserved: batch::Reserved,
}

/// The root supervisor actor.
#[derive(Debug, Default)]
pub struct Root;

impl Actor for Root {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RootArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RootState {
            tables: args.tables,
            graph: ServiceGraph::default(),
            supervisors: HashMap::new(),
            by_actor: HashMap::new(),
            intensity: HashMap::new(),
            fingerprints: HashMap::new(),
            reserved: batch::Reserved::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Define { definition, reply } => {
                state.on_define(&myself, *definition, reply).await
            }
            RootMsg::DefineAll { definitions, reply } => {
                state.on_define_all(&myself, definitions, reply).await
            }
            RootMsg::DefineMore(batch) => state.on_define_more(&myself, batch).await,
            RootMsg::Remove { id, reply } => state.on_remove(&id, reply).await,
            RootMsg::Control { id, action, reply } => {
                state.on_control(id, action, Answer::Done(reply))
            }
            RootMsg::ControlNoWait { id, action, reply } => {
                state.on_control(id, action, Answer::Acted(reply))
            }
            RootMsg::Reload { dry_run, reply } => state.on_reload(&myself, dry_run, reply),
            RootMsg::Save { id, reply } => state.on_save(id, reply),
            RootMsg::StopCascade { id, reply } => state.on_stop_cascade(id, reply),
            RootMsg::Get { id, reply } => state.on_get(id, reply),
            RootMsg::List { tag, reply } => state.on_list(tag, reply),
            RootMsg::Logs { id, tail, reply } => state.on_logs(&id, tail, reply),
            RootMsg::SubscribeLogs { id, since, reply } => {
                state.on_subscribe_logs(&id, since, reply)
            }
            RootMsg::SubscribeEvents { since, reply } => state.on_subscribe_events(since, reply),
            RootMsg::Input { id, data, reply } => state.on_input(id, data, reply),
            RootMsg::StartAll { reply } => state.on_start_all(reply),
            RootMsg::StopAll { reply } => state.on_stop_all(reply),
            RootMsg::Lifecycle { action, reply } => state.on_lifecycle(action, reply),
            RootMsg::ShutdownKill { budget, reply } => state.on_shutdown_kill(budget, reply),
            RootMsg::Status { reply } => state.on_status(reply),
            RootMsg::InjectPanic { id, actor, reply } => state.on_inject_panic(&id, actor, reply),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((cell, why)) = crate::runtime::describe_exit(&event, "stopped") else {
            return Ok(());
        };
        // A supervisor the root stopped itself (remove, shutdown) is no longer listed.
        let Some(id) = state.by_actor.remove(&cell.get_id()) else {
            return Ok(());
        };
        state.supervisors.remove(&id);
        let cause = format!("service supervisor {why}");
        error!(service = %id, %cause, "restarting the service supervisor (one-for-one)");
        let intensity = state.intensity.entry(id.clone()).or_insert_with(|| {
            RestartIntensity::new(SUPERVISOR_MAX_RESTARTS, SUPERVISOR_RESTART_WINDOW)
        });
        if let Err(limit) = intensity.record(Instant::now()) {
            let reason = format!("{cause}; gave up: {limit} supervisor restarts");
            state.tables.mark_failed(&id, reason);
            return Ok(());
        }
        if let Some(def) = state.tables.definition(&id) {
            state.spawn_supervisor(&myself, def).await?;
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // ractor would kill the children without their post_stop (and so without stopping
        // their processes); stop them properly, last defined first.
        state.by_actor.clear();
        for id in state.graph.ids().rev() {
            if let Some(sup) = state.supervisors.remove(id) {
                let _ = sup
                    .stop_and_wait(
                        Some("runtime stopping".into()),
                        Some(SUPERVISOR_STOP_TIMEOUT),
                    )
                    .await;
            }
        }
        Ok(())
    }
}

impl RootState {
    /// Defines a service and, when `autostart`, starts it (answering once it started).
    async fn on_define(
        &mut self,
        myself: &ActorRef<RootMsg>,
        definition: ServiceDefinition,
        reply: ControlReply,
    ) {
        let autostart = definition.autostart;
        let defined = match self.check_dependencies(&[&definition]) {
            Ok(()) => self.define(myself, definition).await,
            Err(e) => Err(e),
        };
        match defined {
            Ok(id) if autostart => self.forward(
                &id,
                |r| ServiceSupervisorMsg::Control(ServerMsg::Start(r)),
                reply,
            ),
            Ok(id) => {
                let _ = reply.send(self.state_of(&id));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Writes a service's definition to `<config dir>/services.d/<id>.yml`.
    fn on_save(&self, id: String, reply: RpcReplyPort<Result<std::path::PathBuf, ControlError>>) {
        let saved = match (&self.tables.config_dir, self.tables.definition(&id)) {
            (_, None) => Err(ControlError::NotFound(id)),
            (None, Some(_)) => Err(ControlError::NoConfigDir {
                operation: "save into",
            }),
            (Some(dir), Some(def)) => {
                config::save_service(&def, dir).map_err(|e| ControlError::SaveFailed {
                    id: id.clone(),
                    reason: e.to_string(),
                })
            }
        };
        let _ = reply.send(saved);
    }

    /// Hands bytes for a service's stdin to its Server (which answers).
    fn on_input(&self, id: String, data: Vec<u8>, reply: RpcReplyPort<Result<(), ControlError>>) {
        match self.supervisors.get(&id) {
            Some(sup) => {
                if let Err(e) = sup.cast(ServiceSupervisorMsg::Control(ServerMsg::Input {
                    data,
                    reply,
                })) {
                    warn!(service = %id, error = %e, "input not delivered");
                }
            }
            None => {
                let _ = reply.send(Err(ControlError::NotFound(id)));
            }
        }
    }

    /// Hands a chaos request to the service's supervisor.
    fn on_inject_panic(
        &self,
        id: &str,
        actor: ActorKind,
        reply: RpcReplyPort<Result<(), ControlError>>,
    ) {
        self.forward(
            id,
            move |r| ServiceSupervisorMsg::InjectPanic { actor, reply: r },
            reply,
        )
    }
}
