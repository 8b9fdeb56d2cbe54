//! Signals to process groups, signal names, and the [`ProcessGroupGuard`] that makes sure
//! a service's processes never outlive the actor that owns them.
//!
//! Every service process is the leader of its own process group (DESIGN §1), so stop,
//! kill, pause and resume address the whole group with `killpg`: a shell's background
//! children and a server's workers get the signal too.

use std::str::FromStr;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends `signal` to the process group `pgid`. A group that no longer exists is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    let Ok(raw) = i32::try_from(pgid) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("process group {pgid} is out of range"),
        ));
    };
    // killpg(0) and killpg(1) would address our own group or every process we may signal.
    if raw <= 1 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    }
    match nix::sys::signal::killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// The conventional name of a signal: `"SIGTERM"`.
pub fn signal_name(signal: Signal) -> &'static str {
    signal.as_str()
}

/// The name of a raw signal number (as found in an exit status), or `"SIG<n>"` for a
/// number nix does not know (real-time signals).
pub fn raw_signal_name(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => signal_name(signal).to_string(),
        Err(_) => format!("SIG{number}"),
    }
}

/// Parses a signal written as `SIGTERM`, `TERM`, `sigterm` or a number (`15`).
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number)
            .map_err(|_| format!("unknown signal number {number}: use a name such as SIGTERM"));
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| {
        format!("unknown signal `{trimmed}`: use a name such as SIGTERM, SIGINT or SIGQUIT")
    })
}

/// Owns a process group: dropping the guard SIGKILLs the whole group unless it was
/// disarmed first.
///
/// The PortManager keeps one in its state for the running process. ractor does not call
/// `post_stop` after a panic, but it does drop the state, so even a panicking PortManager
/// leaves no process behind.
#[derive(Debug)]
pub struct ProcessGroupGuard {
    /// `None` once disarmed.
    pgid: Option<u32>,
}

impl ProcessGroupGuard {
    /// Guards the group `pgid` (the pid of a process started with `process_group(0)`).
    pub fn new(pgid: u32) -> Self {
        ProcessGroupGuard { pgid: Some(pgid) }
    }

    /// The guarded group, or `None` once disarmed.
    pub fn pgid(&self) -> Option<u32> {
        self.pgid
    }

    /// Sends `signal` to the group (a no-op once disarmed).
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        match self.pgid {
            Some(pgid) => signal_group(pgid, signal),
            None => Ok(()),
        }
    }

    /// SIGKILLs the group now and disarms the guard.
    pub fn kill(&mut self) -> std::io::Result<()> {
        match self.pgid.take() {
            Some(pgid) => signal_group(pgid, Signal::SIGKILL),
            None => Ok(()),
        }
    }

    /// Gives up ownership without signalling (the group is known to be gone): after the
    /// leader was reaped and the group killed, its number may be reused by a stranger.
    pub fn disarm(&mut self) -> Option<u32> {
        self.pgid.take()
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            if let Err(error) = signal_group(pgid, Signal::SIGKILL) {
                tracing::warn!(pgid, %error, "could not SIGKILL process group on drop");
            } else {
                tracing::debug!(pgid, "process group SIGKILLed by its guard");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_parsing_round_trip() {
        assert_eq!(signal_name(Signal::SIGTERM), "SIGTERM");
        assert_eq!(raw_signal_name(9), "SIGKILL");
        assert_eq!(raw_signal_name(40), "SIG40");
        assert_eq!(parse_signal("SIGINT"), Ok(Signal::SIGINT));
        assert_eq!(parse_signal("term"), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal(" sigquit "), Ok(Signal::SIGQUIT));
        assert_eq!(parse_signal("9"), Ok(Signal::SIGKILL));
        assert!(parse_signal("SIGNOPE").is_err_and(|e| e.contains("SIGNOPE")));
        assert!(parse_signal("999").is_err());
    }

    #[test]
    fn refuses_groups_that_would_address_everyone() {
        assert!(signal_group(0, Signal::SIGCONT).is_err());
        assert!(signal_group(1, Signal::SIGCONT).is_err());
        assert!(signal_group(u32::MAX, Signal::SIGCONT).is_err());
    }

    #[test]
    fn disarmed_guard_does_nothing() {
        let mut guard = ProcessGroupGuard::new(123_456_789);
        assert_eq!(guard.disarm(), Some(123_456_789));
        assert_eq!(guard.pgid(), None);
        assert!(guard.signal(Signal::SIGKILL).is_ok());
    }
}
