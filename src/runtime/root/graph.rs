//! The root's service graph: which services exist in which definition order, what each
//! depends on and what depends on each — kept up to date as services are defined and
//! removed, the way an OTP supervisor keeps its child list rather than rebuilding it.
//!
//! Every control request used to rebuild the whole dependency graph from every
//! definition (and every definition checked the whole graph again), so defining the
//! 10,000th service cost a hundred times the 100th. Here each operation touches only what
//! it concerns:
//!
//! * define / remove: `O(d · log n)` for a service with `d` dependencies;
//! * the checks of a new definition walk only what it reaches
//!   ([`config::check_added`](crate::config::check_added));
//! * a stop asks only the service's dependents (kept as reverse edges), a start only what
//!   it needs;
//! * definition order is a sequence number per service, so removing one is `O(log n)`
//!   and sorting a plan by definition order needs no scan of the list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use crate::config::{HeldGraph, ServiceDefinition};
use crate::dependencies::{self, Graph};

/// Fewer services than this free too little to be worth a heap trim.
const TRIM_FROM: usize = 64;

/// Services in definition order with their dependency edges both ways.
#[derive(Debug, Default)]
pub(super) struct ServiceGraph {
    /// The sequence number the next defined service gets.
    next: u64,
    /// Each service's sequence number (its place in definition order).
    rank: HashMap<String, u64>,
    /// Services by sequence number: definition order.
    order: BTreeMap<u64, String>,
    /// Service → the services it depends on (an entry may name a service removed since:
    /// it waits for that one to be defined again).
    needs: Graph,
    /// Service (defined or not) → the defined services that depend on it directly.
    needed_by: HashMap<String, BTreeSet<String>>,
    /// The ids in definition order as one shared list, made at the first list after a
    /// define or a remove (a list of 10,000 then costs a reference count, not 10,000
    /// string copies in the root).
    snapshot: OnceLock<Arc<[String]>>,
    /// The most services defined at once since the heap was last trimmed.
    peak: usize,
}

impl ServiceGraph {
    /// Adds a service at the end of definition order.
    pub(super) fn insert(&mut self, def: &ServiceDefinition) {
        let rank = self.next;
        self.next += 1;
        self.rank.insert(def.id.clone(), rank);
        self.order.insert(rank, def.id.clone());
        let targets: Vec<String> = def.depends_on.iter().map(|d| d.service.clone()).collect();
        for target in &targets {
            self.needed_by
                .entry(target.clone())
                .or_default()
                .insert(def.id.clone());
        }
        self.needs.insert(def.id.clone(), targets);
        self.snapshot = OnceLock::new();
        self.peak = self.peak.max(self.order.len());
    }

    /// Forgets a service (its dependents keep their entries naming it).
    pub(super) fn remove(&mut self, id: &str) {
        self.snapshot = OnceLock::new();
        if let Some(rank) = self.rank.remove(id) {
            self.order.remove(&rank);
        }
        for target in self.needs.remove(id).unwrap_or_default() {
            if let Some(set) = self.needed_by.get_mut(&target) {
                set.remove(id);
                if set.is_empty() {
                    self.needed_by.remove(&target);
                }
            }
        }
    }

    /// True once, each time removals have halved the services since the last time (from
    /// at least [`TRIM_FROM`]), and when the last one is removed: the moment to give freed
    /// memory back to the kernel, at a cost spread over the removals that freed it.
    pub(super) fn halved_since_trim(&mut self) -> bool {
        let halved = self.peak >= TRIM_FROM && self.order.len() * 2 <= self.peak;
        if halved || (self.order.is_empty() && self.peak > 0) {
            self.peak = self.order.len();
            true
        } else {
            false
        }
    }

    /// Gives back the room the maps kept for removed services.
    pub(super) fn shrink(&mut self) {
        self.rank.shrink_to_fit();
        self.needed_by.shrink_to_fit();
    }

    /// How many services are defined.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// Service ids in definition order.
    pub(super) fn ids(&self) -> impl DoubleEndedIterator<Item = &String> {
        self.order.values()
    }

    /// The ids in definition order, shared.
    pub(super) fn snapshot(&self) -> Arc<[String]> {
        self.snapshot
            .get_or_init(|| self.order.values().cloned().collect())
            .clone()
    }

    /// Where a service stands in definition order (`None`: not defined).
    pub(super) fn position(&self, id: &str) -> Option<u64> {
        self.rank.get(id).copied()
    }

    /// Everything `id` needs, transitively, in start order.
    pub(super) fn needed_by(&self, id: &str) -> Vec<String> {
        dependencies::needed_by(id, &self.needs)
    }

    /// The defined services that depend on `id`, directly or through others.
    pub(super) fn dependents_of(&self, id: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut frontier = vec![id];
        while let Some(target) = frontier.pop() {
            for dependent in self.needed_by.get(target).into_iter().flatten() {
                if dependent != id && found.insert(dependent.clone()) {
                    frontier.push(dependent);
                }
            }
        }
        found
    }

    /// `ids` in start levels (see [`dependencies::start_levels`]).
    pub(super) fn start_levels(&self, ids: &[String]) -> Vec<Vec<String>> {
        dependencies::start_levels(ids, &self.needs)
    }

