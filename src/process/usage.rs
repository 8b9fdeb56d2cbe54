//! CPU and memory of a process, from `/proc` (via the `procfs` crate).
//!
//! CPU % is the share of one core used since the previous sample of the same pid (the
//! first sample gives the average since the process started), so it can exceed 100 for
//! a multi-threaded process, as in `top`. RSS is the resident set in bytes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use procfs::Current as _;

/// Entries kept before the sampler first forgets pids that no longer exist.
const PRUNE_ABOVE: usize = 1024;

/// What the previous sample of a pid saw.
#[derive(Debug, Clone, Copy)]
struct Previous {
    /// What this sample found (answered again by `sample_within`).
    cpu: f64,
    rss: u64,
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// The process start time (in ticks after boot), to notice a reused pid.
    start_ticks: u64,
    at: Instant,
}

/// Samples CPU % (since the previous sample of the same pid) and RSS.
#[derive(Debug, Default)]
pub struct UsageSampler {
    previous: Mutex<HashMap<u32, Previous>>,
    /// Size of `previous` at which to prune next (0 until the first prune: then
    /// [`PRUNE_ABOVE`]). Written under the `previous` lock.
    prune_at: AtomicUsize,
}

impl UsageSampler {
    /// Like [`UsageSampler::sample`], but answers from the last sample of `pid` when it is
    /// younger than `max_age`: listing a thousand services must not read `/proc` a
    /// thousand times per request.
    ///
    /// A sample that saw no resident memory is not answered again: that is a process
    /// caught inside `exec` (the status read that sees a fresh service `running` comes
    /// right after the spawn), not its steady state, and repeating it for `max_age` would
    /// show a running service using no memory.
    pub fn sample_within(&self, pid: u32, max_age: Duration) -> Option<(f64, u64)> {
        {
            let previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
            let young = |p: &&Previous| p.rss > 0 && p.at.elapsed() < max_age;
            if let Some(p) = previous.get(&pid).filter(young) {
                return Some((p.cpu, p.rss));
            }
        }
        self.sample(pid)
    }

    /// [`UsageSampler::sample_within`] over a service's whole tree: `leader` (the process
    /// steward spawned, the key of the sample) and the `members` listed when a new sample
    /// is taken (its cgroup's processes, or the leader's descendants; DESIGN §11). CPU %
    /// is the share of one core used by all of them since the previous sample; memory is
    /// the sum of their RSS. A service of one process costs what a sample of it costs, plus
    /// the listing.
    ///
    /// A member that exits between two samples takes its CPU time with it: that interval
    /// shows less than was used (never more).
    pub fn sample_tree_within(
        &self,
        leader: u32,
        max_age: Duration,
        members: impl FnOnce() -> Vec<u32>,
    ) -> Option<(f64, u64)> {
        {
            let previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
            let young = |p: &&Previous| p.rss > 0 && p.at.elapsed() < max_age;
            if let Some(p) = previous.get(&leader).filter(young) {
                return Some((p.cpu, p.rss));
            }
        }
        let members = members();
        if members.len() <= 1 {
            return self.sample(leader);
        }
        let stat = |pid: u32| {
            i32::try_from(pid)
                .ok()
                .and_then(|raw| procfs::process::Process::new(raw).ok())
                .and_then(|process| process.stat().ok())
                .filter(|s| s.state != 'Z' && s.state != 'X')
        };
        let Some(lead) = stat(leader) else {
            self.previous
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&leader);
            return None;
        };
        let page = procfs::page_size();
        let (mut ticks, mut rss) = (0u64, 0u64);
        for s in members
            .iter()
            .filter(|p| **p != leader)
            .filter_map(|p| stat(*p))
        {
            ticks += s.utime + s.stime;
            rss += s.rss.saturating_mul(page);
        }
        ticks += lead.utime + lead.stime;
        rss += lead.rss.saturating_mul(page);
        Some(self.record(leader, lead.starttime, ticks, rss))
    }

    /// `(cpu_percent, rss_bytes)` of `pid`, or `None` when it is gone (or a zombie).
    pub fn sample(&self, pid: u32) -> Option<(f64, u64)> {
        let stat = i32::try_from(pid)
            .ok()
            .and_then(|raw| procfs::process::Process::new(raw).ok())
            .and_then(|process| process.stat().ok());
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let Some(stat) = stat.filter(|s| s.state != 'Z' && s.state != 'X') else {
            previous.remove(&pid);
            return None;
        };
        drop(previous);
        let cpu_ticks = stat.utime + stat.stime;
        let rss = stat.rss.saturating_mul(procfs::page_size());
        Some(self.record(pid, stat.starttime, cpu_ticks, rss))
    }

    /// Turns CPU ticks (of `pid`, or of a tree keyed by it) into a CPU % since the
    /// previous sample of the same key, and keeps this sample.
    fn record(&self, pid: u32, start_ticks: u64, cpu_ticks: u64, rss: u64) -> (f64, u64) {
        let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let ticks_per_second = procfs::ticks_per_second().max(1) as f64;

        let since_last = previous
            .get(&pid)
            .filter(|p| p.start_ticks == start_ticks && now > p.at)
            .map(|p| {
                (
                    cpu_ticks.saturating_sub(p.cpu_ticks),
                    now.duration_since(p.at).as_secs_f64(),
                )
            });
        let (used_ticks, elapsed) = match since_last {
            Some(delta) => delta,
            None => {
                let uptime = procfs::Uptime::current().map(|u| u.uptime).unwrap_or(0.0);
                let age = uptime - start_ticks as f64 / ticks_per_second;
                (cpu_ticks, age)
            }
        };
        let cpu = if elapsed > 0.0 {
            (used_ticks as f64 / ticks_per_second) / elapsed * 100.0
        } else {
            0.0
        };

        if previous.len() >= self.prune_at.load(Ordering::Relaxed).max(PRUNE_ABOVE) {
            let next = prune(&mut previous, |pid| {
                std::path::Path::new(&format!("/proc/{pid}")).exists()
            });
            self.prune_at.store(next, Ordering::Relaxed);
        }
        previous.insert(
            pid,
            Previous {
                cpu: cpu.max(0.0),
                rss,
                cpu_ticks,
                start_ticks,
                at: now,
            },
        );
        (cpu.max(0.0), rss)
    }
}

