//! `steward explain ID` and `steward reload [--dry-run]`: questions whose answers the
//! daemon composes (recent events with causes, probe history, a reload plan). The client
//! prints them as an outline, or as the daemon's JSON with `--json`.

use std::process::ExitCode;

use serde_json::Value;

use crate::cli::client::{Client, ClientError};
use crate::cli::{ExplainArgs, ReloadArgs, out, out_json, outline};

/// Runs `steward explain`.
pub async fn explain(client: &Client, args: &ExplainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let answer: Value = client
        .get(&["api", "v1", "services", args.id.as_str(), "explain"], &[])
        .await
        .map_err(missing_route("explain"))?;
    print(&answer, json)
}

/// Runs `steward reload`.
pub async fn reload(client: &Client, args: &ReloadArgs, json: bool) -> anyhow::Result<ExitCode> {
    let query = if args.dry_run {
        vec![("dry_run", "true".to_string())]
    } else {
        Vec::new()
    };
    let answer: Value = client
        .post(&["api", "v1", "reload"], &query, None)
        .await
        .map_err(missing_route("reload"))?;
    print(&answer, json)
}

fn print(answer: &Value, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        out_json(answer)?;
    } else {
        out(&outline::render(answer))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A 404 for the route itself (not for a service) means the daemon predates the route:
/// say so rather than print an HTTP status.
fn missing_route(command: &'static str) -> impl Fn(ClientError) -> anyhow::Error {
    move |e| match e {
        ClientError::Unexpected {
            status: 404,
            method,
            path,
            base,
            ..
        } => anyhow::anyhow!(
            "the daemon at {base} does not support `steward {command}` ({method} {path} answered 404 without an API error; upgrade the daemon)"
        ),
        ClientError::Api {
            status: 404,
            message,
            ..
        } if message.starts_with("no route") => {
            anyhow::anyhow!("the daemon does not support `steward {command}` yet ({message})")
        }
        other => other.into(),
    }
}
