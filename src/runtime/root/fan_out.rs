//! Fan-out: how the root applies a verb to one service, to a dependency chain or to the
//! whole runtime without blocking its own mailbox.
//!
//! OTP's supervisor starts children in order and stops them in reverse; steward does the
//! same over the dependency graph, level by level (see [`crate::dependencies`]). The
//! root only plans (which supervisors, in which levels) and hands the reply port to the
//! service's Server or to a task that gathers many Servers' replies, so a slow stop
//! never holds back another request.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt as _;
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};

use super::{RootMsg, RootState};
use crate::control::{BatchResult, ControlAction};
use crate::error::ControlError;
use crate::runtime::service::server::{ControlReply, ServerMsg};
use crate::runtime::service::supervisor::ServiceSupervisorMsg;
use crate::runtime::{RuntimeState, Tables};
use crate::state::ServiceState;

/// A service and its supervisor.
pub(super) type Target = (String, ActorRef<ServiceSupervisorMsg>);

/// When a control request is answered.
#[derive(Debug)]
pub(super) enum Answer {
    /// Once the verb is done (a stop: the process is gone).
    Done(ControlReply),
    /// Once the Server has acted on the verb (a stop: the signal is sent, `stopping`),
    /// with the state then.
    Acted(ControlReply),
}

