//! The families read from a runtime's tables at render time: each service's status,
//! readiness, restarts, last exit, uptime, CPU, RSS and log lines, the counts by status,
//! and the runtime's state, uptime and events.
//!
//! Written straight into one pre-sized `String` in Prometheus text format (version
//! 0.0.4), reading each status row in place: at 10,000 services the page has ~180,000
//! samples, and going through a `metrics` recorder (a hashed key per sample, then a sort)
//! took half a second. Being read fresh at each render, a removed service disappears from
//! the page at once and two runtimes in one process never mix their gauges.

use std::fmt::Write as _;

use super::{
    EVENTS_TOTAL, LOG_LINES_TOTAL, RUNTIME_STATE, RUNTIME_UPTIME_SECONDS, SERVICE_CPU_PERCENT,
    SERVICE_LAST_EXIT_CODE, SERVICE_READY, SERVICE_RESTARTS, SERVICE_RSS_BYTES, SERVICE_STATUS,
    SERVICE_UP, SERVICE_UPTIME_SECONDS, SERVICES,
};
use crate::runtime::{RuntimeState, Tables};
use crate::state::ServiceStatus;

/// Every status, for the one-hot `steward_service_status` and `steward_services` families.
const STATUSES: [ServiceStatus; 10] = [
    ServiceStatus::Pending,
    ServiceStatus::Installing,
    ServiceStatus::Starting,
    ServiceStatus::Running,
    ServiceStatus::Paused,
    ServiceStatus::Stopping,
    ServiceStatus::Stopped,
    ServiceStatus::Exited,
    ServiceStatus::Backoff,
    ServiceStatus::Failed,
];

const RUNTIME_STATES: [(RuntimeState, &str); 3] = [
    (RuntimeState::Running, "running"),
    (RuntimeState::Paused, "paused"),
    (RuntimeState::Stopping, "stopping"),
];

/// How old a CPU/RSS sample may be on the page (as in the state's list).
const USAGE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes of page per service, to size the buffer once (measured: ~900).
const BYTES_PER_SERVICE: usize = 1024;

/// What the page shows of one service, read from its row.
struct Row {
    id: String,
    status: ServiceStatus,
    ready: bool,
    restarts: u32,
    exit_code: Option<i32>,
    uptime_s: f64,
    usage: Option<(f64, u64)>,
    log_lines: Option<u64>,
}

fn bit(on: bool) -> u8 {
    u8::from(on)
}

