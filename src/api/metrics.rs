//! `GET /metrics`: serves the page [`crate::metrics`] renders for the runtime, in
//! Prometheus text format. The recorder, the metric names and what the page holds live
//! there, below the API; this route only renders.
//!
//! The part read from the tables (a few series per service: 9 MB at 10,000 services) is
//! rendered on a blocking thread and kept by [`read_cache`](super::read_cache) while the
//! tables' generation holds (at most a second); what the runtime recorded (restarts by
//! reason, probe durations, dropped log lines) is appended fresh to every response.
//!
//! Prometheus scrapes with `Accept-Encoding: gzip`: such a request gets the cached part
//! gzipped once per rendering, with only the fresh part compressed per request and joined
//! to it in the same gzip member ([`super::gzip::Gzipped::followed_by`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use super::gzip::{accepts_gzip, respond};

pub use crate::metrics::{
    METRIC_NAMES, SECONDS_BUCKETS, install_recorder, render_tables, sample_recorded,
};

/// The Prometheus text format's media type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(crate) async fn scrape(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tables = app.steward.tables().clone();
    let generation = tables.generation();
    let gzip = accepts_gzip(&headers);
    let page = app
        .reads
        .metrics
        .get(generation, gzip, || async move {
            tokio::task::spawn_blocking(move || Bytes::from(render_tables(&tables)))
                .await
                .map_err(|e| ApiError::Internal(format!("rendering the metrics failed: {e}")))
        })
        .await?;
    let recorded = crate::metrics::render_recorded();
    if let Some(gzipped) = page.gzip.filter(|_| gzip) {
        let joined = if recorded.is_empty() {
            Ok(gzipped.whole())
        } else {
            let tail = format!("\n{recorded}");
            tokio::task::spawn_blocking(move || gzipped.followed_by(tail.as_bytes()))
                .await
                .map_err(std::io::Error::other)
                .and_then(|joined| joined)
        };
        match joined {
            Ok(body) => return Ok(respond(TEXT_FORMAT, body, true)),
            Err(error) => tracing::warn!(%error, "could not gzip the metrics; serving them plain"),
        }
    }
    let body = if recorded.is_empty() {
        page.plain
    } else {
        let mut joined = Vec::with_capacity(page.plain.len() + recorded.len() + 1);
        joined.extend_from_slice(&page.plain);
        joined.push(b'\n');
        joined.extend_from_slice(recorded.as_bytes());
        Bytes::from(joined)
    };
    Ok(respond(TEXT_FORMAT, body, false))
}
