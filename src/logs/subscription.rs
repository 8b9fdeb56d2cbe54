//! [`LogSubscription`]: a live reader of one service's log, and how it is told about lines
//! it lost.
//!
//! A subscriber gets the last [`SUBSCRIBE_BACKLOG`] lines (or everything after `since`) and
//! then live lines, with no gap or duplicate between the two. A subscriber is a cursor (the
//! next seq it wants) into the ring, not a queue of copies, so appending costs the same
//! with one subscriber or ten: one copy of each line into the ring and one wake-up per
//! batch. Appending never waits for a subscriber: one whose cursor falls off the lines the
//! ring retains (more than [`SUBSCRIBER_BUFFER`] behind) skips to the oldest one and
//! receives one [`LogRecord::Gap`] saying how many lines it lost; that loss is also a
//! `log_dropped` event and counts in the `steward_log_dropped_total` metric. Lines asked for
//! with `since` that are already gone from the ring are announced with one gap record too.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;

use super::ring::{Entry, Shared};
use super::{LogRecord, LogRing};
use crate::events::{Event, EventBus, EventKind};

/// Lines a new subscriber receives from the ring before live lines.
pub const SUBSCRIBE_BACKLOG: usize = 100;
/// Lines a subscriber may fall behind before it skips ahead.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// Lines a subscriber takes from the ring per lock.
const READ_CHUNK: usize = 256;

impl LogRing {
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
                    metrics::counter!(crate::metrics::LOG_DROPPED_TOTAL, "service" => self.service.clone())
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
    use crate::logs::fixtures::{raw, raws, ring};
    use crate::logs::{LogStream, RawLine};
    use chrono::Utc;

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
