//! Config load of 1000 services with `steward::config::load_dir`: once as one
//! services.yml, once spread over services.d (10 files of 100). The folder is generated in
//! a temp dir. Run with `cargo bench --bench config_load`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SERVICES: usize = 1000;

fn service_yaml(out: &mut String, i: usize) {
    let _ = write!(
        out,
        "  svc-{i}:\n    command: sleep 3600\n    restart: permanent\n    backoff: [0s, 1s, 5s]\n    \
         max_restarts: 5\n    restart_window: 1m\n    tags: [bench, group-{}]\n    \
         env: {{ PORT: \"{}\" }}\n    readiness:\n      tcp: 127.0.0.1:{}\n      interval: 2s\n",
        i % 10,
        10_000 + i,
        10_000 + i
    );
}

fn write_single(dir: &Path) {
    let mut text = String::from("version: 1\nsettings:\n  listen: 127.0.0.1:7070\nservices:\n");
    for i in 0..SERVICES {
        service_yaml(&mut text, i);
    }
    std::fs::write(dir.join("services.yml"), text).expect("write services.yml");
}

fn write_split(dir: &Path) {
    std::fs::write(dir.join("services.yml"), "version: 1\nservices: {}\n")
        .expect("write services.yml");
    let d = dir.join("services.d");
    std::fs::create_dir_all(&d).expect("services.d");
    for f in 0..10 {
        let mut text = String::from("version: 1\nservices:\n");
        for i in f * 100..(f + 1) * 100 {
            service_yaml(&mut text, i);
        }
        std::fs::write(d.join(format!("{f:02}.yml")), text).expect("write file");
    }
}

fn load(c: &mut Criterion) {
    let mut group = c.benchmark_group("config_load_1000");
    group.throughput(Throughput::Elements(SERVICES as u64));
    group.sample_size(20);
    let single = tempfile::tempdir().expect("temp dir");
    write_single(single.path());
    let split = tempfile::tempdir().expect("temp dir");
    write_split(split.path());
    for (name, dir) in [("one_file", &single), ("services_d_10_files", &split)] {
        let loaded = steward::config::load_dir(dir.path()).expect("the generated config loads");
        assert_eq!(loaded.services.len(), SERVICES);
        group.bench_function(name, |b| {
            b.iter(|| black_box(steward::config::load_dir(dir.path()).expect("loads")))
        });
    }
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
