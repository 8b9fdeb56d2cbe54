//! A detached service's daemon: the process its launcher left behind (`docker compose up
//! -d`, `nginx` without `daemon off`), known only through the `pid_file` it writes.
//!
//! steward did not spawn it and cannot wait for it, so it is identified the way crash
//! recovery identifies processes (DESIGN §10): by pid *and* start time, kept in a
//! [`PidRecord`]. A pid file that names a process started before the launcher is stale (a
//! reused number), and a recorded process whose start time changed is gone: neither is
//! ever signalled.

use std::io;
use std::path::Path;

use nix::sys::signal::Signal;

use crate::process::pid_file::{self, PidRecord};
use crate::process::signal::signal_group;

/// Reads the pid a daemon wrote to `path` (the first word of the file).
pub fn read_pid(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read pid_file {}: {e}", path.display()))?;
    let word = text.split_whitespace().next().unwrap_or("");
    match word.parse::<u32>() {
        Ok(pid) if pid > 1 => Ok(pid),
        _ => Err(format!(
            "pid_file {} does not hold a pid (found `{word}`)",
            path.display()
        )),
    }
}

/// The daemon named by `path`, if it runs and started no earlier than `not_before` (the
/// launcher's start time, in clock ticks after boot): a record with `detached: true`.
pub fn find(service: &str, path: &Path, not_before: Option<u64>) -> Result<PidRecord, String> {
    let pid = read_pid(path)?;
    let record = PidRecord::of_process(service, pid, true).map_err(|e| e.to_string())?;
    if !pid_file::is_running(record.pid, record.start_time) {
        return Err(format!("process {pid} named by pid_file has exited"));
    }
    if not_before.is_some_and(|t| record.start_time < t) {
        return Err(format!(
            "pid_file {} names process {pid}, which is older than the launcher: a stale pid file",
            path.display()
        ));
    }
    Ok(record)
}

/// True while the recorded daemon runs (same pid, same start time, not a zombie).
pub fn is_running(record: &PidRecord) -> bool {
    pid_file::is_running(record.pid, record.start_time)
}

/// Sends `signal` to the daemon's process group as it is now (a daemon may have moved to
/// a new session since it was recorded). Returns `Ok(false)` (nothing sent) when the
/// recorded process is gone. A group that is steward's own is never signalled: then only
/// the daemon itself is.
pub fn signal(record: &PidRecord, signal: Signal) -> io::Result<bool> {
    if !is_running(record) {
        return Ok(false);
    }
    let group = pid_file::process_group(record.pid).unwrap_or(record.pgid);
    let own = nix::unistd::getpgrp().as_raw();
    if group > 1 && i32::try_from(group).is_ok_and(|g| g != own) {
        signal_group(group, signal)?;
        return Ok(true);
    }
    let pid = i32::try_from(record.pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(true),
        Err(e) => Err(io::Error::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_read_strictly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.pid");
        assert!(read_pid(&path).is_err_and(|e| e.contains("cannot read")));
        std::fs::write(&path, "4242\n").expect("write");
        assert_eq!(read_pid(&path), Ok(4242));
        for bad in ["", "nope", "1", "-3"] {
            std::fs::write(&path, bad).expect("write");
            assert!(read_pid(&path).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_pid_older_than_the_launcher_is_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("d.pid");
        let me = std::process::id();
        std::fs::write(&path, me.to_string()).expect("write");
        let started = pid_file::start_time(me).expect("we run");
        let record = find("svc", &path, Some(started)).expect("found");
        assert_eq!((record.pid, record.detached), (me, true));
        assert!(is_running(&record));
        let err = find("svc", &path, Some(started + 1)).expect_err("stale");
        assert!(err.contains("stale"), "{err}");
        let mut gone = record;
        gone.start_time += 1;
        assert!(!is_running(&gone));
        assert!(!signal(&gone, Signal::SIGCONT).expect("no error"));
    }
}
