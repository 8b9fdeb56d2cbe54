//! A service's log history: the ring of its last lines, and live subscriptions to it.
//!
//! The [`LogRing`] of a service is owned by the root supervisor (like an ETS table owned
//! by a process that outlives its users), so a one-for-all restart of the service's actors
//! keeps its history. The LogBuffer actor appends to it; readers take a tail or subscribe.
//!
//! Guarantees:
//! * every line gets a per-service sequence number, starting at 1, without holes;
//! * a subscriber gets the last [`SUBSCRIBE_BACKLOG`] lines (or everything after `since`)
//!   and then live lines, with no gap or duplicate between the two;
//! * appending never waits for a subscriber: one that falls more than
//!   [`SUBSCRIBER_BUFFER`] lines behind skips ahead and receives one [`LogRecord::Gap`]
//!   saying how many lines it lost (and a `log_dropped` event is emitted);
//! * lines asked for with `since` that are already gone from the ring are announced the
//!   same way, with one gap record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::events::{Event, EventBus, EventKind};

/// Lines a new subscriber receives from the ring before live lines.
pub const SUBSCRIBE_BACKLOG: usize = 100;
/// Lines a subscriber may fall behind before it skips ahead.
pub const SUBSCRIBER_BUFFER: usize = 4096;
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

/// A line as read from a pipe, before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// When it was read.
    pub ts: DateTime<Utc>,
    /// Which pipe.
    pub stream: LogStream,
    /// The text (lossy UTF-8, without the newline; ends with `…[cut N bytes]` when cut).
    pub line: String,
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
    pub line: String,
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

struct Inner {
    capacity: usize,
    next_seq: u64,
    lines: VecDeque<LogLine>,
    /// Created by the first subscriber and dropped when the last one is gone, so an
    /// unwatched service pays nothing for fan-out.
    live: Option<broadcast::Sender<LogLine>>,
}

/// The ring of a service's last lines.
pub struct LogRing {
    service: String,
    events: Arc<EventBus>,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for LogRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRing")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl LogRing {
    /// An empty ring of `capacity` lines (at least 1) for `service`.
    pub fn new(service: &str, capacity: usize, events: Arc<EventBus>) -> Self {
        LogRing {
            service: service.to_string(),
            events,
            inner: Mutex::new(Inner {
                capacity: capacity.max(1),
                next_seq: 1,
                lines: VecDeque::new(),
                live: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every critical section leaves the ring consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the capacity (a redefinition with another `log_lines`), dropping the oldest
    /// lines if needed.
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.lock();
        inner.capacity = capacity.max(1);
        while inner.lines.len() > inner.capacity {
            inner.lines.pop_front();
        }
    }

    /// Numbers and appends a batch, sends it to live subscribers, and returns the numbered
    /// lines.
    pub fn append(&self, batch: Vec<RawLine>) -> Vec<LogLine> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(batch.len());
        for raw in batch {
            let line = LogLine {
                seq: inner.next_seq,
                ts: raw.ts,
                stream: raw.stream,
                line: raw.line,
                truncated: raw.truncated,
            };
            inner.next_seq += 1;
            if inner.lines.len() >= inner.capacity {
                inner.lines.pop_front();
            }
            inner.lines.push_back(line.clone());
            out.push(line);
        }
        if let Some(tx) = &inner.live {
            if tx.receiver_count() == 0 {
                inner.live = None;
            } else {
                for line in &out {
                    let _ = tx.send(line.clone());
                }
            }
        }
        out
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let inner = self.lock();
        let skip = inner.lines.len().saturating_sub(n);
        inner.lines.iter().skip(skip).cloned().collect()
    }

    /// Lines after `since`, oldest first, preceded by a gap record when some of them are
    /// already gone from the ring.
    pub fn since(&self, since: u64) -> Vec<LogRecord> {
        let inner = self.lock();
        Self::records_after(&inner, since).into()
    }

    /// The sequence number of the newest line (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    fn records_after(inner: &Inner, since: u64) -> VecDeque<LogRecord> {
        let mut out = VecDeque::new();
        let oldest = inner.lines.front().map(|l| l.seq).unwrap_or(inner.next_seq);
        if oldest > since + 1 {
            out.push_back(LogRecord::Gap {
                gap: oldest - since - 1,
            });
        }
        out.extend(
            inner
                .lines
                .iter()
                .filter(|l| l.seq > since)
                .cloned()
                .map(LogRecord::Line),
        );
        out
    }

    /// Subscribes: the last [`SUBSCRIBE_BACKLOG`] lines (or every line after `since`),
    /// then live lines.
    pub fn subscribe(&self, since: Option<u64>) -> LogSubscription {
        let mut inner = self.lock();
        let backlog = match since {
            Some(after) => Self::records_after(&inner, after),
            None => {
                let skip = inner.lines.len().saturating_sub(SUBSCRIBE_BACKLOG);
                inner
                    .lines
                    .iter()
                    .skip(skip)
                    .cloned()
                    .map(LogRecord::Line)
                    .collect()
            }
        };
        let rx = match &inner.live {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(SUBSCRIBER_BUFFER);
                inner.live = Some(tx);
                rx
            }
        };
        LogSubscription {
            service: self.service.clone(),
            events: self.events.clone(),
            backlog,
            rx,
        }
    }
}

