//! One number per run of a service: the only way a message is told to be stale.
//!
//! A *run* is one process the Server asked the PortManager to spawn: the service's
//! process, a clone or install step, a detached launcher or its `stop_command`. The Server
//! mints the next [`Generation`] when it spawns, and every message about that run carries
//! it: the PortManager's `Spawn`, `Stop`, `Kill` and `Signal`, the exit it reports, the
//! HealthChecker's `Watch` and the verdicts it sends back. A message whose generation is
//! not the current one is about a process that is gone, and [`Generation::is_current`] is
//! the one check that drops it (as OTP code matches on a monitor reference).

use std::fmt;

/// The number of one run of a service. Generations only grow; `Generation::default()`
/// is "no run yet".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

impl Generation {
    /// The generation after this one (the next run's).
    #[must_use]
    pub fn next(self) -> Generation {
        Generation(self.0.wrapping_add(1))
    }

    /// True when a message carrying `other` is about this run.
    pub fn is_current(self, other: Generation) -> bool {
        self == other
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_an_older_run_is_not_current() {
        let first = Generation::default().next();
        let second = first.next();
        assert!(second.is_current(second));
        assert!(!second.is_current(first));
        assert!(second > first);
    }
}
