//! `steward logs ID [-n N] [-f]` and `steward events [-f] [--since SEQ]`: read a service's
//! log ring and the runtime's event ring, and with `-f` follow them over Server-Sent
//! Events (DESIGN §3, §10 "Wire formats").
//!
//! Human output is the log text as the service wrote it, one event per line; `--json`
//! prints one JSON object per line (the API's `LogLine` / `Event`), so `jq` can read a
//! followed stream as it comes.

use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;
use steward::events::{Event, EventKind};
use steward::logs::{LogLine, LogRecord};

use crate::cli::client::Client;
use crate::cli::style::{BAD, BUSY, DIM, GOOD, Paint};
use crate::cli::{EventsArgs, LogsArgs, out};

/// `GET /api/v1/services/{id}/logs`.
#[derive(Debug, Deserialize)]
struct LogsBody {
    lines: Vec<LogLine>,
}

/// A gap record on an event stream.
#[derive(Debug, Deserialize)]
struct Gap {
    gap: u64,
}

/// The part of `GET /api/v1/status` that `events` needs.
#[derive(Debug, Deserialize)]
struct StatusBody {
    last_event_seq: Option<u64>,
}

/// Runs `steward logs`.
pub async fn logs(client: &Client, args: &LogsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let path = ["api", "v1", "services", args.id.as_str(), "logs"];
    let tail = ("tail", args.lines.to_string());
    let paint = Paint::stdout();
    if !args.follow {
        let body: LogsBody = client.get(&path, &[tail]).await?;
        for line in &body.lines {
            out(&format_line(line, args.timestamps, json, paint)?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut stream = client
        .stream(&path, &[tail, ("follow", "true".to_string())])
        .await?;
    while let Some(data) = stream.next().await? {
        let record: LogRecord = serde_json::from_str(&data)
            .with_context(|| format!("unexpected log record from the daemon: {data}"))?;
        match record {
            LogRecord::Line(line) => out(&format_line(&line, args.timestamps, json, paint)?)?,
            LogRecord::Gap { gap } if json => out(&format!("{{\"gap\":{gap}}}\n"))?,
            LogRecord::Gap { gap } => {
                eprintln!("steward: {gap} line(s) lost (gone from the ring, or read too slowly)")
            }
        }
    }
    eprintln!("steward: the daemon closed the log stream");
    Ok(ExitCode::SUCCESS)
}

fn format_line(
    line: &LogLine,
    timestamps: bool,
    json: bool,
    paint: Paint,
) -> anyhow::Result<String> {
    if json {
        return Ok(format!("{}\n", serde_json::to_string(line)?));
    }
    Ok(if timestamps {
        let ts = line.ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        format!("{} {}\n", paint.paint(DIM, &ts), line.line)
    } else {
        format!("{}\n", line.line)
    })
}

/// Runs `steward events`.
///
/// Without `-f` it prints the ring and stops: it asks the daemon for the newest sequence
/// number first and reads the replay up to it, so it never waits on live events.
pub async fn events(client: &Client, args: &EventsArgs, json: bool) -> anyhow::Result<ExitCode> {
    let since = args.since.unwrap_or(0);
    let until = if args.follow {
        None
    } else {
        let status: StatusBody = client.get(&["api", "v1", "status"], &[]).await?;
        match status.last_event_seq {
            Some(last) if last <= since => return Ok(ExitCode::SUCCESS),
            Some(last) => Some(last),
            None => anyhow::bail!(
                "the daemon's /api/v1/status has no `last_event_seq`; use `steward events -f`"
            ),
        }
    };
    let paint = Paint::stdout();
    let mut stream = client
        .stream(&["api", "v1", "events"], &[("since", since.to_string())])
        .await?;
    while let Some(data) = stream.next().await? {
        let Ok(event) = serde_json::from_str::<Event>(&data) else {
            // Not an event: a gap record (`{"gap": N}`: events lost to a slow reader, or
            // already gone from the ring).
            if json {
                out(&format!("{data}\n"))?;
            } else {
                match serde_json::from_str::<Gap>(&data) {
                    Ok(Gap { gap }) => eprintln!("steward: {gap} event(s) missed"),
                    Err(_) => eprintln!("steward: unexpected record from the daemon: {data}"),
                }
            }
            continue;
        };
        if args.service.as_ref().is_none_or(|s| *s == event.service) {
            let text = if json {
                serde_json::to_string(&event)?
            } else {
                format_event(&event, paint)
            };
            out(&format!("{text}\n"))?;
        }
        if until.is_some_and(|last| event.seq >= last) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if args.follow {
        eprintln!("steward: the daemon closed the event stream");
    }
    Ok(ExitCode::SUCCESS)
}

/// `2026-11-21T22:43:08.123Z  42  web  started  pid=4242` (then ` — cause` when there is one).
pub fn format_event(event: &Event, paint: Paint) -> String {
    let style = match event.kind {
        EventKind::Started | EventKind::Ready | EventKind::Resumed => GOOD,
        EventKind::Failed | EventKind::LogDropped | EventKind::LogFileFailed => BAD,
        EventKind::Exited if event.exit_code != Some(0) => BAD,
        EventKind::Backoff | EventKind::Restarting | EventKind::Paused => BUSY,
        EventKind::HealthChanged => match event.health {
            Some(steward::Health::Healthy) => GOOD,
            Some(steward::Health::Unhealthy) => BAD,
            _ => DIM,
        },
        _ => DIM,
    };
    let mut text = format!(
        "{}  {}  {}  {}",
        paint.paint(DIM, &event.ts.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        event.seq,
        event.service,
        paint.paint(style, event.kind.as_str())
    );
    let mut push = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            text.push_str(&format!("  {key}={value}"));
        }
    };
    push("pid", event.pid.map(|p| p.to_string()));
    push("exit_code", event.exit_code.map(|c| c.to_string()));
    push("signal", event.signal.clone());
    push("health", event.health.map(|h| h.to_string()));
    push(
        "delay",
        event
            .delay_ms
            .map(|ms| humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()),
    );
    push("dropped", event.dropped.map(|d| d.to_string()));
    if let Some(cause) = &event.cause {
        text.push_str(" — ");
        text.push_str(cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_as_one_line_with_its_fields_and_cause() {
        let mut event = Event::new("web", EventKind::Backoff);
        event.seq = 42;
        event.ts = chrono::DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap_or_default();
        event.delay_ms = Some(1500);
        event.cause = Some("exit code 3".to_string());
        assert_eq!(
            format_event(&event, Paint::plain()),
            "2027-01-15T08:00:00.123Z  42  web  backoff  delay=1s 500ms — exit code 3"
        );
    }
}
