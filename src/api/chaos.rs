//! Test-only fault injection (cargo feature `chaos`, never on by default): makes one actor
//! of a service panic, so a chaos run can watch the supervision tree recover over HTTP.
//!
//! `POST /api/v1/services/{id}/chaos/panic?actor=server|port_manager|log_buffer|health_checker`
//! answers 202 once the panic is injected. Not in [`super::ROUTES`] nor in the OpenAPI
//! document: it is not part of the API, and a release build does not have it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use crate::runtime::ActorKind;

/// Query of the panic route.
#[derive(Debug, Deserialize)]
pub struct PanicQuery {
    /// Which actor of the service panics.
    actor: String,
}

/// `POST /api/v1/services/{id}/chaos/panic?actor=…`.
pub async fn panic(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PanicQuery>,
) -> Result<StatusCode, ApiError> {
    let actor = match query.actor.as_str() {
        "server" => ActorKind::Server,
        "port_manager" => ActorKind::PortManager,
        "log_buffer" => ActorKind::LogBuffer,
        "health_checker" => ActorKind::HealthChecker,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown actor `{other}`: give server, port_manager, log_buffer or health_checker"
            )));
        }
    };
    tracing::warn!(service = %id, actor = actor.as_str(), "chaos: injecting a panic");
    app.steward.inject_panic(&id, actor).await?;
    Ok(StatusCode::ACCEPTED)
}