/// A live subscription to one service's log.
#[derive(Debug)]
pub struct LogSubscription {
    service: String,
    events: Arc<EventBus>,
    backlog: VecDeque<LogRecord>,
    rx: broadcast::Receiver<LogLine>,
}

impl LogSubscription {
    /// The next record, or `None` when the service was removed or the runtime ended.
    pub async fn recv(&mut self) -> Option<LogRecord> {
        if let Some(record) = self.backlog.pop_front() {
            return Some(record);
        }
        match self.rx.recv().await {
            Ok(line) => Some(LogRecord::Line(line)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                let mut event = Event::new(&self.service, EventKind::LogDropped).cause(format!(
                    "a log subscriber fell behind and lost {missed} lines"
                ));
                event.dropped = Some(missed);
                self.events.emit(event);
                metrics::counter!("steward_log_dropped_total", "service" => self.service.clone())
                    .increment(missed);
                Some(LogRecord::Gap { gap: missed })
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The subscription as an async stream.
    pub fn into_stream(self) -> impl Stream<Item = LogRecord> + Send + Unpin + 'static {
        Box::pin(futures::stream::unfold(self, |mut sub| async move {
            sub.recv().await.map(|item| (item, sub))
        }))
    }

    /// Forwards every record to an actor, until the actor stops or the log ends.
    pub fn forward_to<M>(mut self, actor: ractor::ActorRef<M>) -> tokio::task::JoinHandle<()>
    where
        M: ractor::Message + From<LogRecord>,
    {
        tokio::spawn(async move {
            while let Some(record) = self.recv().await {
                if actor.cast(M::from(record)).is_err() {
                    break;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawLine {
        RawLine {
            ts: Utc::now(),
            stream: LogStream::Stdout,
            line: text.to_string(),
            truncated: false,
        }
    }

    fn ring(cap: usize) -> LogRing {
        LogRing::new("svc", cap, Arc::new(EventBus::new()))
    }

    #[test]
    fn ring_keeps_the_last_lines_with_contiguous_seq() {
        let r = ring(3);
        r.append((1..=5).map(|i| raw(&i.to_string())).collect());
        let tail = r.tail(10);
        assert_eq!(
            tail.iter().map(|l| l.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert_eq!(r.tail(1)[0].line, "5");
    }

    #[test]
    fn since_reports_lines_gone_from_the_ring_as_one_gap() {
        let r = ring(3);
        r.append((1..=5).map(|i| raw(&i.to_string())).collect());
        let records = r.since(1);
        assert_eq!(records[0], LogRecord::Gap { gap: 1 });
        assert_eq!(records.len(), 4);
    }

    #[tokio::test]
    async fn subscriber_gets_backlog_then_live_lines() {
        let r = ring(1000);
        r.append((1..=150).map(|i| raw(&i.to_string())).collect());
        let mut sub = r.subscribe(None);
        r.append(vec![raw("live")]);
        let mut seqs = Vec::new();
        for _ in 0..101 {
            match sub.recv().await {
                Some(LogRecord::Line(l)) => seqs.push(l.seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seqs.first(), Some(&51));
        assert_eq!(seqs.last(), Some(&151));
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[tokio::test]
    async fn slow_subscriber_loses_lines_and_is_told() {
        let events = Arc::new(EventBus::new());
        let r = LogRing::new("svc", 10, events.clone());
        let mut sub = r.subscribe(Some(0));
        for i in 0..(SUBSCRIBER_BUFFER + 5) {
            r.append(vec![raw(&i.to_string())]);
        }
        let mut gap = None;
        while let Some(rec) = sub.recv().await {
            if let LogRecord::Gap { gap: n } = rec {
                gap = Some(n);
                break;
            }
        }
        assert_eq!(gap, Some(5));
        assert!(
            events
                .history(None)
                .iter()
                .any(|e| e.kind == EventKind::LogDropped && e.dropped == Some(5))
        );
    }
}
