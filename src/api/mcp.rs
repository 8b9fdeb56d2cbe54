//! The agent tools over the Model Context Protocol, with the official Rust SDK (rmcp).
//!
//! [`McpServer`] is one MCP server over any [`ToolBackend`]: inside the daemon the backend
//! is the runtime's [`Tools`] (served at `POST /mcp`, Streamable HTTP, stateless, JSON
//! responses); in `steward mcp` it is the daemon's HTTP API (stdio). Either way
//! `tools/list` gives every tool with its input schema and annotations, and `tools/call`
//! answers a structured result, or a tool error (`isError: true`) whose structured content
//! is the API's `{"error": {code, message, details}}`.
//!
//! The event ring and each service's log are also MCP resources, read through the same
//! tools (so masked the same way): `steward://events` (the `service_events` result) and
//! `steward://services/{id}/logs` (the `service_logs` result), both JSON.
//!
//! `/mcp` takes the API's bearer token (see `auth`) and, against DNS rebinding, checks
//! `Host` and `Origin` ([`HostGuard`]): only loopback names and the listen address pass;
//! anything else is 403. A web page on a rebinding domain never gets to call a tool.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler};
use serde_json::Value;

use super::AppState;
use crate::tools::{ToolDefinition, Tools};

/// A boxed future, for [`ToolBackend`]'s methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where an [`McpServer`] gets its tools and runs them.
pub trait ToolBackend: Send + Sync + 'static {
    /// The tools offered.
    fn definitions(&self) -> BoxFuture<'_, Result<Vec<ToolDefinition>, String>>;
    /// Runs one: `Ok` with the result, or `Err` with `{"error": {code, message, …}}`.
    fn call(&self, name: String, input: Value) -> BoxFuture<'_, Result<Value, Value>>;
}

impl ToolBackend for Tools {
    fn definitions(&self) -> BoxFuture<'_, Result<Vec<ToolDefinition>, String>> {
        Box::pin(async move { Ok(Tools::definitions(self)) })
    }

    fn call(&self, name: String, input: Value) -> BoxFuture<'_, Result<Value, Value>> {
        Box::pin(async move {
            Tools::call(self, &name, input)
                .await
                .map_err(|e| e.to_json())
        })
    }
}

/// An MCP server offering the tools of a [`ToolBackend`].
#[derive(Clone)]
pub struct McpServer {
    backend: Arc<dyn ToolBackend>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpServer")
    }
}

impl McpServer {
    /// A server over `backend`.
    pub fn new(backend: Arc<dyn ToolBackend>) -> Self {
        McpServer { backend }
    }
}

/// What the server tells a client at `initialize`.
const INSTRUCTIONS: &str = "steward supervises long-lived processes (services). Start with service_list; service_explain says why a service is failed or not ready; logs_search finds lines in the logs. Control tools (start, stop, restart, kill, pause, resume) act on the real processes. reload is a dry run unless apply is true.";