impl RootState {
    /// Supervisors of `levels`, dropping ids without one and levels left empty.
    pub(super) fn level_targets(&self, levels: Vec<Vec<String>>) -> Vec<Vec<Target>> {
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
    pub(super) fn start_plan(&self) -> Vec<Vec<Target>> {
        let mut picked: HashSet<String> = HashSet::new();
        let mut ids: Vec<String> = Vec::new();
        for id in self.graph.ids() {
            if self.tables.read_definition(id, |d| d.autostart) == Some(true) {
                for needed in self.graph.needed_by(id) {
                    if picked.insert(needed.clone()) {
                        ids.push(needed);
                    }
                }
                if picked.insert(id.clone()) {
                    ids.push(id.clone());
                }
            }
        }
        // Keep definition order inside levels.
        ids.sort_by_key(|id| self.graph.position(id));
        self.level_targets(self.graph.start_levels(&ids))
    }

    /// Every service, dependents first; within a level, the reverse of definition order.
    pub(super) fn stop_plan(&self) -> Vec<Vec<Target>> {
        let ids: Vec<String> = self.graph.ids().rev().cloned().collect();
        self.level_targets(self.graph.stop_levels(&ids))
    }

    /// `id` and every running service that depends on it, in stop levels (dependents
    /// first); None when `id` has no supervisor.
    pub(super) fn cascade_plan(&self, id: &str) -> Option<Vec<Vec<Target>>> {
        if !self.supervisors.contains_key(id) {
            return None;
        }
        let mut ids: Vec<String> = self
            .graph
            .dependents_of(id)
            .into_iter()
            .filter(|d| self.is_active(d))
            .collect();
        ids.push(id.to_string());
        Some(self.level_targets(self.graph.stop_levels(&ids)))
    }

    /// Supervisors in definition order (every service).
    pub(super) fn everyone(&self) -> Vec<Target> {
        self.graph
            .ids()
            .filter_map(|id| self.supervisors.get(id).map(|s| (id.clone(), s.clone())))
            .collect()
    }

    /// Stops `id` and, first, its running dependents, level by level.
    pub(super) fn on_stop_cascade(&self, id: String, reply: RpcReplyPort<BatchResult>) {
        match self.cascade_plan(&id) {
            Some(levels) => {
                tokio::spawn(async move {
                    let _ = reply.send(by_levels(levels, ControlAction::Stop).await);
                });
            }
            None => {
                let error = self.missing(&id);
                let _ = reply.send(vec![(id, Err(error))]);
            }
        }
    }

    /// A verb over the whole runtime (see [`RootMsg::Lifecycle`]).
    pub(super) fn on_lifecycle(&self, action: ControlAction, reply: RpcReplyPort<BatchResult>) {
        let starts = self.start_plan();
        let stops = self.stop_plan();
        let everyone = self.everyone();
        match action {
            ControlAction::Pause => self.tables.set_runtime_state(RuntimeState::Paused),
            ControlAction::Resume | ControlAction::Start | ControlAction::Restart => {
                self.tables.set_runtime_state(RuntimeState::Running)
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

    /// The shutdown budget is spent: SIGKILL what is left of every service, dependents
    /// first, each Server saying that the budget forced it (see [`RootMsg::ShutdownKill`]).
    pub(super) fn on_shutdown_kill(&self, budget: Duration, reply: RpcReplyPort<BatchResult>) {
        let stops = self.stop_plan();
        tokio::spawn(async move {
            let kills = each_level(stops, false, move |reply| ServerMsg::ShutdownKill {
                budget,
                reply,
            });
            let _ = reply.send(kills.await);
        });
    }

    /// Starts every autostart service, level by level.
    pub(super) fn on_start_all(&self, reply: RpcReplyPort<BatchResult>) {
        let starts = self.start_plan();
        tokio::spawn(async move {
            let _ = reply.send(by_levels(starts, ControlAction::Start).await);
        });
    }

    /// Stops every service, dependents first.
    pub(super) fn on_stop_all(&self, reply: RpcReplyPort<BatchResult>) {
        let stops = self.stop_plan();
        tokio::spawn(async move {
            let _ = reply.send(by_levels(stops, ControlAction::Stop).await);
        });
    }

    /// One service's control verb: dependencies are started first; a stop that would
    /// leave running dependents behind is refused.
    pub(super) fn on_control(&self, id: String, action: ControlAction, answer: Answer) {
        match action {
            ControlAction::Stop | ControlAction::Kill => {
                let dependents: Vec<String> = self
                    .graph
                    .dependents_of(&id)
                    .into_iter()
                    .filter(|d| self.is_active(d))
                    .collect();
                if !dependents.is_empty() && self.is_active(&id) {
                    answer.send(Err(ControlError::DependentsRunning { id, dependents }));
                    return;
                }
            }
            ControlAction::Start | ControlAction::Restart => {
                let needed = self.graph.needed_by(&id);
                if !needed.is_empty() {
                    let levels = self.level_targets(self.graph.start_levels(&needed));
                    let target = self.supervisors.get(&id).cloned();
                    let tables = self.tables.clone();
                    tokio::spawn(async move {
                        start_needed(&id, levels).await;
                        match target {
                            Some(sup) => deliver(&sup, &id, action, answer, &tables).await,
                            None => answer.send(Err(ControlError::NotFound(id))),
                        }
                    });
                    return;
                }
            }
            ControlAction::Pause | ControlAction::Resume => {}
        }
        match (self.supervisors.get(&id).cloned(), answer) {
            (Some(sup), Answer::Done(reply)) => cast_verb(&sup, &id, action, reply),
            (Some(sup), Answer::Acted(reply)) => {
                let tables = self.tables.clone();
                tokio::spawn(async move {
                    answer_once_acted(&sup, &id, action, reply, &tables).await;
                });
            }
            (None, answer) => answer.send(Err(self.missing(&id))),
        }
    }
}

impl Answer {
    fn send(self, result: Result<ServiceState, ControlError>) {
        let (Answer::Done(reply) | Answer::Acted(reply)) = self;
        let _ = reply.send(result);
    }
}

/// Starts what `by` needs, level by level, each level once the one before has acted.
async fn start_needed(by: &str, levels: Vec<Vec<Target>>) {
    for level in levels {
        let calls = level.iter().map(|(_, sup)| {
            let by = by.to_string();
            async move {
                let _ = sup
                    .call(
                        |r| ServiceSupervisorMsg::Control(ServerMsg::StartNeeded { by, reply: r }),
                        None,
                    )
                    .await;
            }
        });
        futures::future::join_all(calls).await;
    }
}

/// Sends the verb to the service's supervisor and answers as `answer` asks.
async fn deliver(
    sup: &ActorRef<ServiceSupervisorMsg>,
    id: &str,
    action: ControlAction,
    answer: Answer,
    tables: &Tables,
) {
    match answer {
        Answer::Done(reply) => cast_verb(sup, id, action, reply),
        Answer::Acted(reply) => answer_once_acted(sup, id, action, reply, tables).await,
    }
}

/// Sends the verb with `reply`: the Server answers once the verb is done.
fn cast_verb(
    sup: &ActorRef<ServiceSupervisorMsg>,
    id: &str,
    action: ControlAction,
    reply: ControlReply,
) {
    if let Err(e) = sup.cast(ServiceSupervisorMsg::Control(server_msg(action, reply))) {
        tracing::warn!(service = %id, error = %e, "message not delivered");
    }
}

/// Sends the verb, waits until the Server has acted on it, and answers with the state
/// then (or with the Server's refusal, when it refused at once).
async fn answer_once_acted(
    sup: &ActorRef<ServiceSupervisorMsg>,
    id: &str,
    action: ControlAction,
    reply: ControlReply,
    tables: &Tables,
) {
    let (sent, mut done) = ask(sup, action);
    if !sent {
        let _ = reply.send(Err(unavailable(id)));
        return;
    }
    has_acted(sup).await;
    // A verb the Server refused at once (not running, unsupported) has answered already:
    // pass its refusal on rather than a state that hides it.
    let result = match done.try_recv() {
        Ok(Err(e)) => Err(e),
        _ => tables
            .state_with_usage(id)
            .ok_or_else(|| ControlError::NotFound(id.to_string())),
    };
    let _ = reply.send(result);
}

/// The Server message that carries `action` and its reply.
pub(super) fn server_msg(action: ControlAction, reply: ControlReply) -> ServerMsg {
    match action {
        ControlAction::Start => ServerMsg::Start(reply),
        ControlAction::Stop => ServerMsg::Stop(reply),
        ControlAction::Restart => ServerMsg::Restart(reply),
        ControlAction::Kill => ServerMsg::Kill(reply),
        ControlAction::Pause => ServerMsg::Pause(reply),
        ControlAction::Resume => ServerMsg::Resume(reply),
    }
}

/// Applies a verb level by level. A start asks every Server of a level (a window of them
/// at a time, spawning in parallel; see [`each_level`]) and the next level once all of
/// them have acted, so a dependent
/// never looks at a dependency that was not asked yet; nobody waits for a whole start:
/// a service with dependencies waits for their conditions on its own (`starting`,
/// "waiting for …"), and a slow `install` has acted as soon as its step is spawned, so
/// it holds back no other service. A stop (or kill) asks every service of a level the
/// same way, and waits for all of them to be done (their processes exited) before the
/// next level, so dependents are down before what they depend on is stopped.
pub(super) async fn by_levels(levels: Vec<Vec<Target>>, action: ControlAction) -> BatchResult {
    let start = matches!(action, ControlAction::Start);
    each_level(levels, start, move |reply| server_msg(action, reply)).await
}

/// [`by_levels`] with any Server message: `start` says whether a level only has to have
/// acted (a start) or to be done (a stop or kill) before the next one is asked.
///
/// Within a level at most [`ACTING_WINDOW`] Servers are acting at once: the next is asked
/// as soon as one has acted (a start: its process spawned or its dependency wait set up;
/// a stop: its signal sent). Asking 10,000 at once put 10,000 spawns in the runtime's run
/// queue, and every other task (the root answering `/health/live`, the API) waited behind
/// them for seconds (issue 16); the window keeps both cores busy and the queue short.
async fn each_level(
    levels: Vec<Vec<Target>>,
    start: bool,
    make: impl Fn(ControlReply) -> ServerMsg,
) -> BatchResult {
    let mut pending = Vec::new();
    let mut out = Vec::new();
    for level in levels {
        // `map` runs lazily, as `buffered` makes room: a Server is asked only when it
        // enters the window, and the replies keep the level's order.
        let mut acting = futures::stream::iter(level)
            .map(|(id, sup)| {
                let (sent, reply) = ask_with(&sup, &make);
                async move {
                    if sent {
                        has_acted(&sup).await;
                    }
                    (id, reply)
                }
            })
            .buffered(ACTING_WINDOW);
        while let Some(asked) = acting.next().await {
            pending.push(asked);
        }
        if !start {
            out.extend(gather(std::mem::take(&mut pending)).await);
        }
    }
    out.extend(gather(pending).await);
    out
}

/// How many Servers of a level act on a verb at once (see [`each_level`]): enough to keep
/// the cores busy with spawns and signals, few enough that a request to the root waits
/// behind a few spawns, not thousands (at 32, `/health/live` took ~100 ms during a boot
/// of 4,000 on the loaded 2-core machine).
const ACTING_WINDOW: usize = 8;

/// Applies a verb to each service one after the other (start order).
pub(super) async fn in_order(targets: Vec<Target>, action: ControlAction) -> BatchResult {
    let mut out = Vec::with_capacity(targets.len());
    for (id, sup) in targets {
        let result = control_one(&sup, &id, action).await;
        out.push((id, result));
    }
    out
}

/// Applies a verb to every service in the given order without waiting for one to finish
/// before the next: each Server has handled its message (stop signal sent, event
/// emitted) before the next service is asked, and the replies are gathered as the
/// processes exit, in parallel.
pub(super) async fn pipelined(targets: Vec<Target>, action: ControlAction) -> BatchResult {
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
    ask_with(sup, |reply| server_msg(action, reply))
}

/// Sends the Server message `make` builds around a fresh reply port, without waiting.
fn ask_with(
    sup: &ActorRef<ServiceSupervisorMsg>,
    make: impl Fn(ControlReply) -> ServerMsg,
) -> (bool, PendingReply) {
    let (tx, rx) = ractor::concurrency::oneshot();
    let sent = sup
        .cast(ServiceSupervisorMsg::Control(make(tx.into())))
        .is_ok();
    (sent, rx)
}

/// Returns once the service's Server has handled every message sent to it before.
async fn has_acted(sup: &ActorRef<ServiceSupervisorMsg>) {
    let _ = sup
        .call(|r| ServiceSupervisorMsg::Control(ServerMsg::Sync(r)), None)
        .await;
}

/// Waits for every reply. The Servers are already at work on them, so awaiting the
/// replies one after the other takes as long as the slowest: each is a oneshot that
/// completes on its own. (`join_all` over 60,000 replies spent 28 % of a shutdown's CPU
/// in `FuturesUnordered`'s bookkeeping.)
async fn gather(pending: Vec<(String, PendingReply)>) -> BatchResult {
    let mut out = Vec::with_capacity(pending.len());
    for (id, rx) in pending {
        let result = rx.await.unwrap_or_else(|_| Err(unavailable(&id)));
        out.push((id, result));
    }
    out
}

/// Sends one control verb to a service supervisor and waits for the Server's reply.
async fn control_one(
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
        _ => Err(unavailable(id)),
    }
}

fn unavailable(id: &str) -> ControlError {
    ControlError::Unavailable {
        id: id.to_string(),
        reason: "the service's actors did not answer".to_string(),
    }
}

/// Asks the root for a verb on one service and waits for it to be done (used by tasks
/// that apply a plan through the root, like a reload).
pub(super) async fn through_root(root: &ActorRef<RootMsg>, id: String, action: ControlAction) {
    let _ = root
        .call(|reply| RootMsg::Control { id, action, reply }, None)
        .await;
}
