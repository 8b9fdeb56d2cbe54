//! The LogBuffer actor with a real [`LogRing`] and a real log file: nothing lost on the way
//! to the file, the flush timer, rotation under load, slow subscribers, resuming with
//! `since`, history kept across actor restarts, and a file that cannot be written.
//!
//! The actor handles messages in order, so a `Tail` call answered means every message
//! sent before it has been handled: tests use it as a barrier instead of sleeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use steward::events::{EventBus, EventKind};
use steward::logs::{LogLine, LogRecord, LogRing, LogStream, RawLine, SUBSCRIBER_BUFFER};
use steward::runtime::service::log_buffer::{LogBuffer, LogBufferArgs, LogBufferMsg, LogFileSpec};
use tokio::task::JoinHandle;

use crate::support::wait_for;

const DEADLINE: Duration = Duration::from_secs(20);

/// Lines `line 1` … numbered from `first`.
fn batch(first: u64, n: u64) -> Vec<RawLine> {
    (first..first + n)
        .map(|i| RawLine {
            ts: Utc::now(),
            stream: if i % 2 == 0 {
                LogStream::Stdout
            } else {
                LogStream::Stderr
            },
            line: format!("line {i}").into(),
            truncated: false,
        })
        .collect()
}

fn new_ring(cap: usize) -> (Arc<LogRing>, Arc<EventBus>) {
    let events = Arc::new(EventBus::new());
    (Arc::new(LogRing::new("svc", cap, events.clone())), events)
}

fn file_spec(path: &Path, max_size: u64, max_files: u32) -> LogFileSpec {
    LogFileSpec {
        path: path.to_path_buf(),
        max_size,
        max_files,
    }
}

async fn spawn_buffer(
    ring: &Arc<LogRing>,
    file: Option<LogFileSpec>,
) -> (ActorRef<LogBufferMsg>, JoinHandle<()>) {
    let args = LogBufferArgs {
        service: "svc".into(),
        ring: ring.clone(),
        file,
        tables: None,
    };
    Actor::spawn(None, LogBuffer, args)
        .await
        .expect("LogBuffer starts")
}

/// The last `n` lines through the actor; also a barrier for everything sent before.
async fn tail(actor: &ActorRef<LogBufferMsg>, n: usize) -> Vec<LogLine> {
    match actor
        .call(|reply| LogBufferMsg::Tail { n, reply }, Some(DEADLINE))
        .await
        .expect("LogBuffer answers")
    {
        CallResult::Success(lines) => lines,
        other => panic!("Tail failed: {other:?}"),
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The texts of every line in `path` and its old files, oldest first.
fn texts_in_files(path: &Path, max_files: u32) -> Vec<String> {
    let mut files: Vec<PathBuf> = (1..=max_files).rev().map(|n| numbered(path, n)).collect();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends inside a line",
            file.display()
        );
        for l in text.lines() {
            let mut parts = l.splitn(3, ' ');
            let (ts, stream, line) = (parts.next(), parts.next(), parts.next());
            assert!(
                ts.is_some_and(|t| t.len() == 24 && t.ends_with('Z'))
                    && matches!(stream, Some("stdout" | "stderr")),
                "malformed line {l:?} in {}",
                file.display()
            );
            out.push(line.unwrap_or_default().to_string());
        }
    }
    out
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<String> {
    range.map(|i| format!("line {i}")).collect()
}

#[tokio::test]
async fn all_100k_lines_reach_the_file_and_the_ring_keeps_only_the_last_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs/svc.log");
    let (ring, _) = new_ring(1000);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 30, 2))).await;
    for first in (1..=100_000).step_by(250) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 250)))
            .expect("send");
    }
    actor.cast(LogBufferMsg::Flush).expect("send");
    let last = tail(&actor, 5000).await;
    assert_eq!(last.len(), 1000, "the ring keeps only its capacity");
    assert_eq!(last.first().map(|l| l.seq), Some(99_001));
    assert_eq!(last.last().map(|l| l.line.as_str()), Some("line 100000"));
    assert_eq!(texts_in_files(&path, 2), expected(1..=100_000));
}

