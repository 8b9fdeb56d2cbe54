//! `GET /metrics`: serves the page [`crate::metrics`] renders for the runtime, in
//! Prometheus text format. The recorder, the metric names and what the page holds live
//! there, below the API; this route only renders.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

pub use crate::metrics::{
    METRIC_NAMES, SECONDS_BUCKETS, install_recorder, render_tables, sample_recorded,
};

/// `GET /metrics`.
pub(crate) async fn scrape(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(app.steward.tables()),
    )
}
