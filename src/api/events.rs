//! `GET /api/v1/events[?service=ID][&since=SEQ]`: the event stream as Server-Sent Events.
//!
//! With `since`, the events after it still in the runtime's ring (the last 1000) come
//! first, then live ones; without, only live ones (`since=0` replays the whole ring). Each
//! SSE event has the event's `seq` as its id and the event as JSON data; a reconnecting
//! EventSource's `Last-Event-ID` header counts as `since` and wins over the query.
//! `service` keeps only that service's events (gap records are always passed on: they
//! may hide events of any service).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures::StreamExt;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, last_event_id};
use super::sse;
use crate::events::EventItem;

/// Query of the events route.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// Only this service's events.
    service: Option<String>,
    /// Replay the events after this sequence number first.
    since: Option<u64>,
}

/// `GET /api/v1/events`.
pub async fn events(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = last_event_id(&headers)?.or(query.since);
    let subscription = app.steward.subscribe_events(since).await?;
    tracing::debug!(
        since,
        service = query.service.as_deref(),
        "event stream opened"
    );
    let only = query.service;
    let events = subscription
        .into_stream()
        .filter_map(move |item| {
            let keep = match &item {
                EventItem::Event(e) => only.as_ref().is_none_or(|s| *s == e.service),
                EventItem::Gap { .. } => true,
            };
            std::future::ready(keep.then_some(item))
        })
        .map(|item| match item {
            EventItem::Event(e) => sse::data_event(e.seq, &e),
            EventItem::Gap { missed } => sse::gap_event(missed),
        });
    Ok(sse::respond(events))
}
