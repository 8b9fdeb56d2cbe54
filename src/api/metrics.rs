//! `GET /metrics`: Prometheus text format, through `metrics-exporter-prometheus`.
//!
//! Two sources make one page:
//!
//! * **what the core emits** through the `metrics` facade as things happen
//!   (`steward_restarts_total{service,reason}`, `steward_probe_duration_seconds{service,probe}`,
//!   `steward_log_dropped_total{service}`) goes to a `PrometheusRecorder` that
//!   [`install_recorder`] makes the process's global recorder, once. Histograms whose name
//!   ends in `_seconds` get buckets from 1 ms to 10 s. If the embedding app installed a
//!   recorder of its own first, ours cannot be global: the page then lacks these families
//!   (and a warning is logged), and the app's recorder gets them instead;
//! * **what the tables say now** (status, readiness, restarts, uptime, CPU, RSS, counts,
//!   sequence numbers) is read at scrape time into a fresh recorder of its own, so a
//!   removed service disappears from the page at once and two runtimes in one process
//!   never mix their gauges.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use crate::runtime::{RuntimeState, Tables};
use crate::state::ServiceStatus;

/// Upper bounds of the buckets of every `*_seconds` histogram: 1 ms … 10 s.
pub const SECONDS_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram samples are folded into their buckets at every scrape and, between scrapes,
/// after every this many samples (so unscraped samples never pile up, and an idle steward
/// runs no timer for it).
const UPKEEP_EVERY: u64 = 1024;

/// Histogram samples recorded since the process started.
static SAMPLES: AtomicU64 = AtomicU64::new(0);

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

/// Every metric name on the page, with its type (for docs and tests).
pub const METRIC_NAMES: &[(&str, &str)] = &[
    ("steward_service_up", "gauge"),
    ("steward_service_status", "gauge"),
    ("steward_service_ready", "gauge"),
    ("steward_service_restarts", "gauge"),
    ("steward_service_last_exit_code", "gauge"),
    ("steward_service_uptime_seconds", "gauge"),
    ("steward_service_cpu_percent", "gauge"),
    ("steward_service_rss_bytes", "gauge"),
    ("steward_log_lines_total", "counter"),
    ("steward_services", "gauge"),
    ("steward_runtime_state", "gauge"),
    ("steward_runtime_uptime_seconds", "gauge"),
    ("steward_events_total", "counter"),
    ("steward_restarts_total", "counter"),
    ("steward_probe_duration_seconds", "histogram"),
    ("steward_log_dropped_total", "counter"),
];

struct GlobalRecorder {
    handle: PrometheusHandle,
    installed: bool,
}

static GLOBAL: OnceLock<GlobalRecorder> = OnceLock::new();

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &SECONDS_BUCKETS)
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "histogram buckets rejected; rendering summaries");
            PrometheusBuilder::new()
        })
}

/// Makes steward's Prometheus recorder the process's global `metrics` recorder, once;
/// later calls do nothing. Returns false when another recorder was installed first (the
/// core's counters and histograms then go to that one, not to `/metrics`).
///
/// [`super::router_with`] calls it; call it earlier (before booting services) so that no
/// event of the boot is missed.
pub fn install_recorder() -> bool {
    GLOBAL
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            let installed = match ::metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe_core_metrics();
                    true
                }
                Err(_) => {
                    tracing::warn!(
                        "another metrics recorder is already installed; /metrics will lack \
                         steward_restarts_total, steward_probe_duration_seconds and \
                         steward_log_dropped_total"
                    );
                    false
                }
            };
            GlobalRecorder { handle, installed }
        })
        .installed
}

fn describe_core_metrics() {
    describe_counter!(
        "steward_restarts_total",
        "Restarts of a service by reason (crash, liveness, manual, dependency)"
    );
    describe_histogram!(
        "steward_probe_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time one probe run took"
    );
    describe_counter!(
        "steward_log_dropped_total",
        "Log lines lost by slow log subscribers"
    );
}

/// Call after recording a histogram sample through the `metrics` facade: every
/// [`UPKEEP_EVERY`] samples, the histograms are folded into their buckets.
pub fn sample_recorded() {
    let n = SAMPLES.fetch_add(1, Ordering::Relaxed) + 1;
    if n % UPKEEP_EVERY == 0 {
        if let Some(global) = GLOBAL.get() {
            global.handle.run_upkeep();
        }
    }
}

