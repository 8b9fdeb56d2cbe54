//! `depends_on`: reading one service's list (conditions, no duplicates, not itself) and
//! checking the graph of every service at once: each target exists, and no cycle, which
//! would leave its services waiting for each other forever (DESIGN §4: "a dependency
//! cycle is a validation error that names the cycle").
//!
//! The graph check is shared by the loader (edges carry the file and position of their
//! `depends_on` entry) and by [`check_dependencies`] for services defined at run time
//! (no positions). A cycle is reported once, at the entry of its first-defined service.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;

use super::checker::Checker;
use crate::config::model::{DependsOnValue, Pos, Sp};
use crate::config::problem::{Problem, nearest};
use crate::config::{Dependency, DependencyCondition, ServiceDefinition};
use crate::error::{ConfigError, ConfigErrors};

/// One `depends_on` entry, where it was written.
#[derive(Debug, Clone)]
pub(crate) struct DependencyEdge {
    /// The service depended on.
    pub target: String,
    /// The file that holds the entry (`None` for run-time definitions).
    pub file: Option<PathBuf>,
    /// Where the entry's id is written; `0:0` when unknown.
    pub pos: Pos,
}

/// A service and its `depends_on` entries.
#[derive(Debug, Clone)]
pub(crate) struct DependencyNode {
    /// The service id.
    pub id: String,
    /// Its entries, in the order written.
    pub edges: Vec<DependencyEdge>,
}

