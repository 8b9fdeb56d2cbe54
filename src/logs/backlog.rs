//! The backlog between a process's pipe reader and its LogBuffer: how many bytes of lines
//! have been read but not yet handled, and the back-pressure that keeps it bounded.
//!
//! The reader charges each batch it sends to the [`Backlog`] and gets a [`Credit`] that
//! travels with the batch in the message; the credit gives its bytes back when it is
//! dropped — after the LogBuffer appended the batch to the ring and wrote it to the log
//! file, or with the message if the LogBuffer is gone. While the backlog is at its limit
//! the reader does not read the pipe, so the pipe fills and the writing process blocks in
//! `write(2)`, as it would writing to a slow terminal (s6-log works the same way). A slow
//! log file therefore slows the service instead of growing steward's memory or losing
//! lines, and the memory a flooding service costs is bounded by [`DEFAULT_LIMIT`] plus
//! its ring.
//!
//! Subscribers are not part of this: they read from the ring and are lossy with counted
//! gaps (see `subscription`), so a slow reader of the API never slows a service.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::logs::RawLine;

/// Bytes of lines a reader may have in flight before it pauses (per process).
pub const DEFAULT_LIMIT: usize = 4 * 1024 * 1024;

/// What one line costs in the backlog beyond its text: the `RawLine` and the shared text's
/// header, so a flood of empty lines is bounded too.
pub const LINE_OVERHEAD: usize = 64;

/// A reader's count of bytes read but not yet handled. Cloning shares the count.
#[derive(Debug, Clone)]
pub struct Backlog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bytes: AtomicUsize,
    limit: usize,
    /// The reader waiting for room.
    waker: AtomicWaker,
}

impl Backlog {
    /// A backlog that pauses its reader at `limit` bytes in flight.
    pub fn new(limit: usize) -> Self {
        Backlog {
            inner: Arc::new(Inner {
                bytes: AtomicUsize::new(0),
                limit: limit.max(1),
                waker: AtomicWaker::new(),
            }),
        }
    }

    /// Bytes in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.bytes.load(Ordering::Acquire)
    }

    /// Ready while the backlog is below its limit; otherwise the task is woken when a
    /// credit gives enough back.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.in_flight() < self.inner.limit {
            return Poll::Ready(());
        }
        self.inner.waker.register(cx.waker());
        // A credit dropped between the check and the registration woke nobody: look again.
        if self.in_flight() < self.inner.limit {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Charges a batch of lines; the returned credit gives the bytes back when dropped.
    pub fn charge(&self, lines: &[RawLine]) -> Credit {
        let bytes = lines
            .iter()
            .map(|l| l.line.len() + LINE_OVERHEAD)
            .sum::<usize>();
        self.inner.bytes.fetch_add(bytes, Ordering::AcqRel);
        Credit {
            inner: Some(self.inner.clone()),
            bytes,
        }
    }
}

impl Default for Backlog {
    fn default() -> Self {
        Backlog::new(DEFAULT_LIMIT)
    }
}

/// A batch's share of its reader's [`Backlog`], given back when dropped.
#[derive(Debug)]
pub struct Credit {
    inner: Option<Arc<Inner>>,
    bytes: usize,
}

impl Credit {
    /// A credit that belongs to no backlog (lines from a sender that is not paced).
    pub fn none() -> Self {
        Credit {
            inner: None,
            bytes: 0,
        }
    }

    /// The bytes this credit holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let before = inner.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
            if before >= inner.limit && before - self.bytes < inner.limit {
                inner.waker.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{LogStream, LogText};
    use chrono::Utc;
    use std::task::Waker;

    fn lines(n: usize, text: &str) -> Vec<RawLine> {
        (0..n)
            .map(|_| RawLine {
                ts: Utc::now(),
                stream: LogStream::Stdout,
                line: LogText::from(text),
                truncated: false,
            })
            .collect()
    }

    #[test]
    fn a_credit_gives_its_bytes_back_when_dropped() {
        let backlog = Backlog::new(1000);
        let credit = backlog.charge(&lines(2, "abcd"));
        assert_eq!(credit.bytes(), 2 * (4 + LINE_OVERHEAD));
        assert_eq!(backlog.in_flight(), credit.bytes());
        drop(credit);
        assert_eq!(backlog.in_flight(), 0);
    }

    #[test]
    fn the_reader_pauses_at_the_limit_and_is_woken_when_room_comes_back() {
        let backlog = Backlog::new(LINE_OVERHEAD * 4);
        let flag = Arc::new(WakeFlag::default());
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(backlog.poll_room(&mut cx).is_ready());
        let first = backlog.charge(&lines(2, ""));
        assert!(backlog.poll_room(&mut cx).is_ready());
        let second = backlog.charge(&lines(2, ""));
        assert!(backlog.poll_room(&mut cx).is_pending());
        assert!(!flag.woken());
        drop(second);
        assert!(flag.woken());
        assert!(backlog.poll_room(&mut cx).is_ready());
        drop(first);
        assert_eq!(backlog.in_flight(), 0);
    }

    #[test]
    fn an_unpaced_credit_counts_nothing() {
        let credit = Credit::none();
        assert_eq!(credit.bytes(), 0);
    }

    #[derive(Default)]
    struct WakeFlag(std::sync::atomic::AtomicBool);

    impl WakeFlag {
        fn woken(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl std::task::Wake for WakeFlag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}
