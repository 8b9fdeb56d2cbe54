//! Where steward's memory per service goes: heap bytes (counted by a global allocator
//! that forwards to the system one) and the process's RSS/PSS (from /proc/self), at
//! each step of bringing up N services.
//!
//! 1. the runtime alone (tokio + the root supervisor);
//! 2. N idle ractor actors of a do-nothing actor, then stopped: the cost of an actor;
//! 3. N services defined but not started (`define_all`): supervisor + LogBuffer + Server +
//!    PortManager actors, the log ring, the status row, the definition;
//! 4. the N services started (`sleep 3600`): child handles, pipe readers, exit waiters.
//!
//! A measuring program, not a criterion bench: `cargo bench --bench memory_breakdown`
//! (`-- --json` prints one JSON line; `-- --n 200` sets N, default 1000; `-- --sizes`
//! also lists the allocation sizes each step added, to tell tasks, channels and buffers
//! apart).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use steward::{CommandSpec, ServiceDefinition, ServiceStatus, Steward};

/// Live heap bytes.
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Live allocations by size (sizes of [`SIZE_CLASSES`] bytes and more share the last
/// slot): which allocations a step adds, e.g. the tasks of the actors (`--sizes`).
static BY_SIZE: [AtomicI64; SIZE_CLASSES] = [const { AtomicI64::new(0) }; SIZE_CLASSES];
const SIZE_CLASSES: usize = 70_000;

fn count(size: usize, delta: i64) {
    LIVE.fetch_add(size as i64 * delta, Ordering::Relaxed);
    BY_SIZE[size.min(SIZE_CLASSES - 1)].fetch_add(delta, Ordering::Relaxed);
}

/// Counts live heap bytes and forwards every call to the system allocator.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counter is only arithmetic on the sizes. (The crate denies unsafe code; this measuring
// program needs it for exactly this impl.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(layout.size(), -1);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size(), 1);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout.size(), -1);
        count(new_size, 1);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One reading: live heap, RSS and PSS (KiB).
#[derive(Debug, Clone, Copy)]
struct Reading {
    heap: i64,
    rss: i64,
    pss: i64,
}

fn read() -> Reading {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Reading {
        heap: LIVE.load(Ordering::Relaxed) / 1024,
        rss: field("Rss:"),
        pss: field("Pss:"),
    }
}

/// Live allocations per size now.
fn sizes() -> Vec<i64> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Prints the allocation sizes that a step added most bytes of, per service: the sizes of
/// tasks, channels and buffers can be told apart by their size.
fn print_sizes(step: &str, before: &[i64], after: &[i64], n: usize) {
    let mut added: Vec<(usize, i64)> = before
        .iter()
        .zip(after)
        .enumerate()
        .map(|(size, (a, b))| (size, b - a))
        .filter(|&(_, d)| d != 0)
        .collect();
    added.sort_by_key(|&(size, d)| std::cmp::Reverse(size as i64 * d));
    println!("  {step}: allocations added per service (size in bytes × count per service)");
    for (size, d) in added.iter().take(24) {
        let per = *d as f64 / n as f64;
        let open = if *size == SIZE_CLASSES - 1 { "+" } else { "" };
        println!(
            "    {size:>6}{open} B × {per:>5.2} = {:>7.0} B",
            *size as f64 * per
        );
    }
}

/// An actor that does nothing: the floor of what an actor costs.
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _myself: ActorRef<()>, _args: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Waits (bounded) until every service is running.
async fn wait_running(steward: &Steward, n: usize) {
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < end {
        let running = steward
            .list()
            .await
            .map(|l| {
                l.iter()
                    .filter(|s| s.status == ServiceStatus::Running)
                    .count()
            })
            .unwrap_or(0);
        if running >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the services did not all reach running within 120 s");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json = args.iter().any(|a| a == "--json");
    let by_size = args.iter().any(|a| a == "--sizes");
    let n: usize = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);

    let steward = Steward::spawn().await.expect("runtime");
    let base = read();
    let sizes_base = sizes();

    let mut idle = Vec::with_capacity(n);
    for _ in 0..n {
        let (actor, handle) = Actor::spawn(None, Idle, ()).await.expect("idle actor");
        idle.push((actor, handle));
    }
    let with_idle = read();
    let sizes_idle = sizes();
    for (actor, handle) in idle {
        actor.stop(None);
        let _ = handle.await;
    }
    let after_idle = read();
    let sizes_before = sizes();

    let definitions = (0..n)
        .map(|i| {
            let mut d = ServiceDefinition::new(
                format!("s{i}"),
                CommandSpec::Argv(vec!["sleep".into(), "3600".into()]),
            );
            d.backoff = vec![Duration::ZERO];
            d
        })
        .collect();
    steward.define_all(definitions).await.expect("define");
    let defined = read();
    let sizes_defined = sizes();
    steward.start_all().await.expect("start");
    wait_running(&steward, n).await;
    let started = read();
    let sizes_started = sizes();
    steward.shutdown().await.expect("shutdown");

    let per = |a: Reading, b: Reading| -> (f64, f64, f64) {
        let k = n as f64;
        (
            (b.heap - a.heap) as f64 / k,
            (b.rss - a.rss) as f64 / k,
            (b.pss - a.pss) as f64 / k,
        )
    };
    let idle_actor = per(base, with_idle);
    let define = per(after_idle, defined);
    let start = per(defined, started);
    if json {
        println!(
            "{{\"n\": {n}, \"base\": {{\"heap_kib\": {}, \"rss_kib\": {}, \"pss_kib\": {}}}, \
             \"idle_actor_kib\": {{\"heap\": {:.2}, \"rss\": {:.2}, \"pss\": {:.2}}}, \
             \"defined_per_service_kib\": {{\"heap\": {:.2}, \"rss\": {:.2}, \"pss\": {:.2}}}, \
             \"started_per_service_kib\": {{\"heap\": {:.2}, \"rss\": {:.2}, \"pss\": {:.2}}}, \
             \"total_started_kib\": {{\"heap\": {}, \"rss\": {}, \"pss\": {}}}}}",
            base.heap,
            base.rss,
            base.pss,
            idle_actor.0,
            idle_actor.1,
            idle_actor.2,
            define.0,
            define.1,
            define.2,
            start.0,
            start.1,
            start.2,
            started.heap,
            started.rss,
            started.pss,
        );
    } else {
        println!("N = {n}; KiB per service (heap / RSS / PSS):");
        println!(
            "  runtime alone: heap {} KiB, RSS {} KiB, PSS {} KiB",
            base.heap, base.rss, base.pss
        );
        println!(
            "  one idle ractor actor:  {:.2} / {:.2} / {:.2}",
            idle_actor.0, idle_actor.1, idle_actor.2
        );
        println!(
            "  define (4 actors, ring, row): {:.2} / {:.2} / {:.2}",
            define.0, define.1, define.2
        );
        println!(
            "  start (process, pipes, waiter): {:.2} / {:.2} / {:.2}",
            start.0, start.1, start.2
        );
    }
    if by_size {
        print_sizes("one idle actor", &sizes_base, &sizes_idle, n);
        print_sizes("define", &sizes_before, &sizes_defined, n);
        print_sizes("start", &sizes_defined, &sizes_started, n);
    }
}
