//! Event fan-out: one `EventBus::emit` delivered to 1, 10 and 100 subscribers.
//!
//! Each iteration emits a batch of 100 events and every subscriber drains them, so the
//! figure is the cost of an event from emission to its last reader. Run with
//! `cargo bench --bench events`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::FutureExt;
use steward::events::{Event, EventBus, EventItem, EventKind};

const BATCH: usize = 100;

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_fan_out");
    group.throughput(Throughput::Elements(BATCH as u64));
    for subscribers in [1usize, 10, 100] {
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &subscribers| {
                let bus = EventBus::new();
                let mut subs: Vec<_> = (0..subscribers).map(|_| bus.subscribe(None)).collect();
                b.iter(|| {
                    for _ in 0..BATCH {
                        bus.emit(
                            Event::new("web", EventKind::Exited)
                                .pid(Some(4242))
                                .cause("liveness tcp refused ×3"),
                        );
                    }
                    for sub in &mut subs {
                        for _ in 0..BATCH {
                            match sub.recv().now_or_never() {
                                Some(Some(EventItem::Event(e))) => {
                                    black_box(e.seq);
                                }
                                other => panic!("expected an event, got {other:?}"),
                            }
                        }
                    }
                });
            },
        );
    }
    group.finish();
}

fn emit_without_subscribers(c: &mut Criterion) {
    let bus = EventBus::new();
    c.bench_function("event_emit_no_subscriber", |b| {
        b.iter(|| black_box(bus.emit(Event::new("web", EventKind::Started).pid(Some(1)))))
    });
}

criterion_group!(benches, fan_out, emit_without_subscribers);
criterion_main!(benches);
