//! The tools about the runtime as a whole: events, log search, status, reload and the
//! dependency graph.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::inputs::*;
use super::search::{Matcher, SearchMatch, search_lines};
use super::{ToolError, json};
use crate::Steward;
use crate::dependencies;
use crate::events::Event;
use crate::state::ServiceState;

/// Default and largest `limit` of `service_events`.
const DEFAULT_EVENTS: usize = 100;
const MAX_EVENTS: usize = 1000;
/// Default and largest `max_matches`, largest `context` of `logs_search`.
const DEFAULT_MATCHES: usize = 50;
const MAX_MATCHES: usize = 500;
const MAX_CONTEXT: usize = 20;

#[derive(Serialize)]
struct Events {
    events: Vec<Event>,
    /// The seq of the newest event returned (pass it as `since` to read on), or the
    /// runtime's newest when none is returned.
    last_seq: u64,
}

/// `service_events`: after `since`, the oldest `limit` (to page forward); without it,
/// the newest `limit`.
pub async fn events(steward: &Steward, input: EventsInput) -> Result<Value, ToolError> {
    let limit = input.limit.unwrap_or(DEFAULT_EVENTS).clamp(1, MAX_EVENTS);
    let bus = &steward.tables().events;
    let mut events: Vec<Event> = bus
        .history(input.since)
        .into_iter()
        .filter(|e| input.service.as_ref().is_none_or(|s| *s == e.service))
        .collect();
    if input.since.is_some() {
        events.truncate(limit);
    } else {
        let from = events.len().saturating_sub(limit);
        events.drain(..from);
    }
    let last_seq = events
        .last()
        .map(|e| e.seq)
        .unwrap_or_else(|| input.since.unwrap_or(bus.last_seq()));
    json(Events { events, last_seq })
}

#[derive(Serialize)]
struct Found {
    matches: Vec<SearchMatch>,
    /// More lines matched than `max_matches`.
    truncated: bool,
}

/// `logs_search`.
pub async fn logs_search(steward: &Steward, input: LogsSearchInput) -> Result<Value, ToolError> {
    let matcher = Matcher::new(&input.pattern, input.regex, input.case_sensitive)
        .map_err(|message| ToolError::input("logs_search", message, None))?;
    if input.pattern.is_empty() {
        return Err(ToolError::input(
            "logs_search",
            "`pattern` is empty",
            Some("give a word or phrase to look for".into()),
        ));
    }
    let context = input.context.unwrap_or(0).min(MAX_CONTEXT);
    let cap = input
        .max_matches
        .unwrap_or(DEFAULT_MATCHES)
        .clamp(1, MAX_MATCHES);
    let ids: Vec<String> = match input.id {
        Some(id) => vec![id],
        None => steward.list().await?.into_iter().map(|s| s.id).collect(),
    };
    let mut matches = Vec::new();
    let mut truncated = false;
    for id in ids {
        let lines = steward.logs(&id, usize::MAX).await?;
        if search_lines(&id, &lines, &matcher, context, cap, &mut matches) {
            truncated = true;
            break;
        }
    }
    json(Found { matches, truncated })
}

/// `runtime_status`.
pub async fn status(steward: &Steward, _input: NoInput) -> Result<Value, ToolError> {
    json(steward.status().await?)
}

/// `reload`: a dry run unless `apply`.
pub async fn reload(steward: &Steward, input: ReloadInput) -> Result<Value, ToolError> {
    tracing::info!(apply = input.apply, "reload requested by a tool");
    let plan = steward.reload(!input.apply).await?;
    Ok(serde_json::json!({ "applied": input.apply, "plan": json(plan)? }))
}

#[derive(Serialize)]
struct Edge {
    service: String,
    condition: &'static str,
}

#[derive(Serialize)]
struct Node {
    id: String,
    status: crate::state::ServiceStatus,
    health: crate::state::Health,
    ready: bool,
    depends_on: Vec<Edge>,
    /// The services that depend on this one, directly or not.
    dependents: Vec<String>,
}

#[derive(Serialize)]
struct GraphView {
    nodes: Vec<Node>,
    /// Levels of the start order: each level's services depend only on earlier levels.
    start_order: Vec<Vec<String>>,
}

/// `dependency_graph`.
pub async fn graph(steward: &Steward, _input: NoInput) -> Result<Value, ToolError> {
    let states: BTreeMap<String, ServiceState> = steward
        .list()
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    let definitions = steward.tables().definitions();
    let graph = dependencies::graph(definitions.iter().map(|d| d.as_ref()));
    let ids: Vec<String> = definitions.iter().map(|d| d.id.clone()).collect();
    let nodes = definitions
        .iter()
        .filter_map(|d| {
            let state = states.get(&d.id)?;
            Some(Node {
                id: d.id.clone(),
                status: state.status,
                health: state.health,
                ready: state.ready,
                depends_on: d
                    .depends_on
                    .iter()
                    .map(|dep| Edge {
                        service: dep.service.clone(),
                        condition: dep.condition.as_str(),
                    })
                    .collect(),
                dependents: dependencies::dependents_of(&d.id, &graph)
                    .into_iter()
                    .collect(),
            })
        })
        .collect();
    json(GraphView {
        nodes,
        start_order: dependencies::start_levels(&ids, &graph),
    })
}