/// Checks that every dependency of `defs` is among `defs` and that they form no cycle.
///
/// The runtime calls this with every definition it holds (plus the new one) when a
/// service is defined at run time; the loader runs the same check across all files.
/// A dependency on the service itself is left to [`check_definition`](super::check_definition).
pub fn check_dependencies(defs: &[&ServiceDefinition]) -> Result<(), ConfigErrors> {
    let nodes: Vec<DependencyNode> = defs
        .iter()
        .map(|def| DependencyNode {
            id: def.id.clone(),
            edges: def
                .depends_on
                .iter()
                .map(|dep| DependencyEdge {
                    target: dep.service.clone(),
                    file: None,
                    pos: Pos::default(),
                })
                .collect(),
        })
        .collect();
    let known: Vec<String> = defs.iter().map(|def| def.id.clone()).collect();
    let errors = graph_errors(&nodes, &known);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// What [`check_added`] needs to know of the services a runtime already holds.
pub(crate) trait HeldGraph {
    /// The `depends_on` targets of a defined service; `None` when it is not defined.
    fn targets(&self, id: &str) -> Option<&[String]>;
    /// When a defined service was defined relative to the others (smaller: earlier).
    fn rank(&self, id: &str) -> Option<u64>;
    /// Every defined id, in definition order (only asked for when a target is missing, to
    /// suggest the nearest one).
    fn ids(&self) -> Vec<String>;
}

/// Checks services about to be added to a runtime that holds `held`: each of their
/// targets exists (held or added), and adding them closes no cycle.
///
/// The cost follows what the added services reach, not what the runtime holds: a new
/// cycle has to pass through an added service, so only the part of the graph reachable
/// from them is walked (for a service without dependencies, only itself). Services
/// already held are not judged again: one whose target was removed since keeps its
/// entry (it waits for that service to come back) and does not block new definitions.
pub(crate) fn check_added(
    added: &[&ServiceDefinition],
    held: &impl HeldGraph,
) -> Result<(), ConfigErrors> {
    let incoming: HashMap<&str, usize> = added
        .iter()
        .enumerate()
        .map(|(i, def)| (def.id.as_str(), i))
        .collect();
    let exists = |id: &str| incoming.contains_key(id) || held.targets(id).is_some();
    let targets_of = |id: &str| -> Vec<&str> {
        match incoming.get(id) {
            Some(&i) => added[i]
                .depends_on
                .iter()
                .map(|dep| dep.service.as_str())
                .collect(),
            None => held
                .targets(id)
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect(),
        }
    };
    let edge = |target: &str| DependencyEdge {
        target: target.to_string(),
        file: None,
        pos: Pos::default(),
    };
    let mut errors = Vec::new();
    let mut known: Option<Vec<String>> = None;
    for def in added {
        for dep in &def.depends_on {
            if dep.service == def.id || exists(&dep.service) {
                continue;
            }
            let known = known.get_or_insert_with(|| {
                let mut ids = held.ids();
                ids.extend(added.iter().map(|d| d.id.clone()));
                ids
            });
            errors.push(missing_target(&def.id, &edge(&dep.service), known));
        }
    }
    let mut seen: HashSet<&str> = incoming.keys().copied().collect();
    let mut stack: Vec<&str> = added.iter().map(|def| def.id.as_str()).collect();
    while let Some(id) = stack.pop() {
        for target in targets_of(id) {
            if exists(target) && seen.insert(target) {
                stack.push(target);
            }
        }
    }
    let mut members: Vec<&str> = seen.into_iter().collect();
    members.sort_by_key(|id| match incoming.get(id) {
        Some(&i) => (1, i as u64),
        None => (0, held.rank(id).unwrap_or(0)),
    });
    let nodes: Vec<DependencyNode> = members
        .iter()
        .map(|id| DependencyNode {
            id: id.to_string(),
            edges: targets_of(id)
                .into_iter()
                .filter(|target| exists(target))
                .map(edge)
                .collect(),
        })
        .collect();
    errors.extend(cycle_errors(&nodes));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Missing targets and cycles. `known` holds every defined id, in definition order
/// (including services whose own definition had errors, so they are not reported missing).
///
/// Linear in services and edges (plus, only when an id is missing, one nearest-name
/// search over `known`): a boot of 80,000 services checks its graph in milliseconds.
pub(crate) fn graph_errors(nodes: &[DependencyNode], known: &[String]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let known_set: HashSet<&str> = known.iter().map(String::as_str).collect();
    for node in nodes {
        for edge in &node.edges {
            if edge.target == node.id || known_set.contains(edge.target.as_str()) {
                continue;
            }
            errors.push(missing_target(&node.id, edge, known));
        }
    }
    errors.extend(cycle_errors(nodes));
    errors
}

/// The error for an entry of `id`'s `depends_on` that names no defined service, with the
/// nearest id of `known` suggested.
pub(crate) fn missing_target(id: &str, edge: &DependencyEdge, known: &[String]) -> ConfigError {
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    let problem = Problem::new(
        edge.pos,
        format!(
            "service `{id}` depends on `{}`, which is not defined",
            edge.target
        ),
    );
    let problem = match nearest(&edge.target, &candidates) {
        Some(near) if near != id => problem.hint(format!("did you mean `{near}`?")),
        _ => problem.hint("define that service in services.yml or services.d, or remove the entry"),
    };
    problem.into_error(edge.file.as_deref())
}

/// One error per strongly connected group of services, naming one cycle through it, in
/// the order of each group's first-defined member. Edges to services not among `nodes`
/// are ignored (they are missing targets, reported elsewhere, or outside the part of the
/// graph being checked).
pub(crate) fn cycle_errors(nodes: &[DependencyNode]) -> Vec<ConfigError> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.id.as_str(), i))
        .collect();
    // Edges by index, in the order written; self-edges and unknown targets are reported
    // elsewhere.
    let adjacency: Vec<Vec<(usize, &DependencyEdge)>> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            node.edges
                .iter()
                .filter_map(|edge| index.get(edge.target.as_str()).map(|&j| (j, edge)))
                .filter(|&(j, _)| j != i)
                .collect()
        })
        .collect();
    let component = strongly_connected(&adjacency);
    // A group with one member has no cycle (self-edges are left out): keep the groups of
    // two or more, each under its first-defined member.
    let mut size: HashMap<usize, usize> = HashMap::new();
    for &c in &component {
        *size.entry(c).or_insert(0) += 1;
    }
    let mut reported: HashSet<usize> = HashSet::new();
    let mut errors = Vec::new();
    for start in 0..nodes.len() {
        let group = component[start];
        if size[&group] < 2 || !reported.insert(group) {
            continue;
        }
        let Some(cycle) = shortest_cycle(&adjacency, |j| component[j] == group, start) else {
            continue;
        };
        let mut names: Vec<&str> = cycle.iter().map(|&(i, _)| nodes[i].id.as_str()).collect();
        names.push(nodes[start].id.as_str());
        let (file, pos) = cycle
            .first()
            .map_or((None, Pos::default()), |&(_, e)| (e.file.as_deref(), e.pos));
        errors.push(
            Problem::new(pos, format!("dependency cycle: {}", names.join(" → ")))
                .hint("services in a cycle would wait for each other forever; remove one of these `depends_on` entries")
                .into_error(file),
        );
    }
    errors
}