/// The MCP form of a tool definition.
pub fn mcp_tool(def: &ToolDefinition) -> Tool {
    let schema = match &def.input_schema {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let mut tool = Tool::new(def.name.clone(), def.description.clone(), Arc::new(schema));
    tool.title = Some(def.title.clone());
    tool.annotations = Some(
        ToolAnnotations::with_title(def.title.clone())
            .read_only(def.annotations.read_only)
            .destructive(def.annotations.destructive)
            .idempotent(def.annotations.idempotent)
            .open_world(false),
    );
    tool
}

/// The event ring as a resource.
pub const EVENTS_URI: &str = "steward://events";
/// A service's log as a resource: `steward://services/{id}/logs`.
pub const LOGS_URI_TEMPLATE: &str = "steward://services/{id}/logs";

/// The service id of a log resource's URI.
fn logs_uri_id(uri: &str) -> Option<&str> {
    uri.strip_prefix("steward://services/")?
        .strip_suffix("/logs")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

impl McpServer {
    /// The tool result behind a resource URI.
    async fn resource(&self, uri: &str) -> Result<Value, ErrorData> {
        let (tool, input) = if uri == EVENTS_URI {
            ("service_events", serde_json::json!({}))
        } else if let Some(id) = logs_uri_id(uri) {
            ("service_logs", serde_json::json!({ "id": id }))
        } else {
            return Err(ErrorData::resource_not_found(
                format!("no resource `{uri}`: use {EVENTS_URI} or {LOGS_URI_TEMPLATE}"),
                None,
            ));
        };
        self.backend
            .call(tool.to_string(), input)
            .await
            .map_err(|error| {
                let message = error["error"]["message"]
                    .as_str()
                    .unwrap_or("the resource could not be read")
                    .to_string();
                ErrorData::resource_not_found(message, Some(error))
            })
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("steward", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let definitions = self
            .backend
            .definitions()
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(ListToolsResult::with_all_items(
            definitions.iter().map(mcp_tool).collect(),
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut resources = vec![
            Resource::new(EVENTS_URI, "events")
                .with_title("Recent events")
                .with_description("The runtime's most recent events, with causes (JSON)")
                .with_mime_type("application/json"),
        ];
        if let Ok(list) = self
            .backend
            .call("service_list".to_string(), serde_json::json!({}))
            .await
        {
            for id in list["services"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str())
            {
                resources.push(
                    Resource::new(
                        format!("steward://services/{id}/logs"),
                        format!("{id} logs"),
                    )
                    .with_description(format!("The last log lines of {id} (JSON)"))
                    .with_mime_type("application/json"),
                );
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(LOGS_URI_TEMPLATE, "service logs")
                .with_description("The last log lines of a service (JSON)")
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let value = self.resource(&request.uri).await?;
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let input = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.backend.call(request.name.to_string(), input).await {
            Ok(value) => CallToolResult::structured(value),
            Err(error) => CallToolResult::structured_error(error),
        };
        Ok(result.into())
    }
}

/// The Streamable HTTP transport of `/mcp` over `tools`: stateless (no session to
/// keep), JSON responses. `Host`/`Origin` are checked by [`HostGuard`] before it.
pub type McpHttp = StreamableHttpService<McpServer, NeverSessionManager>;

/// `/mcp`'s transport, as the API's state holds it.
#[derive(Clone)]
pub struct McpTransport(McpHttp);

impl std::fmt::Debug for McpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("McpTransport")
    }
}

/// The `/mcp` transport over `tools`.
pub fn http_service(tools: Tools) -> McpTransport {
    let backend: Arc<dyn ToolBackend> = Arc::new(tools);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // HostGuard decides, with the listen address rmcp does not know.
        .disable_allowed_hosts()
        .disable_allowed_origins();
    McpTransport(StreamableHttpService::new(
        move || Ok(McpServer::new(backend.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    ))
}

/// Which `Host` and `Origin` values may reach `/mcp`: loopback names (`localhost`,
/// `127.0.0.0/8`, `::1`) and the address the daemon listens on (any address literal when
/// it listens on all interfaces, which requires a token).
#[derive(Debug, Clone, Default)]
pub struct HostGuard {
    listen: Option<SocketAddr>,
}

impl HostGuard {
    /// A guard for a daemon listening on `listen` (None: loopback only).
    pub fn new(listen: Option<SocketAddr>) -> Self {
        HostGuard { listen }
    }

    /// True when `host` (a `Host` value: `name[:port]`, `[v6][:port]`) may reach `/mcp`.
    pub fn admits_host(&self, host: &str) -> bool {
        let name = host_name(host);
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let Ok(ip) = name.parse::<IpAddr>() else {
            return false;
        };
        match self.listen {
            _ if ip.is_loopback() => true,
            Some(listen) if listen.ip().is_unspecified() => true,
            Some(listen) => listen.ip() == ip,
            None => false,
        }
    }

    /// True when `origin` (`scheme://host[:port]`) may reach `/mcp`.
    pub fn admits_origin(&self, origin: &str) -> bool {
        match reqwest::Url::parse(origin) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {
                url.host_str().is_some_and(|host| self.admits_host(host))
            }
            _ => false,
        }
    }

    /// Why a request with these headers is refused, if it is.
    fn refusal(&self, host: Option<&str>, origin: Option<&str>) -> Option<String> {
        match host {
            None => return Some("a Host header is required on /mcp".into()),
            Some(host) if !self.admits_host(host) => {
                return Some(format!(
                    "Host `{host}` is neither a loopback name nor the address steward listens on (DNS-rebinding protection)"
                ));
            }
            Some(_) => {}
        }
        match origin {
            Some(origin) if !self.admits_origin(origin) => Some(format!(
                "Origin `{origin}` is not a loopback origin nor the address steward listens on (DNS-rebinding protection)"
            )),
            _ => None,
        }
    }
}

/// The host part of a `Host` value (without port and brackets).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `POST /mcp`: `Host` and `Origin` checked (403), then the MCP transport. The token was
/// checked before, with the rest of the API (401).
pub(crate) async fn handle(State(app): State<AppState>, request: Request) -> Response {
    let refusal = {
        let text = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let host = text(header::HOST).or_else(|| request.uri().authority().map(|a| a.to_string()));
        let origin = text(header::ORIGIN);
        app.mcp_hosts
            .refusal(host.as_deref(), origin.as_deref())
            .map(|message| (message, host, origin))
    };
    if let Some((message, host, origin)) = refusal {
        tracing::warn!(host, origin, "refused an MCP request");
        let body = serde_json::json!({"error": {"code": "forbidden", "message": message}});
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    app.mcp.0.handle(request).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_resource_uris_name_one_service() {
        assert_eq!(logs_uri_id("steward://services/web/logs"), Some("web"));
        assert_eq!(logs_uri_id("steward://services//logs"), None);
        assert_eq!(logs_uri_id("steward://services/a/b/logs"), None);
        assert_eq!(logs_uri_id("steward://events"), None);
    }

    #[test]
    fn loopback_and_the_listen_address_pass_other_hosts_do_not() {
        let guard = HostGuard::new(Some("10.1.2.3:7070".parse().expect("addr")));
        for host in [
            "localhost:7070",
            "LOCALHOST",
            "127.0.0.1:7070",
            "127.9.9.9",
            "[::1]:7070",
            "10.1.2.3:7070",
        ] {
            assert!(guard.admits_host(host), "{host}");
        }
        for host in [
            "evil.example:7070",
            "10.1.2.4:7070",
            "localhost.evil.example",
            "",
        ] {
            assert!(!guard.admits_host(host), "{host}");
        }
        assert!(guard.admits_origin("http://localhost:7070"));
        assert!(!guard.admits_origin("http://evil.example"));
        assert!(!guard.admits_origin("null"));
        let loopback_only = HostGuard::new(None);
        assert!(!loopback_only.admits_host("10.1.2.3:7070"));
        assert!(loopback_only.refusal(None, None).is_some());
        assert!(loopback_only.refusal(Some("127.0.0.1:1"), None).is_none());
    }
}
