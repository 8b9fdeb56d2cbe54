//! One line of a service's log, as read from a pipe ([`RawLine`]) and once numbered
//! ([`LogLine`]), which pipe it came from, and what a subscriber receives ([`LogRecord`]).
//!
//! The pipe reader decodes each line once (lossy UTF-8, without its newline) and cuts a line
//! longer than [`MAX_LINE_BYTES`], marking it `truncated` and ending its text with
//! `…[cut N bytes]`, so a process that never writes a newline cannot grow steward's memory.
//! The ring gives a line its per-service sequence number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LogText;

/// Longest line kept, in bytes; the rest is cut and the line marked.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// The snake_case name (`stdout` or `stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// A line as read from a pipe, before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// When it was read.
    pub ts: DateTime<Utc>,
    /// Which pipe.
    pub stream: LogStream,
    /// The text (lossy UTF-8, without the newline; ends with `…[cut N bytes]` when cut).
    pub line: LogText,
    /// True when the line was longer than [`MAX_LINE_BYTES`] and was cut.
    pub truncated: bool,
}

/// A numbered line in the ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Per-service sequence number, from 1.
    pub seq: u64,
    /// When it was read.
    pub ts: DateTime<Utc>,
    /// Which pipe.
    pub stream: LogStream,
    /// The text.
    pub line: LogText,
    /// True when the line was cut.
    pub truncated: bool,
}

/// What a log subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogRecord {
    /// The next line.
    Line(LogLine),
    /// Lines the subscriber asked for or would have received but lost.
    Gap {
        /// How many lines were lost.
        gap: u64,
    },
}
