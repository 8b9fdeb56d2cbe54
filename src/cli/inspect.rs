//! `steward explain ID` and `steward reload [--dry-run]`: questions whose answers the
//! daemon composes (recent events with causes, probe history, a reload plan). The client
//! lays out an explanation as summary, then evidence (state, last exit, probes, events in
//! the `steward events` format, log lines); other answers print as an outline; `--json`
//! prints the daemon's JSON as is.

use std::process::ExitCode;

use serde::Deserialize;
use serde_json::Value;
use steward::ServiceState;
use steward::events::Event;
use steward::logs::LogLine;
use steward::state::ExitInfo;

use crate::cli::client::{Client, ClientError};
use crate::cli::control::describe;
use crate::cli::logs::format_event;
use crate::cli::style::Paint;
use crate::cli::{ExplainArgs, ReloadArgs, out, out_json, outline};

/// The parts of the explain answer the client lays out itself; anything else (or an
/// answer of another shape) is printed as an outline.
#[derive(Debug, Deserialize)]
struct Explanation {
    summary: String,
    state: Option<ServiceState>,
    last_exit: Option<ExitInfo>,
    #[serde(default)]
    probes: Value,
    #[serde(default)]
    events: Vec<Event>,
    #[serde(default)]
    logs: Vec<LogLine>,
}

/// Runs `steward explain`.
pub async fn explain(client: &Client, args: &ExplainArgs, json: bool) -> anyhow::Result<ExitCode> {
    let answer: Value = client
        .get(&["api", "v1", "services", args.id.as_str(), "explain"], &[])
        .await
        .map_err(missing_route("explain"))?;
    if json {
        return print(&answer, true);
    }
    match Explanation::deserialize(&answer) {
        Ok(explanation) => {
            out(&render_explanation(&explanation, Paint::stdout()))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => print(&answer, false),
    }
}

/// The summary first, then the evidence: state, last exit, probes, events, log lines.
fn render_explanation(e: &Explanation, paint: Paint) -> String {
    let mut text = format!("{}\n", e.summary);
    if let Some(state) = &e.state {
        text.push_str(&format!("\nstate: {}\n", describe(state, paint)));
        if let Some(reason) = &state.reason {
            text.push_str(&format!("reason: {reason}\n"));
        }
        if let Some(why) = &state.limits_not_enforced {
            text.push_str(&format!("limits not enforced: {why}\n"));
        }
        if let Some(said) = &state.notify_status {
            // What the service itself last said (sd_notify `STATUS=`).
            text.push_str(&format!(
                "service status: {}\n",
                said.replace(['\n', '\r'], " ")
            ));
        }
    }
    if let Some(exit) = &e.last_exit {
        let at = exit.at.format("%Y-%m-%dT%H:%M:%S%.3fZ");
        text.push_str(&format!("last exit: {} at {at}\n", exit.describe()));
    }
    if let Value::Object(probes) = &e.probes {
        let probes: serde_json::Map<String, Value> = probes
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !probes.is_empty() {
            text.push_str("probes:\n");
            for line in outline::render(&Value::Object(probes)).lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
    }
    if !e.events.is_empty() {
        text.push_str("\nrecent events:\n");
        for event in &e.events {
            text.push_str(&format!("  {}\n", format_event(event, paint)));
        }
    }
    if !e.logs.is_empty() {
        text.push_str("\nlast log lines:\n");
        for line in &e.logs {
            text.push_str(&format!("  {}\n", line.line));
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_explanation_reads_summary_first_then_the_evidence() {
        let answer = json!({
            "service": "worker",
            "summary": "worker exit code 1 and is waiting to be restarted: exit code 1 (automatic restarts so far: 2).",
            "state": {
                "id": "worker", "name": "worker", "status": "backoff", "health": "unknown",
                "ready": false, "pid": null,
                "last_exit": {"code": 1, "signal": null, "at": "2026-11-21T22:44:51.310Z"},
                "restart_count": 2, "started_at": null, "changed_at": "2026-11-21T22:44:51.311Z",
                "reason": "exit code 1", "tags": [], "cpu_percent": null, "rss_bytes": null
            },
            "last_exit": {"code": 1, "signal": null, "at": "2026-11-21T22:44:51.310Z"},
            "probes": {"startup": null, "readiness": null, "liveness": null},
            "events": [
                {"seq": 20, "ts": "2026-11-21T22:44:51.311Z", "service": "worker", "kind": "backoff",
                 "delay_ms": 1000, "cause": "exit code 1"}
            ],
            "logs": [
                {"seq": 7, "ts": "2026-11-21T22:44:51.300Z", "stream": "stderr",
                 "line": "boom", "truncated": false}
            ]
        });
        let explanation = Explanation::deserialize(&answer).unwrap_or_else(|e| panic!("{e}"));
        let expected = "\
worker exit code 1 and is waiting to be restarted: exit code 1 (automatic restarts so far: 2).

state: backoff
reason: exit code 1
last exit: exit code 1 at 2026-11-21T22:44:51.310Z

recent events:
  2026-11-21T22:44:51.311Z  20  worker  backoff  delay=1s — exit code 1

last log lines:
  boom
";
        assert_eq!(render_explanation(&explanation, Paint::plain()), expected);
    }

    #[test]
    fn an_explanation_shows_what_the_service_said_about_itself() {
        let answer = json!({
            "service": "app",
            "summary": "app is running.",
            "state": {
                "id": "app", "name": "app", "status": "running", "health": "unknown",
                "ready": false, "pid": 42, "last_exit": null,
                "restart_count": 0, "started_at": null, "changed_at": "2026-11-21T22:44:51.311Z",
                "reason": null, "tags": [], "cpu_percent": null, "rss_bytes": null,
                "notify_status": "loading\nmodels"
            },
            "last_exit": null,
            "probes": {"startup": null, "readiness": {"notify": true}, "liveness": null},
            "events": [],
            "logs": []
        });
        let explanation = Explanation::deserialize(&answer).unwrap_or_else(|e| panic!("{e}"));
        let text = render_explanation(&explanation, Paint::plain());
        assert!(
            text.contains("\nservice status: loading models\n"),
            "{text}"
        );
    }
}
