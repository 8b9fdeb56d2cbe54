//! [`LogRing`]: the ring of a service's last lines, numbered without holes.
//!
//! The ring of a service is owned by the root supervisor (like an ETS table owned by a
//! process that outlives its users), so a one-for-all restart of the service's actors keeps
//! its history. The LogBuffer actor appends to it; readers take a [`LogRing::tail`], the
//! lines [`LogRing::since`] a sequence number, or subscribe (see the `subscription` module).
//!
//! The ring is also its subscribers' buffer: while anyone subscribes it retains at least
//! [`SUBSCRIBER_BUFFER`] lines, of which only the last `capacity` are visible to `tail` and
//! `since`. Lines kept only for subscribers that have left are released at the next append.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::{LogLine, LogRecord, LogStream, LogText, RawLine, SUBSCRIBER_BUFFER};
use crate::events::EventBus;

/// A line as the ring keeps it.
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) seq: u64,
    ts: DateTime<Utc>,
    stream: LogStream,
    truncated: bool,
    text: LogText,
}

impl Entry {
    pub(super) fn to_line(&self) -> LogLine {
        LogLine {
            seq: self.seq,
            ts: self.ts,
            stream: self.stream,
            line: self.text.clone(),
            truncated: self.truncated,
        }
    }
}

pub(super) struct Inner {
    /// Lines visible to `tail` and `since`.
    capacity: usize,
    pub(super) next_seq: u64,
    /// Consecutive lines ending at `next_seq - 1`: the visible ones, plus older ones kept
    /// while subscribers may still need them.
    pub(super) entries: VecDeque<Entry>,
    /// Live subscriptions; while there are any, more lines are retained for them.
    pub(super) subscribers: usize,
    /// Set when the ring is dropped: subscribers drain what is left, then end.
    pub(super) closed: bool,
}

impl Inner {
    /// Lines to keep: the visible ones, or the subscribers' buffer if that is larger.
    fn retention(&self) -> usize {
        if self.subscribers > 0 {
            self.capacity.max(SUBSCRIBER_BUFFER)
        } else {
            self.capacity
        }
    }

    fn trim(&mut self) {
        let keep = self.retention();
        while self.entries.len() > keep {
            self.entries.pop_front();
        }
    }

    /// The seq of the oldest retained line (`next_seq` when there is none).
    pub(super) fn oldest_retained(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    /// The visible lines, oldest first.
    fn visible(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator {
        let skip = self.entries.len().saturating_sub(self.capacity);
        self.entries.iter().skip(skip)
    }

    /// The seq of the oldest visible line (`next_seq` when there is none).
    pub(super) fn oldest_visible(&self) -> u64 {
        self.next_seq - self.entries.len().min(self.capacity) as u64
    }
}

/// What the ring and its subscriptions share.
pub(super) struct Shared {
    inner: Mutex<Inner>,
    /// Woken once per appended batch (only while there are subscribers) and on close.
    pub(super) appended: Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the ring consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The ring of a service's last lines.
pub struct LogRing {
    pub(super) service: String,
    pub(super) events: Arc<EventBus>,
    pub(super) shared: Arc<Shared>,
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
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    capacity: capacity.max(1),
                    next_seq: 1,
                    entries: VecDeque::new(),
                    subscribers: 0,
                    closed: false,
                }),
                appended: Notify::new(),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.lock()
    }

    /// Changes the capacity (a redefinition with another `log_lines`), dropping the oldest
    /// lines if needed.
    pub fn set_capacity(&self, capacity: usize) {
        let mut inner = self.lock();
        inner.capacity = capacity.max(1);
        inner.trim();
    }

    /// Numbers and appends a batch, wakes live subscribers (once per batch), and returns
    /// the numbered lines.
    pub fn append(&self, batch: Vec<RawLine>) -> Vec<LogLine> {
        // Built before taking the lock, so readers wait only for the pushes.
        let mut entries = Vec::with_capacity(batch.len());
        let mut out = Vec::with_capacity(batch.len());
        for raw in batch {
            entries.push(Entry {
                seq: 0,
                ts: raw.ts,
                stream: raw.stream,
                truncated: raw.truncated,
                text: raw.line.clone(),
            });
            out.push(LogLine {
                seq: 0,
                ts: raw.ts,
                stream: raw.stream,
                line: raw.line,
                truncated: raw.truncated,
            });
        }
        let (first, wake) = {
            let mut inner = self.lock();
            let first = inner.next_seq;
            inner.next_seq += entries.len() as u64;
            // Also releases lines kept for subscribers that have left since.
            inner.trim();
            let keep = inner.retention();
            // Lines that would be pushed out by later lines of the same batch never enter.
            let skip = entries.len().saturating_sub(keep);
            for (i, mut entry) in entries.into_iter().enumerate().skip(skip) {
                entry.seq = first + i as u64;
                if inner.entries.len() >= keep {
                    inner.entries.pop_front();
                }
                inner.entries.push_back(entry);
            }
            (first, inner.subscribers > 0)
        };
        if wake {
            self.shared.appended.notify_waiters();
        }
        for (i, line) in out.iter_mut().enumerate() {
            line.seq = first + i as u64;
        }
        out
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let inner = self.lock();
        let visible = inner.visible();
        let skip = visible.len().saturating_sub(n);
        visible.skip(skip).map(Entry::to_line).collect()
    }

