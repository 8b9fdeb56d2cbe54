//! Threshold arithmetic for one probe: consecutive passes and failures, and the verdict
//! they make (Kubernetes' `successThreshold` / `failureThreshold`). Plain data, tested
//! without an actor.

/// Consecutive counts and the last verdict of one probe. Pure arithmetic, no actor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProbeTrack {
    /// Passes in a row (zeroed by a failure).
    successes: u32,
    /// Failures in a row (zeroed by a pass).
    failures: u32,
    /// `None` until the first threshold is reached.
    verdict: Option<bool>,
}

impl ProbeTrack {
    /// Counts one run; returns the new verdict when it changed (the first one included).
    /// Thresholds of 0 act as 1.
    pub(crate) fn record(
        &mut self,
        ok: bool,
        success_threshold: u32,
        failure_threshold: u32,
    ) -> Option<bool> {
        let flipped = if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            self.successes >= success_threshold.max(1)
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            self.failures >= failure_threshold.max(1)
        };
        if flipped && self.verdict != Some(ok) {
            self.verdict = Some(ok);
            Some(ok)
        } else {
            None
        }
    }

    /// The verdict so far (`None` until a threshold was first reached).
    pub(crate) fn verdict(&self) -> Option<bool> {
        self.verdict
    }

    /// The current streak: consecutive passes or failures, whichever is running.
    pub(crate) fn streak(&self) -> u32 {
        self.successes.max(self.failures)
    }

    /// Forgets the counters, keeps the verdict (used on resume).
    pub(super) fn reset_counters(&mut self) {
        self.successes = 0;
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_track_reports_the_first_verdict_and_only_changes() {
        let mut track = ProbeTrack::default();
        assert_eq!(track.record(true, 1, 2), Some(true));
        assert_eq!(track.record(true, 1, 2), None);
        assert_eq!(track.record(false, 1, 2), None);
        assert_eq!(track.record(false, 1, 2), Some(false));
        assert_eq!(track.streak(), 2);
        assert_eq!(track.record(false, 1, 2), None);
        assert_eq!(track.record(true, 1, 2), Some(true));
    }

    #[test]
    fn probe_track_needs_consecutive_runs() {
        let mut track = ProbeTrack::default();
        for ok in [false, false, true, false, false, true] {
            assert_eq!(track.record(ok, 2, 3), None);
        }
        assert_eq!(track.record(true, 2, 3), Some(true));
        assert_eq!(track.record(false, 2, 3), None);
        assert_eq!(track.record(false, 2, 3), None);
        assert_eq!(track.record(false, 2, 3), Some(false));
    }

    #[test]
    fn probe_track_treats_zero_thresholds_as_one() {
        let mut track = ProbeTrack::default();
        assert_eq!(track.record(false, 0, 0), Some(false));
        assert_eq!(track.record(true, 0, 0), Some(true));
    }

    #[test]
    fn probe_track_resume_keeps_the_verdict() {
        let mut track = ProbeTrack::default();
        track.record(true, 1, 2);
        track.record(false, 1, 2);
        track.reset_counters();
        assert_eq!(
            track.record(false, 1, 2),
            None,
            "one failure after reset is below threshold"
        );
        assert_eq!(track.record(true, 1, 2), None, "healthy already");
    }
}
