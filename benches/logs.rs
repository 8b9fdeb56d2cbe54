//! Log lines: `LogRing::append` of a 256-line batch (what a LogBuffer appends per pipe
//! read) with 0, 1 and 10 live subscribers that each read every line.
//!
//! The target is ≥ 3 M lines/s into the ring with one live subscriber; criterion
//! prints the rate as `thrpt` (elements = lines). Run with `cargo bench --bench logs`.

use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;
use steward::events::EventBus;
use steward::logs::{LogRecord, LogRing, LogStream, RawLine};

const BATCH: usize = 256;

fn batch() -> Vec<RawLine> {
    let ts = Utc::now();
    (0..BATCH)
        .map(|i| RawLine {
            ts,
            stream: LogStream::Stdout,
            // ~100 bytes, like S3's lines.
            line: format!("{i:06} GET /api/v1/items/42 200 1.23ms user-agent=curl/8.5 request-id=5f0c1e9a7b3d4c2e8f10").into(),
            truncated: false,
        })
        .collect()
}

fn append_and_deliver(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_append_and_deliver");
    group.throughput(Throughput::Elements(BATCH as u64));
    for subscribers in [0usize, 1, 10] {
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &subscribers| {
                let ring = LogRing::new("web", 1000, Arc::new(EventBus::new()));
                let mut subs: Vec<_> = (0..subscribers).map(|_| ring.subscribe(None)).collect();
                b.iter_batched(
                    batch,
                    |lines| {
                        black_box(ring.append(lines));
                        for sub in &mut subs {
                            for _ in 0..BATCH {
                                match sub.recv().now_or_never() {
                                    Some(Some(LogRecord::Line(l))) => {
                                        black_box(l.seq);
                                    }
                                    other => panic!("expected a line, got {other:?}"),
                                }
                            }
                        }
                    },
                    BatchSize::SmallInput,
                );
            },
        );
    }
    group.finish();
}

fn tail(c: &mut Criterion) {
    let ring = LogRing::new("web", 1000, Arc::new(EventBus::new()));
    for _ in 0..4 {
        ring.append(batch());
    }
    c.bench_function("log_tail_100", |b| b.iter(|| black_box(ring.tail(100))));
}

criterion_group!(benches, append_and_deliver, tail);
criterion_main!(benches);