    /// Lines after `since`, oldest first, preceded by a gap record when some of them are
    /// already gone from the ring.
    pub fn since(&self, since: u64) -> Vec<LogRecord> {
        let inner = self.lock();
        let oldest = inner.oldest_visible();
        let mut out = Vec::new();
        if oldest > since.saturating_add(1) {
            out.push(LogRecord::Gap {
                gap: oldest - since - 1,
            });
        }
        out.extend(
            inner
                .visible()
                .filter(|e| e.seq > since)
                .map(|e| LogRecord::Line(e.to_line())),
        );
        out
    }

    /// The sequence number of the newest line (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }
}

impl Drop for LogRing {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.appended.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::fixtures::{raw, raws, ring};

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

    #[tokio::test]
    async fn the_ring_and_its_readers_share_each_lines_text() {
        // Regression guard for benchmark finding 6: one allocation per line, not one per
        // copy and per subscriber.
        let r = ring(10);
        let mut sub = r.subscribe(None);
        let text = LogText::from("shared");
        let line = RawLine {
            line: text.clone(),
            ..raw("")
        };
        let appended = r.append(vec![line]);
        assert!(std::ptr::eq(appended[0].line.as_str(), text.as_str()));
        assert!(std::ptr::eq(r.tail(1)[0].line.as_str(), text.as_str()));
        match sub.recv().await {
            Some(LogRecord::Line(l)) => assert!(std::ptr::eq(l.line.as_str(), text.as_str())),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn since_reports_lines_gone_from_the_ring_as_one_gap() {
        let r = ring(3);
        r.append((1..=5).map(|i| raw(&i.to_string())).collect());
        let records = r.since(1);
        assert_eq!(records[0], LogRecord::Gap { gap: 1 });
        assert_eq!(records.len(), 4);
    }

    #[test]
    fn append_returns_the_numbered_lines_contiguously_across_batches() {
        let r = ring(4);
        let a = r.append(raws(1..=3));
        let b = r.append(raws(4..=9));
        let all: Vec<u64> = a.iter().chain(&b).map(|l| l.seq).collect();
        assert_eq!(all, (1..=9).collect::<Vec<_>>());
        assert_eq!(b[5].line, "9");
        assert_eq!(r.last_seq(), 9);
        assert_eq!(
            r.tail(10).iter().map(|l| l.seq).collect::<Vec<_>>(),
            vec![6, 7, 8, 9]
        );
    }

    #[test]
    fn a_batch_larger_than_the_ring_keeps_its_end() {
        let r = ring(3);
        r.append(raws(1..=2));
        r.append(raws(3..=20));
        assert_eq!(
            r.tail(10)
                .iter()
                .map(|l| l.line.as_str())
                .collect::<Vec<_>>(),
            ["18", "19", "20"]
        );
        assert_eq!(r.since(0)[0], LogRecord::Gap { gap: 17 });
    }

    #[test]
    fn tail_and_since_show_only_capacity_while_subscribers_retain_more() {
        let r = ring(5);
        let _sub = r.subscribe(None);
        r.append(raws(1..=50));
        assert_eq!(r.tail(100).len(), 5);
        assert_eq!(r.since(0)[0], LogRecord::Gap { gap: 45 });
        assert_eq!(r.since(0).len(), 6);
    }

    #[test]
    fn lines_kept_for_subscribers_are_released_when_the_last_one_leaves() {
        let r = ring(5);
        let sub = r.subscribe(None);
        r.append(raws(1..=50));
        assert_eq!(r.lock().entries.len(), 50);
        drop(sub);
        r.append(raws(51..=51));
        assert_eq!(r.lock().entries.len(), 5);
        assert_eq!(r.lock().subscribers, 0);
    }

    #[test]
    fn set_capacity_shrinks_the_ring() {
        let r = ring(10);
        r.append(raws(1..=10));
        r.set_capacity(2);
        assert_eq!(
            r.tail(10).iter().map(|l| l.seq).collect::<Vec<_>>(),
            vec![9, 10]
        );
    }
}
