//! steward's in-memory log path, end to end: a real process writes 500,000 lines of 100
//! bytes (`yes … | head -n 500000`) into its pipe; PortManager reads them, LogBuffer
//! appends them to the ring, and one live subscriber (`Steward::subscribe_logs`) reads
//! every line. Prints lines/s into the ring, lines/s through to the subscriber, lines
//! lost, and the subscriber's lag (in lines while it runs, in ms after the last append).
//!
//! Also counts heap allocations (a global allocator that forwards to the system one)
//! from the start of the writer until the subscriber is done: allocations per line is a
//! figure that the load of a shared machine does not change.
//!
//! A measuring program, not a criterion bench: `cargo bench --bench log_pipeline`
//! (`-- --json` prints one JSON line, which `bench/run` reads for S3).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use steward::logs::LogRecord;
use steward::{CommandSpec, ServiceDefinition, Steward};

const LINES: u64 = 500_000;

/// Heap allocations so far (`alloc`, `alloc_zeroed` and `realloc` calls).
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Counts allocations and forwards every call to the system allocator.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter is only arithmetic. (The crate denies unsafe code; this measuring program needs
// it for exactly this impl.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[tokio::main]
async fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let steward = Steward::spawn().await.expect("runtime");
    let line = "x".repeat(99);
    let mut def = ServiceDefinition::new(
        "writer",
        CommandSpec::Argv(vec![
            "sh".into(),
            "-c".into(),
            format!("yes {line} | head -n {LINES}; exec sleep 3600"),
        ]),
    );
    def.autostart = false;
    steward.define(def).await.expect("define");
    let ring = steward
        .tables()
        .ring("writer")
        .expect("the ring exists once defined");
    let mut sub = steward
        .subscribe_logs("writer", None)
        .await
        .expect("subscribe");

    // Notes when the last line has entered the ring (polled every 200 µs).
    let appended_ns = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let watcher = {
        let ring = Arc::clone(&ring);
        let appended_ns = Arc::clone(&appended_ns);
        tokio::spawn(async move {
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end {
                if ring.last_seq() >= LINES {
                    appended_ns.store(t0.elapsed().as_nanos() as u64, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        })
    };
    steward.start("writer").await.expect("start");

    // One deadline for the whole read (a timer per line would cost the subscriber more
    // than the line itself).
    let read = async {
        let (mut lines, mut lost, mut max_lag) = (0u64, 0u64, 0u64);
        while lines + lost < LINES {
            match sub.recv().await {
                Some(LogRecord::Line(l)) => {
                    lines += 1;
                    if lines % 1024 == 0 {
                        max_lag = max_lag.max(ring.last_seq().saturating_sub(l.seq));
                    }
                }
                Some(LogRecord::Gap { gap }) => lost += gap,
                None => break,
            }
        }
        (lines, lost, max_lag)
    };
    let (lines, lost, max_lag) = tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .unwrap_or((0, 0, 0));
    let received = t0.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    let allocs_per_line = allocations as f64 / LINES as f64;
    let _ = watcher.await;
    let appended = Duration::from_nanos(appended_ns.load(Ordering::SeqCst));
    steward.shutdown().await.expect("shutdown");

    let secs = received.as_secs_f64();
    let ring_secs = appended.as_secs_f64();
    // Only meaningful when the subscriber read every line (with a gap it may finish first).
    let drain_lag_ms = if lost == 0 {
        (secs - ring_secs) * 1000.0
    } else {
        f64::NAN
    };
    if json {
        println!(
            "{{\"lines\": {lines}, \"lost\": {lost}, \"seconds\": {secs:.4}, \
             \"subscriber_lines_per_s\": {:.0}, \"ring_seconds\": {ring_secs:.4}, \
             \"ring_lines_per_s\": {:.0}, \"max_lag_lines\": {max_lag}, \
             \"drain_lag_ms\": {}, \"allocations_per_line\": {allocs_per_line:.2}}}",
            lines as f64 / secs,
            LINES as f64 / ring_secs.max(1e-9),
            if drain_lag_ms.is_nan() {
                "null".to_string()
            } else {
                format!("{drain_lag_ms:.2}")
            },
        );
    } else {
        println!(
            "{LINES} lines: into the ring in {ring_secs:.3} s ({:.2} M lines/s); the subscriber \
             read {lines} (lost {lost}) in {secs:.3} s; max lag {max_lag} lines, \
             {drain_lag_ms:.2} ms after the last append; {allocs_per_line:.2} allocations per line",
            LINES as f64 / ring_secs.max(1e-9) / 1e6
        );
    }
}
