//! Bearer-token authentication for `/api/*`, `/metrics` and `/mcp` (DESIGN §6).
//!
//! One middleware over the whole router decides by path, so a route added later under
//! `/api/` is protected without anyone remembering to: `/health/*` (orchestrator probes)
//! and everything else (`/`, the dashboard's static page) stay open. The token is compared
//! in constant time (`subtle`), so response timing does not reveal how much of a guess
//! was right; only its length can show.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The token a request must carry, if any.
#[derive(Debug, Clone)]
pub struct TokenGuard {
    token: Option<Arc<str>>,
}

impl TokenGuard {
    /// A guard for `token` (`None`: every request passes).
    pub fn new(token: Option<String>) -> Self {
        TokenGuard {
            token: token.map(Arc::from),
        }
    }

    /// True when requests to `path` need the token.
    pub fn protects(path: &str) -> bool {
        path == "/api" || path.starts_with("/api/") || path == "/metrics" || path == "/mcp"
    }

    /// True when the `Authorization` header value carries the token.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let Some(given) = authorization.and_then(bearer) else {
            return false;
        };
        given.ct_eq(expected.as_bytes()).into()
    }
}

/// The credentials of a `Bearer` authorization (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if scheme.eq_ignore_ascii_case(b"bearer ") {
        Some(rest.trim_ascii())
    } else {
        None
    }
}

/// The middleware: 401 for a protected path without the right token.
pub async fn require_token(
    State(guard): State<TokenGuard>,
    request: Request,
    next: Next,
) -> Response {
    if TokenGuard::protects(request.uri().path()) {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if !guard.admits(authorization) {
            tracing::info!(
                path = request.uri().path(),
                method = %request.method(),
                with_header = authorization.is_some(),
                "unauthorized API request"
            );
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_api_and_metrics_are_protected() {
        for path in ["/api", "/api/v1/services", "/metrics", "/mcp"] {
            assert!(TokenGuard::protects(path), "{path}");
        }
        for path in ["/", "/health/live", "/health/ready", "/apis", "/metrics2"] {
            assert!(!TokenGuard::protects(path), "{path}");
        }
    }

    #[test]
    fn token_must_match_exactly() {
        let guard = TokenGuard::new(Some("s3cret".into()));
        assert!(guard.admits(Some(b"Bearer s3cret")));
        assert!(guard.admits(Some(b"bearer s3cret")));
        assert!(!guard.admits(Some(b"Bearer s3cre")));
        assert!(!guard.admits(Some(b"Bearer s3cret2")));
        assert!(!guard.admits(Some(b"Basic s3cret")));
        assert!(!guard.admits(Some(b"Bearer")));
        assert!(!guard.admits(None));
        assert!(TokenGuard::new(None).admits(None));
    }
}
