//! Extractors whose rejections are [`ApiError`]s, so a malformed request always gets the
//! JSON error shape and a 400, never axum's plain-text rejection or a 500.
//!
//! * [`JsonBody`] parses the body as JSON whatever its `Content-Type` (so
//!   `curl -d '{…}'` works without `-H 'Content-Type: application/json'`);
//! * [`ApiQuery`] and [`ApiPath`] wrap axum's `Query` and `Path`;
//! * [`RawBody`] is the body's bytes, as they are (for stdin input).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body, parsed whatever its `Content-Type`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// The body's bytes, unchanged.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

/// A query string; a bad one (`tail=abc`) is a 400.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

/// Path parameters; an undecodable one is a 400.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("the body is too large: {}", rejection.body_text()))
    } else {
        ApiError::bad_request(format!(
            "could not read the body: {}",
            rejection.body_text()
        ))
    }
}

impl<S> FromRequest<S> for RawBody
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(body_error)
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "the body is empty; send a JSON object",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The `Last-Event-ID` header as a sequence number (an EventSource sends it when it
/// reconnects); a value that is not a number is a 400.
pub fn last_event_id(headers: &axum::http::HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Last-Event-ID is not text"))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>().map(Some).map_err(|_| {
        ApiError::bad_request(format!(
            "Last-Event-ID must be a sequence number, not {text:?}"
        ))
    })
}
