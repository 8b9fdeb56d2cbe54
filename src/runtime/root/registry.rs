//! The registry: which services the root supervises, in which order, under which
//! ServiceSupervisor — OTP's child specs and `which_children`.
//!
//! Defining a service checks it (id free, definition valid, dependencies known and
//! acyclic), creates its status row and log ring, and spawns its ServiceSupervisor linked
//! to the root; removing one stops that supervisor and forgets every trace of the service.
//! The read-only answers (a state, the list, a log ring, the runtime's status) come from
//! here too.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{error, warn};

use super::batch::WithReserved;
use super::{RootMsg, RootState, SUPERVISOR_STOP_TIMEOUT};
use crate::config::{self, ServiceDefinition};
use crate::control::{RuntimeStatus, ServiceInfo};
use crate::error::ControlError;
use crate::events::{Event, EventKind, EventSubscription};
use crate::logs::{LogLine, LogRing, LogSubscription};
use crate::runtime::service::supervisor::{
    ServiceSupervisor, ServiceSupervisorArgs, ServiceSupervisorMsg,
};
use crate::state::ServiceState;

impl RootState {
    /// Whether the service has (or is about to have) a process.
    pub(super) fn is_active(&self, id: &str) -> bool {
        self.tables
            .read_state(id, |r| r.status.is_active())
            .unwrap_or(false)
    }

    /// Checks `depends_on` of definitions about to be added against what is defined, with
    /// the loader's rules: targets exist (the nearest id suggested), no cycle (named in
    /// order). Only what the new definitions reach is walked (see [`config::check_added`]).
    pub(super) fn check_dependencies(
        &self,
        defs: &[&ServiceDefinition],
    ) -> Result<(), ControlError> {
        let held = WithReserved {
            graph: &self.graph,
            reserved: &self.reserved,
        };
        config::check_added(defs, &held).map_err(ControlError::InvalidDefinition)
    }