#[tokio::test]
async fn the_file_is_flushed_by_the_timer_without_more_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 20, 1))).await;
    actor.cast(LogBufferMsg::Lines(batch(1, 3))).expect("send");
    // Nothing else is sent: only the actor's own flush timer can make the lines visible.
    wait_for("the lines in the file", DEADLINE, || async {
        (texts_in_files(&path, 1) == expected(1..=3)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_batch_that_drained_the_pipe_is_in_the_file_at_once() {
    // Benchmark finding 5: the end of a burst must not wait for the flush timer.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 20, 1))).await;
    actor.cast(LogBufferMsg::Lines(batch(1, 5))).expect("send");
    actor
        .cast(LogBufferMsg::Drained(batch(6, 5)))
        .expect("send");
    // The answer comes after both batches were handled (a barrier, not a wait).
    tail(&actor, 1).await;
    assert_eq!(texts_in_files(&path, 1), expected(1..=10));
    // An empty drained batch flushes what more-waiting batches left in the buffer.
    actor.cast(LogBufferMsg::Lines(batch(11, 3))).expect("send");
    actor.cast(LogBufferMsg::Drained(Vec::new())).expect("send");
    tail(&actor, 1).await;
    assert_eq!(texts_in_files(&path, 1), expected(1..=13));
}

#[tokio::test]
async fn flush_makes_the_content_visible() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 20, 1))).await;
    actor.cast(LogBufferMsg::Lines(batch(1, 10))).expect("send");
    actor.cast(LogBufferMsg::Flush).expect("send");
    tail(&actor, 1).await;
    assert_eq!(texts_in_files(&path, 1), expected(1..=10));
}

#[tokio::test]
async fn rotation_under_load_keeps_exactly_max_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 16 * 1024, 4))).await;
    for first in (1..=50_000).step_by(500) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 500)))
            .expect("send");
    }
    actor.cast(LogBufferMsg::Flush).expect("send");
    tail(&actor, 1).await;
    for n in 1..=4 {
        let size = std::fs::metadata(numbered(&path, n))
            .expect("old file kept")
            .len();
        assert!(size <= 16 * 1024, "{}.{n} has {size} bytes", path.display());
    }
    assert!(
        !numbered(&path, 5).exists(),
        "no more than max_files old files"
    );
    // What is kept is one unbroken run of whole lines, ending with the last one.
    let kept = texts_in_files(&path, 4);
    let first: u64 = kept[0]["line ".len()..].parse().expect("a whole line");
    assert_eq!(kept, expected(first..=50_000));
}

#[tokio::test]
async fn rotation_under_load_loses_no_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    // Room for everything in the old files, so every line must be found.
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 8 * 1024, 200))).await;
    for first in (1..=30_000).step_by(300) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 300)))
            .expect("send");
    }
    actor.cast(LogBufferMsg::Flush).expect("send");
    tail(&actor, 1).await;
    assert!(
        numbered(&path, 50).exists(),
        "the file was rotated many times"
    );
    assert_eq!(texts_in_files(&path, 200), expected(1..=30_000));
}

#[tokio::test]
async fn a_slow_subscriber_blocks_neither_appends_nor_another_subscriber() {
    let (ring, events) = new_ring(100);
    let (actor, actor_done) = spawn_buffer(&ring, None).await;
    let mut slow = ring.subscribe(None);
    let mut fast = ring.subscribe(None);
    let read = Arc::new(AtomicU64::new(0));
    let fast_reader = {
        let read = read.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            while let Some(record) = fast.recv().await {
                match record {
                    LogRecord::Line(line) => {
                        seqs.push(line.seq);
                        read.store(line.seq, Ordering::SeqCst);
                    }
                    LogRecord::Gap { gap } => panic!("the fast subscriber lost {gap} lines"),
                }
            }
            seqs
        })
    };
    let total = 3 * SUBSCRIBER_BUFFER as u64;
    for first in (1..=total).step_by(512) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 512)))
            .expect("send");
        // Paced on the fast reader only: the slow one never reads meanwhile.
        let upto = first + 511;
        wait_for("the fast subscriber to catch up", DEADLINE, || {
            let read = read.clone();
            async move { (read.load(Ordering::SeqCst) == upto).then_some(()) }
        })
        .await;
    }
    tail(&actor, 1).await;
    assert_eq!(
        ring.last_seq(),
        total,
        "appends never waited for the slow subscriber"
    );

    let lost = total - SUBSCRIBER_BUFFER as u64;
    assert_eq!(slow.recv().await, Some(LogRecord::Gap { gap: lost }));
    match slow.recv().await {
        Some(LogRecord::Line(line)) => assert_eq!(line.seq, lost + 1),
        other => panic!("expected the oldest kept line, got {other:?}"),
    }
    let dropped: Vec<_> = events
        .history(None)
        .into_iter()
        .filter(|e| e.kind == EventKind::LogDropped)
        .collect();
    assert_eq!(dropped.len(), 1, "one log_dropped event: {dropped:?}");
    assert_eq!(dropped[0].dropped, Some(lost));
    assert_eq!(dropped[0].service, "svc");

    // The fast subscriber's stream ends once the ring is gone: the actor holds it too.
    actor.stop(None);
    actor_done.await.expect("LogBuffer stops");
    drop(ring);
    let seqs = fast_reader.await.expect("fast reader");
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
}

