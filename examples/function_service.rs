//! A function service: an HTTP server of the app itself, supervised by steward next to an
//! OS process that depends on it.
//!
//! Run with `cargo run --example function_service`.
//!
//! * `api` is a function service: a small HTTP server on a tokio `TcpListener`, running
//!   inside this program. It reports readiness once it has bound its port, and ends
//!   cleanly when steward cancels it;
//! * `client` is an OS process (python3) that `depends_on` `api` being healthy: steward
//!   starts it only after the report, it fetches `/hello` once and exits 0;
//! * the app prints the events, the logs of both, and shuts down when the client is done.
//!
//! The program exits 0 when the client got the answer, 1 otherwise.

use std::process::ExitCode;
use std::time::Duration;

use steward::config::{Dependency, DependencyCondition, RestartPolicy};
use steward::{
    CommandSpec, EventItem, EventKind, FunctionService, ServiceContext, ServiceDefinition,
    ServiceStatus, Steward,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The in-app HTTP server: answers every request with `hello from steward`.
async fn http_api(ctx: ServiceContext, listener: TcpListener) -> std::io::Result<()> {
    ctx.log()
        .stdout(format!("listening on http://{}", listener.local_addr()?));
    // Bound: dependents waiting for `healthy` may start now.
    ctx.ready();
    loop {
        tokio::select! {
            () = ctx.cancelled() => {
                ctx.log().stdout("stop requested: closing the listener");
                return Ok(());
            }
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                ctx.log().stdout(format!("request from {peer}"));
                // One task per connection; a broken client is logged, not fatal.
                let log = ctx.log().clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream).await {
                        log.stderr(format!("connection from {peer}: {e}"));
                    }
                });
            }
        }
    }
}

/// Reads the request head and answers `200 hello from steward`.
async fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let body = "hello from steward\n";
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // The port is chosen here, so both services know it: the function serves it, the
    // process is told it in its argv.
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = probe.local_addr()?;
    drop(probe);

    let steward = Steward::spawn().await?;
    let mut events = steward.subscribe_events(None).await?;

    let api = FunctionService::new("http api", move |ctx: ServiceContext| async move {
        let listener = TcpListener::bind(address).await?;
        http_api(ctx, listener).await
    })
    .reporting_ready();
    let mut api = ServiceDefinition::function("api", api);
    api.stop_timeout = Duration::from_secs(2);
    steward.define(api).await?;

    let fetch = format!(
        "import urllib.request; print(urllib.request.urlopen('http://{address}/hello', timeout=5).read().decode().strip())"
    );
    let mut client = ServiceDefinition::new(
        "client",
        CommandSpec::Argv(vec!["python3".into(), "-c".into(), fetch]),
    );
    client.restart = RestartPolicy::Temporary;
    client.depends_on = vec![Dependency {
        service: "api".into(),
        condition: DependencyCondition::Healthy,
    }];
    steward.define(client).await?;

    // Print the events until the client has exited.
    let finished = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(item) = events.recv().await {
            let EventItem::Event(e) = item else { continue };
            println!(
                "event #{} {} {}{}{}",
                e.seq,
                e.service,
                e.kind.as_str(),
                e.pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
                e.cause.map(|c| format!(" ({c})")).unwrap_or_default()
            );
            if e.service == "client" && e.kind == EventKind::Exited {
                return e.exit_code;
            }
        }
        None
    })
    .await;

    for id in ["api", "client"] {
        for line in steward.logs(id, 20).await? {
            println!(
                "log {id} #{} [{}] {}",
                line.seq,
                line.stream.as_str(),
                line.line
            );
        }
    }
    let api_state = steward.get("api").await?.state;
    println!(
        "api: kind {}, status {}, pid {:?}",
        api_state.kind.as_str(),
        api_state.status,
        api_state.pid
    );
    let answered = steward
        .logs("client", 5)
        .await?
        .iter()
        .any(|l| l.line.as_str() == "hello from steward");

    let stopped = steward.stop("api").await?;
    steward.shutdown().await?;
    let ok = finished == Ok(Some(0)) && answered && stopped.status == ServiceStatus::Stopped;
    println!(
        "client exit {finished:?}, answered {answered}: {}",
        if ok { "ok" } else { "FAILED" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
