//! The HTTP API v1 (DESIGN §6): an axum router over a [`Steward`] handle.
//!
//! [`router`] builds the app so tests can drive it without a socket; [`bind`] opens the
//! listener (refusing a non-loopback address without a token); [`serve`] runs it until a
//! shutdown future resolves.
//!
//! Every route is listed once, in [`ROUTES`]: the router is built from that table, and the
//! OpenAPI document served at `/api/v1/openapi.json` is checked against it by a test, so
//! the three cannot drift apart.
//!
//! * `error` — [`ApiError`], the one place errors are shaped (`{"error": {code, message}}`);
//! * `extract` — extractors whose rejections are JSON 400s;
//! * `auth` — the bearer token on `/api/*` and `/metrics`;
//! * `dashboard` — the web page at `/` and its files under `/ui/` (public, built in);
//! * `health`, `lifecycle`, `services`, `logs`, `events`, `explain` — the handlers;
//! * `serve` — connections: header-read / idle timeout, connection cap, graceful end;
//! * `sse` — Server-Sent Events plumbing shared by logs and events;
//! * `metrics` — `GET /metrics`, which serves the page [`crate::metrics`] renders;
//! * `read_cache`, `gzip` — the list and `/metrics` kept per tables generation, and
//!   gzipped once for clients that ask;
//! * `openapi` — the OpenAPI 3.1 document;
//! * `view` — JSON views of definitions (durations as text, secrets redacted);
//! * `usage_history` — recent CPU and memory samples per service (`GET /api/v1/usage`).
//! * `tools` — the agent tools ([`crate::tools`]) over HTTP; `mcp` — the same tools over
//!   MCP's Streamable HTTP transport at `/mcp` (token, Host and Origin checked).

mod auth;
#[cfg(feature = "chaos")]
mod chaos;
mod dashboard;
mod error;
mod events;
pub(crate) mod explain;
mod extract;
mod gzip;
mod health;
mod lifecycle;
mod logs;
pub mod mcp;
pub mod metrics;
mod openapi;
mod read_cache;
mod serve;
mod services;
mod sse;
mod tools;
mod usage_history;
pub mod view;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post};
use tokio::net::TcpListener;

use crate::Steward;
use crate::control::ControlAction;
use extract::ApiPath;

pub use error::{ApiError, Problem};
pub use metrics::install_recorder;
pub use openapi::document as openapi_document;
use serve::serve_with_limits;
pub use serve::{HEADER_TIMEOUT, MAX_CONNECTIONS, ServeLimits};
pub use services::ServiceCap;

/// How the API is served.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Bearer token required on `/api/*` and `/metrics` (None: no auth, loopback only).
    pub token: Option<String>,
}

