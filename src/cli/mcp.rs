//! `steward mcp`: the agent tools over the Model Context Protocol on stdio, for MCP
//! clients that start a command (Claude Desktop, Claude Code, editors).
//!
//! It is a client of the running daemon (`--url` / `STEWARD_URL`, `--token` /
//! `STEWARD_TOKEN`): `tools/list` reads `GET /api/v1/tools` and `tools/call` posts to
//! `POST /api/v1/tools/{name}`, so the tools, their schemas and the masking of secrets are
//! the daemon's own. The MCP server itself is the library's [`api::mcp::McpServer`], the
//! same one `/mcp` serves. stdout carries the protocol only; logs go to stderr.
//!
//! With `--read-only`, only the tools annotated read-only are offered and callable.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, Url};
use rmcp::ServiceExt;
use serde_json::Value;
use steward::api::{self, mcp::BoxFuture, mcp::ToolBackend};
use steward::tools::ToolDefinition;

use crate::cli::McpArgs;

/// How long one tool call may take (a stop waits for the service's `stop_timeout`).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The daemon's tools, reached over its HTTP API.
struct RemoteTools {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
    read_only: bool,
}

impl RemoteTools {
    fn request(&self, method: Method, path: &[&str]) -> reqwest::RequestBuilder {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        let builder = self.http.request(method, url).timeout(CALL_TIMEOUT);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Value {
        error(
            "unavailable",
            &format!("the steward daemon at {} did not answer: {e}", self.base),
        )
    }

    async fn list(&self) -> Result<Vec<ToolDefinition>, String> {
        #[derive(serde::Deserialize)]
        struct List {
            tools: Vec<ToolDefinition>,
        }
        let response = self
            .request(Method::GET, &["api", "v1", "tools"])
            .send()
            .await
            .map_err(|e| format!("the steward daemon at {} did not answer: {e}", self.base))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("GET /api/v1/tools: HTTP {status}: {text}"));
        }
        let list: List = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        Ok(list
            .tools
            .into_iter()
            .filter(|t| !self.read_only || t.annotations.read_only)
            .collect())
    }

    async fn run(&self, name: String, input: Value) -> Result<Value, Value> {
        if self.read_only {
            let tools = self.list().await.map_err(|m| error("unavailable", &m))?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(error(
                    "unknown_tool",
                    &format!("no read-only tool named `{name}` (steward mcp --read-only)"),
                ));
            }
        }
        let response = self
            .request(Method::POST, &["api", "v1", "tools", &name])
            .json(&input)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
            error(
                "internal",
                &format!("HTTP {status} with a body that is not JSON: {text}"),
            )
        });
        if status.is_success() {
            Ok(body)
        } else if body.get("error").is_some() {
            Err(body)
        } else {
            Err(error("internal", &format!("HTTP {status}: {text}")))
        }
    }
}

fn error(code: &str, message: &str) -> Value {
    serde_json::json!({"error": {"code": code, "message": message}})
}

impl ToolBackend for RemoteTools {
    fn definitions(&self) -> BoxFuture<'_, Result<Vec<ToolDefinition>, String>> {
        Box::pin(self.list())
    }

    fn call(&self, name: String, input: Value) -> BoxFuture<'_, Result<Value, Value>> {
        Box::pin(self.run(name, input))
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn run(url: &str, token: Option<String>, args: &McpArgs) -> anyhow::Result<()> {
    let base = Url::parse(url.trim_end_matches('/'))
        .with_context(|| format!("invalid --url `{url}` (expected http://HOST:PORT)"))?;
    let backend = RemoteTools {
        base,
        token: token.filter(|t| !t.is_empty()),
        http: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("setting up the HTTP client")?,
        read_only: args.read_only,
    };
    let server = api::mcp::McpServer::new(Arc::new(backend));
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the MCP session on stdio")?;
    running
        .waiting()
        .await
        .context("the MCP session ended abnormally")?;
    Ok(())
}
