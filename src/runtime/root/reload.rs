//! Reload: re-read the config directory and apply the difference, like a release
//! upgrade in OTP — only what changed is touched.
//!
//! The root plans at once (`config::plan_reload`: start / stop / restart / keep, each with
//! why) and answers a dry run with the plan. Applying it runs in a task that sends the
//! root the same messages a person would (stop with cascade, remove, define, start), so
//! the root never blocks on a stop and every step is an ordinary, evented control.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use tracing::warn;

use super::fan_out::through_root;
use super::{RootMsg, RootState};
use crate::config::{self, PlanAction, ReloadPlan, ServiceDefinition};
use crate::control::ControlAction;
use crate::error::ControlError;
use crate::runtime::Tables;

impl RootState {
    /// Plans a reload from the config directory and, unless `dry_run`, applies it in a
    /// task (see the module docs).
    pub(super) fn on_reload(
        &self,
        myself: &ActorRef<RootMsg>,
        dry_run: bool,
        reply: RpcReplyPort<Result<ReloadPlan, ControlError>>,
    ) {
        let Some(dir) = self.tables.config_dir.clone() else {
            let _ = reply.send(Err(ControlError::NoConfigDir {
                operation: "reload from",
            }));
            return;
        };
        let next = match config::load_dir(&dir) {
            Ok(next) => next,
            Err(errors) => {
                let _ = reply.send(Err(ControlError::InvalidDefinition(errors)));
                return;
            }
        };
        let current: Vec<(Arc<ServiceDefinition>, u64)> = self
            .graph
            .ids()
            .filter_map(|id| {
                let def = self.tables.definition(id)?;
                Some((def, self.fingerprints.get(id).copied().unwrap_or(0)))
            })
            .collect();
        let plan = config::plan_reload(&current, &next);
        if dry_run || plan.is_noop() {
            let _ = reply.send(Ok(plan));
            return;
        }
        let next_defs: HashMap<String, ServiceDefinition> = next
            .services
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        tokio::spawn(apply(
            myself.clone(),
            self.tables.clone(),
            plan,
            next_defs,
            reply,
        ));
    }
}

/// Applies a reload plan through the root's own messages, then answers with the plan.
async fn apply(
    root: ActorRef<RootMsg>,
    tables: Arc<Tables>,
    plan: ReloadPlan,
    mut next_defs: HashMap<String, ServiceDefinition>,
    reply: RpcReplyPort<Result<ReloadPlan, ControlError>>,
) {
    let mut to_define = Vec::new();
    let mut to_start = Vec::new();
    let mut dependents_to_restart: Vec<String> = Vec::new();
    for entry in &plan.entries {
        let was_active = tables
            .read_state(&entry.id, |r| r.status.is_active())
            .unwrap_or(false);
        match entry.action {
            PlanAction::Keep => {}
            PlanAction::Stop | PlanAction::Restart => {
                // Dependents of a replaced service are stopped with it, and started again
                // afterwards.
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
                if entry.action == PlanAction::Restart
                    && let Some(def) = next_defs.remove(&entry.id)
                {
                    if was_active {
                        to_start.push(def.id.clone());
                    }
                    to_define.push(def);
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
        through_root(&root, id, ControlAction::Start).await;
    }
    let _ = reply.send(Ok(plan));
}
