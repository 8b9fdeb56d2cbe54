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

/// Missing targets and cycles. `known` holds every defined id, in definition order
/// (including services whose own definition had errors, so they are not reported missing).
pub(crate) fn graph_errors(nodes: &[DependencyNode], known: &[String]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let known_set: HashSet<&str> = known.iter().map(String::as_str).collect();
    let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
    for node in nodes {
        for edge in &node.edges {
            if edge.target == node.id || known_set.contains(edge.target.as_str()) {
                continue;
            }
            let problem = Problem::new(
                edge.pos,
                format!(
                    "service `{}` depends on `{}`, which is not defined",
                    node.id, edge.target
                ),
            );
            let problem = match nearest(&edge.target, &candidates) {
                Some(near) if near != node.id => problem.hint(format!("did you mean `{near}`?")),
                _ => problem
                    .hint("define that service in services.yml or services.d, or remove the entry"),
            };
            errors.push(problem.into_error(edge.file.as_deref()));
        }
    }
    errors.extend(cycle_errors(nodes));
    errors
}

/// One error per strongly connected group of services, naming one cycle through it.
fn cycle_errors(nodes: &[DependencyNode]) -> Vec<ConfigError> {
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
    let reach: Vec<Vec<bool>> = (0..nodes.len())
        .map(|start| reachable(&adjacency, start))
        .collect();
    let mut in_reported_group = vec![false; nodes.len()];
    let mut errors = Vec::new();
    for start in 0..nodes.len() {
        if in_reported_group[start] || !reach[start][start] {
            continue;
        }
        let group: Vec<bool> = (0..nodes.len())
            .map(|j| reach[start][j] && reach[j][start])
            .collect();
        for (j, member) in group.iter().enumerate() {
            if *member {
                in_reported_group[j] = true;
            }
        }
        let Some(cycle) = shortest_cycle(&adjacency, &group, start) else {
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

/// Which services `start` reaches through one or more edges.
fn reachable(adjacency: &[Vec<(usize, &DependencyEdge)>], start: usize) -> Vec<bool> {
    let mut seen = vec![false; adjacency.len()];
    let mut queue: VecDeque<usize> = adjacency[start].iter().map(|&(j, _)| j).collect();
    while let Some(i) = queue.pop_front() {
        if !seen[i] {
            seen[i] = true;
            queue.extend(adjacency[i].iter().map(|&(j, _)| j));
        }
    }
    seen
}

/// The shortest cycle from `start` back to it inside `group`, as (service, the edge it
/// leaves by) from `start` on; breadth-first in written order, so the answer is stable.
fn shortest_cycle<'e>(
    adjacency: &[Vec<(usize, &'e DependencyEdge)>],
    group: &[bool],
    start: usize,
) -> Option<Vec<(usize, &'e DependencyEdge)>> {
    // came_from[j]: the service the search reached j from, and the edge it took.
    let mut came_from: Vec<Option<(usize, &'e DependencyEdge)>> = vec![None; adjacency.len()];
    let mut queue = VecDeque::from([start]);
    let mut closing: Option<(usize, &'e DependencyEdge)> = None;
    'search: while let Some(i) = queue.pop_front() {
        for &(j, edge) in &adjacency[i] {
            if !group[j] {
                continue;
            }
            if j == start {
                closing = Some((i, edge));
                break 'search;
            }
            if came_from[j].is_none() {
                came_from[j] = Some((i, edge));
                queue.push_back(j);
            }
        }
    }
    let (last, last_edge) = closing?;
    let mut path = vec![(last, last_edge)];
    let mut at = last;
    while at != start {
        let (previous, edge) = came_from[at]?;
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
