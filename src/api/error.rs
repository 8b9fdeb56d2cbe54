//! [`ApiError`]: the one place where API errors are shaped, given a status and logged.
//!
//! Every error leaves as `{"error": {"code": "not_found", "message": "…"}}` (DESIGN §6),
//! with a status from a short list: 400 (`bad_request`), 401 (`unauthorized`), 404
//! (`not_found`), 405 (`method_not_allowed`), 409 (`conflict`, `already_exists`, and the
//! library's refusals that depend on the service's state), 413 (`payload_too_large`), 422
//! (`invalid_definition`, with every problem in `details`) and 500 (`internal`, a bug).
//!
//! A rejected definition keeps its structure to the wire: `details` lists each problem
//! with its file, line and column (when it came from a file) and a hint (when there is
//! one). `errors` carries the same list under the name earlier clients read.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ConfigError, ConfigErrors, ControlError};

/// One problem of a rejected definition, as listed in a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The file the problem is in (absent for a definition sent over the API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in `file`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column in `file`, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
}

impl Problem {
    /// A problem with no place in a file.
    pub fn new(message: impl Into<String>, hint: Option<String>) -> Self {
        Problem {
            message: message.into(),
            hint,
            file: None,
            line: None,
            column: None,
        }
    }
}

impl From<&ConfigError> for Problem {
    fn from(e: &ConfigError) -> Self {
        let known = |n: u64| (n > 0).then_some(n);
        Problem {
            message: e.message.clone(),
            hint: e.hint.clone(),
            file: e.file.as_ref().map(|f| f.display().to_string()),
            line: known(e.line),
            column: known(e.column),
        }
    }
}

/// An error answered by the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// Malformed JSON, a bad query string or path (400).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or wrong bearer token (401).
    #[error("a valid bearer token is required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// No such service, or no such route (404).
    #[error("{0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The body is larger than the server accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A rejected definition, with every problem found (422).
    #[error("{message}")]
    InvalidDefinition {
        /// Summary.
        message: String,
        /// Each problem.
        errors: Vec<Problem>,
    },
    /// A control message the library refused; the status follows from its code.
    #[error("{0}")]
    Control(ControlError),
    /// A bug or an unexpected failure (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 with this message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(message.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidDefinition { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Control(e) => control_status(e),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::InvalidDefinition { .. } => "invalid_definition",
            ApiError::Control(e) => e.code(),
            ApiError::Internal(_) => "internal",
        }
    }
}

/// The status of a library refusal. Refusals that depend on the service's current state
/// (running, not running, a dependency down, its actors gone) are conflicts: the same
/// request may succeed later.
fn control_status(error: &ControlError) -> StatusCode {
    match error {
        ControlError::NotFound(_) => StatusCode::NOT_FOUND,
        // A definition that could not be written stays a problem with the definition's
        // request, as it was before it had its own code.
        ControlError::InvalidDefinition(_) | ControlError::SaveFailed { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ControlError::Runtime(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // A function service asked to pause or resume: a conflict with what the service is.
        ControlError::FunctionNotPausable { .. } => StatusCode::CONFLICT,
        // AlreadyExists, Running, NotRunning, DependencyFailed, StartFailed, Unavailable,
        // Input, and whatever the library adds later.
        _ => StatusCode::CONFLICT,
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match error {
            ControlError::InvalidDefinition(ref errors) => ApiError::InvalidDefinition {
                message: error.to_string(),
                errors: errors.0.iter().map(Problem::from).collect(),
            },
            other => ApiError::Control(other),
        }
    }
}

impl From<ConfigErrors> for ApiError {
    fn from(errors: ConfigErrors) -> Self {
        let problems: Vec<Problem> = errors.0.iter().map(Problem::from).collect();
        let message = match problems.as_slice() {
            [one] => format!("invalid definition: {}", one.message),
            many => format!("invalid definition: {} problems", many.len()),
        };
        ApiError::InvalidDefinition {
            message,
            errors: problems,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a [Problem]>,
    /// With a stop refused for running dependents: who they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    dependents: Option<&'a [String]>,
    /// The same list as `details`, under the name clients of earlier versions read.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [Problem]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = self.to_string();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), code, %message, "API request failed");
        } else {
            tracing::debug!(status = status.as_u16(), code, %message, "API request refused");
        }
        let details = match &self {
            ApiError::InvalidDefinition { errors, .. } => Some(errors.as_slice()),
            _ => None,
        };
        let dependents = match &self {
            ApiError::Control(ControlError::DependentsRunning { dependents, .. }) => {
                Some(dependents.as_slice())
            }
            _ => None,
        };
        let body = Body {
            error: Inner {
                code,
                message,
                details,
                dependents,
                errors: details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_refusals_get_their_code_and_a_fitting_status() {
        let cases = [
            (ControlError::NotFound("x".into()), 404, "not_found"),
            (
                ControlError::AlreadyExists("x".into()),
                409,
                "already_exists",
            ),
            (ControlError::Running("x".into()), 409, "conflict"),
            (
                ControlError::InvalidDefinition(two_problems()),
                422,
                "invalid_definition",
            ),
            (ControlError::Runtime("gone".into()), 500, "internal"),
        ];
        for (error, status, code) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status, "{api:?}");
            assert_eq!(api.code(), code);
        }
    }

    fn two_problems() -> ConfigErrors {
        ConfigErrors(vec![
            ConfigError {
                file: Some("services.d/web.yml".into()),
                line: 4,
                column: 5,
                message: "unknown key `comand`".into(),
                hint: Some("did you mean `command`?".into()),
            },
            ConfigError::detached("b"),
        ])
    }

    #[test]
    fn invalid_definition_lists_each_problem_with_its_place() {
        let api = ApiError::from(ControlError::InvalidDefinition(two_problems()));
        match api {
            ApiError::InvalidDefinition { errors, .. } => {
                assert_eq!(errors.len(), 2);
                assert_eq!(errors[0].file.as_deref(), Some("services.d/web.yml"));
                assert_eq!((errors[0].line, errors[0].column), (Some(4), Some(5)));
                assert_eq!(errors[0].hint.as_deref(), Some("did you mean `command`?"));
                assert_eq!(errors[1], Problem::new("b", None));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_rejected_definition_answers_details_and_errors() {
        let response =
            ApiError::from(ControlError::InvalidDefinition(two_problems())).into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        let details = &json["error"]["details"];
        assert_eq!(details[0]["line"], 4);
        assert_eq!(details[0]["column"], 5);
        assert_eq!(details[0]["file"], "services.d/web.yml");
        assert_eq!(details[1]["message"], "b");
        assert!(details[1].get("line").is_none(), "{details}");
        assert_eq!(&json["error"]["errors"], details);
    }
}