/// Forgets the pids that `exists` says are gone, and returns the size at which to prune
/// next: twice what is left, at least [`PRUNE_ABOVE`]. With a fixed threshold, more live
/// pids than it would make every sample check every pid in `/proc`.
fn prune(previous: &mut HashMap<u32, Previous>, exists: impl Fn(u32) -> bool) -> usize {
    previous.retain(|pid, _| exists(*pid));
    (previous.len() * 2).max(PRUNE_ABOVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let sampler = UsageSampler::default();
        let pid = std::process::id();
        let (cpu, rss) = sampler.sample(pid).expect("this process exists");
        assert!(cpu.is_finite() && cpu >= 0.0, "{cpu}");
        // The test binary has at least its code resident.
        assert!(rss > 0);
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let vm_rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        // Same order of magnitude as the kernel's own figure (they are read at different
        // moments of a running process, so not equal).
        assert!(
            rss / 1024 <= vm_rss_kib * 4 && vm_rss_kib <= rss / 1024 * 4,
            "{rss} vs {vm_rss_kib} KiB"
        );
    }

    #[test]
    fn second_sample_measures_busy_work() {
        let sampler = UsageSampler::default();
        let pid = std::process::id();
        sampler.sample(pid).expect("first");
        // Burn CPU until the kernel has accounted at least a few ticks to this process,
        // so the second sample cannot be zero.
        let start = procfs::process::Process::myself()
            .and_then(|p| p.stat())
            .expect("stat");
        let before = start.utime + start.stime;
        let mut x = 0u64;
        loop {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            let now = procfs::process::Process::myself()
                .and_then(|p| p.stat())
                .expect("stat");
            if now.utime + now.stime >= before + 3 {
                break;
            }
        }
        std::hint::black_box(x);
        let (cpu, _) = sampler.sample(pid).expect("second");
        assert!(cpu > 0.0, "{cpu}");
    }

    #[test]
    fn sample_within_answers_from_a_young_sample() {
        let sampler = UsageSampler::default();
        let pid = std::process::id();
        let first = sampler.sample(pid).expect("this process exists");
        // Regression guard for benchmark finding 1: a list of every service must not read
        // /proc per service per request; the cached figures come back exactly.
        let cached = sampler.sample_within(pid, Duration::from_secs(3600));
        assert_eq!(cached, Some(first));
        // A zero age always reads /proc again (and still finds the process).
        assert!(sampler.sample_within(pid, Duration::ZERO).is_some());
        assert_eq!(
            sampler.sample_within(4_194_305, Duration::from_secs(3600)),
            None
        );
    }

    #[test]
    fn a_sample_without_resident_memory_is_not_answered_again() {
        let sampler = UsageSampler::default();
        let pid = std::process::id();
        // What a sample of a process inside exec can see.
        sampler.previous.lock().expect("lock").insert(
            pid,
            Previous {
                cpu: 0.0,
                rss: 0,
                cpu_ticks: 0,
                start_ticks: 0,
                at: Instant::now(),
            },
        );
        let (_, rss) = sampler
            .sample_within(pid, Duration::from_secs(3600))
            .expect("this process exists");
        assert!(rss > 0);
    }

    #[test]
    fn pruning_keeps_live_pids_and_backs_off_with_their_number() {
        let entry = Previous {
            cpu: 0.0,
            rss: 0,
            cpu_ticks: 0,
            start_ticks: 0,
            at: Instant::now(),
        };
        let mut previous: HashMap<u32, Previous> = (0..3000).map(|pid| (pid, entry)).collect();
        // Pids below 1500 are alive.
        let next = prune(&mut previous, |pid| pid < 1500);
        assert_eq!(previous.len(), 1500);
        assert!(previous.keys().all(|pid| *pid < 1500));
        assert_eq!(
            next, 3000,
            "not again before the live set could have doubled"
        );
        let next = prune(&mut previous, |pid| pid < 10);
        assert_eq!(next, PRUNE_ABOVE);
    }

    #[test]
    fn a_missing_pid_is_none() {
        let sampler = UsageSampler::default();
        // Above the kernel's pid_max limit (4194304).
        assert_eq!(sampler.sample(4_194_305), None);
    }
}
