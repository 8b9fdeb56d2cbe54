//! Restart decisions: `backoff_delay`, `backoff_index` and `RestartIntensity::record`
//! (a sliding window that is full, the steady state of a crash loop). These run once per
//! process exit, so they only need to be far below the cost of a fork. Run with
//! `cargo bench --bench restart`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use steward::restart::{RestartIntensity, backoff_delay, backoff_index};

fn decisions(c: &mut Criterion) {
    let backoff: Vec<Duration> = [1, 2, 5, 10, 30].map(Duration::from_secs).to_vec();
    c.bench_function("restart_backoff_delay", |b| {
        let mut attempt = 0u32;
        b.iter(|| {
            attempt = attempt.wrapping_add(1) % 8;
            black_box(backoff_delay(black_box(&backoff), attempt))
        })
    });
    c.bench_function("restart_backoff_index", |b| {
        b.iter(|| {
            black_box(backoff_index(
                black_box(3),
                black_box(Duration::from_millis(1500)),
                &backoff,
            ))
        })
    });
    c.bench_function("restart_intensity_record_within_limit", |b| {
        // A window that never fills: every record succeeds and old entries slide out.
        let mut intensity = RestartIntensity::new(1_000_000, Duration::from_secs(1));
        let mut now = Instant::now();
        b.iter(|| {
            now += Duration::from_millis(100);
            black_box(intensity.record(now)).ok()
        })
    });
    c.bench_function("restart_intensity_record_over_limit", |b| {
        // max_restarts 10 in 5 min, records every 10 ms: the limit is passed on every call,
        // so this includes formatting the cause.
        let mut intensity = RestartIntensity::new(10, Duration::from_secs(300));
        let mut now = Instant::now();
        b.iter(|| {
            now += Duration::from_millis(10);
            black_box(intensity.record(now)).err()
        })
    });
}

criterion_group!(benches, decisions);
criterion_main!(benches);
