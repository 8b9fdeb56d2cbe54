//! The runtime as a whole: `GET /api/v1/status` and `POST /api/v1/lifecycle/{verb}`.
//!
//! A lifecycle verb goes to every service (`start` to the autostart ones, in definition
//! order; `stop` to all, dependents first; `pause` freezes every service and holds restarts
//! back until `resume`). One service refusing does not fail the request: the answer lists
//! each service's outcome, as the library's `BatchResult` does.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use crate::control::{ControlAction, RuntimeStatus};
use crate::runtime::RuntimeState;
use crate::state::ServiceState;

/// `GET /api/v1/status`.
pub async fn status(State(app): State<AppState>) -> Result<Json<RuntimeStatus>, ApiError> {
    Ok(Json(app.steward.status().await?))
}

/// The outcome of a verb for one service.
#[derive(Debug, Serialize)]
pub struct ServiceOutcome {
    id: String,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<ServiceState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<OutcomeError>,
}

/// Why a verb failed for one service, in the API's error shape.
#[derive(Debug, Serialize)]
pub struct OutcomeError {
    code: &'static str,
    message: String,
}

/// The body of a lifecycle answer.
#[derive(Debug, Serialize)]
pub struct LifecycleOutcome {
    action: ControlAction,
    runtime: RuntimeState,
    results: Vec<ServiceOutcome>,
}

/// `POST /api/v1/lifecycle/{verb}`.
pub async fn run(
    State(app): State<AppState>,
    action: ControlAction,
) -> Result<Json<LifecycleOutcome>, ApiError> {
    tracing::info!(?action, "runtime-wide lifecycle requested over HTTP");
    let batch = app.steward.lifecycle(action).await?;
    let results = batch
        .into_iter()
        .map(|(id, result)| match result {
            Ok(state) => ServiceOutcome {
                id,
                ok: true,
                state: Some(state),
                error: None,
            },
            Err(e) => {
                let api = ApiError::from(e);
                ServiceOutcome {
                    id,
                    ok: false,
                    state: None,
                    error: Some(OutcomeError {
                        code: api.code(),
                        message: api.to_string(),
                    }),
                }
            }
        })
        .collect();
    Ok(Json(LifecycleOutcome {
        action,
        runtime: app.steward.tables().runtime_state(),
        results,
    }))
}

/// Query of `POST /api/v1/reload`.
#[derive(Debug, serde::Deserialize)]
pub struct ReloadQuery {
    /// Only return the plan.
    #[serde(default)]
    dry_run: bool,
}

/// The body of a reload answer.
#[derive(Debug, Serialize)]
pub struct ReloadOutcome {
    /// Whether the plan was carried out.
    applied: bool,
    /// One entry per service: `id`, `action`, `why`.
    entries: Vec<crate::config::PlanEntry>,
}

/// `POST /api/v1/reload[?dry_run=true]`.
pub async fn reload(
    State(app): State<AppState>,
    super::extract::ApiQuery(query): super::extract::ApiQuery<ReloadQuery>,
) -> Result<Json<ReloadOutcome>, ApiError> {
    tracing::info!(dry_run = query.dry_run, "reload requested over HTTP");
    let plan = app.steward.reload(query.dry_run).await?;
    Ok(Json(ReloadOutcome {
        applied: !query.dry_run,
        entries: plan.entries,
    }))
}
