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
//!
//! How fan-out works: the ring is also the subscribers' buffer. A subscriber is a cursor
//! (the next seq it wants) into the ring, not a queue of copies, so appending costs the
//! same with one subscriber or ten: one copy of each line into the ring and one wake-up
//! per batch. While anyone subscribes, the ring retains at least [`SUBSCRIBER_BUFFER`]
//! lines (only the last `capacity` of them are visible to [`LogRing::tail`] and
//! [`LogRing::since`]), which is what lets a subscriber fall that far behind without loss.
//! A subscriber whose cursor falls off the retained lines skips to the oldest one and
//! reports the difference as a gap.
//!
//! A line's text is a [`LogText`], a shared `Arc<str>` made once by the pipe reader: the
//! ring, the log file writer and every subscriber hold the same allocation, so a line
//! costs one allocation and no copy however many readers it has.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::events::{Event, EventBus, EventKind};

mod text;

pub use text::LogText;

/// Lines a new subscriber receives from the ring before live lines.
pub const SUBSCRIBE_BACKLOG: usize = 100;
/// Lines a subscriber may fall behind before it skips ahead.
pub const SUBSCRIBER_BUFFER: usize = 4096;
/// Longest line kept, in bytes; the rest is cut and the line marked.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Lines a subscriber takes from the ring per lock.
const READ_CHUNK: usize = 256;

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

/// A line as the ring keeps it.
#[derive(Clone)]
struct Entry {
    seq: u64,
    ts: DateTime<Utc>,
    stream: LogStream,
    truncated: bool,
    text: LogText,
}

impl Entry {
    fn to_line(&self) -> LogLine {
        LogLine {
            seq: self.seq,
            ts: self.ts,
            stream: self.stream,
            line: self.text.clone(),
            truncated: self.truncated,
        }
    }
}

struct Inner {
    /// Lines visible to `tail` and `since`.
    capacity: usize,
    next_seq: u64,
    /// Consecutive lines ending at `next_seq - 1`: the visible ones, plus older ones kept
    /// while subscribers may still need them.
    entries: VecDeque<Entry>,
    /// Live subscriptions; while there are any, more lines are retained for them.
    subscribers: usize,
    /// Set when the ring is dropped: subscribers drain what is left, then end.
    closed: bool,
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
    fn oldest_retained(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    /// The visible lines, oldest first.
    fn visible(&self) -> impl DoubleEndedIterator<Item = &Entry> + ExactSizeIterator {
        let skip = self.entries.len().saturating_sub(self.capacity);
        self.entries.iter().skip(skip)
    }

    /// The seq of the oldest visible line (`next_seq` when there is none).
    fn oldest_visible(&self) -> u64 {
        self.next_seq - self.entries.len().min(self.capacity) as u64
    }
}

/// What the ring and its subscriptions share.
struct Shared {
    inner: Mutex<Inner>,
    /// Woken once per appended batch (only while there are subscribers) and on close.
    appended: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the ring consistent, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The ring of a service's last lines.
pub struct LogRing {
    service: String,
    events: Arc<EventBus>,
    shared: Arc<Shared>,
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

    fn lock(&self) -> MutexGuard<'_, Inner> {
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

    /// Subscribes: the last [`SUBSCRIBE_BACKLOG`] lines (or every line after `since`),
    /// then live lines.
    pub fn subscribe(&self, since: Option<u64>) -> LogSubscription {
        let mut inner = self.lock();
        inner.subscribers += 1;
        let oldest = inner.oldest_visible();
        let mut backlog = VecDeque::new();
        let cursor = match since {
            None => oldest.max(inner.next_seq.saturating_sub(SUBSCRIBE_BACKLOG as u64)),
            Some(after) => {
                // A `since` from the future (an older runtime's seq) means "from now on".
                let want = after.saturating_add(1).min(inner.next_seq);
                if want < oldest {
                    backlog.push_back(LogRecord::Gap { gap: oldest - want });
                    oldest
                } else {
                    want
                }
            }
        };
        LogSubscription {
            service: self.service.clone(),
            events: self.events.clone(),
            shared: self.shared.clone(),
            backlog,
            cursor,
        }
    }
}

impl Drop for LogRing {
    fn drop(&mut self) {
        self.lock().closed = true;
        self.shared.appended.notify_waiters();
    }
}

/// What one look at the ring found for a subscriber.
enum Pull {
    /// Lines were moved to the backlog.
    Lines,
    /// The cursor fell off the retained lines: this many were lost.
    Lost(u64),
    /// Nothing new yet.
    Empty,
    /// Nothing new, and nothing will come.
    Closed,
}

/// A live subscription to one service's log.
pub struct LogSubscription {
    service: String,
    events: Arc<EventBus>,
    shared: Arc<Shared>,
    /// Records ready to hand out before looking at the ring again.
    backlog: VecDeque<LogRecord>,
    /// The seq of the next line this subscriber should receive.
    cursor: u64,
}

impl std::fmt::Debug for LogSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSubscription")
            .field("service", &self.service)
            .field("cursor", &self.cursor)
            .field("backlog", &self.backlog.len())
            .finish_non_exhaustive()
    }
}

