//! Waiting for `depends_on` before a spawn (DESIGN §10 "Statuses": waiting is `starting`,
//! with the reason "waiting for db: healthy").
//!
//! A task watches the dependencies' status rows, re-checking after every event of the
//! runtime, until every condition holds (→ `DependenciesMet`) or one never will (→
//! `DependencyFailed`). A wait is a generation of its own: its messages carry it, so those
//! of a wait that was abandoned (a stop, a new start) are stale.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tracing::warn;

use super::{ServerMsg, ServerState, Work};
use crate::config::Dependency;
use crate::dependencies::{Verdict, condition_met};
use crate::error::ControlError;
use crate::events::{Event, EventKind};
use crate::runtime::Tables;
use crate::runtime::service::decide::Intent;
use crate::runtime::service::generation::Generation;
use crate::state::ServiceStatus;

/// How long a service waits for its dependencies' conditions before it fails.
pub const DEPENDENCY_WAIT_LIMIT: Duration = Duration::from_secs(300);

impl ServerState {
    /// The service is `starting`, waiting for its dependencies; a task watches them.
    pub(super) fn wait_for_dependencies(&mut self, myself: &ActorRef<ServerMsg>, cause: &str) {
        let waiting_for = self
            .def
            .depends_on
            .iter()
            .map(|d| format!("{}: {}", d.service, d.condition.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        self.transition(
            ServiceStatus::Starting,
            Event::new(&self.def.id, EventKind::Starting)
                .cause(format!("{cause}; waiting for {waiting_for}")),
        );
        let run = self.next_generation();
        if let Some(old) = self.dependency_watch.take() {
            old.abort();
        }
        self.dependency_watch = Some(tokio::spawn(watch_dependencies(
            self.tables.clone(),
            self.def.depends_on.clone(),
            myself.clone(),
            run,
        )));
    }

    /// Every condition holds: spawn.
    pub(super) fn on_dependencies_met(&mut self, run: Generation) -> Work<'_> {
        if !self.is_waiting(run) {
            return None;
        }
        Some(Box::pin(self.spawn_process("dependencies met")))
    }

    /// A dependency will not meet its condition: the service is `failed`.
    pub(super) fn on_dependency_failed(
        &mut self,
        run: Generation,
        dependency: String,
        reason: String,
    ) -> Work<'_> {
        if self.is_waiting(run) {
            self.fail_dependency(dependency, reason);
        }
        None
    }

    /// True when `run` is the current wait (which is then over).
    fn is_waiting(&mut self, run: Generation) -> bool {
        self.generation.is_current(run) && self.dependency_watch.take().is_some()
    }

    fn fail_dependency(&mut self, dependency: String, reason: String) {
        let cause = format!("dependency {dependency} {reason}");
        warn!(service = %self.def.id, %cause, "could not start");
        self.intent = Intent::Stop;
        self.transition(
            ServiceStatus::Failed,
            Event::new(&self.def.id, EventKind::Failed).cause(cause),
        );
        let err = ControlError::DependencyFailed {
            id: self.def.id.clone(),
            dependency,
            reason,
        };
        self.reply_starts(Err(err));
    }
}

/// Watches the dependencies' status rows until every condition holds (→
/// `DependenciesMet`) or one never will (→ `DependencyFailed`), re-checking after every
/// event of the runtime.
async fn watch_dependencies(
    tables: Arc<Tables>,
    deps: Vec<Dependency>,
    server: ActorRef<ServerMsg>,
    run: Generation,
) {
    // Subscribe before the first check so no change falls between the two.
    let mut events = tables.events.subscribe(None);
    let deadline = tokio::time::Instant::now() + DEPENDENCY_WAIT_LIMIT;
    loop {
        let mut all_met = true;
        for dep in &deps {
            let verdict = tables
                .read_state(&dep.service, |row| condition_met(row, dep.condition))
                .unwrap_or_else(|| Verdict::Failed("is not defined".to_string()));
            match verdict {
                Verdict::Met => {}
                Verdict::Waiting => all_met = false,
                Verdict::Failed(reason) => {
                    let _ = server.cast(ServerMsg::DependencyFailed {
                        run,
                        dependency: dep.service.clone(),
                        reason,
                    });
                    return;
                }
            }
        }
        if all_met {
            let _ = server.cast(ServerMsg::DependenciesMet { run });
            return;
        }
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(_)) => continue,
            Ok(None) => return,
            Err(_) => {
                let pending = deps
                    .iter()
                    .filter(|d| {
                        tables
                            .read_state(&d.service, |row| condition_met(row, d.condition))
                            .is_none_or(|verdict| verdict != Verdict::Met)
                    })
                    .map(|d| d.service.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = server.cast(ServerMsg::DependencyFailed {
                    run,
                    dependency: pending,
                    reason: format!(
                        "did not meet its condition within {}",
                        humantime::format_duration(DEPENDENCY_WAIT_LIMIT)
                    ),
                });
                return;
            }
        }
    }
}
