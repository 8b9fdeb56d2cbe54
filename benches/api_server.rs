//! `steward up` with the HTTP API, for the benchmark suite while the `steward` binary does
//! not serve the API itself yet: loads a config folder, boots it, serves
//! `steward::api::router` on `--listen`, and on SIGTERM or SIGINT stops every service and
//! exits. `bench/run` uses it for S7 (and S4 through `POST /api/v1/lifecycle/stop`) only
//! when `steward up` does not answer on its `listen` address.
//!
//! `cargo bench --bench api_server -- --config DIR --listen 127.0.0.1:PORT`

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(config) = arg(&args, "--config").map(PathBuf::from) else {
        // `cargo bench` with no arguments runs every bench target: nothing to serve.
        eprintln!("api_server: needs --config DIR --listen ADDR; nothing to do");
        return;
    };
    let listen: SocketAddr = arg(&args, "--listen")
        .unwrap_or_else(|| "127.0.0.1:7070".into())
        .parse()
        .expect("--listen ADDR");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let loaded = steward::config::load_dir(&config).expect("config loads");
    let steward = steward::Steward::boot(loaded).await.expect("boot");
    let listener = tokio::net::TcpListener::bind(listen).await.expect("bind");
    let app = steward::api::router(steward.clone(), None);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(steward::api::serve(listener, app, async move {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    let _ = stop_tx.send(());
    steward.shutdown().await.expect("shutdown");
    let _ = server.await;
}
