//! Restart policy, backoff and restart intensity as plain functions.
//!
//! OTP's vocabulary: a *permanent* child is always restarted, a *transient* one only after
//! an abnormal exit, a *temporary* one never. *Intensity* is the circuit breaker: more than
//! `max_restarts` automatic restarts within `restart_window` and the supervisor gives up
//! (the service is marked `failed`). With `max_restarts: 3` a crashing service is launched
//! at most four times.
//!
//! Backoff spaces restarts out: restart *n* waits `backoff[n]`, the last delay repeats, and
//! the index goes back to zero once a process has run for the longest delay without
//! exiting (it was stable, so the next crash is a fresh incident).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::RestartPolicy;
use crate::state::ExitInfo;

/// True when the policy restarts a process that ended this way.
pub fn wants_restart(policy: RestartPolicy, exit: &ExitInfo) -> bool {
    match policy {
        RestartPolicy::Permanent => true,
        RestartPolicy::Transient => !exit.success(),
        RestartPolicy::Temporary => false,
    }
}

/// The delay before restart number `attempt` (0-based); the last delay repeats, and an
/// empty list means no delay.
pub fn backoff_delay(backoff: &[Duration], attempt: u32) -> Duration {
    match backoff.len() {
        0 => Duration::ZERO,
        n => backoff[(attempt as usize).min(n - 1)],
    }
}

/// The backoff index for the coming restart: `next` (one past the index used last time),
/// or 0 when the process ran at least as long as the longest delay (it was stable, so this
/// crash is a fresh incident).
pub fn backoff_index(next: u32, ran_for: Duration, backoff: &[Duration]) -> u32 {
    let longest = backoff.iter().max().copied().unwrap_or(Duration::ZERO);
    if ran_for >= longest { 0 } else { next }
}

/// Counts restarts in a sliding window and says when the limit is passed.
#[derive(Debug, Clone)]
pub struct RestartIntensity {
    max_restarts: u32,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl RestartIntensity {
    /// At most `max_restarts` restarts within `window`.
    pub fn new(max_restarts: u32, window: Duration) -> Self {
        RestartIntensity {
            max_restarts,
            window,
            recent: VecDeque::new(),
        }
    }

    /// Records a restart at `now`. `Err` carries the cause when this restart passes the
    /// limit (the caller then gives up instead of restarting).
    pub fn record(&mut self, now: Instant) -> Result<usize, IntensityExceeded> {
        while let Some(&oldest) = self.recent.front() {
            if now.duration_since(oldest) > self.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        self.recent.push_back(now);
        let count = self.recent.len();
        if count > self.max_restarts as usize {
            Err(IntensityExceeded {
                count,
                window: self.window,
                max_restarts: self.max_restarts,
            })
        } else {
            Ok(count)
        }
    }

    /// Forgets every recorded restart (after a manual start).
    pub fn reset(&mut self) {
        self.recent.clear();
    }
}

/// More restarts within the window than allowed: the caller gives up.
/// Worded `5 restarts in 1m > max_restarts 4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntensityExceeded {
    /// Restarts counted in the window, this one included.
    pub count: usize,
    /// The window.
    pub window: Duration,
    /// The limit that was passed.
    pub max_restarts: u32,
}

impl std::fmt::Display for IntensityExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} restarts in {} > max_restarts {}",
            self.count,
            humantime::format_duration(self.window),
            self.max_restarts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn policies_follow_otp() {
        let ok = ExitInfo::now(Some(0), None);
        let bad = ExitInfo::now(Some(1), None);
        let killed = ExitInfo::now(None, Some("SIGKILL"));
        assert!(wants_restart(RestartPolicy::Permanent, &ok));
        assert!(wants_restart(RestartPolicy::Permanent, &bad));
        assert!(!wants_restart(RestartPolicy::Transient, &ok));
        assert!(wants_restart(RestartPolicy::Transient, &bad));
        assert!(wants_restart(RestartPolicy::Transient, &killed));
        assert!(!wants_restart(RestartPolicy::Temporary, &bad));
    }

    #[test]
    fn last_backoff_delay_repeats() {
        let b = [Duration::from_secs(1), Duration::from_secs(5)];
        assert_eq!(backoff_delay(&b, 0), Duration::from_secs(1));
        assert_eq!(backoff_delay(&b, 1), Duration::from_secs(5));
        assert_eq!(backoff_delay(&b, 7), Duration::from_secs(5));
        assert_eq!(backoff_delay(&[], 3), Duration::ZERO);
    }

    #[test]
    fn max_restarts_three_allows_four_launches() {
        let mut i = RestartIntensity::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(i.record(t).is_ok());
        assert!(i.record(t).is_ok());
        assert!(i.record(t).is_ok());
        let cause = i.record(t).expect_err("fourth restart passes the limit");
        assert_eq!(cause.to_string(), "4 restarts in 1m > max_restarts 3");
    }

    #[test]
    fn restarts_outside_the_window_are_forgotten() {
        let mut i = RestartIntensity::new(1, Duration::from_secs(10));
        let t = Instant::now();
        assert!(i.record(t).is_ok());
        assert!(i.record(t + Duration::from_secs(11)).is_ok());
        assert!(i.record(t + Duration::from_secs(12)).is_err());
    }

    proptest! {
        #[test]
        fn delay_is_always_one_of_the_list(delays in proptest::collection::vec(0u64..100, 1..8), attempt in 0u32..50) {
            let b: Vec<Duration> = delays.iter().map(|&ms| Duration::from_millis(ms)).collect();
            let d = backoff_delay(&b, attempt);
            prop_assert!(b.contains(&d));
            if attempt as usize >= b.len() {
                prop_assert_eq!(d, *b.last().expect("non-empty"));
            }
        }

        #[test]
        fn a_stable_run_resets_the_backoff(prev in 0u32..20, extra_ms in 0u64..1000) {
            let b = [Duration::from_millis(100), Duration::from_millis(300)];
            prop_assert_eq!(backoff_index(prev, Duration::from_millis(300 + extra_ms), &b), 0);
            prop_assert_eq!(backoff_index(prev, Duration::from_millis(299), &b), prev);
        }

        #[test]
        fn intensity_never_allows_more_than_max_in_window(max in 0u32..10, n in 1usize..30) {
            let mut i = RestartIntensity::new(max, Duration::from_secs(60));
            let t = Instant::now();
            let allowed = (0..n).filter(|_| i.record(t).is_ok()).count();
            prop_assert_eq!(allowed, n.min(max as usize));
        }
    }
}
