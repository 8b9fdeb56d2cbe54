//! A service's `log_file` in a running runtime: a file that cannot be opened or a disk
//! that fills up is reported once (state, events) while the service runs on, writing
//! resumes when space returns with the count of lines not written, and a flood is in the
//! file whole even when steward shuts down right after the service ended.

use std::path::Path;
use std::time::Duration;

use steward::events::{Event, EventKind, EventSubscription};
use steward::{ServiceStatus, Steward};

use crate::support::*;

/// A service that prints `seq 1 N` for every number N written to its stdin.
fn seq_on_input(id: &str, log_file: &Path) -> steward::ServiceDefinition {
    let mut def = service(id, "while read n; do seq 1 $n; done");
    def.log_file = Some(log_file.to_path_buf());
    def
}

/// Sends `n` to the service and waits until its ring holds the last line, `n`.
async fn print_lines(steward: &Steward, id: &str, n: u64) {
    let before = steward.tables().ring(id).map(|r| r.last_seq()).unwrap_or(0);
    steward
        .input(id, format!("{n}\n"))
        .await
        .expect("stdin input");
    wait_for(&format!("{n} more lines of {id}"), SOON, || async {
        let ring = steward.tables().ring(id)?;
        (ring.last_seq() >= before + n).then_some(())
    })
    .await;
}

/// Every event about `id` of `kind` emitted so far.
fn events_of(steward: &Steward, id: &str, kind: EventKind) -> Vec<Event> {
    steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .filter(|e| e.service == id && e.kind == kind)
        .collect()
}

async fn wait_event(sub: &mut EventSubscription, id: &str, kind: EventKind) -> Event {
    let what = format!("{id} {}", kind.as_str());
    next_event(sub, &what, SOON, |e| e.service == id && e.kind == kind).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_file_that_cannot_be_opened_is_reported_once_and_the_service_runs_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, "x").expect("write");
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(seq_on_input("svc", &plain.join("svc.log")))
        .await
        .expect("define");
    status_becomes(&steward, "svc", ServiceStatus::Running).await;

    print_lines(&steward, "svc", 10).await;
    let failed = wait_event(&mut events, "svc", EventKind::LogFileFailed).await;
    let cause = failed.cause.expect("the error is the cause");
    assert!(cause.contains("plain-file"), "{cause}");
    // Each batch retries the file; the streak is reported once.
    for _ in 0..5 {
        print_lines(&steward, "svc", 10).await;
    }
    let state = steward.get("svc").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Running);
    assert_eq!(state.log_file_error.as_deref(), Some(cause.as_str()));
    assert_eq!(
        events_of(&steward, "svc", EventKind::LogFileFailed).len(),
        1
    );
    assert_eq!(
        steward.tables().ring("svc").map(|r| r.last_seq()),
        Some(60),
        "the ring kept every line"
    );
    steward.shutdown().await.expect("shutdown");
}

/// Mounts a tmpfs of `size` at `at`; `None` (with the reason printed) where that is not
/// allowed (not root, no mount namespace rights).
fn mount_tmpfs(at: &Path, size: &str) -> Option<()> {
    let out = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(()),
        Ok(out) => {
            eprintln!(
                "skipped: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount: {e}");
            None
        }
    }
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0)
            .status();
    }
}

/// Fills the file system at `dir` with one file, until it refuses more.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![b'f'; 4096];
    loop {
        match file.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    path
}

fn lines_in(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_once_and_writing_resumes_when_space_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mkdir");
    if mount_tmpfs(&disk, "2m").is_none() {
        return;
    }
    let _mounted = Mounted(&disk);
    let filler = fill(&disk);
    let log = disk.join("svc.log");

    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(seq_on_input("svc", &log))
        .await
        .expect("define");
    status_becomes(&steward, "svc", ServiceStatus::Running).await;

    // 40,000 lines (≈ 1.3 MB in the file's format) into a full disk.
    print_lines(&steward, "svc", 20_000).await;
    let failed = wait_event(&mut events, "svc", EventKind::LogFileFailed).await;
    let cause = failed.cause.unwrap_or_default();
    assert!(cause.contains("No space left"), "{cause}");
    print_lines(&steward, "svc", 20_000).await;
    let state = steward.get("svc").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Running, "the service runs on");
    assert!(state.log_file_error.is_some());

    // Space returns: the buffered lines go out, and one event counts what was not written.
    std::fs::remove_file(&filler).expect("remove filler");
    let resumed = wait_event(&mut events, "svc", EventKind::LogFileResumed).await;
    let unwritten = resumed.dropped.expect("the count of lines not written");
    assert!(unwritten > 0, "a full disk dropped some lines");
    let in_file = lines_in(&log).len() as u64;
    assert_eq!(
        in_file + unwritten,
        40_000,
        "every line is either in the file or counted as not written"
    );
    assert_eq!(
        events_of(&steward, "svc", EventKind::LogFileFailed).len(),
        1
    );
    assert_eq!(
        steward.get("svc").await.expect("get").state.log_file_error,
        None
    );

    // And new lines are written again.
    print_lines(&steward, "svc", 3).await;
    wait_for("the new lines in the file", SOON, || async {
        let lines = lines_in(&log);
        (lines.len() as u64 == in_file + 3 && lines.last()?.ends_with(" stdout 3")).then_some(())
    })
    .await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_whole_in_the_file_when_steward_stops_right_after_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("flood.log");
    let lines = 1_000_000u64;
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut def = service("flood", &format!("seq 1 {lines}"));
    def.restart = steward::config::RestartPolicy::Temporary;
    def.log_file = Some(log.clone());
    def.log_max_size = u64::MAX;
    steward.define(def).await.expect("define");
    let deadline = Duration::from_secs(120);
    next_event(&mut events, "flood exited", deadline, |e| {
        e.service == "flood" && e.kind == EventKind::Exited
    })
    .await;
    // Stop at once: what was read must still reach the file.
    steward.shutdown().await.expect("shutdown");
    let text = std::fs::read_to_string(&log).expect("the log file");
    let mut count = 0u64;
    for (i, line) in text.lines().enumerate() {
        let n = line.rsplit(' ').next().unwrap_or_default();
        assert_eq!(n, (i + 1).to_string(), "line {} in order", i + 1);
        count += 1;
    }
    assert_eq!(count, lines, "every line of the flood is in the file");
}
