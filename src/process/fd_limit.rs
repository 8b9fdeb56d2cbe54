//! steward's own open-file limit (`RLIMIT_NOFILE`).
//!
//! A supervisor holds a few descriptors per service (pipes, log files) and per HTTP
//! connection; the usual soft limit (1024) is far below the hard one, which exists to be
//! raised to. So the binary raises its soft limit to the hard limit at boot (issue 14,
//! item 4), as systemd does for its services. The services inherit the raised limit;
//! `ulimit -n` in a service's command line lowers it again for one that wants less.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The open-file limits before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileRaise {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now (the hard limit).
    pub after: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_nofile() -> Result<NofileRaise, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(NofileRaise {
        before: soft,
        after: hard.max(soft),
    })
}

/// The soft `RLIMIT_NOFILE` of this process, when it can be read and is finite.
pub fn soft_nofile() -> Option<u64> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != nix::sys::resource::RLIM_INFINITY).then_some(soft)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let raised = raise_nofile().expect("raise");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!((raised.after, soft), (hard, hard));
        assert!(raised.before <= raised.after);
    }
}