#[tokio::test]
async fn subscribing_since_after_the_ring_wrapped_yields_one_gap_then_lines() {
    let (ring, _) = new_ring(50);
    let (actor, _) = spawn_buffer(&ring, None).await;
    actor
        .cast(LogBufferMsg::Lines(batch(1, 200)))
        .expect("send");
    tail(&actor, 1).await;
    let mut sub = ring.subscribe(Some(10));
    assert_eq!(sub.recv().await, Some(LogRecord::Gap { gap: 140 }));
    let mut seqs = Vec::new();
    for _ in 0..50 {
        match sub.recv().await {
            Some(LogRecord::Line(line)) => seqs.push(line.seq),
            other => panic!("expected a line, got {other:?}"),
        }
    }
    assert_eq!(seqs, (151..=200).collect::<Vec<_>>());
    actor
        .cast(LogBufferMsg::Lines(batch(201, 1)))
        .expect("send");
    match sub.recv().await {
        Some(LogRecord::Line(line)) => {
            assert_eq!((line.seq, line.line.as_str()), (201, "line 201"))
        }
        other => panic!("expected the live line, got {other:?}"),
    }
}

#[tokio::test]
async fn the_ring_survives_the_actor_being_killed_and_respawned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let spec = file_spec(&path, 1 << 20, 1);
    let (first, first_done) = spawn_buffer(&ring, Some(spec.clone())).await;
    first.cast(LogBufferMsg::Lines(batch(1, 10))).expect("send");
    tail(&first, 1).await;
    first.kill();
    first_done.await.expect("first LogBuffer ends");

    let (second, _) = spawn_buffer(&ring, Some(spec)).await;
    second
        .cast(LogBufferMsg::Lines(batch(11, 5)))
        .expect("send");
    second.cast(LogBufferMsg::Flush).expect("send");
    let lines = tail(&second, 100).await;
    assert_eq!(
        lines.iter().map(|l| l.seq).collect::<Vec<_>>(),
        (1..=15).collect::<Vec<_>>()
    );
    assert_eq!(lines[10].line, "line 11");
    // The killed actor's buffered lines were flushed when its state was dropped, and the
    // new one appended after them.
    assert_eq!(texts_in_files(&path, 1), expected(1..=15));
}

#[tokio::test]
async fn a_panic_still_flushes_the_buffered_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, done) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 20, 1))).await;
    // Queued behind the lines, so the panic comes before any flush tick could.
    actor.cast(LogBufferMsg::Lines(batch(1, 7))).expect("send");
    actor
        .cast(LogBufferMsg::Panic("chaos".into()))
        .expect("send");
    done.await.expect("the LogBuffer ends");
    assert_eq!(texts_in_files(&path, 1), expected(1..=7));
    assert_eq!(ring.last_seq(), 7);
}

#[tokio::test]
async fn an_unwritable_log_path_leaves_the_ring_working() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Arc::new(AtomicUsize::new(0));
    let _logs = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(CountWarnings(warnings.clone())),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").expect("write");
    let path = not_a_dir.join("svc.log");
    let (ring, _) = new_ring(100);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 20, 1))).await;
    for first in (1..=300).step_by(100) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 100)))
            .expect("send");
    }
    actor.cast(LogBufferMsg::Flush).expect("send");
    let lines = tail(&actor, 1000).await;
    assert_eq!(lines.len(), 100);
    assert_eq!(lines.last().map(|l| l.seq), Some(300));
    assert!(!path.exists());
    assert_eq!(std::fs::read_to_string(&not_a_dir).expect("read"), "x");
    // Opening is retried at every batch, but said only once.
    assert_eq!(warnings.load(Ordering::SeqCst), 1);
}

/// Counts warnings logged on this thread (the tests run the actor on a current-thread
/// runtime, so its logs land here).
struct CountWarnings(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_full_disk_warns_once_per_streak_and_keeps_the_ring() {
    use tracing_subscriber::layer::SubscriberExt;
    let warnings = Arc::new(AtomicUsize::new(0));
    let _logs = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(CountWarnings(warnings.clone())),
    );
    // Every write to /dev/full fails with ENOSPC, like a full disk. Through a symlink, so
    // a rotation could only ever rename the link.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("svc.log");
    std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
    let (ring, _) = new_ring(1000);
    let (actor, _) = spawn_buffer(&ring, Some(file_spec(&path, 1 << 30, 1))).await;
    for first in (1..=500).step_by(100) {
        actor
            .cast(LogBufferMsg::Lines(batch(first, 100)))
            .expect("send");
        actor.cast(LogBufferMsg::Flush).expect("send");
    }
    let lines = tail(&actor, 1000).await;
    assert_eq!(lines.len(), 500, "the ring kept every line");
    assert_eq!(
        warnings.load(Ordering::SeqCst),
        1,
        "one warning for the whole streak"
    );
}
