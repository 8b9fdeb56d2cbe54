//! A short history of each running service's CPU and memory, for the dashboard's
//! sparklines: `GET /api/v1/usage`.
//!
//! A service's state carries one CPU/RSS sample, read from `/proc` when asked. A page that
//! is open wants the recent past too, so while someone watches (a `GET /api/v1/usage` in
//! the last [`WATCHED_FOR`]) a task samples every running service every [`INTERVAL`] and
//! keeps the last [`CAPACITY`] samples per service (five minutes). The rings live here, in
//! the API, not in the runtime: only the dashboard reads them, and an app that embeds
//! steward without the API pays nothing.
//!
//! Nobody watching, nothing is sampled and the rings are dropped: sampling 4,500 services
//! read 11,000 `/proc` files every 5 s, most of an idle steward's CPU (713 ms per 30 s),
//! and the rings held ~2 KiB per service (issue 16). A dashboard that opens starts the
//! sampling with its first read; its sparklines fill from then on.
//!
//! The task holds the history and the runtime's tables weakly, so it ends when the router
//! (or the runtime) is dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use crate::runtime::Tables;

/// How often the running services are sampled.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Samples kept per service (5 minutes at [`INTERVAL`]).
pub const CAPACITY: usize = 60;
/// How long after a read of the history the services are still sampled.
pub const WATCHED_FOR: Duration = Duration::from_secs(300);

/// One sample of one service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UsageSample {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// CPU of the main process, % of one core.
    pub cpu_percent: f64,
    /// Resident memory of the main process.
    pub rss_bytes: u64,
}

/// The answer of `GET /api/v1/usage`.
#[derive(Debug, Serialize)]
pub struct UsageAnswer {
    /// Seconds between two samples.
    pub interval_secs: u64,
    /// Each service's samples, oldest first (only services sampled while running).
    pub services: BTreeMap<String, Vec<UsageSample>>,
}

/// The rings, one per service.
#[derive(Debug, Default)]
pub struct UsageHistory {
    rings: Mutex<HashMap<String, VecDeque<UsageSample>>>,
    /// When the history was last read (`None`: never).
    read_at: Mutex<Option<std::time::Instant>>,
}

impl UsageHistory {
    /// A history sampled every [`INTERVAL`] from `tables` by a task on the current tokio
    /// runtime (none outside one: then the history stays empty).
    pub(crate) fn start(tables: &Arc<Tables>) -> Arc<Self> {
        let history = Arc::new(UsageHistory::default());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sample_loop(
                Arc::downgrade(&history),
                Arc::downgrade(tables),
            ));
        }
        history
    }

    /// Adds this round's samples; services not in `round` lose their ring when they are
    /// no longer defined (`defined` says which are).
    fn record(&self, round: Vec<(String, UsageSample)>, defined: impl Fn(&str) -> bool) {
        let Ok(mut rings) = self.rings.lock() else {
            return;
        };
        rings.retain(|id, _| defined(id));
        for (id, sample) in round {
            let ring = rings.entry(id).or_default();
            if ring.len() == CAPACITY {
                ring.pop_front();
            }
            ring.push_back(sample);
        }
    }

    /// Notes a read: the services are sampled for [`WATCHED_FOR`] from now.
    fn watched(&self) {
        if let Ok(mut read_at) = self.read_at.lock() {
            *read_at = Some(std::time::Instant::now());
        }
    }

    /// Whether the history was read in the last [`WATCHED_FOR`].
    fn is_watched(&self) -> bool {
        self.read_at
            .lock()
            .ok()
            .and_then(|read_at| *read_at)
            .is_some_and(|at| at.elapsed() < WATCHED_FOR)
    }

    /// Drops every ring and the room they held.
    fn forget(&self) {
        if let Ok(mut rings) = self.rings.lock()
            && rings.capacity() > 0
        {
            *rings = HashMap::new();
        }
    }

    /// Every ring, oldest sample first.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<UsageSample>> {
        self.rings
            .lock()
            .map(|rings| {
                rings
                    .iter()
                    .map(|(id, ring)| (id.clone(), ring.iter().copied().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Samples every running service each [`INTERVAL`] until the history or the tables go.
async fn sample_loop(history: Weak<UsageHistory>, tables: Weak<Tables>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(history), Some(tables)) = (history.upgrade(), tables.upgrade()) else {
            return;
        };
        if !history.is_watched() {
            history.forget();
            continue;
        }
        let mut running = Vec::new();
        tables.each_state(|s| {
            if s.pid.is_some() {
                running.push(s.id.clone());
            }
        });
        let at = Utc::now();
        let round = running
            .into_iter()
            .filter_map(|id| {
                let state = tables.state_with_usage(&id)?;
                let sample = UsageSample {
                    at,
                    cpu_percent: state.cpu_percent?,
                    rss_bytes: state.rss_bytes?,
                };
                Some((id, sample))
            })
            .collect();
        history.record(round, |id| tables.state(id).is_some());
    }
}

/// `GET /api/v1/usage`: every service's recent CPU and memory samples.
pub(crate) async fn usage(State(app): State<AppState>) -> Json<UsageAnswer> {
    app.usage.watched();
    Json(UsageAnswer {
        interval_secs: INTERVAL.as_secs(),
        services: app.usage.snapshot(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64) -> UsageSample {
        UsageSample {
            at: Utc::now(),
            cpu_percent: cpu,
            rss_bytes: 1,
        }
    }

    #[test]
    fn a_ring_keeps_the_newest_capacity_samples() {
        let history = UsageHistory::default();
        for i in 0..CAPACITY + 5 {
            history.record(vec![("web".into(), sample(i as f64))], |_| true);
        }
        let ring = &history.snapshot()["web"];
        assert_eq!(ring.len(), CAPACITY);
        assert_eq!(ring[0].cpu_percent, 5.0);
        assert_eq!(ring[CAPACITY - 1].cpu_percent, (CAPACITY + 4) as f64);
    }

    #[test]
    fn a_removed_service_loses_its_ring_a_stopped_one_keeps_it() {
        let history = UsageHistory::default();
        history.record(
            vec![("web".into(), sample(1.0)), ("old".into(), sample(2.0))],
            |_| true,
        );
        history.record(vec![], |id| id == "web");
        let snapshot = history.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot["web"].len(), 1);
    }

    #[test]
    fn services_are_sampled_only_once_someone_reads_the_history() {
        let history = UsageHistory::default();
        assert!(!history.is_watched(), "never read: nothing to sample");
        history.record(vec![("web".into(), sample(1.0))], |_| true);
        history.forget();
        assert!(history.snapshot().is_empty(), "unwatched rings are dropped");
        history.watched();
        assert!(history.is_watched());
    }
}