/// The families read from `tables` now, in Prometheus text format.
pub fn render_tables(tables: &Tables) -> String {
    let now = chrono::Utc::now();
    let mut rows: Vec<Row> = Vec::new();
    tables.each_state(|state| {
        let uptime_s = match (state.status, state.started_at) {
            (ServiceStatus::Running | ServiceStatus::Paused, Some(started)) => {
                (now - started).num_milliseconds().max(0) as f64 / 1000.0
            }
            _ => 0.0,
        };
        rows.push(Row {
            id: state.id.clone(),
            status: state.status,
            ready: state.ready,
            restarts: state.restart_count,
            exit_code: state.last_exit.as_ref().and_then(|e| e.code),
            uptime_s,
            usage: None,
            log_lines: None,
        });
    });
    // Outside the table's locks: /proc reads and the rings.
    for row in &mut rows {
        if let Some(pid) = tables.read_state(&row.id, |s| s.pid).flatten() {
            row.usage = tables.usage.sample_within(pid, USAGE_MAX_AGE);
        }
        row.log_lines = tables.ring(&row.id).map(|ring| ring.last_seq());
    }
    rows.sort_unstable_by(|a, b| a.id.cmp(&b.id));

    let mut page = String::with_capacity(4096 + rows.len() * BYTES_PER_SERVICE);
    let mut counts = [0u64; STATUSES.len()];
    for row in &rows {
        if let Some(i) = STATUSES.iter().position(|s| *s == row.status) {
            counts[i] += 1;
        }
    }
    family(
        &mut page,
        SERVICE_UP,
        "gauge",
        "1 when the service's status is running",
    );
    for row in &rows {
        sample(
            &mut page,
            SERVICE_UP,
            &row.id,
            None,
            bit(row.status == ServiceStatus::Running),
        );
    }
    family(
        &mut page,
        SERVICE_STATUS,
        "gauge",
        "1 for the service's current status, 0 for the others",
    );
    for row in &rows {
        for status in STATUSES {
            sample(
                &mut page,
                SERVICE_STATUS,
                &row.id,
                Some(("status", status.as_str())),
                bit(row.status == status),
            );
        }
    }
    family(
        &mut page,
        SERVICE_READY,
        "gauge",
        "1 when the service is running and its readiness probe (if any) passes",
    );
    for row in &rows {
        sample(&mut page, SERVICE_READY, &row.id, None, bit(row.ready));
    }
    family(
        &mut page,
        SERVICE_RESTARTS,
        "gauge",
        "Automatic restarts (crash, liveness) since the service was defined",
    );
    for row in &rows {
        sample(&mut page, SERVICE_RESTARTS, &row.id, None, row.restarts);
    }
    if rows.iter().any(|r| r.exit_code.is_some()) {
        family(
            &mut page,
            SERVICE_LAST_EXIT_CODE,
            "gauge",
            "Exit code of the service's last process that exited by itself",
        );
        for row in &rows {
            if let Some(code) = row.exit_code {
                sample(&mut page, SERVICE_LAST_EXIT_CODE, &row.id, None, code);
            }
        }
    }
    family(
        &mut page,
        SERVICE_UPTIME_SECONDS,
        "gauge",
        "Time since the current process started (0 when not running)",
    );
    for row in &rows {
        sample(
            &mut page,
            SERVICE_UPTIME_SECONDS,
            &row.id,
            None,
            row.uptime_s,
        );
    }
    if rows.iter().any(|r| r.usage.is_some()) {
        family(
            &mut page,
            SERVICE_CPU_PERCENT,
            "gauge",
            "CPU use of the main process, in percent of one core",
        );
        for row in &rows {
            if let Some((cpu, _)) = row.usage {
                sample(&mut page, SERVICE_CPU_PERCENT, &row.id, None, cpu);
            }
        }
        family(
            &mut page,
            SERVICE_RSS_BYTES,
            "gauge",
            "Resident memory of the main process",
        );
        for row in &rows {
            if let Some((_, rss)) = row.usage {
                sample(&mut page, SERVICE_RSS_BYTES, &row.id, None, rss);
            }
        }
    }
    family(
        &mut page,
        LOG_LINES_TOTAL,
        "counter",
        "Log lines the service has written since it was defined",
    );
    for row in &rows {
        if let Some(lines) = row.log_lines {
            sample(&mut page, LOG_LINES_TOTAL, &row.id, None, lines);
        }
    }
    family(&mut page, SERVICES, "gauge", "Services by status");
    for (status, count) in STATUSES.iter().zip(counts) {
        let _ = writeln!(page, "{SERVICES}{{status=\"{}\"}} {count}", status.as_str());
    }
    family(
        &mut page,
        RUNTIME_STATE,
        "gauge",
        "1 for the runtime's current state (running, paused, stopping)",
    );
    let runtime = tables.runtime_state();
    for (state, name) in RUNTIME_STATES {
        let _ = writeln!(
            page,
            "{RUNTIME_STATE}{{state=\"{name}\"}} {}",
            bit(runtime == state)
        );
    }
    family(
        &mut page,
        RUNTIME_UPTIME_SECONDS,
        "gauge",
        "Time since the runtime started",
    );
    let uptime = (now - tables.started_at).num_milliseconds().max(0) as f64 / 1000.0;
    let _ = writeln!(page, "{RUNTIME_UPTIME_SECONDS} {uptime}");
    family(
        &mut page,
        EVENTS_TOTAL,
        "counter",
        "Events emitted by the runtime",
    );
    let _ = writeln!(page, "{EVENTS_TOTAL} {}", tables.events.last_seq());
    page
}

/// A family's `# HELP` and `# TYPE` lines (a blank line before, as Prometheus writes it).
fn family(page: &mut String, name: &str, kind: &str, help: &str) {
    if !page.is_empty() {
        page.push('\n');
    }
    let _ = writeln!(page, "# HELP {name} {help}");
    let _ = writeln!(page, "# TYPE {name} {kind}");
}

/// One sample of a per-service family: `name{service="id"[,key="value"]} value`.
fn sample(
    page: &mut String,
    name: &str,
    service: &str,
    extra: Option<(&str, &str)>,
    value: impl std::fmt::Display,
) {
    page.push_str(name);
    page.push_str("{service=\"");
    escape_into(page, service);
    page.push('"');
    if let Some((key, label)) = extra {
        page.push(',');
        page.push_str(key);
        page.push_str("=\"");
        escape_into(page, label);
        page.push('"');
    }
    let _ = writeln!(page, "}} {value}");
}

/// A label value as the text format wants it: `\\`, `\"` and `\n` escaped.
fn escape_into(page: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        page.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => page.push_str("\\\\"),
            '"' => page.push_str("\\\""),
            '\n' => page.push_str("\\n"),
            c => page.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut page = String::new();
        sample(&mut page, "m", "a\"b\\c\nd", None, 1);
        assert_eq!(page, "m{service=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn an_empty_runtime_has_the_runtime_families() {
        let page = render_tables(&Tables::new());
        assert!(page.contains("# TYPE steward_service_up gauge"), "{page}");
        assert!(
            page.contains("steward_services{status=\"running\"} 0"),
            "{page}"
        );
        assert!(
            page.contains("steward_runtime_state{state=\"running\"} 1"),
            "{page}"
        );
        assert!(page.contains("\nsteward_events_total 0\n"), "{page}");
    }
}
