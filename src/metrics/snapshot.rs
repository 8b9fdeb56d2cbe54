//! The families read from a runtime's tables at render time: each service's status,
//! readiness, restarts, last exit, uptime, CPU, RSS and log lines, the counts by status,
//! and the runtime's state, uptime and events.
//!
//! They go into a fresh recorder per render rather than the global one, so a removed
//! service disappears from the page at once and two runtimes in one process never mix
//! their gauges.

use ::metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;

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

fn bit(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The families read from `tables` now, in Prometheus text format.
pub fn render_tables(tables: &Tables) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    ::metrics::with_local_recorder(&recorder, || record_tables(tables));
    handle.render()
}

fn record_tables(tables: &Tables) {
    describe_tables();
    let now = chrono::Utc::now();
    let mut ids: Vec<String> = Vec::new();
    tables.each_state(|row| ids.push(row.id.clone()));
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
        gauge!(SERVICE_UP, "service" => id.clone()).set(bit(running));
        for status in STATUSES {
            gauge!(SERVICE_STATUS, "service" => id.clone(), "status" => status.as_str())
                .set(bit(state.status == status));
        }
        gauge!(SERVICE_READY, "service" => id.clone()).set(bit(state.ready));
        gauge!(SERVICE_RESTARTS, "service" => id.clone()).set(f64::from(state.restart_count));
        if let Some(code) = state.last_exit.as_ref().and_then(|e| e.code) {
            gauge!(SERVICE_LAST_EXIT_CODE, "service" => id.clone()).set(f64::from(code));
        }
        let uptime = match (state.status, state.started_at) {
            (ServiceStatus::Running | ServiceStatus::Paused, Some(started)) => {
                (now - started).num_milliseconds().max(0) as f64 / 1000.0
            }
            _ => 0.0,
        };
        gauge!(SERVICE_UPTIME_SECONDS, "service" => id.clone()).set(uptime);
        if let Some(cpu) = state.cpu_percent {
            gauge!(SERVICE_CPU_PERCENT, "service" => id.clone()).set(cpu);
        }
        if let Some(rss) = state.rss_bytes {
            gauge!(SERVICE_RSS_BYTES, "service" => id.clone()).set(rss as f64);
        }
        if let Some(ring) = tables.ring(&id) {
            counter!(LOG_LINES_TOTAL, "service" => id.clone()).absolute(ring.last_seq());
        }
    }
    for (status, count) in STATUSES.iter().zip(counts) {
        gauge!(SERVICES, "status" => status.as_str()).set(count as f64);
    }
    let runtime = tables.runtime_state();
    for (state, name) in RUNTIME_STATES {
        gauge!(RUNTIME_STATE, "state" => name).set(bit(runtime == state));
    }
    let uptime = (now - tables.started_at).num_milliseconds().max(0) as f64 / 1000.0;
    gauge!(RUNTIME_UPTIME_SECONDS).set(uptime);
    counter!(EVENTS_TOTAL).absolute(tables.events.last_seq());
}

fn describe_tables() {
    describe_gauge!(SERVICE_UP, "1 when the service's status is running");
    describe_gauge!(
        SERVICE_STATUS,
        "1 for the service's current status, 0 for the others"
    );
    describe_gauge!(
        SERVICE_READY,
        "1 when the service is running and its readiness probe (if any) passes"
    );
    describe_gauge!(
        SERVICE_RESTARTS,
        "Automatic restarts (crash, liveness) since the service was defined"
    );
    describe_gauge!(
        SERVICE_LAST_EXIT_CODE,
        "Exit code of the service's last process that exited by itself"
    );
    describe_gauge!(
        SERVICE_UPTIME_SECONDS,
        ::metrics::Unit::Seconds,
        "Time since the current process started (0 when not running)"
    );
    describe_gauge!(
        SERVICE_CPU_PERCENT,
        "CPU use of the main process, in percent of one core"
    );
    describe_gauge!(
        SERVICE_RSS_BYTES,
        ::metrics::Unit::Bytes,
        "Resident memory of the main process"
    );
    describe_counter!(
        LOG_LINES_TOTAL,
        "Log lines the service has written since it was defined"
    );
    describe_gauge!(SERVICES, "Services by status");
    describe_gauge!(
        RUNTIME_STATE,
        "1 for the runtime's current state (running, paused, stopping)"
    );
    describe_gauge!(
        RUNTIME_UPTIME_SECONDS,
        ::metrics::Unit::Seconds,
        "Time since the runtime started"
    );
    describe_counter!(EVENTS_TOTAL, "Events emitted by the runtime");
}
