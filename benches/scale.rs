//! Costs that must not grow with the number of services (issue 16): defining one more
//! service, removing one, and one control request, each timed with 100, 1,000 and 10,000
//! services already defined. Per operation, 10,000 may cost at most twice what 100 costs.
//!
//! The services are defined, not started (`autostart: false`, argv `sleep 3600`): what is
//! timed is the root's work per request (checks, dependency graph, registry, actors of
//! the one service concerned), not process spawning. One service in ten starts a chain
//! of ten (`s{i}` depends on `s{i-1}`), so the dependency graph has edges to keep. The
//! defined service depends on `s0`; the control request is a stop of a service that is
//! not running (its dependents are looked up, the Server answers).
//!
//! Run with `cargo bench --bench scale` (about two minutes); the figures are in
//! docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use steward::config::{Dependency, DependencyCondition};
use steward::{CommandSpec, ControlAction, ServiceDefinition, Steward};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

fn service(id: &str, depends_on: Option<String>) -> ServiceDefinition {
    let mut def =
        ServiceDefinition::new(id, CommandSpec::Argv(vec!["sleep".into(), "3600".into()]));
    def.autostart = false;
    def.depends_on = depends_on
        .into_iter()
        .map(|service| Dependency {
            service,
            condition: DependencyCondition::Started,
        })
        .collect();
    def
}

/// A runtime holding `n` defined services.
async fn runtime_with(n: usize) -> Steward {
    let steward = Steward::spawn().await.expect("runtime");
    let defs = (0..n)
        .map(|i| {
            let dep = (i % 10 != 0).then(|| format!("s{}", i - 1));
            service(&format!("s{i}"), dep)
        })
        .collect();
    steward.define_all(defs).await.expect("define_all");
    steward
}

fn scale(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("scale");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let mut next = 0u64;
    for n in SIZES {
        let steward = rt.block_on(runtime_with(n));
        group.bench_with_input(BenchmarkId::new("define", n), &n, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        next += 1;
                        let id = format!("new{next}");
                        let t0 = Instant::now();
                        steward
                            .define(service(&id, Some("s0".into())))
                            .await
                            .expect("define");
                        spent += t0.elapsed();
                        steward.remove(&id).await.expect("remove");
                    }
                    spent
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("remove", n), &n, |b, _| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        next += 1;
                        let id = format!("new{next}");
                        steward
                            .define(service(&id, Some("s0".into())))
                            .await
                            .expect("define");
                        let t0 = Instant::now();
                        steward.remove(&id).await.expect("remove");
                        spent += t0.elapsed();
                    }
                    spent
                })
            })
        });
        let target = format!("s{}", n / 2);
        group.bench_with_input(BenchmarkId::new("control_stop", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(async {
                    let _ = steward.control(&target, ControlAction::Stop).await;
                })
            })
        });
        rt.block_on(steward.shutdown()).expect("shutdown");
    }
    group.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
