//! What writing a pid record costs on this machine's disk, with and without `fsync`
//! (docs/BENCHMARKS.md, "No `fsync` per spawn"): every spawn writes one, inside the
//! Server actor. Times `steward::process::pid_file::write` (a temporary file and a rename,
//! no `fsync`) against the same file written with `fsync` before the rename, both as a
//! fresh record and replacing one, in a directory on the same disk as the state_dir
//! (`$TMPDIR`, else /tmp). Median of 200 writes each, µs.
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

/// The old way: temporary file, `fsync`, rename.
fn write_synced(dir: &Path, record: &PidRecord) -> std::io::Result<()> {
    let path = pid_file::record_path(dir, &record.service)?;
    std::fs::create_dir_all(pid_file::pid_dir(dir))?;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(&serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
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
    let atomic = tempfile::tempdir().expect("tempdir");
    let synced = tempfile::tempdir().expect("tempdir");
    let (a_fresh, a_replace) = measure(atomic.path(), &|dir, r| pid_file::write(dir, r));
    let (s_fresh, s_replace) = measure(synced.path(), &write_synced);
    println!("median of {WRITES} pid record writes, µs: fresh / replacing one");
    println!("  pid_file::write (no fsync): {a_fresh:>8.0} / {a_replace:>8.0}");
    println!("  with fsync before rename:   {s_fresh:>8.0} / {s_replace:>8.0}");
}
