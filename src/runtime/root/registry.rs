//! The registry: which services the root supervises, in which order, under which
//! ServiceSupervisor — OTP's child specs and `which_children`.
//!
//! Defining a service checks it (id free, definition valid, dependencies known and
//! acyclic), creates its status row and log ring, and spawns its ServiceSupervisor linked
//! to the root; removing one stops that supervisor and forgets every trace of the service.

use std::collections::HashSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{error, warn};

use super::{RootMsg, RootState, SUPERVISOR_STOP_TIMEOUT};
use crate::config::{self, ServiceDefinition};
use crate::dependencies;
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::logs::LogRing;
use crate::runtime::service::supervisor::{
    ServiceSupervisor, ServiceSupervisorArgs, ServiceSupervisorMsg,
};
use crate::state::ServiceState;

impl RootState {
    /// The dependency graph of every defined service.
    pub(super) fn graph(&self) -> dependencies::Graph {
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

    /// Whether the service has (or is about to have) a process.
    pub(super) fn is_active(&self, id: &str) -> bool {
        self.tables
            .states
            .get(id)
            .is_some_and(|r| r.status.is_active())
    }

    /// Checks `depends_on` of definitions about to be added (or replacing ones of the same
    /// id) against what is defined, with the loader's check: targets exist (the nearest id
    /// suggested), no cycle (named in order).
    pub(super) fn check_dependencies(
        &self,
        defs: &[&ServiceDefinition],
    ) -> Result<(), ControlError> {
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
        config::check_dependencies(&all).map_err(ControlError::InvalidDefinition)
    }

    /// A service's current state (with CPU and memory).
    pub(super) fn state_of(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.tables
            .state_with_usage(id)
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    /// Why a service has no supervisor: never defined, or its supervisor gave up.
    pub(super) fn missing(&self, id: &str) -> ControlError {
        if self.tables.definitions.contains_key(id) {
            ControlError::Unavailable {
                id: id.to_string(),
                reason: "its supervisor gave up after too many failures".to_string(),
            }
        } else {
            ControlError::NotFound(id.to_string())
        }
    }

    /// Forwards a message carrying `reply` to the service's supervisor, or answers why not.
    pub(super) fn forward<T, F>(
        &self,
        id: &str,
        make: F,
        reply: ractor::RpcReplyPort<Result<T, ControlError>>,
    ) where
        F: FnOnce(ractor::RpcReplyPort<Result<T, ControlError>>) -> ServiceSupervisorMsg,
        T: Send + 'static,
    {
        match self.supervisors.get(id) {
            Some(sup) => {
                if let Err(e) = sup.cast(make(reply)) {
                    warn!(service = %id, error = %e, "message not delivered");
                }
            }
            None => {
                let _ = reply.send(Err(self.missing(id)));
            }
        }
    }

    /// A definition may be added: its id is free and it is valid on its own.
    fn check(&self, def: &ServiceDefinition) -> Result<(), ControlError> {
        if self.tables.definitions.contains_key(&def.id) {
            return Err(ControlError::AlreadyExists(def.id.clone()));
        }
        config::check_definition(def).map_err(ControlError::InvalidDefinition)
    }

    /// Defines one service (checked, not started) and spawns its supervisor.
    pub(super) async fn define(
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

    /// Defines many services; every one is checked before any is defined.
    pub(super) async fn define_all(
        &mut self,
        myself: &ActorRef<RootMsg>,
        definitions: Vec<ServiceDefinition>,
    ) -> Result<(), ControlError> {
        let mut seen = HashSet::new();
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

    /// Spawns a service's supervisor linked to the root, and lists it.
    pub(super) async fn spawn_supervisor(
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

    /// Removes a service that is not running: stops its supervisor, forgets it.
    pub(super) async fn remove(&mut self, id: &str) -> Result<(), ControlError> {
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

    /// Drops every trace of a service from the root and its tables.
    pub(super) fn forget(&mut self, id: &str) {
        self.order.retain(|o| o != id);
        self.fingerprints.remove(id);
        self.intensity.remove(id);
        self.tables.definitions.remove(id);
        self.tables.states.remove(id);
        self.tables.rings.remove(id);
    }
}
