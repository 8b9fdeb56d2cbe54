//! `GET /api/v1/tools` and `POST /api/v1/tools/{name}`: the agent tools of
//! [`crate::tools`] over HTTP.
//!
//! The list gives each tool's name, title, description, input JSON Schema and
//! annotations. A call takes the bare input object as its body (an empty body is `{}`)
//! and answers the tool's JSON result. A body that is not JSON is 400; an input that does
//! not match the schema (or a definition with problems) is 422 `invalid_input` with each
//! problem's JSON path in `details`; an unknown tool is 404; the runtime's refusals keep
//! the statuses of the matching service routes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiPath, RawBody};
use crate::tools::{ToolDefinition, ToolError};

/// The body of `GET /api/v1/tools`.
#[derive(Debug, Serialize)]
pub struct ToolList {
    tools: Vec<ToolDefinition>,
}

/// `GET /api/v1/tools`.
pub async fn list(State(app): State<AppState>) -> Json<ToolList> {
    Json(ToolList {
        tools: app.tools.definitions(),
    })
}

/// `POST /api/v1/tools/{name}`.
pub async fn call(
    State(app): State<AppState>,
    ApiPath(name): ApiPath<String>,
    RawBody(body): RawBody,
) -> Response {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(&body) {
            Ok(input) => input,
            Err(e) => {
                return ApiError::bad_request(format!("the body is not JSON: {e}")).into_response();
            }
        }
    };
    tracing::debug!(tool = %name, "tool called over HTTP");
    match app.tools.call(&name, input).await {
        Ok(result) => Json(result).into_response(),
        Err(ToolError::UnknownTool(_)) => ApiError::NotFound(format!(
            "no tool named `{name}`; GET /api/v1/tools lists them"
        ))
        .into_response(),
        Err(ToolError::Control(e)) => ApiError::from(e).into_response(),
        Err(e @ ToolError::ReadOnly(_)) => {
            (StatusCode::FORBIDDEN, Json(e.to_json())).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, Json(e.to_json())).into_response(),
    }
}
