//! The dependency graph between services (`depends_on`), as plain functions.
//!
//! * [`start_levels`]: services grouped so that every service comes after everything it
//!   depends on; the services of one level are independent and start in parallel;
//! * [`stop_levels`]: the same levels reversed (dependents stop first);
//! * [`needed_by`]: everything a service needs, transitively, in start order;
//! * [`dependents_of`]: the services that depend on one, directly or not;
//! * [`condition_met`]: whether a dependency's state meets a condition yet, will never
//!   meet it, or may still.
//!
//! Whether targets exist and the graph has no cycle is checked once, by
//! [`config::check_dependencies`](crate::config::check_dependencies), for files and for
//! services defined at run time alike.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{DependencyCondition, ServiceDefinition};
use crate::state::{ServiceState, ServiceStatus};

/// The edges of the graph: service → the services it depends on.
pub type Graph = BTreeMap<String, Vec<String>>;

/// Builds the graph of the given definitions (targets not in the set are kept as edges;
/// the caller validates them).
pub fn graph<'a>(defs: impl IntoIterator<Item = &'a ServiceDefinition>) -> Graph {
    defs.into_iter()
        .map(|d| {
            (
                d.id.clone(),
                d.depends_on.iter().map(|dep| dep.service.clone()).collect(),
            )
        })
        .collect()
}

/// Groups `ids` in start levels: level 0 depends on nothing in the set, level n only on
/// lower levels. Order inside a level follows `ids`. Edges to services outside `ids` are
/// ignored. A cycle puts its members (and what depends on them) in a last level.
pub fn start_levels(ids: &[String], graph: &Graph) -> Vec<Vec<String>> {
    let members: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let mut placed: BTreeSet<String> = BTreeSet::new();
    let mut levels = Vec::new();
    let mut left: Vec<String> = ids.to_vec();
    while !left.is_empty() {
        let (ready, waiting): (Vec<String>, Vec<String>) = left.into_iter().partition(|id| {
            graph
                .get(id)
                .into_iter()
                .flatten()
                .filter(|dep| members.contains(dep.as_str()))
                .all(|dep| placed.contains(dep))
        });
        if ready.is_empty() {
            levels.push(waiting);
            break;
        }
        placed.extend(ready.iter().cloned());
        levels.push(ready);
        left = waiting;
    }
    levels
}

/// The start levels reversed: dependents first.
pub fn stop_levels(ids: &[String], graph: &Graph) -> Vec<Vec<String>> {
    let mut levels = start_levels(ids, graph);
    levels.reverse();
    levels
}

/// Everything `id` needs, transitively, without `id` itself, in start order.
pub fn needed_by(id: &str, graph: &Graph) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = graph.get(id).cloned().unwrap_or_default();
    while let Some(next) = stack.pop() {
        if next != id && seen.insert(next.clone()) {
            stack.extend(graph.get(&next).cloned().unwrap_or_default());
        }
    }
    let ids: Vec<String> = seen.into_iter().collect();
    start_levels(&ids, graph).into_iter().flatten().collect()
}

/// The services that depend on `id`, directly or through others.
pub fn dependents_of(id: &str, graph: &Graph) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut frontier = vec![id.to_string()];
    while let Some(target) = frontier.pop() {
        for (service, deps) in graph {
            if deps.contains(&target) && service != id && found.insert(service.clone()) {
                frontier.push(service.clone());
            }
        }
    }
    found
}

/// Where a dependency stands with respect to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The condition holds.
    Met,
    /// Not yet; it may still.
    Waiting,
    /// It never will without a person stepping in; why.
    Failed(String),
}

/// Judges a dependency's current state against a condition.
pub fn condition_met(state: &ServiceState, condition: DependencyCondition) -> Verdict {
    use ServiceStatus::*;
    let exit = state.last_exit.as_ref();
    match (condition, state.status) {
        (_, Failed) => Verdict::Failed(format!(
            "failed: {}",
            state.reason.as_deref().unwrap_or("no reason given")
        )),
        (_, Stopped) => Verdict::Failed("was stopped".to_string()),
        (DependencyCondition::Started, Running | Paused | Exited) => Verdict::Met,
        (DependencyCondition::Healthy, Running) if state.ready => Verdict::Met,
        (DependencyCondition::Healthy, Exited) => Verdict::Failed(format!(
            "exited ({}) before becoming healthy",
            exit.map(|e| e.describe()).unwrap_or_default()
        )),
        (DependencyCondition::Completed, Exited) => match exit {
            Some(e) if e.success() => Verdict::Met,
            Some(e) => Verdict::Failed(format!("did not complete: {}", e.describe())),
            None => Verdict::Failed("exited without an exit status".to_string()),
        },
        _ => Verdict::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(edges: &[(&str, &[&str])]) -> Graph {
        edges
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn levels_put_dependencies_first_and_independent_branches_together() {
        let graph = g(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("docs", &[]),
        ]);
        let levels = start_levels(&ids(&["web", "api", "db", "cache", "docs"]), &graph);
        assert_eq!(
            levels,
            vec![ids(&["db", "cache", "docs"]), ids(&["api"]), ids(&["web"])]
        );
        let stop = stop_levels(&ids(&["web", "api", "db", "cache", "docs"]), &graph);
        assert_eq!(stop[0], ids(&["web"]));
    }

    #[test]
    fn needed_by_is_transitive_and_in_start_order() {
        let graph = g(&[("web", &["api"]), ("api", &["db"]), ("db", &[])]);
        assert_eq!(needed_by("web", &graph), ids(&["db", "api"]));
        assert_eq!(
            dependents_of("db", &graph).into_iter().collect::<Vec<_>>(),
            ids(&["api", "web"])
        );
    }

    #[test]
    fn conditions_judge_states() {
        let mut s = ServiceState::pending("db", "db", &[]);
        assert_eq!(
            condition_met(&s, DependencyCondition::Started),
            Verdict::Waiting
        );
        s.status = ServiceStatus::Running;
        assert_eq!(
            condition_met(&s, DependencyCondition::Started),
            Verdict::Met
        );
        assert_eq!(
            condition_met(&s, DependencyCondition::Healthy),
            Verdict::Waiting
        );
        s.ready = true;
        assert_eq!(
            condition_met(&s, DependencyCondition::Healthy),
            Verdict::Met
        );
        s.status = ServiceStatus::Exited;
        s.last_exit = Some(crate::state::ExitInfo {
            code: Some(1),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert!(matches!(
            condition_met(&s, DependencyCondition::Completed),
            Verdict::Failed(_)
        ));
        s.last_exit = Some(crate::state::ExitInfo {
            code: Some(0),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert_eq!(
            condition_met(&s, DependencyCondition::Completed),
            Verdict::Met
        );
        s.status = ServiceStatus::Failed;
        assert!(matches!(
            condition_met(&s, DependencyCondition::Started),
            Verdict::Failed(_)
        ));
    }
}