impl LogSubscription {
    /// The next record, or `None` when the service was removed or the runtime ended.
    pub async fn recv(&mut self) -> Option<LogRecord> {
        loop {
            if let Some(record) = self.backlog.pop_front() {
                return Some(record);
            }
            // Registered before looking, so an append between the look and the wait
            // still wakes us.
            let shared = self.shared.clone();
            let appended = shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            match self.pull() {
                Pull::Lines => continue,
                Pull::Lost(missed) => {
                    let mut event = Event::new(&self.service, EventKind::LogDropped).cause(
                        format!("a log subscriber fell behind and lost {missed} lines"),
                    );
                    event.dropped = Some(missed);
                    self.events.emit(event);
                    metrics::counter!("steward_log_dropped_total", "service" => self.service.clone())
                        .increment(missed);
                    return Some(LogRecord::Gap { gap: missed });
                }
                Pull::Empty => appended.await,
                Pull::Closed => return None,
            }
        }
    }

    /// Takes the next chunk of lines after the cursor from the ring.
    fn pull(&mut self) -> Pull {
        let chunk: Vec<Entry> = {
            let inner = self.shared.lock();
            let oldest = inner.oldest_retained();
            if self.cursor < oldest {
                let missed = oldest - self.cursor;
                self.cursor = oldest;
                return Pull::Lost(missed);
            }
            if self.cursor >= inner.next_seq {
                return if inner.closed {
                    Pull::Closed
                } else {
                    Pull::Empty
                };
            }
            let start = (self.cursor - oldest) as usize;
            inner
                .entries
                .range(start..)
                .take(READ_CHUNK)
                .cloned()
                .collect()
        };
        self.cursor += chunk.len() as u64;
        self.backlog
            .extend(chunk.iter().map(|e| LogRecord::Line(e.to_line())));
        Pull::Lines
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

impl Drop for LogSubscription {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        inner.subscribers = inner.subscribers.saturating_sub(1);
        // Lines kept only for subscribers are released at the next append.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawLine {
        RawLine {
            ts: Utc::now(),
            stream: LogStream::Stdout,
            line: text.into(),
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

    fn raws(range: std::ops::RangeInclusive<usize>) -> Vec<RawLine> {
        range.map(|i| raw(&i.to_string())).collect()
    }

    /// Everything a subscription has ready now (the ring is read synchronously, so this
    /// is deterministic: only an empty ring makes `recv` wait).
    fn drain_ready(sub: &mut LogSubscription) -> Vec<LogRecord> {
        use futures::FutureExt;
        let mut out = Vec::new();
        while let Some(Some(rec)) = sub.recv().now_or_never() {
            out.push(rec);
        }
        out
    }

    fn seqs(records: &[LogRecord]) -> Vec<u64> {
        records
            .iter()
            .filter_map(|r| match r {
                LogRecord::Line(l) => Some(l.seq),
                LogRecord::Gap { .. } => None,
            })
            .collect()
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

    #[tokio::test]
    async fn subscribe_since_after_the_ring_wrapped_yields_one_gap_then_lines() {
        let r = ring(10);
        r.append(raws(1..=25));
        let mut sub = r.subscribe(Some(3));
        r.append(raws(26..=26));
        let got = drain_ready(&mut sub);
        assert_eq!(got[0], LogRecord::Gap { gap: 12 });
        assert_eq!(seqs(&got), (16..=26).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn subscribe_since_resumes_without_gap_or_duplicate() {
        let r = ring(100);
        r.append(raws(1..=40));
        let mut sub = r.subscribe(Some(37));
        r.append(raws(41..=42));
        let got = drain_ready(&mut sub);
        assert_eq!(seqs(&got), vec![38, 39, 40, 41, 42]);
        assert_eq!(got.len(), 5);
    }

    #[tokio::test]
    async fn a_since_from_the_future_follows_new_lines() {
        let r = ring(100);
        r.append(raws(1..=5));
        let mut sub = r.subscribe(Some(1000));
        r.append(raws(6..=7));
        assert_eq!(seqs(&drain_ready(&mut sub)), vec![6, 7]);
    }

    #[tokio::test]
    async fn a_slow_subscriber_does_not_hold_back_a_fast_one() {
        let events = Arc::new(EventBus::new());
        let r = LogRing::new("svc", 10, events.clone());
        let mut slow = r.subscribe(None);
        let mut fast = r.subscribe(None);
        let total = 3 * SUBSCRIBER_BUFFER;
        let mut fast_seqs = Vec::new();
        for start in (1..=total).step_by(100) {
            r.append(raws(start..=start + 99));
            fast_seqs.extend(seqs(&drain_ready(&mut fast)));
        }
        assert_eq!(fast_seqs, (1..=r.last_seq()).collect::<Vec<_>>());
        let got = drain_ready(&mut slow);
        let lost = r.last_seq() - SUBSCRIBER_BUFFER as u64;
        assert_eq!(got[0], LogRecord::Gap { gap: lost });
        assert_eq!(seqs(&got), ((lost + 1)..=r.last_seq()).collect::<Vec<_>>());
        let dropped: Vec<_> = events
            .history(None)
            .into_iter()
            .filter(|e| e.kind == EventKind::LogDropped)
            .collect();
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].dropped, Some(lost));
    }

    #[tokio::test]
    async fn a_subscription_drains_then_ends_when_the_ring_is_dropped() {
        let r = ring(10);
        let mut sub = r.subscribe(None);
        r.append(raws(1..=3));
        drop(r);
        assert_eq!(seqs(&drain_ready(&mut sub)), vec![1, 2, 3]);
        assert_eq!(sub.recv().await, None);
    }

    #[tokio::test]
    async fn a_waiting_subscriber_wakes_when_the_ring_is_dropped() {
        let r = ring(10);
        let mut sub = r.subscribe(None);
        let waiter = tokio::spawn(async move { sub.recv().await });
        tokio::task::yield_now().await;
        drop(r);
        assert_eq!(waiter.await.expect("waiter"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_concurrent_reader_accounts_for_every_line() {
        let r = Arc::new(ring(50));
        let mut sub = r.subscribe(Some(0));
        let total: u64 = 200_000;
        let reader = tokio::spawn(async move {
            let (mut next, mut lines, mut gaps) = (1u64, 0u64, 0u64);
            while let Some(rec) = sub.recv().await {
                match rec {
                    LogRecord::Line(l) => {
                        assert_eq!(
                            l.seq, next,
                            "a line skipped without a gap record, or repeated"
                        );
                        assert_eq!(l.line, l.seq.to_string());
                        next = l.seq + 1;
                        lines += 1;
                    }
                    LogRecord::Gap { gap } => {
                        next += gap;
                        gaps += gap;
                    }
                }
            }
            (next, lines, gaps)
        });
        for start in (1..=total as usize).step_by(500) {
            r.append(raws(start..=start + 499));
        }
        drop(r);
        let (next, lines, gaps) = reader.await.expect("reader");
        assert_eq!(next, total + 1);
        assert_eq!(lines + gaps, total);
    }

    /// Throughput probe, not a check (no timing threshold): run with
    /// `cargo test --release --lib append_throughput -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "throughput probe; run in release"]
    async fn append_throughput_with_one_live_subscriber() {
        let r = Arc::new(ring(1000));
        let mut sub = r.subscribe(None);
        let reader = tokio::spawn(async move {
            let (mut lines, mut lost) = (0u64, 0u64);
            while let Some(rec) = sub.recv().await {
                match rec {
                    LogRecord::Line(_) => lines += 1,
                    LogRecord::Gap { gap } => lost += gap,
                }
            }
            (lines, lost)
        });
        let ts = Utc::now();
        let batches: Vec<Vec<RawLine>> = (0..12_000)
            .map(|b| {
                (0..256)
                    .map(|i| RawLine {
                        ts,
                        stream: LogStream::Stdout,
                        line: format!("GET /api/v1/items/{b}/{i} 200 1.23ms user-agent=curl/8.5")
                            .into(),
                        truncated: false,
                    })
                    .collect()
            })
            .collect();
        let total: usize = batches.iter().map(Vec::len).sum();
        let started = std::time::Instant::now();
        for batch in batches {
            std::hint::black_box(r.append(batch));
        }
        let elapsed = started.elapsed();
        drop(r);
        let (lines, lost) = reader.await.expect("reader");
        println!(
            "{total} lines in {elapsed:?}: {:.2} M lines/s; the subscriber read {lines}, lost {lost}",
            total as f64 / elapsed.as_secs_f64() / 1e6
        );
        assert_eq!(lines + lost, total as u64);
    }
}
