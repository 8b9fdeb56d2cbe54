//! `/health/live` and `/health/ready`: the runtime's own probes, for an orchestrator.
//!
//! Live asks the root supervisor for its status, so it fails when the actor tree no longer
//! answers, not merely when the HTTP server runs. Ready follows DESIGN §10: 200 when every
//! autostart service is ready or has `exited` with code 0 (a finished one-shot job), else
//! 503 listing the others; always 503 while the runtime is paused (a maintenance window
//! takes the instance out of rotation) or stopping. Neither ever needs the token.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::runtime::{RuntimeState, Tables};
use crate::state::{Health, ServiceState, ServiceStatus};

/// How long the root may take to answer a liveness check.
const LIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /health/live`.
pub async fn live(State(app): State<AppState>) -> Response {
    match tokio::time::timeout(LIVE_TIMEOUT, app.steward.status()).await {
        Ok(Ok(status)) => Json(serde_json::json!({
            "live": true,
            "state": status.state,
        }))
        .into_response(),
        Ok(Err(e)) => unavailable(e.to_string()),
        Err(_) => unavailable(format!(
            "the root supervisor did not answer within {}",
            humantime::format_duration(LIVE_TIMEOUT)
        )),
    }
}

fn unavailable(reason: String) -> Response {
    tracing::warn!(%reason, "liveness check failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"live": false, "reason": reason})),
    )
        .into_response()
}

/// A service that keeps the runtime from being ready.
#[derive(Debug, Serialize)]
pub struct NotReady {
    id: String,
    status: ServiceStatus,
    health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The body of `/health/ready`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    ready: bool,
    runtime: RuntimeState,
    not_ready: Vec<NotReady>,
}

/// True when an autostart service in this state counts as ready.
fn counts_as_ready(state: &ServiceState) -> bool {
    state.ready
        || (state.status == ServiceStatus::Exited
            && state.last_exit.as_ref().is_some_and(|e| e.success()))
}

/// The runtime's readiness, from the tables alone (no actor round trip).
pub fn readiness(tables: &Tables) -> Readiness {
    let runtime = tables.runtime_state();
    let mut not_ready: Vec<NotReady> = Vec::new();
    tables.each_state(|row| {
        let autostart = tables.definition(&row.id).is_some_and(|d| d.autostart);
        if autostart && !counts_as_ready(row) {
            not_ready.push(NotReady {
                id: row.id.clone(),
                status: row.status,
                health: row.health,
                reason: row.reason.clone(),
            });
        }
    });
    not_ready.sort_by(|a, b| a.id.cmp(&b.id));
    Readiness {
        ready: not_ready.is_empty() && runtime == RuntimeState::Running,
        runtime,
        not_ready,
    }
}

/// `GET /health/ready`.
pub async fn ready(State(app): State<AppState>) -> Response {
    let readiness = readiness(app.steward.tables());
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}