/// Everything [`router_with`] needs besides the runtime.
#[derive(Debug, Clone, Default)]
pub struct ApiConfig {
    /// Bearer token required on `/api/*` and `/metrics` (None: no auth).
    pub token: Option<String>,
    /// The daemon's config directory: relative paths (`cwd`, `env_file`, `log_file`) of a
    /// service defined with `POST /api/v1/services` are resolved against it, as if the
    /// service were in `services.yml`. None: the current directory.
    pub config_dir: Option<PathBuf>,
    /// The address the daemon listens on: `/mcp` accepts it as `Host` and `Origin`
    /// besides loopback names (DNS-rebinding protection). None: loopback names only.
    pub listen: Option<SocketAddr>,
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

/// Every route of the API as `(method, path)`, path in axum's syntax. The router is built
/// from this table and the OpenAPI document is tested against it.
///
/// Not here: `GET /` and `GET /ui/{file}`, the dashboard's static files, which are not
/// API (no token, not in the OpenAPI document); [`router_with`] adds them.
/// `/mcp` answers `POST` only: its transport runs stateless, so there is no stream to
/// `GET` and no session to `DELETE`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/api/v1/status"),
    ("GET", "/api/v1/services"),
    ("POST", "/api/v1/services"),
    ("GET", "/api/v1/services/{id}"),
    ("DELETE", "/api/v1/services/{id}"),
    ("POST", "/api/v1/services/{id}/start"),
    ("POST", "/api/v1/services/{id}/stop"),
    ("POST", "/api/v1/services/{id}/restart"),
    ("POST", "/api/v1/services/{id}/kill"),
    ("POST", "/api/v1/services/{id}/pause"),
    ("POST", "/api/v1/services/{id}/resume"),
    ("POST", "/api/v1/services/{id}/input"),
    ("GET", "/api/v1/services/{id}/logs"),
    ("GET", "/api/v1/services/{id}/explain"),
    ("GET", "/api/v1/usage"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/lifecycle/start"),
    ("POST", "/api/v1/lifecycle/stop"),
    ("POST", "/api/v1/lifecycle/pause"),
    ("POST", "/api/v1/lifecycle/resume"),
    ("POST", "/api/v1/lifecycle/restart"),
    ("POST", "/api/v1/reload"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/tools"),
    ("POST", "/api/v1/tools/{name}"),
    ("POST", "/mcp"),
];

/// What every handler gets.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The runtime.
    pub steward: Steward,
    /// Base directory for definitions sent over the API.
    pub config_dir: Arc<PathBuf>,
    /// Recent CPU and memory samples of each service (the dashboard's sparklines).
    pub usage: Arc<usage_history::UsageHistory>,
    /// The agent tools over the runtime.
    pub tools: crate::tools::Tools,
    /// `/mcp`'s transport.
    pub mcp: mcp::McpTransport,
    /// Which `Host`/`Origin` may reach `/mcp`.
    pub mcp_hosts: mcp::HostGuard,
    /// The list and metrics pages, kept while still true (issue 16).
    pub reads: Arc<read_cache::ReadCaches>,
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

/// The whole app: every route of [`ROUTES`]; definitions sent over the API resolve
/// relative paths against the current directory. See [`router_with`].
pub fn router(steward: Steward, token: Option<String>) -> Router {
    router_with(
        steward,
        ApiConfig {
            token,
            config_dir: None,
            listen: None,
        },
    )
}

/// The whole app, configured.
pub fn router_with(steward: Steward, config: ApiConfig) -> Router {
    let config_dir = config
        .config_dir
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    let usage = usage_history::UsageHistory::start(steward.tables());
    let tools = crate::tools::Tools::new(steward.clone()).with_config_dir(config_dir.clone());
    let state = AppState {
        steward,
        config_dir: Arc::new(config_dir),
        usage,
        mcp: mcp::http_service(tools.clone()),
        tools,
        mcp_hosts: mcp::HostGuard::new(config.listen),
        reads: Arc::default(),
    };
    let mut app = Router::new();
    for &(method, path) in ROUTES {
        match endpoint(method, path) {
            Some(handler) => app = app.route(path, handler),
            None => tracing::error!(method, path, "a listed route has no handler"),
        }
    }
    #[cfg(feature = "chaos")]
    let app = app.route("/api/v1/services/{id}/chaos/panic", post(chaos::panic));
    app.route("/", get(dashboard::index))
        .route("/ui/{file}", get(dashboard::asset))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            auth::TokenGuard::new(config.token),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// Logs every request at debug level once its response head is ready (a stream's
/// duration is not known then; its opening is what is logged).
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "HTTP request"
    );
    response
}

/// The handler of one listed route.
fn endpoint(method: &str, path: &str) -> Option<MethodRouter<AppState>> {
    use ControlAction::*;
    let control = |action| {
        post(
            move |s: State<AppState>, id: ApiPath<String>, q: extract::ApiQuery<_>| {
                services::control(s, id, q, action)
            },
        )
    };
    let lifecycle = |action| post(move |s: State<AppState>| lifecycle::run(s, action));
    Some(match (method, path) {
        ("GET", "/health/live") => get(health::live),
        ("GET", "/health/ready") => get(health::ready),
        ("GET", "/api/v1/status") => get(lifecycle::status),
        ("GET", "/api/v1/services") => get(services::list),
        ("POST", "/api/v1/services") => post(services::define),
        ("GET", "/api/v1/services/{id}") => get(services::get_one),
        ("DELETE", "/api/v1/services/{id}") => delete(services::remove),
        ("POST", "/api/v1/services/{id}/start") => control(Start),
        ("POST", "/api/v1/services/{id}/stop") => control(Stop),
        ("POST", "/api/v1/services/{id}/restart") => control(Restart),
        ("POST", "/api/v1/services/{id}/kill") => control(Kill),
        ("POST", "/api/v1/services/{id}/pause") => control(Pause),
        ("POST", "/api/v1/services/{id}/resume") => control(Resume),
        ("POST", "/api/v1/services/{id}/input") => post(services::input),
        ("GET", "/api/v1/services/{id}/logs") => get(logs::logs),
        ("GET", "/api/v1/services/{id}/explain") => get(explain::explain),
        ("GET", "/api/v1/usage") => get(usage_history::usage),
        ("GET", "/api/v1/events") => get(events::events),
        ("POST", "/api/v1/lifecycle/start") => lifecycle(Start),
        ("POST", "/api/v1/lifecycle/stop") => lifecycle(Stop),
        ("POST", "/api/v1/lifecycle/pause") => lifecycle(Pause),
        ("POST", "/api/v1/lifecycle/resume") => lifecycle(Resume),
        ("POST", "/api/v1/lifecycle/restart") => lifecycle(Restart),
        ("POST", "/api/v1/reload") => post(lifecycle::reload),
        ("GET", "/metrics") => get(metrics::scrape),
        ("GET", "/api/v1/openapi.json") => get(openapi::serve),
        ("GET", "/api/v1/tools") => get(tools::list),
        ("POST", "/api/v1/tools/{name}") => post(tools::call),
        ("POST", "/mcp") => post(mcp::handle),
        _ => return None,
    })
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {method} {}; see /api/v1/openapi.json",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} does not accept {method}; see /api/v1/openapi.json",
        uri.path()
    ))
}

/// How long open connections (event and log streams, which never end by themselves) may
/// run on after the shutdown future resolves before they are closed.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` resolves, within
/// [`ServeLimits::for_this_process`] (header-read and idle timeout, connection cap; see
/// `serve.rs`). Requests in flight then get [`SHUTDOWN_GRACE`] to finish; streams still
/// open after that are cut (an EventSource reconnects with `Last-Event-ID` and resumes
/// where it stopped).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_within(listener, app, ServeLimits::for_this_process(), shutdown).await
}

/// [`serve`] with explicit limits.
pub async fn serve_within(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (fired, on_fire) = tokio::sync::oneshot::channel::<()>();
    let server = serve_with_limits(listener, app, limits, async move {
        shutdown.await;
        let _ = fired.send(());
    });
    let grace = async move {
        if on_fire.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result?,
        () = grace => tracing::info!(grace = ?SHUTDOWN_GRACE, "closing the HTTP streams still open"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_route_has_a_handler() {
        for &(method, path) in ROUTES {
            assert!(endpoint(method, path).is_some(), "{method} {path}");
        }
    }
}