fn bit(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The scrape-time families, rendered from the tables.
pub fn render_tables(tables: &Tables) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    ::metrics::with_local_recorder(&recorder, || record_tables(tables));
    handle.render()
}

fn record_tables(tables: &Tables) {
    describe_tables();
    let now = chrono::Utc::now();
    let mut ids: Vec<String> = tables.states.iter().map(|r| r.key().clone()).collect();
    ids.sort();
    let mut counts = [0u64; STATUSES.len()];
    for id in ids {
        let Some(state) = tables.state_with_usage(&id) else {
            continue;
        };
        if let Some(i) = STATUSES.iter().position(|s| *s == state.status) {
            counts[i] += 1;
        }
        let running = state.status == ServiceStatus::Running;
        gauge!("steward_service_up", "service" => id.clone()).set(bit(running));
        for status in STATUSES {
            gauge!("steward_service_status", "service" => id.clone(), "status" => status.as_str())
                .set(bit(state.status == status));
        }
        gauge!("steward_service_ready", "service" => id.clone()).set(bit(state.ready));
        gauge!("steward_service_restarts", "service" => id.clone())
            .set(f64::from(state.restart_count));
        if let Some(code) = state.last_exit.as_ref().and_then(|e| e.code) {
            gauge!("steward_service_last_exit_code", "service" => id.clone()).set(f64::from(code));
        }
        let uptime = match (state.status, state.started_at) {
            (ServiceStatus::Running | ServiceStatus::Paused, Some(started)) => {
                (now - started).num_milliseconds().max(0) as f64 / 1000.0
            }
            _ => 0.0,
        };
        gauge!("steward_service_uptime_seconds", "service" => id.clone()).set(uptime);
        if let Some(cpu) = state.cpu_percent {
            gauge!("steward_service_cpu_percent", "service" => id.clone()).set(cpu);
        }
        if let Some(rss) = state.rss_bytes {
            gauge!("steward_service_rss_bytes", "service" => id.clone()).set(rss as f64);
        }
        if let Some(ring) = tables.rings.get(&id) {
            counter!("steward_log_lines_total", "service" => id.clone()).absolute(ring.last_seq());
        }
    }
    for (status, count) in STATUSES.iter().zip(counts) {
        gauge!("steward_services", "status" => status.as_str()).set(count as f64);
    }
    let runtime = tables.runtime_state();
    for (state, name) in RUNTIME_STATES {
        gauge!("steward_runtime_state", "state" => name).set(bit(runtime == state));
    }
    let uptime = (now - tables.started_at).num_milliseconds().max(0) as f64 / 1000.0;
    gauge!("steward_runtime_uptime_seconds").set(uptime);
    counter!("steward_events_total").absolute(tables.events.last_seq());
}

fn describe_tables() {
    describe_gauge!(
        "steward_service_up",
        "1 when the service's status is running"
    );
    describe_gauge!(
        "steward_service_status",
        "1 for the service's current status, 0 for the others"
    );
    describe_gauge!(
        "steward_service_ready",
        "1 when the service is running and its readiness probe (if any) passes"
    );
    describe_gauge!(
        "steward_service_restarts",
        "Automatic restarts (crash, liveness) since the service was defined"
    );
    describe_gauge!(
        "steward_service_last_exit_code",
        "Exit code of the service's last process that exited by itself"
    );
    describe_gauge!(
        "steward_service_uptime_seconds",
        ::metrics::Unit::Seconds,
        "Time since the current process started (0 when not running)"
    );
    describe_gauge!(
        "steward_service_cpu_percent",
        "CPU use of the main process, in percent of one core"
    );
    describe_gauge!(
        "steward_service_rss_bytes",
        ::metrics::Unit::Bytes,
        "Resident memory of the main process"
    );
    describe_counter!(
        "steward_log_lines_total",
        "Log lines the service has written since it was defined"
    );
    describe_gauge!("steward_services", "Services by status");
    describe_gauge!(
        "steward_runtime_state",
        "1 for the runtime's current state (running, paused, stopping)"
    );
    describe_gauge!(
        "steward_runtime_uptime_seconds",
        ::metrics::Unit::Seconds,
        "Time since the runtime started"
    );
    describe_counter!("steward_events_total", "Events emitted by the runtime");
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(app): State<AppState>) -> impl IntoResponse {
    install_recorder();
    let mut page = render_tables(app.steward.tables());
    if let Some(global) = GLOBAL.get() {
        page.push_str(&global.handle.render());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        page,
    )
}