/// The strongly connected component of every node (Tarjan's algorithm, with an explicit
/// stack so a chain of 80,000 dependencies cannot overflow the thread's stack): two
/// services share a component exactly when each reaches the other.
fn strongly_connected(adjacency: &[Vec<(usize, &DependencyEdge)>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = adjacency.len();
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![UNSEEN; n];
    let mut next_order = 0;
    let mut components = 0;
    // The depth-first walk: (node, how many of its edges were followed).
    let mut walk: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if order[root] != UNSEEN {
            continue;
        }
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        walk.push((root, 0));
        while let Some((v, followed)) = walk.pop() {
            if let Some(&(w, _)) = adjacency[v].get(followed) {
                walk.push((v, followed + 1));
                if order[w] == UNSEEN {
                    order[w] = next_order;
                    low[w] = next_order;
                    next_order += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    walk.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            if low[v] == order[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = components;
                    if w == v {
                        break;
                    }
                }
                components += 1;
            }
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[v]);
            }
        }
    }
    component
}

/// The shortest cycle from `start` back to it inside a group, as (service, the edge it
/// leaves by) from `start` on; breadth-first in written order, so the answer is stable.
fn shortest_cycle<'e>(
    adjacency: &[Vec<(usize, &'e DependencyEdge)>],
    in_group: impl Fn(usize) -> bool,
    start: usize,
) -> Option<Vec<(usize, &'e DependencyEdge)>> {
    // came_from[j]: the service the search reached j from, and the edge it took.
    let mut came_from: HashMap<usize, (usize, &'e DependencyEdge)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    let mut closing: Option<(usize, &'e DependencyEdge)> = None;
    'search: while let Some(i) = queue.pop_front() {
        for &(j, edge) in &adjacency[i] {
            if !in_group(j) {
                continue;
            }
            if j == start {
                closing = Some((i, edge));
                break 'search;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = came_from.entry(j) {
                slot.insert((i, edge));
                queue.push_back(j);
            }
        }
    }
    let (last, last_edge) = closing?;
    let mut path = vec![(last, last_edge)];
    let mut at = last;
    while at != start {
        let &(previous, edge) = came_from.get(&at)?;
        path.push((previous, edge));
        at = previous;
    }
    path.reverse();
    Some(path)
}

impl Checker<'_> {
    /// The entries of one service's `depends_on`, with their positions (for the graph
    /// check); conditions, duplicates and self-dependency are checked here.
    pub(super) fn depends_on(
        &mut self,
        id: &str,
        value: &Sp<DependsOnValue>,
    ) -> Vec<(Dependency, Pos)> {
        let entries: Vec<(&Sp<String>, DependencyCondition)> = match &value.value {
            DependsOnValue::List(items) => items
                .iter()
                .map(|item| (item, DependencyCondition::Started))
                .collect(),
            DependsOnValue::Map(items) => items
                .iter()
                .map(|(target, body)| {
                    let condition = body
                        .as_ref()
                        .and_then(|b| b.value.condition.as_ref())
                        .and_then(|c| self.condition(c))
                        .unwrap_or_default();
                    (target, condition)
                })
                .collect(),
        };
        let mut out: Vec<(Dependency, Pos)> = Vec::new();
        for (target, condition) in entries {
            let pos = Pos::of(target);
            let name = target.value.as_str();
            if name == id {
                self.problems.push(
                    Problem::new(pos, format!("service `{id}` depends on itself"))
                        .hint("remove this entry: a service cannot wait for its own start"),
                );
                continue;
            }
            if name.trim().is_empty() {
                self.field(
                    pos,
                    "depends_on",
                    "a service id is empty",
                    "remove the empty item",
                );
                continue;
            }
            if !super::is_valid_id(name) {
                self.field(
                    pos,
                    "depends_on",
                    &format!("`{name}` is not a service id"),
                    super::ID_RULE,
                );
                continue;
            }
            if let Some((_, first)) = out.iter().find(|(dep, _)| dep.service == name) {
                self.field(
                    pos,
                    "depends_on",
                    &format!("`{name}` is listed twice (first at line {})", first.line),
                    "keep one entry per service",
                );
                continue;
            }
            out.push((
                Dependency {
                    service: name.to_string(),
                    condition,
                },
                pos,
            ));
        }
        out
    }

    fn condition(&mut self, value: &Sp<String>) -> Option<DependencyCondition> {
        let text = value.value.trim().to_ascii_lowercase();
        let condition = match text.as_str() {
            "started" | "service_started" => DependencyCondition::Started,
            "healthy" | "service_healthy" => DependencyCondition::Healthy,
            "completed" | "service_completed_successfully" => DependencyCondition::Completed,
            other => {
                let names = ["started", "healthy", "completed"];
                let choices = "use `started`, `healthy` or `completed`";
                let hint = match nearest(other, &names) {
                    Some(near) => format!("did you mean `{near}`? {choices}"),
                    None => choices.to_string(),
                };
                self.field(
                    Pos::of(value),
                    "depends_on.condition",
                    &format!("unknown condition `{}`", value.value),
                    &hint,
                );
                return None;
            }
        };
        Some(condition)
    }
}
