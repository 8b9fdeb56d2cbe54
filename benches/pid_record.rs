//! What writing a pid record costs on this machine's disk (docs/BENCHMARKS.md, "No `fsync`
//! per spawn" and "A pid table instead of a file per record"): every spawn writes one,
//! inside the Server actor. Times `steward::process::pid_file::write` (a slot of this
//! process's table, written in place) against the two ways steward wrote them before: a
//! file per record through a temporary file and a rename, without and with `fsync` before
//! the rename; each as a fresh record and replacing one, in a directory on the same disk
//! as the state_dir (`$TMPDIR`, else /tmp). Median of 200 writes each, µs.
//!
//! A measuring program, not a criterion bench: `cargo bench --bench pid_record`.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use steward::process::pid_file::{self, PidRecord};

const WRITES: usize = 200;

fn record(i: usize) -> PidRecord {
    PidRecord {
        service: format!("svc{i}"),
        pid: 4_000_000,
        pgid: 4_000_000,
        start_time: 123_456_789,
        detached: false,
    }
}

/// The ways before the table: `pids/<service>.json` through a temporary file and a
/// rename, optionally with `fsync` before the rename.
fn write_file(dir: &Path, record: &PidRecord, sync: bool) -> std::io::Result<()> {
    let pids = pid_file::pid_dir(dir);
    std::fs::create_dir_all(&pids)?;
    let path = pids.join(format!("{}.json", record.service));
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(&serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&temp, &path)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn measure(dir: &Path, write: &dyn Fn(&Path, &PidRecord) -> std::io::Result<()>) -> (f64, f64) {
    let mut fresh = Vec::with_capacity(WRITES);
    let mut replacing = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        let started = Instant::now();
        write(dir, &record(i)).expect("write");
        fresh.push(started.elapsed().as_secs_f64() * 1e6);
    }
    for i in 0..WRITES {
        let started = Instant::now();
        write(dir, &record(i)).expect("write");
        replacing.push(started.elapsed().as_secs_f64() * 1e6);
    }
    (median(fresh), median(replacing))
}

fn main() {
    let table = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let synced = tempfile::tempdir().expect("tempdir");
    let (t_fresh, t_replace) = measure(table.path(), &|dir, r| pid_file::write(dir, r));
    let (f_fresh, f_replace) = measure(files.path(), &|dir, r| write_file(dir, r, false));
    let (s_fresh, s_replace) = measure(synced.path(), &|dir, r| write_file(dir, r, true));
    println!("median of {WRITES} pid record writes, µs: fresh / replacing one");
    println!("  pid_file::write (a slot of the table): {t_fresh:>8.1} / {t_replace:>8.1}");
    println!("  a file per record, rename:             {f_fresh:>8.1} / {f_replace:>8.1}");
    println!("  a file per record, fsync and rename:   {s_fresh:>8.1} / {s_replace:>8.1}");
}