    /// A service's current state (with CPU and memory).
    pub(super) fn state_of(&self, id: &str) -> Result<ServiceState, ControlError> {
        self.tables
            .state_with_usage(id)
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    /// Why a service has no supervisor: never defined, or its supervisor gave up.
    pub(super) fn missing(&self, id: &str) -> ControlError {
        if self.tables.is_defined(id) {
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

    /// A definition may be added: its id is free (not defined, not reserved by a batch
    /// under way) and it is valid on its own.
    pub(super) fn check(&self, def: &ServiceDefinition) -> Result<(), ControlError> {
        if self.tables.is_defined(&def.id) || self.reserved.contains_key(&def.id) {
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
        self.tables.insert_ring(
            &id,
            Arc::new(LogRing::new(&id, def.log_lines, self.tables.events.clone())),
        );
        self.tables.insert_service(
            def.clone(),
            ServiceState::pending(&id, &def.name, &def.tags).of_kind(def.kind()),
        );
        self.graph.insert(&def);
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

    /// Answers a removal (see [`RootState::remove`]).
    pub(super) async fn on_remove(
        &mut self,
        id: &str,
        reply: RpcReplyPort<Result<(), ControlError>>,
    ) {
        let _ = reply.send(self.remove(id).await);
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
            .read_state(id, |r| r.status)
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
        if self.graph.halved_since_trim() {
            // Maps keep their capacity, and the memory of thousands of removed services
            // lies in free chunks between blocks still in use, which glibc keeps unless
            // asked (issue 16): shrink first, so the trim finds the maps' old room free.
            self.shrink();
            let released = crate::process::trim_malloc();
            tracing::debug!(
                services = self.graph.len(),
                released,
                "heap trimmed after removals"
            );
        }
        Ok(())
    }

    /// Gives back the room the root's and the tables' maps kept for removed services.
    fn shrink(&mut self) {
        self.graph.shrink();
        self.supervisors.shrink_to_fit();
        self.by_actor.shrink_to_fit();
        self.intensity.shrink_to_fit();
        self.fingerprints.shrink_to_fit();
        self.reserved.shrink_to_fit();
        self.tables.shrink();
    }

    /// Drops every trace of a service from the root and its tables.
    pub(super) fn forget(&mut self, id: &str) {
        self.graph.remove(id);
        self.fingerprints.remove(id);
        self.intensity.remove(id);
        self.tables.remove_service(id);
    }

    /// A service's state and definition.
    pub(super) fn on_get(
        &self,
        id: String,
        reply: RpcReplyPort<Result<ServiceInfo, ControlError>>,
    ) {
        let info = self.state_of(&id).and_then(|state| {
            let definition = self
                .tables
                .definition(&id)
                .ok_or_else(|| ControlError::NotFound(id.clone()))?;
            Ok(ServiceInfo { state, definition })
        });
        let _ = reply.send(info);
    }

    /// Every service's state in definition order, optionally only those with `tag`.
    ///
    /// Gathered off the root's mailbox: with 10,000 services, copying the rows and reading
    /// CPU and RSS from `/proc` takes tens of milliseconds that other requests need not
    /// wait for.
    pub(super) fn on_list(&self, tag: Option<String>, reply: RpcReplyPort<Vec<ServiceState>>) {
        let ids = self.graph.snapshot();
        let tables = self.tables.clone();
        tokio::task::spawn_blocking(move || {
            let mut states = Vec::with_capacity(if tag.is_none() { ids.len() } else { 0 });
            states.extend(
                ids.iter()
                    .filter_map(|id| tables.state_with_usage(id))
                    .filter(|s| tag.as_ref().is_none_or(|t| s.tags.contains(t))),
            );
            let _ = reply.send(states);
        });
    }

    /// The runtime's own status.
    pub(super) fn status(&self) -> RuntimeStatus {
        let mut counts = std::collections::BTreeMap::new();
        let mut restarts_total = 0u64;
        self.tables.each_state(|row| {
            *counts.entry(row.status).or_insert(0) += 1;
            restarts_total += u64::from(row.restart_count);
        });
        let started_at = self.tables.started_at;
        RuntimeStatus {
            state: self.tables.runtime_state(),
            started_at,
            uptime_secs: (chrono::Utc::now() - started_at).num_seconds().max(0) as u64,
            version: env!("CARGO_PKG_VERSION"),
            services: self.graph.len(),
            counts,
            restarts_total,
            last_event_seq: self.tables.events.last_seq(),
            tracking: self.tables.tracking.status(),
        }
    }

    /// A service's log ring.
    pub(super) fn ring(&self, id: &str) -> Result<Arc<LogRing>, ControlError> {
        self.tables
            .ring(id)
            .ok_or_else(|| ControlError::NotFound(id.to_string()))
    }

    /// Answers the runtime's own status.
    pub(super) fn on_status(&self, reply: RpcReplyPort<RuntimeStatus>) {
        let _ = reply.send(self.status());
    }

    /// Answers a service's last `tail` log lines.
    pub(super) fn on_logs(
        &self,
        id: &str,
        tail: usize,
        reply: RpcReplyPort<Result<Vec<LogLine>, ControlError>>,
    ) {
        let _ = reply.send(self.ring(id).map(|r| r.tail(tail)));
    }

    /// Answers a subscription to a service's log.
    pub(super) fn on_subscribe_logs(
        &self,
        id: &str,
        since: Option<u64>,
        reply: RpcReplyPort<Result<LogSubscription, ControlError>>,
    ) {
        let _ = reply.send(self.ring(id).map(|r| r.subscribe(since)));
    }

    /// Answers a subscription to the event stream.
    pub(super) fn on_subscribe_events(
        &self,
        since: Option<u64>,
        reply: RpcReplyPort<EventSubscription>,
    ) {
        let _ = reply.send(self.tables.events.subscribe(since));
    }
}
