//! Root: the runtime's top supervisor, one-for-one over services.
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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{error, warn};

use crate::config::{self, PlanAction, ReloadPlan, ServiceDefinition};
use crate::control::{BatchResult, ControlAction, RuntimeStatus, ServiceInfo};
use crate::dependencies;
use crate::error::ControlError;
use crate::events::{Event, EventKind, EventSubscription};
use crate::logs::{LogLine, LogRing, LogSubscription};
use crate::restart::RestartIntensity;
use crate::runtime::service::server::{ControlReply, ServerMsg};
use crate::runtime::service::supervisor::{
    ServiceSupervisor, ServiceSupervisorArgs, ServiceSupervisorMsg,
};
use crate::runtime::{ActorKind, RuntimeState, Tables};
use crate::state::ServiceState;

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
    /// Define many services without starting any (boot); all are checked before any is defined.
    DefineAll {
        /// The definitions, in start order.
        definitions: Vec<ServiceDefinition>,
        /// Done, or the first problem.
        reply: RpcReplyPort<Result<(), ControlError>>,
    },
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
    /// first).
    StopCascade {
        /// The service.
        id: String,
        /// One result per stopped service.
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
    tables: Arc<Tables>,
    /// Service ids in definition order (start order).
    order: Vec<String>,
    supervisors: HashMap<String, ActorRef<ServiceSupervisorMsg>>,
    by_actor: HashMap<ActorId, String>,
    intensity: HashMap<String, RestartIntensity>,
    /// Fingerprint of each definition (and its env_file) when it was defined, for reloads.
    fingerprints: HashMap<String, u64>,
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
            order: Vec::new(),
            supervisors: HashMap::new(),
            by_actor: HashMap::new(),
            intensity: HashMap::new(),
            fingerprints: HashMap::new(),
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
                let autostart = definition.autostart;
                let checked = state.check_dependencies(&[&definition]);
                let defined = match checked {
                    Ok(()) => state.define(&myself, *definition).await,
                    Err(e) => Err(e),
                };
                match defined {
                    Ok(id) if autostart => state.forward(
                        &id,
                        |r| ServiceSupervisorMsg::Control(ServerMsg::Start(r)),
                        reply,
                    ),
                    Ok(id) => {
                        let _ = reply.send(state.state_of(&id));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            RootMsg::DefineAll { definitions, reply } => {
                let _ = reply.send(state.define_all(&myself, definitions).await);
            }
            RootMsg::Remove { id, reply } => {
                let _ = reply.send(state.remove(&id).await);
            }
            RootMsg::Control { id, action, reply } => state.control(id, action, reply),
            RootMsg::Reload { dry_run, reply } => state.reload(&myself, dry_run, reply),
            RootMsg::Save { id, reply } => {
                let saved = match (&state.tables.config_dir, state.tables.definitions.get(&id)) {
                    (_, None) => Err(ControlError::NotFound(id)),
                    (None, Some(_)) => Err(ControlError::InvalidDefinition(
                        "this runtime has no config directory to save into".to_string(),
                    )),
                    (Some(dir), Some(def)) => config::save_service(&def, dir).map_err(|e| {
                        ControlError::InvalidDefinition(format!("could not save `{id}`: {e}"))
                    }),
                };
                let _ = reply.send(saved);
            }
            RootMsg::StopCascade { id, reply } => {
                if !state.supervisors.contains_key(&id) {
                    let _ = reply.send(vec![(id.clone(), Err(ControlError::NotFound(id)))]);
                } else {
                    let graph = state.graph();
                    let mut ids: Vec<String> = dependencies::dependents_of(&id, &graph)
                        .into_iter()
                        .filter(|d| state.is_active(d))
                        .collect();
                    ids.push(id);
                    let levels = state.level_targets(dependencies::stop_levels(&ids, &graph));
                    tokio::spawn(async move {
                        let _ = reply.send(by_levels(levels, ControlAction::Stop).await);
                    });
                }
            }
            RootMsg::Get { id, reply } => {
                let info = state.state_of(&id).and_then(|st| {
                    let definition = state
                        .tables
                        .definitions
                        .get(&id)
                        .map(|d| d.clone())
                        .ok_or_else(|| ControlError::NotFound(id.clone()))?;
                    Ok(ServiceInfo {
                        state: st,
                        definition,
                    })
                });
                let _ = reply.send(info);
            }
            RootMsg::List { tag, reply } => {
                let states = state
                    .order
                    .iter()
                    .filter_map(|id| state.tables.state_with_usage(id))
                    .filter(|s| tag.as_ref().is_none_or(|t| s.tags.contains(t)))
                    .collect();
                let _ = reply.send(states);
            }
            RootMsg::Logs { id, tail, reply } => {
                let _ = reply.send(state.ring(&id).map(|r| r.tail(tail)));
            }
            RootMsg::SubscribeLogs { id, since, reply } => {
                let _ = reply.send(state.ring(&id).map(|r| r.subscribe(since)));
            }
            RootMsg::SubscribeEvents { since, reply } => {
                let _ = reply.send(state.tables.events.subscribe(since));
            }
            RootMsg::Input { id, data, reply } => match state.supervisors.get(&id) {
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
            },
            RootMsg::StartAll { reply } => {
                let starts = state.start_plan();
                tokio::spawn(async move {
                    let _ = reply.send(by_levels(starts, ControlAction::Start).await);
                });
            }
            RootMsg::StopAll { reply } => {
                let stops = state.stop_plan();
                tokio::spawn(async move {
                    let _ = reply.send(by_levels(stops, ControlAction::Stop).await);
                });
            }
            RootMsg::Lifecycle { action, reply } => {
                let starts = state.start_plan();
                let stops = state.stop_plan();
                let everyone = state.targets(false, false);
                match action {
                    ControlAction::Pause => state.tables.set_runtime_state(RuntimeState::Paused),
                    ControlAction::Resume | ControlAction::Start | ControlAction::Restart => {
                        state.tables.set_runtime_state(RuntimeState::Running)
                    }
                    ControlAction::Stop | ControlAction::Kill => {}
                }
                tokio::spawn(async move {
                    let result = match action {
                        ControlAction::Start => by_levels(starts, ControlAction::Start).await,
                        ControlAction::Stop => by_levels(stops, ControlAction::Stop).await,
                        ControlAction::Kill => by_levels(stops, ControlAction::Kill).await,
                        ControlAction::Restart => {
                            by_levels(stops, ControlAction::Stop).await;
                            by_levels(starts, ControlAction::Start).await
                        }
                        ControlAction::Pause => pipelined(everyone, ControlAction::Pause).await,
                        ControlAction::Resume => in_order(everyone, ControlAction::Resume).await,
                    };
                    let _ = reply.send(result);
                });
            }
            RootMsg::Status { reply } => {
                let mut counts = std::collections::BTreeMap::new();
                let mut restarts_total = 0u64;
                for row in state.tables.states.iter() {
                    *counts.entry(row.status).or_insert(0) += 1;
                    restarts_total += u64::from(row.restart_count);
                }
                let started_at = state.tables.started_at;
                let _ = reply.send(RuntimeStatus {
                    state: state.tables.runtime_state(),
                    started_at,
                    uptime_secs: (chrono::Utc::now() - started_at).num_seconds().max(0) as u64,
                    version: env!("CARGO_PKG_VERSION"),
                    services: state.order.len(),
                    counts,
                    restarts_total,
                    last_event_seq: state.tables.events.last_seq(),
                });
            }
            RootMsg::InjectPanic { id, actor, reply } => state.forward(
                &id,
                move |r| ServiceSupervisorMsg::InjectPanic { actor, reply: r },
                reply,
            ),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((cell, why)) = super::describe_exit(&event, "stopped") else {
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
        if let Some(def) = state.tables.definitions.get(&id).map(|d| d.clone()) {
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
        for id in state.order.iter().rev() {
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

/// The Server message that carries `action` and its reply.
fn server_msg(action: ControlAction, reply: ControlReply) -> ServerMsg {
    match action {
        ControlAction::Start => ServerMsg::Start(reply),
        ControlAction::Stop => ServerMsg::Stop(reply),
        ControlAction::Restart => ServerMsg::Restart(reply),
        ControlAction::Kill => ServerMsg::Kill(reply),
        ControlAction::Pause => ServerMsg::Pause(reply),
        ControlAction::Resume => ServerMsg::Resume(reply),
    }
}

type Target = (String, ActorRef<ServiceSupervisorMsg>);

/// Applies a verb level by level. A start asks every Server of a level at once (they
/// spawn in parallel) and the next level once all of them have acted, so a dependent
/// never looks at a dependency that was not asked yet; nobody waits for a whole start:
/// a service with dependencies waits for their conditions on its own (`starting`,
/// "waiting for …"), and a slow `install` has acted as soon as its step is spawned, so
/// it holds back no other service. A stop (or kill) asks every service of a level at
/// once too, and waits for all of them to be done (their processes exited) before the
/// next level, so dependents are down before what they depend on is stopped.
async fn by_levels(levels: Vec<Vec<Target>>, action: ControlAction) -> BatchResult {
    let start = matches!(action, ControlAction::Start);
    let mut pending = Vec::new();
    let mut out = Vec::new();
    for level in levels {
        let mut asked = Vec::with_capacity(level.len());
        for (id, sup) in level {
            let (sent, reply) = ask(&sup, action);
            if sent {
                asked.push(sup);
            }
            pending.push((id, reply));
        }
        if start {
            futures::future::join_all(asked.iter().map(has_acted)).await;
        } else {
            out.extend(gather(std::mem::take(&mut pending)).await);
        }
    }
    out.extend(gather(pending).await);
    out
}

/// Applies a verb to each service one after the other (start order).
async fn in_order(targets: Vec<Target>, action: ControlAction) -> BatchResult {
    let mut out = Vec::with_capacity(targets.len());
    for (id, sup) in targets {
        let result = control(&sup, &id, action).await;
        out.push((id, result));
    }
    out
}

/// Applies a verb to every service in the given order without waiting for one to finish
/// before the next: each Server has handled its message (stop signal sent, event
/// emitted) before the next service is asked, and the replies are gathered as the
/// processes exit, in parallel.
async fn pipelined(targets: Vec<Target>, action: ControlAction) -> BatchResult {
    let mut pending = Vec::with_capacity(targets.len());
    for (id, sup) in targets {
        let (sent, reply) = ask(&sup, action);
        if sent {
            // Wait until this Server has acted before asking the next one.
            has_acted(&sup).await;
        }
        pending.push((id, reply));
    }
    gather(pending).await
}

/// The reply a Server sends once a verb is done.
type PendingReply = ractor::concurrency::OneshotReceiver<Result<ServiceState, ControlError>>;

/// Sends a verb to a service without waiting; whether it was sent, and its reply to come.
fn ask(sup: &ActorRef<ServiceSupervisorMsg>, action: ControlAction) -> (bool, PendingReply) {
    let (tx, rx) = ractor::concurrency::oneshot();
    let sent = sup
        .cast(ServiceSupervisorMsg::Control(server_msg(action, tx.into())))
        .is_ok();
    (sent, rx)
}

/// Returns once the service's Server has handled every message sent to it before.
async fn has_acted(sup: &ActorRef<ServiceSupervisorMsg>) {
    let _ = sup
        .call(|r| ServiceSupervisorMsg::Control(ServerMsg::Sync(r)), None)
        .await;
}

/// Waits for every reply, in parallel.
async fn gather(pending: Vec<(String, PendingReply)>) -> BatchResult {
    let replies = pending.into_iter().map(|(id, rx)| async move {
        let result = rx.await.unwrap_or_else(|_| {
            Err(ControlError::Unavailable {
                id: id.clone(),
                reason: "the service's actors did not answer".to_string(),
            })
        });
        (id, result)
    });
    futures::future::join_all(replies).await
}

/// Sends one control verb to a service supervisor and waits for the Server's reply.
async fn control(
    sup: &ActorRef<ServiceSupervisorMsg>,
    id: &str,
    action: ControlAction,
) -> Result<ServiceState, ControlError> {
    match sup
        .call(
            move |r| ServiceSupervisorMsg::Control(server_msg(action, r)),
            None,
        )
        .await
    {
        Ok(CallResult::Success(result)) => result,
        _ => Err(ControlError::Unavailable {
            id: id.to_string(),
            reason: "the service's actors did not answer".to_string(),
        }),
    }
}

impl RootState {
    /// Plans a reload from the config directory and, unless `dry_run`, applies it in a
    /// task that sends this root the same messages a person would (stop, remove, define,
    /// start), so the root never blocks on a stop.
    fn reload(
        &self,
        myself: &ActorRef<RootMsg>,
        dry_run: bool,
        reply: RpcReplyPort<Result<ReloadPlan, ControlError>>,
    ) {
        let Some(dir) = self.tables.config_dir.clone() else {
            let _ = reply.send(Err(ControlError::InvalidDefinition(
                "this runtime was not booted from a config directory".to_string(),
            )));
            return;
        };
        let next = match config::load_dir(&dir) {
            Ok(next) => next,
            Err(errors) => {
                let _ = reply.send(Err(ControlError::InvalidDefinition(errors.to_string())));
                return;
            }
        };
        let current: Vec<(Arc<ServiceDefinition>, u64)> = self
            .order
            .iter()
            .filter_map(|id| {
                let def = self.tables.definitions.get(id)?.clone();
                Some((def, self.fingerprints.get(id).copied().unwrap_or(0)))
            })
            .collect();
        let plan = config::plan_reload(&current, &next);
        if dry_run || plan.is_noop() {
            let _ = reply.send(Ok(plan));
            return;
        }
        let root = myself.clone();
        let tables = self.tables.clone();
        let mut next_defs: HashMap<String, ServiceDefinition> = next
            .services
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        tokio::spawn(async move {
            let ask = |msg: ControlAction, id: String| {
                let root = root.clone();
                async move {
                    let _ = root
                        .call(
                            |r| RootMsg::Control {
                                id,
                                action: msg,
                                reply: r,
                            },
                            None,
                        )
                        .await;
                }
            };
            let mut to_define = Vec::new();
            let mut to_start = Vec::new();
            let mut dependents_to_restart: Vec<String> = Vec::new();
            for entry in &plan.entries {
                let was_active = tables
                    .states
                    .get(&entry.id)
                    .is_some_and(|r| r.status.is_active());
                match entry.action {
                    PlanAction::Keep => {}
                    PlanAction::Stop | PlanAction::Restart => {
                        // Dependents of a replaced service are stopped with it, and
                        // started again afterwards.
                        if let Ok(CallResult::Success(stopped)) = root
                            .call(
                                |r| RootMsg::StopCascade {
                                    id: entry.id.clone(),
                                    reply: r,
                                },
                                None,
                            )
                            .await
                        {
                            for (other, _) in stopped {
                                if other != entry.id && !dependents_to_restart.contains(&other) {
                                    dependents_to_restart.push(other);
                                }
                            }
                        }
                        let _ = root
                            .call(
                                |r| RootMsg::Remove {
                                    id: entry.id.clone(),
                                    reply: r,
                                },
                                None,
                            )
                            .await;
                        if entry.action == PlanAction::Restart {
                            if let Some(def) = next_defs.remove(&entry.id) {
                                if was_active {
                                    to_start.push(def.id.clone());
                                }
                                to_define.push(def);
                            }
                        }
                    }
                    PlanAction::Start => {
                        if let Some(def) = next_defs.remove(&entry.id) {
                            if def.autostart {
                                to_start.push(def.id.clone());
                            }
                            to_define.push(def);
                        }
                    }
                }
            }
            let defined = root
                .call(
                    |r| RootMsg::DefineAll {
                        definitions: to_define,
                        reply: r,
                    },
                    None,
                )
                .await;
            if !matches!(defined, Ok(CallResult::Success(Ok(())))) {
                warn!(?defined, "reload could not define every new service");
            }
            let removed: Vec<&str> = plan
                .entries
                .iter()
                .filter(|e| e.action == PlanAction::Stop)
                .map(|e| e.id.as_str())
                .collect();
            for id in dependents_to_restart {
                if !removed.contains(&id.as_str()) && !to_start.contains(&id) {
                    to_start.push(id);
                }
            }
            for id in to_start {
                ask(ControlAction::Start, id).await;
            }
            let _ = reply.send(Ok(plan));
        });
    }

    fn graph(&self) -> dependencies::Graph {
        dependencies::graph(
            self.tables
                .definitions
                .iter()
                .map(|d| d.value().clone())
                .collect::<Vec<_>>()
                .iter()
                .map(|d| d.as_ref()),
        )
    }

    fn is_active(&self, id: &str) -> bool {
        self.tables
            .states
            .get(id)
            .is_some_and(|r| r.status.is_active())
    }

    fn level_targets(&self, levels: Vec<Vec<String>>) -> Vec<Vec<Target>> {
        levels
            .into_iter()
            .map(|level| {
                level
                    .into_iter()
                    .filter_map(|id| self.supervisors.get(&id).map(|s| (id.clone(), s.clone())))
                    .collect::<Vec<_>>()
            })
            .filter(|level| !level.is_empty())
            .collect()
    }

    /// The autostart services and what they need, in start levels.
    fn start_plan(&self) -> Vec<Vec<Target>> {
        let graph = self.graph();
        let mut ids: Vec<String> = Vec::new();
        for id in &self.order {
            if self.tables.definitions.get(id).is_some_and(|d| d.autostart) {
                for needed in dependencies::needed_by(id, &graph) {
                    if !ids.contains(&needed) {
                        ids.push(needed);
                    }
                }
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        // Keep definition order inside levels.
        ids.sort_by_key(|id| self.order.iter().position(|o| o == id));
        self.level_targets(dependencies::start_levels(&ids, &graph))
    }

    /// Every service, dependents first; within a level, the reverse of definition order.
    fn stop_plan(&self) -> Vec<Vec<Target>> {
        let graph = self.graph();
        let ids: Vec<String> = self.order.iter().rev().cloned().collect();
        self.level_targets(dependencies::stop_levels(&ids, &graph))
    }

    /// One service's control verb: dependencies are started first; a stop that would
    /// leave running dependents behind is refused.
    fn control(&self, id: String, action: ControlAction, reply: ControlReply) {
        let graph = self.graph();
        match action {
            ControlAction::Stop | ControlAction::Kill => {
                let dependents: Vec<String> = dependencies::dependents_of(&id, &graph)
                    .into_iter()
                    .filter(|d| self.is_active(d))
                    .collect();
                if !dependents.is_empty() && self.is_active(&id) {
                    let _ = reply.send(Err(ControlError::DependentsRunning { id, dependents }));
                    return;
                }
            }
            ControlAction::Start | ControlAction::Restart => {
                let needed = dependencies::needed_by(&id, &graph);
                if !needed.is_empty() {
                    let levels = self.level_targets(dependencies::start_levels(&needed, &graph));
                    let target = self.supervisors.get(&id).cloned();
                    tokio::spawn(async move {
                        for level in levels {
                            let calls = level.iter().map(|(dep, sup)| {
                                let by = id.clone();
                                async move {
                                    let _ = sup
                                        .call(
                                            |r| {
                                                ServiceSupervisorMsg::Control(
                                                    ServerMsg::StartNeeded { by, reply: r },
                                                )
                                            },
                                            None,
                                        )
                                        .await;
                                    dep.clone()
                                }
                            });
                            futures::future::join_all(calls).await;
                        }
                        match target {
                            Some(sup) => {
                                let _ = sup
                                    .cast(ServiceSupervisorMsg::Control(server_msg(action, reply)));
                            }
                            None => {
                                let _ = reply.send(Err(ControlError::NotFound(id)));
                            }
                        }
                    });
                    return;
                }
            }
            ControlAction::Pause | ControlAction::Resume => {}
        }
        self.forward(
            &id,
            move |r| ServiceSupervisorMsg::Control(server_msg(action, r)),
            reply,
        )
    }

    /// Checks `depends_on` of definitions about to be added (or replacing ones of the same
    /// id) against what is defined, with the loader's check: targets exist (the nearest id
    /// suggested), no cycle (named in order).
    fn check_dependencies(&self, defs: &[&ServiceDefinition]) -> Result<(), ControlError> {
        let incoming: HashSet<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        let held: Vec<Arc<ServiceDefinition>> = self
            .order
            .iter()
            .filter(|id| !incoming.contains(id.as_str()))
            .filter_map(|id| self.tables.definitions.get(id).map(|d| d.value().clone()))
            .collect();
        let all: Vec<&ServiceDefinition> = held
            .iter()
            .map(|d| d.as_ref())
            .chain(defs.iter().copied())
            .collect();
        config::check_dependencies(&all)
            .map_err(|errors| ControlError::InvalidDefinition(errors.to_string()))
    }

    /// Supervisors in definition order (reversed with `reverse`), only autostart ones with
    /// `autostart_only`.
    fn targets(&self, autostart_only: bool, reverse: bool) -> Vec<Target> {
        let pick = |id: &String| {
            if autostart_only && !self.tables.definitions.get(id).is_some_and(|d| d.autostart) {
                return None;
            }
            self.supervisors.get(id).map(|s| (id.clone(), s.clone()))
        };
        if reverse {
            self.order.iter().rev().filter_map(pick).collect()
        } else {
            self.order.iter().filter_map(pick).collect()
        }
    }

    fn state_of(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.tables
            .state_with_usage(id)
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    fn ring(&self, id: &str) -> Result<Arc<LogRing>, ControlError> {
        self.tables
            .rings
            .get(id)
            .map(|r| r.clone())
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    /// Forwards a message carrying `reply` to the service's supervisor, or answers NotFound.
    fn forward<T, F>(&self, id: &str, make: F, reply: RpcReplyPort<Result<T, ControlError>>)
    where
        F: FnOnce(RpcReplyPort<Result<T, ControlError>>) -> ServiceSupervisorMsg,
        T: Send + 'static,
    {
        match self.supervisors.get(id) {
            Some(sup) => {
                if let Err(e) = sup.cast(make(reply)) {
                    warn!(service = %id, error = %e, "message not delivered");
                }
            }
            None => {
                let err = if self.tables.definitions.contains_key(id) {
                    ControlError::Unavailable {
                        id: id.to_string(),
                        reason: "its supervisor gave up after too many failures".to_string(),
                    }
                } else {
                    ControlError::NotFound(id.to_string())
                };
                let _ = reply.send(Err(err));
            }
        }
    }

    fn check(&self, def: &ServiceDefinition) -> Result<(), ControlError> {
        if self.tables.definitions.contains_key(&def.id) {
            return Err(ControlError::AlreadyExists(def.id.clone()));
        }
        config::check_definition(def).map_err(|e| {
            ControlError::InvalidDefinition(
                e.0.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    async fn define(
        &mut self,
        myself: &ActorRef<RootMsg>,
        def: ServiceDefinition,
    ) -> Result<String, ControlError> {
        self.check(&def)?;
        let id = def.id.clone();
        self.fingerprints
            .insert(id.clone(), config::fingerprint(&def));
        let def = Arc::new(def);
        self.tables.rings.insert(
            id.clone(),
            Arc::new(LogRing::new(&id, def.log_lines, self.tables.events.clone())),
        );
        self.tables
            .states
            .insert(id.clone(), ServiceState::pending(&id, &def.name, &def.tags));
        self.tables.definitions.insert(id.clone(), def.clone());
        self.order.push(id.clone());
        self.tables.events.emit(Event::new(&id, EventKind::Defined));
        if let Err(e) = self.spawn_supervisor(myself, def).await {
            error!(service = %id, error = %e, "could not spawn the service supervisor");
            self.forget(&id);
            return Err(ControlError::Unavailable {
                id,
                reason: format!("could not spawn its actors: {e}"),
            });
        }
        Ok(id)
    }

    async fn define_all(
        &mut self,
        myself: &ActorRef<RootMsg>,
        definitions: Vec<ServiceDefinition>,
    ) -> Result<(), ControlError> {
        let mut seen = std::collections::HashSet::new();
        for def in &definitions {
            self.check(def)?;
            if !seen.insert(def.id.clone()) {
                return Err(ControlError::AlreadyExists(def.id.clone()));
            }
        }
        self.check_dependencies(&definitions.iter().collect::<Vec<_>>())?;
        for def in definitions {
            self.define(myself, def).await?;
        }
        Ok(())
    }

    async fn spawn_supervisor(
        &mut self,
        myself: &ActorRef<RootMsg>,
        definition: Arc<ServiceDefinition>,
    ) -> Result<(), ActorProcessingErr> {
        let id = definition.id.clone();
        let (sup, _) = Actor::spawn_linked(
            None,
            ServiceSupervisor,
            ServiceSupervisorArgs {
                definition,
                tables: self.tables.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        self.by_actor.insert(sup.get_id(), id.clone());
        self.supervisors.insert(id, sup);
        Ok(())
    }

    async fn remove(&mut self, id: &str) -> Result<(), ControlError> {
        let status = self
            .tables
            .states
            .get(id)
            .map(|r| r.status)
            .ok_or_else(|| ControlError::NotFound(id.to_string()))?;
        if status.is_active() {
            return Err(ControlError::Running(id.to_string()));
        }
        if let Some(sup) = self.supervisors.remove(id) {
            self.by_actor.remove(&sup.get_id());
            let _ = sup
                .stop_and_wait(
                    Some("service removed".into()),
                    Some(SUPERVISOR_STOP_TIMEOUT),
                )
                .await;
        }
        self.forget(id);
        self.tables.events.emit(Event::new(id, EventKind::Removed));
        Ok(())
    }

    fn forget(&mut self, id: &str) {
        self.order.retain(|o| o != id);
        self.fingerprints.remove(id);
        self.intensity.remove(id);
        self.tables.definitions.remove(id);
        self.tables.states.remove(id);
        self.tables.rings.remove(id);
    }
}
