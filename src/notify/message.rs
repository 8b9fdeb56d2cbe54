//! What a service says over its notify socket: one datagram of `KEY=VALUE` lines, read
//! as `sd_notify(3)` writes them. Pure parsing, tested without a socket.
//!
//! Accepted: `READY=1`, `STATUS=…`, `STOPPING=1`, `RELOADING=1`, `WATCHDOG=1` and
//! `WATCHDOG=trigger`. Everything else (`MAINPID=`, `ERRNO=`, `FDSTORE=`, `EXTEND_TIMEOUT_USEC=`,
//! `WATCHDOG_USEC=`, `MONOTONIC_USEC=`, unknown keys) is ignored, as systemd ignores what a
//! unit does not use; `docs/OPERATIONS.md` lists the choices.

/// The most a datagram may hold; a longer one is dropped (systemd's limit is the same
/// order: a page).
pub const MAX_DATAGRAM: usize = 4096;

/// The parts of one datagram that steward acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyMessage {
    /// `READY=1`: start-up is done.
    pub ready: bool,
    /// `STATUS=…`: a line of free text about what the service does (the last one wins).
    pub status: Option<String>,
    /// `STOPPING=1`: the service is shutting down by itself.
    pub stopping: bool,
    /// `RELOADING=1`: the service reloads its configuration (`READY=1` follows).
    pub reloading: bool,
    /// `WATCHDOG=1`: a keep-alive.
    pub watchdog_ping: bool,
    /// `WATCHDOG=trigger`: the service asks to be treated as hung at once.
    pub watchdog_trigger: bool,
}

impl NotifyMessage {
    /// Reads a datagram's text. Lines without `=` and unknown keys are skipped.
    pub fn parse(text: &str) -> NotifyMessage {
        let mut message = NotifyMessage::default();
        for line in text.split('\n') {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match (key, value) {
                ("READY", "1") => message.ready = true,
                ("STATUS", status) => message.status = Some(status.to_string()),
                ("STOPPING", "1") => message.stopping = true,
                ("RELOADING", "1") => message.reloading = true,
                ("WATCHDOG", "1") => message.watchdog_ping = true,
                ("WATCHDOG", "trigger") => message.watchdog_trigger = true,
                _ => {}
            }
        }
        message
    }

    /// True when nothing in it is for steward.
    pub fn is_empty(&self) -> bool {
        *self == NotifyMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_notify_lines_are_read_and_the_rest_ignored() {
        let m = NotifyMessage::parse("READY=1\nSTATUS=serving 3 clients\nMAINPID=42\n");
        assert!(m.ready);
        assert_eq!(m.status.as_deref(), Some("serving 3 clients"));
        assert!(!m.stopping && !m.reloading && !m.watchdog_ping);

        let m = NotifyMessage::parse("WATCHDOG=1");
        assert!(m.watchdog_ping && !m.watchdog_trigger);
        let m = NotifyMessage::parse("WATCHDOG=trigger\nSTOPPING=1\nRELOADING=1");
        assert!(m.watchdog_trigger && m.stopping && m.reloading && !m.watchdog_ping);
    }

    #[test]
    fn values_other_than_one_do_not_count() {
        let m = NotifyMessage::parse("READY=0\nSTOPPING=yes\nWATCHDOG=2\nnonsense\n=1");
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn the_last_status_wins_and_may_be_empty() {
        let m = NotifyMessage::parse("STATUS=one\nSTATUS=two=2");
        assert_eq!(m.status.as_deref(), Some("two=2"));
        let m = NotifyMessage::parse("STATUS=");
        assert_eq!(m.status.as_deref(), Some(""));
    }
}
