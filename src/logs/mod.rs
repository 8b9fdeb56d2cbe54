//! A service's log: its lines, the ring of its last lines, live subscriptions to it, and the
//! optional log file.
//!
//! ```text
//! pipe reader ──RawLine──▶ LogBuffer ──▶ LogRing ──LogLine──▶ tail / since / subscribers
//!                                   └──▶ LogFileSink (log_file, rotated by size)
//! ```
//!
//! * `line` — [`RawLine`] (as read, cut at [`MAX_LINE_BYTES`]), [`LogLine`] (numbered),
//!   [`LogStream`] and [`LogRecord`] (a line or a gap, what subscribers receive);
//! * `text` — [`LogText`], a line's text as one shared allocation;
//! * `ring` — [`LogRing`], a service's last lines, owned by the root so that history
//!   survives a one-for-all restart of the service's actors;
//! * `subscription` — [`LogSubscription`], a live reader, and the accounting of lines a slow
//!   reader loses (gap records, `log_dropped`);
//! * `backlog` — [`Backlog`] and [`Credit`], the bytes a pipe reader has read and the
//!   LogBuffer not yet handled; at its limit the reader stops reading (back-pressure);
//! * [`file_sink`] — [`LogFileSink`], the `log_file` sink with size-based rotation (also at
//!   its older path, `steward::log_file`).
//!
//! Guarantees:
//! * every line gets a per-service sequence number, starting at 1, without holes;
//! * a subscriber gets the last [`SUBSCRIBE_BACKLOG`] lines (or everything after `since`)
//!   and then live lines, with no gap or duplicate between the two;
//! * appending never waits for a subscriber: one that falls more than
//!   [`SUBSCRIBER_BUFFER`] lines behind skips ahead and receives one [`LogRecord::Gap`]
//!   saying how many lines it lost (and a `log_dropped` event is emitted);
//! * lines asked for with `since` that are already gone from the ring are announced the
//!   same way, with one gap record;
//! * the log file loses nothing while the disk accepts writes (DESIGN §3): a reader never
//!   has more than [`Backlog`]'s limit in flight, so a slow file slows the service's
//!   writes instead of queueing lines in memory.
//!
//! A line's text is a [`LogText`], a shared `Arc<str>` made once by the pipe reader: the
//! ring, the log file writer and every subscriber hold the same allocation, so a line
//! costs one allocation and no copy however many readers it has.

mod backlog;
pub mod file_sink;
mod line;
mod ring;
mod subscription;
mod text;

pub use backlog::{Backlog, Credit, DEFAULT_LIMIT as BACKLOG_LIMIT, LINE_OVERHEAD};
pub use file_sink::LogFileSink;
pub use line::{LogLine, LogRecord, LogStream, MAX_LINE_BYTES, RawLine};
pub use ring::LogRing;
pub use subscription::{LogSubscription, SUBSCRIBE_BACKLOG, SUBSCRIBER_BUFFER};
pub use text::LogText;

/// Lines and rings for the unit tests of the ring and its subscriptions.
#[cfg(test)]
mod fixtures {
    use std::sync::Arc;

    use chrono::Utc;

    use super::{LogRing, LogStream, RawLine};
    use crate::events::EventBus;

    pub(super) fn raw(text: &str) -> RawLine {
        RawLine {
            ts: Utc::now(),
            stream: LogStream::Stdout,
            line: text.into(),
            truncated: false,
        }
    }

    pub(super) fn ring(cap: usize) -> LogRing {
        LogRing::new("svc", cap, Arc::new(EventBus::new()))
    }

    pub(super) fn raws(range: std::ops::RangeInclusive<usize>) -> Vec<RawLine> {
        range.map(|i| raw(&i.to_string())).collect()
    }
}
