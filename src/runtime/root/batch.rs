//! Defining many services at once (a boot, a reload) in slices, with the root's mailbox
//! served in between — what an OTP `gen_server` does with a long job: a step per
//! message, and a continuation (`{continue, …}`, or a message to itself) for the rest.
//!
//! A [`RootMsg::DefineAll`] of 10,000 services spawned 40,000 actors inside one message,
//! and every other request (a `/health/live`, a list, a stop) waited seconds for it
//! (issue 16). Now the whole batch is checked first (ids free, definitions valid,
//! dependencies known and acyclic: nothing is defined when one is wrong), its ids are
//! reserved, and it is defined a slice at a time: at most [`DEFINE_CHUNK`] services or
//! [`DEFINE_SLICE`] of work, then the root sends the rest to itself as
//! [`RootMsg::DefineMore`], behind whatever arrived meanwhile. Definition order, and so
//! start order, is the batch's order; the caller hears back once the last one is defined.
//!
//! While a batch is under way its services not yet defined are *reserved*: a request to
//! define one of their ids is refused (`already exists`), a definition may depend on one
//! (it will be there), and every other request sees the services defined so far.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ractor::{ActorRef, RpcReplyPort};
use tracing::warn;

use super::graph::ServiceGraph;
use super::{RootMsg, RootState};
use crate::config::{HeldGraph, ServiceDefinition};
use crate::error::ControlError;

/// The most services one root message defines.
pub const DEFINE_CHUNK: usize = 256;
/// The work after which a slice ends even before [`DEFINE_CHUNK`] services: about what a
/// request waiting behind it may wait.
pub const DEFINE_SLICE: Duration = Duration::from_millis(10);

/// What is left of a [`RootMsg::DefineAll`]: the services not defined yet and whom to
/// answer. Only the root makes one.
pub struct DefineBatch {
    /// The services still to define, in definition order.
    rest: std::vec::IntoIter<ServiceDefinition>,
    /// Answered once the last one is defined, or at the first failure.
    reply: RpcReplyPort<Result<(), ControlError>>,
}

impl std::fmt::Debug for DefineBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefineBatch")
            .field("left", &self.rest.len())
            .finish()
    }
}

/// The ids of batches under way and their `depends_on` targets (see the module header).
pub(super) type Reserved = HashMap<String, Vec<String>>;

/// The services the root holds plus those reserved by a batch, as the dependency checks
/// of a new definition see them.
pub(super) struct WithReserved<'a> {
    /// The defined services.
    pub(super) graph: &'a ServiceGraph,
    /// The services about to be defined.
    pub(super) reserved: &'a Reserved,
}

impl HeldGraph for WithReserved<'_> {
    fn targets(&self, id: &str) -> Option<&[String]> {
        HeldGraph::targets(self.graph, id).or_else(|| self.reserved.get(id).map(Vec::as_slice))
    }

    fn rank(&self, id: &str) -> Option<u64> {
        // A reserved service comes after every defined one.
        HeldGraph::rank(self.graph, id)
            .or_else(|| self.reserved.contains_key(id).then_some(u64::MAX))
    }

    fn ids(&self) -> Vec<String> {
        let mut ids = HeldGraph::ids(self.graph);
        ids.extend(self.reserved.keys().cloned());
        ids
    }
}

impl RootState {
    /// Checks a whole batch, reserves its ids and defines its first slice.
    pub(super) async fn on_define_all(
        &mut self,
        myself: &ActorRef<RootMsg>,
        definitions: Vec<ServiceDefinition>,
        reply: RpcReplyPort<Result<(), ControlError>>,
    ) {
        if let Err(e) = self.check_batch(&definitions) {
            let _ = reply.send(Err(e));
            return;
        }
        for def in &definitions {
            let targets = def.depends_on.iter().map(|d| d.service.clone()).collect();
            self.reserved.insert(def.id.clone(), targets);
        }
        let batch = DefineBatch {
            rest: definitions.into_iter(),
            reply,
        };
        self.on_define_more(myself, batch).await;
    }

    /// Defines the next slice of a batch; sends the rest to the root's own mailbox, or
    /// answers once none is left.
    pub(super) async fn on_define_more(
        &mut self,
        myself: &ActorRef<RootMsg>,
        mut batch: DefineBatch,
    ) {
        let began = Instant::now();
        for _ in 0..DEFINE_CHUNK {
            let Some(def) = batch.rest.next() else {
                break;
            };
            self.reserved.remove(&def.id);
            if let Err(e) = self.define(myself, def).await {
                for left in batch.rest {
                    self.reserved.remove(&left.id);
                }
                let _ = batch.reply.send(Err(e));
                return;
            }
            if began.elapsed() >= DEFINE_SLICE {
                break;
            }
        }
        if batch.rest.len() == 0 {
            let _ = batch.reply.send(Ok(()));
            return;
        }
        if let Err(e) = myself.send_message(RootMsg::DefineMore(batch)) {
            // The root is stopping: the batch (and its reply port) is dropped with the
            // message, and the caller hears that the runtime is gone.
            warn!(error = %e, "the rest of a batch of definitions was not defined");
        }
    }

    /// Every definition of a batch may be added: ids free (in the runtime, in batches
    /// under way and within the batch), each valid, dependencies known and acyclic.
    fn check_batch(&self, definitions: &[ServiceDefinition]) -> Result<(), ControlError> {
        let mut seen = HashSet::new();
        for def in definitions {
            self.check(def)?;
            if !seen.insert(def.id.as_str()) {
                return Err(ControlError::AlreadyExists(def.id.clone()));
            }
        }
        self.check_dependencies(&definitions.iter().collect::<Vec<_>>())
    }
}
