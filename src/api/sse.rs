//! Server-Sent Events plumbing shared by the log and event streams.
//!
//! Every data event carries its sequence number as the SSE `id:`, so a browser's
//! EventSource that reconnects sends it back as `Last-Event-ID` and the stream resumes
//! after it, without gap or duplicate. Lost items (a slow reader, or a resume point
//! already gone from the ring) arrive as one event named `gap` with `{"gap": N}`. A comment
//! line is sent every [`KEEP_ALIVE`] so idle proxies keep the connection open.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Serialize;

/// Time between keep-alive comments on an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A data event: `id: <seq>` and the item as one line of JSON.
pub fn data_event(seq: u64, item: &impl Serialize) -> Event {
    let event = Event::default().id(seq.to_string());
    match serde_json::to_string(item) {
        Ok(json) => event.data(json),
        // Serializing our own plain types does not fail; say so on the stream if it ever does.
        Err(e) => event.comment(format!("unserializable item {seq}: {e}")),
    }
}

/// A `gap` event: `n` items were lost.
pub fn gap_event(n: u64) -> Event {
    Event::default()
        .event("gap")
        .data(serde_json::json!({ "gap": n }).to_string())
}

/// The SSE response for a stream of events, with keep-alive comments and proxy buffering
/// turned off.
pub fn respond(events: impl Stream<Item = Event> + Send + 'static) -> Response {
    let stream = futures::stream::once(async { Event::default().comment("stream open") })
        .chain(events)
        .map(Ok::<_, Infallible>);
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
