//! `max_memory` (DESIGN §2): while a process runs, its service's whole process tree (its
//! cgroup, or the leader's descendants and traced orphans) is sampled every
//! [`MEMORY_EVERY`]; when it uses more than `max_memory` for two samples in a row, the
//! Server is told ([`ServerMsg::MemoryExceeded`]) and restarts it through the restart
//! policy, with the figures as the cause (`memory 412MiB > max_memory 400MiB`). Two
//! samples, as a short peak (a compaction, a burst) is not a leak. Only services with
//! `max_memory` pay for the sampling.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use tracing::debug;

use crate::process::UsageSampler;
use crate::process::cgroup::ProcessTracking;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::server::ServerMsg;

/// How often the tree's memory is sampled.
pub const MEMORY_EVERY: Duration = Duration::from_secs(1);

/// Starts the sampling of one run; it ends when the process is gone, or after it has
/// told the Server.
pub(super) fn watch(
    tracking: Option<Arc<ProcessTracking>>,
    service: String,
    run: Generation,
    pid: u32,
    limit: u64,
    server: ActorRef<ServerMsg>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let sampler = UsageSampler::default();
        let mut tick = tokio::time::interval(MEMORY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut over = 0;
        loop {
            tick.tick().await;
            let members = || match &tracking {
                Some(tracking) => tracking.sampled_members(&service, pid),
                None => vec![pid],
            };
            let Some((_, used)) = sampler.sample_tree_within(pid, Duration::ZERO, members) else {
                return;
            };
            over = if used > limit { over + 1 } else { 0 };
            if over >= 2 {
                debug!(service = %service, pid, used, limit, "max_memory passed twice in a row");
                let _ = server.cast(ServerMsg::MemoryExceeded { run, used, limit });
                return;
            }
        }
    })
}
