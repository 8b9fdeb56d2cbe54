//! steward's own open-file limit (`RLIMIT_NOFILE`), and the one its services get.
//!
//! A supervisor holds a few descriptors per running service (stdout and stderr pipes, a
//! pidfd, stdin's pipe) and per HTTP connection; the usual soft limit (1024) is far below
//! the hard one, which exists to be raised to. So `steward up` raises its soft limit to
//! the hard limit at boot (issue 14, item 4), and, where it may (root with
//! `CAP_SYS_RESOURCE`), its hard limit too, to the kernel's ceiling `fs.nr_open` (at most
//! [`HARD_CEILING`]): 10,000 services need some 40,000 descriptors, more than many
//! machines' default hard limit (issue 16).
//!
//! The services do not inherit the raised limits: like systemd, which raises its own
//! limit and starts services with `LimitNOFILE=1024:524288`, steward gives each child the
//! limits steward was started with (a program that uses `select(2)` breaks past 1024
//! descriptors). Both spawn paths put them back in the child, before exec.

use std::sync::OnceLock;

use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};

/// The highest hard limit steward raises itself to (the kernel's default `fs.nr_open`).
pub const HARD_CEILING: u64 = 1 << 20;

/// The (soft, hard) limits steward was started with, once [`raise_nofile`] changed them.
static STARTED_WITH: OnceLock<(u64, u64)> = OnceLock::new();

/// The open-file limits before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileRaise {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now (the hard limit).
    pub after: u64,
    /// The hard limit found.
    pub hard_before: u64,
    /// The hard limit now: higher than `hard_before` only when it could be raised.
    pub hard_after: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, after raising the hard limit to
/// `fs.nr_open` (at most [`HARD_CEILING`]) where this process may. Services spawned
/// afterwards get the limits found here (see the module header).
pub fn raise_nofile() -> Result<NofileRaise, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let ceiling = kernel_ceiling();
    let mut now = (soft, hard);
    // Refused without CAP_SYS_RESOURCE: then the soft limit goes as far as the hard one.
    if hard != RLIM_INFINITY
        && ceiling > hard
        && setrlimit(Resource::RLIMIT_NOFILE, ceiling, ceiling).is_ok()
    {
        now = (ceiling, ceiling);
    } else if soft < hard {
        let target = if hard == RLIM_INFINITY { ceiling } else { hard };
        setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
        now = (target, hard);
    }
    if now != (soft, hard) {
        // The first limits found are the ones steward was started with.
        let _ = STARTED_WITH.set((soft, hard));
    }
    Ok(NofileRaise {
        before: soft,
        after: now.0,
        hard_before: hard,
        hard_after: now.1,
    })
}

/// `fs.nr_open` (the most descriptors a process may have), at most [`HARD_CEILING`].
fn kernel_ceiling() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(HARD_CEILING, |n| n.min(HARD_CEILING))
}

/// The limits a spawned process gets back, when [`raise_nofile`] changed steward's own:
/// `rlimit` as the child's `setrlimit` takes it, prepared before the spawn.
pub(crate) fn for_children() -> Option<nix::libc::rlimit> {
    STARTED_WITH.get().map(|&(soft, hard)| nix::libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    })
}

/// The soft `RLIMIT_NOFILE` of this process, when it can be read and is finite.
pub fn soft_nofile() -> Option<u64> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit_and_the_hard_one_at_most_at_the_ceiling() {
        let raised = raise_nofile().expect("raise");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!((raised.after, raised.hard_after), (soft, hard));
        assert_eq!(soft, hard);
        assert!(raised.before <= raised.after);
        assert!(raised.hard_before <= raised.hard_after);
        assert!(hard <= HARD_CEILING.max(raised.hard_before));
        if raised.hard_after > raised.hard_before {
            assert_eq!(hard, kernel_ceiling());
        }
    }
}
