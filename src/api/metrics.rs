//! `GET /metrics`: serves the page [`crate::metrics`] renders for the runtime, in
//! Prometheus text format. The recorder, the metric names and what the page holds live
//! there, below the API; this route only renders.
//!
//! The part read from the tables (a few series per service: 9 MB at 10,000 services) is
//! rendered on a blocking thread and kept by [`read_cache`](super::read_cache) while the
//! tables' generation holds (at most a second); what the runtime recorded (restarts by
//! reason, probe durations, dropped log lines) is appended fresh to every response.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::error::ApiError;

pub use crate::metrics::{
    METRIC_NAMES, SECONDS_BUCKETS, install_recorder, render_tables, sample_recorded,
};

/// `GET /metrics`.
pub(crate) async fn scrape(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let tables = app.steward.tables().clone();
    let generation = tables.generation();
    let page = app
        .reads
        .metrics
        .get(generation, || async move {
            tokio::task::spawn_blocking(move || Bytes::from(render_tables(&tables)))
                .await
                .map_err(|e| ApiError::Internal(format!("rendering the metrics failed: {e}")))
        })
        .await?;
    let recorded = crate::metrics::render_recorded();
    let body = if recorded.is_empty() {
        page
    } else {
        let mut joined = Vec::with_capacity(page.len() + recorded.len() + 1);
        joined.extend_from_slice(&page);
        joined.push(b'\n');
        joined.extend_from_slice(recorded.as_bytes());
        Bytes::from(joined)
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
