//! [`ServiceContext`]: what a function service gets for one run — its id, the signal that
//! steward wants it to stop, a log writer whose lines land in the service's ring like a
//! process's stdout and stderr, and a way to report readiness (like `READY=1`).
//!
//! The context is cheap to clone; hand a clone to every task the function spawns, so they
//! can log and end on [`ServiceContext::cancelled`]. A context belongs to one run: after a
//! restart, what an old clone reports (readiness) is ignored, as every message about a
//! past run is.

use std::sync::Arc;

use ractor::ActorRef;
use tokio::sync::watch;

use crate::config::ProbeKind;
use crate::logs::{LogStream, RawLine};
use crate::process::LineDecoder;
use crate::runtime::service::decide::VerdictCause;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::log_buffer::LogBufferMsg;
use crate::runtime::service::server::ServerMsg;

/// What one run of a function service is given. See the [module docs](crate::function).
#[derive(Clone)]
pub struct ServiceContext {
    id: Arc<str>,
    run: Generation,
    /// Turns true when steward asks the function to stop (and stays true). A dropped
    /// sender (the PortManager gone) counts as a stop too.
    stop: watch::Receiver<bool>,
    /// True while the service is paused (only for a function that honours pause).
    pause: watch::Receiver<bool>,
    log: LogWriter,
    server: ActorRef<ServerMsg>,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("id", &self.id)
            .field("run", &self.run.0)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl ServiceContext {
    /// The context of run `run` (built by the PortManager).
    pub(crate) fn new(
        id: Arc<str>,
        run: Generation,
        stop: watch::Receiver<bool>,
        pause: watch::Receiver<bool>,
        log_buffer: ActorRef<LogBufferMsg>,
        server: ActorRef<ServerMsg>,
    ) -> Self {
        ServiceContext {
            id,
            run,
            stop,
            pause,
            log: LogWriter { log_buffer },
            server,
        }
    }

    /// The service id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Resolves once steward asks the function to stop (a stop, a restart, a failed
    /// liveness probe, steward's shutdown). The function should then finish its work and
    /// return `Ok(())`; after the service's `stop_timeout` its task is aborted.
    pub async fn cancelled(&self) {
        let mut stop = self.stop.clone();
        // An error means the sender is gone: the PortManager stopped, so stop too.
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// True once steward has asked the function to stop.
    pub fn is_cancelled(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    /// True while the service is paused. Only a function that honours pause
    /// ([`FunctionService::honouring_pause`](super::FunctionService::honouring_pause)) is
    /// ever paused; it should hold its work until [`ServiceContext::resumed`].
    pub fn is_paused(&self) -> bool {
        *self.pause.borrow()
    }

    /// Resolves at once when the service is not paused, else once it is resumed (or
    /// stopped: a stop resumes first, so the function can act on it).
    pub async fn resumed(&self) {
        let mut pause = self.pause.clone();
        let _ = pause.wait_for(|paused| !*paused).await;
    }

    /// The service's log: lines written here are in its ring (with a sequence number and
    /// a timestamp), its `log_file`, `steward logs` and every log subscription.
    pub fn log(&self) -> &LogWriter {
        &self.log
    }

    /// Reports the function ready, like `READY=1`: with
    /// [`FunctionService::reporting_ready`](super::FunctionService::reporting_ready) the
    /// service turns `ready` and `healthy` (dependents waiting on `healthy` start, and
    /// `/health/ready` counts it). Calling it again changes nothing.
    pub fn ready(&self) {
        self.report(true, "reported by the function".to_string());
    }

    /// Reports the function not ready any more (`ready` false, health `unhealthy`,
    /// with `reason` in the event's cause) until it calls [`ServiceContext::ready`] again.
    pub fn not_ready(&self, reason: impl std::fmt::Display) {
        self.report(false, format!("reported not ready: {reason}"));
    }

    fn report(&self, healthy: bool, detail: String) {
        // A readiness report is a readiness verdict of this run, as a probe's would be:
        // the Server drops it when the run is over.
        let verdict = ServerMsg::ProbeVerdict {
            run: self.run,
            healthy,
            cause: VerdictCause {
                probe: ProbeKind::Readiness,
                detail,
                streak: 1,
            },
        };
        let _ = self.server.cast(verdict);
    }
}

/// Writes lines to a function service's log, as stdout or stderr. Each call is one batch
/// to the service's LogBuffer: text with newlines becomes several lines, a line longer
/// than 16 KiB is cut and marked, exactly as a process's output is.
#[derive(Clone)]
pub struct LogWriter {
    log_buffer: ActorRef<LogBufferMsg>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").finish_non_exhaustive()
    }
}

impl LogWriter {
    /// Logs `text` as stdout (one line per `\n`; a final newline is not an extra line).
    pub fn stdout(&self, text: impl AsRef<str>) {
        self.write(LogStream::Stdout, text.as_ref());
    }

    /// Logs `text` as stderr (one line per `\n`; a final newline is not an extra line).
    pub fn stderr(&self, text: impl AsRef<str>) {
        self.write(LogStream::Stderr, text.as_ref());
    }

    fn write(&self, stream: LogStream, text: &str) {
        let lines = cut_lines(stream, text);
        // Gone only while the service's actors restart (or it is removed): the line is
        // lost then, as a process's output is while nothing reads its pipe.
        let _ = self.log_buffer.cast(LogBufferMsg::Drained(lines));
    }
}

/// `text` as the lines a process writing it would have produced.
fn cut_lines(stream: LogStream, text: &str) -> Vec<RawLine> {
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut decoder = LineDecoder::new(stream);
    let mut lines = Vec::new();
    decoder.feed(text.as_bytes(), &mut lines);
    decoder.feed(b"\n", &mut lines);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::MAX_LINE_BYTES;

    fn texts(lines: &[RawLine]) -> Vec<&str> {
        lines.iter().map(|l| l.line.as_str()).collect()
    }

    #[test]
    fn text_is_cut_into_lines_like_a_pipe() {
        assert_eq!(texts(&cut_lines(LogStream::Stdout, "one")), ["one"]);
        assert_eq!(texts(&cut_lines(LogStream::Stdout, "one\n")), ["one"]);
        assert_eq!(
            texts(&cut_lines(LogStream::Stdout, "a\nb\r\nc")),
            ["a", "b", "c"]
        );
        assert_eq!(texts(&cut_lines(LogStream::Stdout, "")), [""]);
        let lines = cut_lines(LogStream::Stderr, "x");
        assert_eq!(lines[0].stream, LogStream::Stderr);
    }

    #[test]
    fn an_overlong_line_is_cut_and_marked() {
        let long = "y".repeat(MAX_LINE_BYTES + 10);
        let lines = cut_lines(LogStream::Stdout, &long);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].truncated);
        assert!(
            lines[0].line.ends_with("…[cut 10 bytes]"),
            "{:?}",
            lines[0].line
        );
    }
}
