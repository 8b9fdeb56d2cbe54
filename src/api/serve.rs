//! Serving the router on a TCP listener, with the limits a long-lived daemon needs
//! (DESIGN §10 "Every request is answered"; issue 14, item 4).
//!
//! `axum::serve` has no header-read or idle timeout and no connection cap: half-open
//! connections stayed open for minutes, and a few hundred idle sockets used up steward's
//! file descriptors until `/health/live` froze and a service's respawn failed. So
//! connections are served here with hyper's HTTP/1.1 server directly:
//!
//! * **header-read and idle timeout** ([`ServeLimits::header_timeout`]): hyper arms it
//!   whenever the connection waits for a request head, on a fresh connection and between
//!   keep-alive requests alike, so a client that sends nothing, or trickles its headers, or
//!   sits idle between requests, is closed. A request being answered, and a stream being
//!   sent (events, logs), are not waiting for a head, and run as long as they need;
//! * **a connection cap** ([`ServeLimits::max_connections`]): past it a new connection
//!   gets `503` and is closed at once, so a flood of sockets cannot take the descriptors
//!   the services need;
//! * **graceful shutdown**: once the shutdown future resolves nothing new is accepted, each
//!   connection finishes the request it is on, and whatever is still open when the
//!   serving future is dropped (the caller's grace period) is closed with it.
//!
//! HTTP/2 is not offered: clients speak HTTP/1.1 to a plain-text loopback API, and
//! prior-knowledge h2c would need its own idle rules.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::ServeError;

/// Limits on the connections of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// How long a connection may take to send a request head, and may stay idle between
    /// requests, before it is closed.
    pub header_timeout: Duration,
    /// Connections served at once; more are answered `503` and closed.
    pub max_connections: usize,
}

/// The default header-read / idle timeout: well under a minute (DESIGN §10), long enough
/// for any client that means to send a request.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The default connection cap, when the open-file limit allows it (see
/// [`ServeLimits::for_this_process`]).
pub const MAX_CONNECTIONS: usize = 256;

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: HEADER_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

impl ServeLimits {
    /// The defaults, with the cap lowered to a quarter of this process's open-file limit
    /// when that is lower: the other three quarters stay for the services' pipes and log
    /// files.
    pub fn for_this_process() -> Self {
        let limits = ServeLimits::default();
        match crate::process::fd_limit::soft_nofile() {
            Some(nofile) => ServeLimits {
                max_connections: limits
                    .max_connections
                    .min(usize::try_from(nofile / 4).unwrap_or(usize::MAX))
                    .max(4),
                ..limits
            },
            None => limits,
        }
    }
}

/// What a connection past the cap is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: 96\r\n\r\n{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections to steward; retry in a second\"}}";

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets each
/// connection finish its request and returns when all are closed.
pub async fn serve_with_limits(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Dropping the set (the caller's grace period is over) closes every connection left.
    let mut connections = JoinSet::new();
    let mut accepting = stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut accepting) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // EMFILE / ENFILE and the like: wait a little rather than spin; the
                // connections being served still free descriptors as they end.
                warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            turn_away(&stream, limits.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stopping = stopping.clone();
        connections.spawn(async move {
            serve_connection(stream, app, limits, stopping).await;
            drop(permit);
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Answers a connection past the cap `503` (without waiting: a fresh socket's send
/// buffer takes these few bytes) and closes it.
fn turn_away(stream: &TcpStream, cap: usize) {
    warn!(
        max_connections = cap,
        "connection refused: too many open connections"
    );
    let _ = stream.try_write(BUSY);
}

/// One connection, until it closes, times out, or the server shuts down.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: ServeLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopped(&mut stopping) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        debug!(%error, "connection closed");
    }
}

/// Resolves once the shutdown has begun (or its sender is gone).
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}
