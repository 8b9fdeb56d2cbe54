//! MCP with a real client (rmcp) over both transports: Streamable HTTP at `/mcp` of a real
//! server, and `steward mcp` on stdio talking to that server; plus the token, Host and
//! Origin checks of `/mcp`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ReadResourceRequestParams, ResourceContents, Tool,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::{Value, json};
use steward::Steward;
use steward::api::{self, ApiConfig, ApiOptions};

use crate::support::pid_alive;

const TOKEN: &str = "mcp-test-token";

/// A real API server on 127.0.0.1 with a token; stops when dropped.
struct Server {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(steward: &Steward) -> Server {
    let options = ApiOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: Some(TOKEN.to_string()),
    };
    let listener = api::bind(&options).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = api::router_with(
        steward.clone(),
        ApiConfig {
            token: options.token.clone(),
            config_dir: None,
            listen: Some(addr),
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(api::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

async fn idle(steward: &Steward, id: &str) {
    let mut def = crate::support::service(id, "sleep 300");
    def.autostart = false;
    steward.define(def).await.expect("define");
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    input: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(input)))
        .await
        .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
}

/// What every transport must do: list every tool with schema and annotations, call
/// service_list and service_start (a real process), and answer a bad input with an error
/// result.
async fn exercise(client: &RunningService<RoleClient, ()>, id: &'static str) {
    let tools: Vec<Tool> = client.list_all_tools().await.expect("tools/list");
    let expected = steward::tools::all_tools();
    assert_eq!(tools.len(), expected.len());
    for def in &expected {
        let tool = tools
            .iter()
            .find(|t| t.name == def.name)
            .unwrap_or_else(|| panic!("{} not listed", def.name));
        assert_eq!(
            Value::Object((*tool.input_schema).clone()),
            def.input_schema
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        assert_eq!(annotations.read_only_hint, Some(def.annotations.read_only));
        assert_eq!(
            annotations.destructive_hint,
            Some(def.annotations.destructive)
        );
        assert_eq!(
            annotations.idempotent_hint,
            Some(def.annotations.idempotent)
        );
    }

    let listed = call(client, "service_list", json!({})).await;
    assert_eq!(listed.is_error, Some(false));
    let services = listed.structured_content.expect("structured");
    assert!(
        services["services"]
            .as_array()
            .expect("services")
            .iter()
            .any(|s| s["id"] == id),
        "{services}"
    );

    let started = call(client, "service_start", json!({"id": id})).await;
    assert_eq!(started.is_error, Some(false), "{started:?}");
    let state = started.structured_content.expect("structured");
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_u64().expect("pid") as u32;
    assert!(pid_alive(pid), "pid {pid} is not in /proc");

    // The service's log and the event ring are resources, JSON from the same tools.
    let resources = client.list_all_resources().await.expect("resources/list");
    let logs_uri = format!("steward://services/{id}/logs");
    for uri in ["steward://events", logs_uri.as_str()] {
        assert!(resources.iter().any(|r| r.uri == uri), "{uri} not listed");
    }
    let read = client
        .read_resource(ReadResourceRequestParams::new(logs_uri.clone()))
        .await
        .expect("resources/read");
    let Some(ResourceContents::TextResourceContents { text, .. }) = read.contents.first() else {
        panic!("no text contents: {read:?}");
    };
    let logs: Value = serde_json::from_str(text).expect("JSON logs");
    assert_eq!(logs["service"], id);
    let events = client
        .read_resource(ReadResourceRequestParams::new("steward://events"))
        .await
        .expect("resources/read events");
    assert!(!events.contents.is_empty());
    assert!(
        client
            .read_resource(ReadResourceRequestParams::new("steward://nope"))
            .await
            .is_err()
    );

    let bad = call(client, "service_start", json!({"name": id})).await;
    assert_eq!(bad.is_error, Some(true));
    let error = bad.structured_content.expect("structured error");
    assert_eq!(error["error"]["code"], "invalid_input", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_lists_and_calls_the_tools_over_streamable_http() {
    let steward = Steward::spawn().await.expect("runtime");
    idle(&steward, "mh-web").await;
    let server = serve(&steward).await;
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(format!("http://{}/mcp", server.addr));
    config.auth_header = Some(TOKEN.to_string());
    let transport = StreamableHttpClientTransport::from_config(config);
    let client = ().serve(transport).await.expect("initialize");
    let info = client.peer_info().expect("server info");
    let name = info.server_info.as_ref().map(|i| i.name.clone());
    assert_eq!(name.as_deref(), Some("steward"));
    exercise(&client, "mh-web").await;
    client.cancel().await.expect("close");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steward_mcp_serves_the_daemons_tools_on_stdio() {
    let steward = Steward::spawn().await.expect("runtime");
    idle(&steward, "ms-web").await;
    let server = serve(&steward).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    command
        .arg("mcp")
        .env("STEWARD_URL", format!("http://{}", server.addr))
        .env("STEWARD_TOKEN", TOKEN);
    let transport = TokioChildProcess::new(command).expect("spawn steward mcp");
    let client = ().serve(transport).await.expect("initialize");
    exercise(&client, "ms-web").await;
    client.cancel().await.expect("close");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steward_mcp_read_only_offers_and_runs_only_read_only_tools() {
    let steward = Steward::spawn().await.expect("runtime");
    idle(&steward, "mr-web").await;
    let server = serve(&steward).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    command
        .args(["mcp", "--read-only", "--url"])
        .arg(format!("http://{}", server.addr))
        .args(["--token", TOKEN]);
    let transport = TokioChildProcess::new(command).expect("spawn steward mcp");
    let client = ().serve(transport).await.expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.iter().any(|t| t.name == "service_list"));
    assert!(
        tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    let refused = call(&client, "service_start", json!({"id": "mr-web"})).await;
    assert_eq!(refused.is_error, Some(true));
    let state = steward.get("mr-web").await.expect("get").state;
    assert_eq!(state.status, steward::ServiceStatus::Pending);
    client.cancel().await.expect("close");
    steward.shutdown().await.expect("shutdown");
}

/// A JSON-RPC `initialize` request body.
fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}})
    .to_string()
}

async fn post_mcp(app: &axum::Router, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::from(initialize())).expect("request");
    crate::support::request_json(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_needs_the_token_and_a_loopback_host_and_origin() {
    let steward = Steward::spawn().await.expect("runtime");
    let app = api::router_with(
        steward.clone(),
        ApiConfig {
            token: Some(TOKEN.to_string()),
            config_dir: None,
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 7070))),
        },
    );
    let bearer = format!("Bearer {TOKEN}");
    let (status, body) = post_mcp(&app, &[("host", "127.0.0.1:7070")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, body) = post_mcp(
        &app,
        &[
            ("host", "127.0.0.1:7070"),
            ("authorization", "Bearer wrong"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = post_mcp(
        &app,
        &[("host", "evil.example:7070"), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = post_mcp(
        &app,
        &[
            ("host", "localhost:7070"),
            ("origin", "http://evil.example"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post_mcp(
        &app,
        &[
            ("host", "localhost:7070"),
            ("origin", "http://localhost:7070"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["serverInfo"]["name"], "steward", "{body}");
    steward.shutdown().await.expect("shutdown");
}

/// A real `steward up` on a temp config with a token; SIGTERM and reaped when dropped.
struct Daemon {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

async fn daemon() -> Daemon {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("services.yml"),
        "version: 1\nsettings:\n  token_env: MCP_TEST_TOKEN\nservices:\n  md-web:\n    command: sleep 300\n    autostart: false\n    stop_timeout: 5s\n",
    )
    .expect("services.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["up", "--config"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("MCP_TEST_TOKEN", TOKEN)
        .env_remove("STEWARD_URL")
        .env_remove("STEWARD_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("steward up");
    let daemon = Daemon {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let live = format!("{}/health/live", daemon.url);
    crate::support::wait_for("the daemon to answer", crate::support::SOON, || {
        let live = live.clone();
        async move {
            let answer = reqwest::get(&live).await.ok()?;
            answer.status().is_success().then_some(())
        }
    })
    .await;
    daemon
}

/// The setup docs/AGENTS.md describes, end to end: `steward up` with a token, then an MCP
/// client over HTTP (`/mcp` with the bearer header) and over stdio (`steward mcp` with
/// `STEWARD_URL` and `STEWARD_TOKEN`) lists and controls its services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_clients_configured_as_the_docs_say_control_a_real_daemon() {
    let daemon = daemon().await;
    let raw = reqwest::Client::new();
    let mcp = format!("{}/mcp", daemon.url);
    let post = |host: Option<&str>, token: Option<&str>| {
        let mut request = raw
            .post(&mcp)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize());
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.expect("answer").status().as_u16();
    assert_eq!(status(post(None, None).await), 401);
    assert_eq!(
        status(post(Some("rebound.example"), Some(TOKEN)).await),
        403
    );
    assert_eq!(status(post(None, Some(TOKEN)).await), 200);

    let mut config = StreamableHttpClientTransportConfig::with_uri(mcp.clone());
    config.auth_header = Some(TOKEN.to_string());
    let http =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("initialize over HTTP");
    exercise(&http, "md-web").await;
    let stopped = call(&http, "service_stop", json!({"id": "md-web"})).await;
    assert_eq!(
        stopped.structured_content.expect("structured")["status"],
        "stopped"
    );
    http.cancel().await.expect("close");

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    command
        .arg("mcp")
        .env("STEWARD_URL", &daemon.url)
        .env("STEWARD_TOKEN", TOKEN);
    let stdio =
        ().serve(TokioChildProcess::new(command).expect("spawn steward mcp"))
            .await
            .expect("initialize over stdio");
    exercise(&stdio, "md-web").await;
    stdio.cancel().await.expect("close");
}
