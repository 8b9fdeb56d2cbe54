//! steward's metrics, in Prometheus text format, below the HTTP API: the runtime records
//! into them and anyone holding the [`Tables`] renders them, with or without the `api`
//! feature. The API's `GET /metrics` only serves what [`render`] returns.
//!
//! A page has two sources:
//!
//! * **what the runtime records** through the `metrics` facade as things happen
//!   ([`RESTARTS_TOTAL`], [`PROBE_DURATION_SECONDS`], [`LOG_DROPPED_TOTAL`]) goes to the
//!   process's global recorder, which `recorder` installs (see [`install_recorder`]);
//! * **what the tables say now** (status, readiness, restarts, uptime, CPU, RSS, counts,
//!   sequence numbers) is read at render time into a recorder of its own (`snapshot`), so
//!   a removed service disappears from the page at once and two runtimes in one process
//!   never mix their gauges.
//!
//! When the recorder is installed: when a runtime's [`Tables`] are made, that is when the
//! runtime is spawned, before any of its actors exists. That is the one point every way
//! of running steward goes through (the binary, an embedding app, a test) and it comes
//! before anything is recorded, so no restart or probe of the boot is missed, whether or
//! not an HTTP router is ever built. Installing lazily on the first sample instead would
//! lose that sample (the facade drops what is recorded while no recorder is installed),
//! and the restart counter is recorded by the facade's macros directly, so it has no
//! first call of ours to hook. An app with a recorder of its own installs it before it
//! spawns a runtime; steward's families then go to that recorder (see
//! [`install_recorder`]).

mod recorder;
mod snapshot;

pub use recorder::{SECONDS_BUCKETS, install_recorder, sample_recorded};
pub use snapshot::render_tables;

use crate::runtime::Tables;

/// `steward_service_up{service}`: 1 when the service's status is running.
pub const SERVICE_UP: &str = "steward_service_up";
/// `steward_service_status{service,status}`: 1 for the current status, 0 for the others.
pub const SERVICE_STATUS: &str = "steward_service_status";
/// `steward_service_ready{service}`: 1 when the service is ready.
pub const SERVICE_READY: &str = "steward_service_ready";
/// `steward_service_restarts{service}`: automatic restarts since the service was defined.
pub const SERVICE_RESTARTS: &str = "steward_service_restarts";
/// `steward_service_last_exit_code{service}`: the last exit code.
pub const SERVICE_LAST_EXIT_CODE: &str = "steward_service_last_exit_code";
/// `steward_service_uptime_seconds{service}`: time since the current process started.
pub const SERVICE_UPTIME_SECONDS: &str = "steward_service_uptime_seconds";
/// `steward_service_cpu_percent{service}`: CPU use of the main process.
pub const SERVICE_CPU_PERCENT: &str = "steward_service_cpu_percent";
/// `steward_service_rss_bytes{service}`: resident memory of the main process.
pub const SERVICE_RSS_BYTES: &str = "steward_service_rss_bytes";
/// `steward_log_lines_total{service}`: log lines written since the service was defined.
pub const LOG_LINES_TOTAL: &str = "steward_log_lines_total";
/// `steward_services{status}`: services by status.
pub const SERVICES: &str = "steward_services";
/// `steward_runtime_state{state}`: 1 for the runtime's current state.
pub const RUNTIME_STATE: &str = "steward_runtime_state";
/// `steward_runtime_uptime_seconds`: time since the runtime started.
pub const RUNTIME_UPTIME_SECONDS: &str = "steward_runtime_uptime_seconds";
/// `steward_events_total`: events emitted by the runtime.
pub const EVENTS_TOTAL: &str = "steward_events_total";
/// `steward_restarts_total{service,reason}`: restarts by reason, recorded by the Server.
pub const RESTARTS_TOTAL: &str = "steward_restarts_total";
/// `steward_probe_duration_seconds{service,probe}`: how long one probe run took, recorded
/// by the HealthChecker.
pub const PROBE_DURATION_SECONDS: &str = "steward_probe_duration_seconds";
/// `steward_log_dropped_total{service}`: log lines lost by slow log subscribers, recorded
/// by the subscription that lost them.
pub const LOG_DROPPED_TOTAL: &str = "steward_log_dropped_total";
/// `steward_notify_ignored_total{service}`: datagrams on a service's notify socket from a
/// process outside the service, ignored by its HealthChecker.
pub const NOTIFY_IGNORED_TOTAL: &str = "steward_notify_ignored_total";

/// Every metric name on the page, with its type (for docs and tests).
pub const METRIC_NAMES: &[(&str, &str)] = &[
    (SERVICE_UP, "gauge"),
    (SERVICE_STATUS, "gauge"),
    (SERVICE_READY, "gauge"),
    (SERVICE_RESTARTS, "gauge"),
    (SERVICE_LAST_EXIT_CODE, "gauge"),
    (SERVICE_UPTIME_SECONDS, "gauge"),
    (SERVICE_CPU_PERCENT, "gauge"),
    (SERVICE_RSS_BYTES, "gauge"),
    (LOG_LINES_TOTAL, "counter"),
    (SERVICES, "gauge"),
    (RUNTIME_STATE, "gauge"),
    (RUNTIME_UPTIME_SECONDS, "gauge"),
    (EVENTS_TOTAL, "counter"),
    (RESTARTS_TOTAL, "counter"),
    (PROBE_DURATION_SECONDS, "histogram"),
    (LOG_DROPPED_TOTAL, "counter"),
    (NOTIFY_IGNORED_TOTAL, "counter"),
];

/// The whole page for one runtime, in Prometheus text format: the families read from
/// `tables` now, then what the runtime recorded (when steward's recorder is the global
/// one).
pub fn render(tables: &Tables) -> String {
    let mut page = render_tables(tables);
    let recorded = render_recorded();
    if !recorded.is_empty() {
        page.push('\n');
        page.push_str(&recorded);
    }
    page
}

/// What the runtime recorded through the `metrics` facade (restarts by reason, probe
/// durations, dropped log lines), in Prometheus text format; empty when another recorder
/// is the global one.
pub fn render_recorded() -> String {
    install_recorder();
    recorder::render_recorded().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_records_and_renders_without_the_http_api() {
        let tables = Tables::new();
        ::metrics::counter!(LOG_DROPPED_TOTAL, "service" => "no-router").increment(3);
        let page = render(&tables);
        assert!(
            page.contains("steward_log_dropped_total{service=\"no-router\"} 3"),
            "{page}"
        );
        assert!(page.contains("steward_runtime_state{state=\"running\"} 1"));
        assert!(page.contains("# TYPE steward_events_total counter"));
    }

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<&str> = METRIC_NAMES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRIC_NAMES.len());
    }
}
