//! steward's Prometheus recorder as the process's global `metrics` recorder: installed
//! once, its histograms folded into buckets as samples arrive.
//!
//! The `metrics` facade has one global recorder per process, and the first to install
//! one wins. [`install_recorder`] tries once; if the embedding app installed a recorder of
//! its own first, ours cannot be global: the app's recorder then gets the families the
//! runtime records, and steward's page lacks them (a warning says so). Histograms whose
//! name ends in `_seconds` get buckets from 1 ms to 10 s ([`SECONDS_BUCKETS`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ::metrics::{describe_counter, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::{LOG_DROPPED_TOTAL, NOTIFY_IGNORED_TOTAL, PROBE_DURATION_SECONDS, RESTARTS_TOTAL};

/// Upper bounds of the buckets of every `*_seconds` histogram: 1 ms … 10 s.
pub const SECONDS_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram samples are folded into their buckets at every render and, between renders,
/// after every this many samples (so unscraped samples never pile up, and an idle steward
/// runs no timer for it).
const UPKEEP_EVERY: u64 = 1024;

/// Histogram samples recorded since the process started.
static SAMPLES: AtomicU64 = AtomicU64::new(0);

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
/// runtime's counters and histograms then go to that one, not to steward's page).
///
/// Spawning a runtime calls it (see the [module](super) docs); calling it earlier does no
/// harm.
pub fn install_recorder() -> bool {
    GLOBAL
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            let installed = match ::metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe_recorded();
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

fn describe_recorded() {
    describe_counter!(
        RESTARTS_TOTAL,
        "Restarts of a service by reason (crash, liveness, manual, dependency)"
    );
    describe_histogram!(
        PROBE_DURATION_SECONDS,
        ::metrics::Unit::Seconds,
        "Time one probe run took"
    );
    describe_counter!(LOG_DROPPED_TOTAL, "Log lines lost by slow log subscribers");
    describe_counter!(
        NOTIFY_IGNORED_TOTAL,
        "Notify datagrams from processes outside the service, ignored"
    );
}

/// Call after recording a histogram sample through the `metrics` facade: every 1024
/// samples, the histograms are folded into their buckets.
pub fn sample_recorded() {
    let n = SAMPLES.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_multiple_of(UPKEEP_EVERY)
        && let Some(global) = GLOBAL.get()
    {
        global.handle.run_upkeep();
    }
}

/// What the runtime recorded, in Prometheus text format (`None` before
/// [`install_recorder`] ran). When another recorder won, this is an empty page.
pub(super) fn render_recorded() -> Option<String> {
    GLOBAL.get().map(|global| global.handle.render())
}
