//! `GET /api/v1/services/{id}/logs?tail=N[&since=SEQ][&follow=true]`.
//!
//! Without `follow`: `{"service": ID, "lines": [{seq, ts, stream, line, truncated}]}`, the
//! last `tail` lines (default 100), or every line after `since` still in the ring (then
//! `tail` is ignored, and `"gap": N` says how many asked-for lines are already gone).
//!
//! With `follow=true`: Server-Sent Events, one line object per event with its `seq` as the
//! SSE id, after the same backlog; a reconnecting EventSource's `Last-Event-ID` header
//! counts as `since` (and wins over the query, which still holds the first resume point).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, last_event_id};
use super::sse;
use crate::error::ControlError;
use crate::logs::{LogLine, LogRecord, SUBSCRIBE_BACKLOG};

/// The largest `tail` accepted: the largest ring `log_lines` allows.
pub const MAX_TAIL: usize = 1_000_000;

/// Query of the logs route.
#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    /// Lines of backlog (default 100).
    tail: Option<usize>,
    /// Only lines after this sequence number.
    since: Option<u64>,
    /// Stream as Server-Sent Events.
    #[serde(default)]
    follow: bool,
}

/// The body of the logs route without `follow`.
#[derive(Debug, Serialize)]
pub struct LogsBody {
    service: String,
    lines: Vec<LogLine>,
    /// Lines after `since` already gone from the ring.
    #[serde(skip_serializing_if = "Option::is_none")]
    gap: Option<u64>,
}

/// `GET /api/v1/services/{id}/logs`.
pub async fn logs(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let since = last_event_id(&headers)?.or(query.since);
    let tail = query.tail.unwrap_or(SUBSCRIBE_BACKLOG);
    if tail > MAX_TAIL {
        return Err(ApiError::bad_request(format!(
            "tail={tail} is out of range: give 0 to {MAX_TAIL} (no log ring holds more lines)"
        )));
    }
    if query.follow {
        return follow(&app, id, since, tail).await;
    }
    let Some(since) = since else {
        let lines = app.steward.logs(&id, tail).await?;
        return Ok(Json(LogsBody {
            service: id,
            lines,
            gap: None,
        })
        .into_response());
    };
    let ring = app
        .steward
        .tables()
        .ring(&id)
        .ok_or_else(|| ControlError::NotFound(id.clone()))?;
    let mut lines = Vec::new();
    let mut gap = None;
    for record in ring.since(since) {
        match record {
            LogRecord::Line(line) => lines.push(line),
            LogRecord::Gap { gap: n } => gap = Some(n),
        }
    }
    Ok(Json(LogsBody {
        service: id,
        lines,
        gap,
    })
    .into_response())
}

async fn follow(
    app: &AppState,
    id: String,
    since: Option<u64>,
    tail: usize,
) -> Result<Response, ApiError> {
    let resume_after = match since {
        Some(seq) => seq,
        // A backlog of `tail` lines is "everything after the line before them": asking
        // for it as a resume point keeps the backlog and live lines seamless.
        None => {
            let ring = app
                .steward
                .tables()
                .ring(&id)
                .ok_or_else(|| ControlError::NotFound(id.clone()))?;
            match ring.tail(tail).first() {
                Some(first) => first.seq - 1,
                None => ring.last_seq(),
            }
        }
    };
    let subscription = app.steward.subscribe_logs(&id, Some(resume_after)).await?;
    tracing::debug!(service = %id, resume_after, "log stream opened");
    let events = subscription.into_stream().map(|record| match record {
        LogRecord::Line(line) => sse::data_event(line.seq, &line),
        LogRecord::Gap { gap } => sse::gap_event(gap),
    });
    Ok(sse::respond(events))
}