    /// `ids` in stop levels: dependents first.
    pub(super) fn stop_levels(&self, ids: &[String]) -> Vec<Vec<String>> {
        dependencies::stop_levels(ids, &self.needs)
    }
}

impl HeldGraph for ServiceGraph {
    fn targets(&self, id: &str) -> Option<&[String]> {
        self.needs.get(id).map(Vec::as_slice)
    }

    fn rank(&self, id: &str) -> Option<u64> {
        self.position(id)
    }

    fn ids(&self) -> Vec<String> {
        self.order.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommandSpec, Dependency, DependencyCondition, check_added};

    fn def(id: &str, deps: &[&str]) -> ServiceDefinition {
        let mut d = ServiceDefinition::new(id, CommandSpec::Argv(vec!["true".into()]));
        d.depends_on = deps
            .iter()
            .map(|s| Dependency {
                service: s.to_string(),
                condition: DependencyCondition::Started,
            })
            .collect();
        d
    }

    fn graph(defs: &[ServiceDefinition]) -> ServiceGraph {
        let mut g = ServiceGraph::default();
        for d in defs {
            g.insert(d);
        }
        g
    }

    fn message(result: Result<(), crate::error::ConfigErrors>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn order_and_edges_follow_defines_and_removes() {
        let mut g = graph(&[def("db", &[]), def("api", &["db"]), def("web", &["api"])]);
        assert_eq!(g.ids().collect::<Vec<_>>(), ["db", "api", "web"]);
        assert_eq!(
            g.dependents_of("db").into_iter().collect::<Vec<_>>(),
            ["api", "web"]
        );
        assert_eq!(g.needed_by("web"), ["db", "api"]);
        g.remove("api");
        assert_eq!(g.ids().collect::<Vec<_>>(), ["db", "web"]);
        assert!(g.dependents_of("db").is_empty());
        // web still names api: defining api again links it back.
        assert_eq!(
            g.dependents_of("api").into_iter().collect::<Vec<_>>(),
            ["web"]
        );
        g.insert(&def("api", &["db"]));
        assert_eq!(g.ids().collect::<Vec<_>>(), ["db", "web", "api"]);
        assert_eq!(
            g.dependents_of("db").into_iter().collect::<Vec<_>>(),
            ["api", "web"]
        );
        assert!(g.position("web") < g.position("api"));
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn the_heap_is_trimmed_each_time_removals_halve_the_services() {
        let defs: Vec<ServiceDefinition> = (0..100).map(|i| def(&format!("s{i}"), &[])).collect();
        let mut g = graph(&defs);
        let mut trims = Vec::new();
        for i in 0..100 {
            g.remove(&format!("s{i}"));
            if g.halved_since_trim() {
                trims.push(g.len());
            }
        }
        // 100 → 50; then below TRIM_FROM (64) since the last trim, none until the last
        // removal leaves the runtime empty.
        assert_eq!(trims, [50, 0]);
        let small: Vec<ServiceDefinition> = (0..10).map(|i| def(&format!("t{i}"), &[])).collect();
        let mut g = graph(&small);
        g.remove("t0");
        g.remove("t1");
        g.remove("t2");
        g.remove("t3");
        g.remove("t4");
        assert!(!g.halved_since_trim());
        for i in 5..10 {
            g.remove(&format!("t{i}"));
        }
        assert!(g.halved_since_trim(), "emptied");
        assert!(!g.halved_since_trim(), "once");
    }

    #[test]
    fn a_new_service_with_a_missing_target_is_refused_with_the_nearest_id() {
        let g = graph(&[def("db", &[])]);
        let text = message(check_added(&[&def("api", &["dbb"])], &g));
        assert!(
            text.contains("`api` depends on `dbb`, which is not defined"),
            "{text}"
        );
        assert!(text.contains("did you mean `db`?"), "{text}");
        assert!(check_added(&[&def("api", &["db"])], &g).is_ok());
    }

    #[test]
    fn a_cycle_closed_through_a_removed_service_is_refused_and_named() {
        // web → api → db; db removed; a new db that depends on web closes the cycle.
        let mut g = graph(&[def("db", &[]), def("api", &["db"]), def("web", &["api"])]);
        g.remove("db");
        let text = message(check_added(&[&def("db", &["web"])], &g));
        assert!(
            text.contains("dependency cycle: api → db → web → api"),
            "{text}"
        );
        assert!(check_added(&[&def("db", &[])], &g).is_ok());
    }

    #[test]
    fn services_added_together_may_depend_on_each_other_but_not_in_a_cycle() {
        let g = graph(&[def("db", &[])]);
        assert!(check_added(&[&def("a", &["b"]), &def("b", &["db"])], &g).is_ok());
        let text = message(check_added(&[&def("a", &["b"]), &def("b", &["a"])], &g));
        assert!(text.contains("dependency cycle: a → b → a"), "{text}");
    }

    #[test]
    fn a_held_service_with_a_dangling_entry_does_not_block_others() {
        let mut g = graph(&[def("db", &[]), def("api", &["db"])]);
        g.remove("db");
        assert!(check_added(&[&def("other", &[])], &g).is_ok());
    }
}
