//! Pid records and crash recovery (DESIGN §10 "Dying with steward, and cleaning up after it").
//!
//! While a service process runs, steward keeps a record of it under `state_dir/pids`: its
//! pid, its process group and its start time (field 22 of `/proc/PID/stat`, in clock
//! ticks since boot), in a slot of this steward process's table
//! (`pid_table`: one file, written in place). A steward that was
//! SIGKILLed cannot stop what it started, and `PR_SET_PDEATHSIG` only reaches the process
//! it was set on: a shell's background child, a server's workers or a detached daemon live
//! on. At the next boot, [`recover`] reads every record before any service starts (every
//! table whose steward is gone, and the `<service>.json` files older versions wrote):
//!
//! * a record whose process is gone, or whose pid now names another process (a different
//!   start time), is stale: it is removed and nothing is signalled;
//! * a non-detached service's group is stopped (SIGTERM, a short grace, then SIGKILL), so
//!   the service can start fresh without running twice;
//! * a detached service that still runs is returned for adoption and left alone; its
//!   record moves to this steward's table.
//!
//! A table whose steward still runs (another steward on the same `state_dir`) is left
//! alone, with a warning.
//!
//! Processes are found by process group and start time only, never by name or
//! environment: some programs (nginx among them) clear their workers' environment, and a
//! name says nothing about who started a process.
//!
//! When the group's leader is gone but members remain, they are still recognised: the
//! kernel does not hand out a pid while a process group of that number exists, so the
//! group's members are the leader's descendants. A member is only signalled if it started
//! no earlier than the recorded leader.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::process::pid_table::{self, PidTable};
use crate::process::signal::signal_group;

/// What [`recover`] waits after SIGTERM before it sends SIGKILL.
pub const RECOVERY_GRACE: Duration = Duration::from_secs(2);

/// How long [`recover`] waits for a SIGKILLed group to disappear before it reports what is
/// left (a process in uninterruptible sleep can take a while).
const KILL_WAIT: Duration = Duration::from_secs(2);

/// One running service process, as recorded under `state_dir/pids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidRecord {
    /// The service id.
    pub service: String,
    /// The process steward spawned (or, for a detached service, the pid it reported).
    pub pid: u32,
    /// Its process group, signalled as a whole.
    pub pgid: u32,
    /// `/proc/PID/stat` field 22 (clock ticks after boot): tells the process apart from a
    /// later one that got the same pid.
    pub start_time: u64,
    /// A detached service is adopted after a restart of steward, not stopped.
    pub detached: bool,
}

impl PidRecord {
    /// The record of a live process, with its process group and start time read from
    /// `/proc`. `Err` when the process is already gone.
    pub fn of_process(service: &str, pid: u32, detached: bool) -> io::Result<PidRecord> {
        let stat = read_stat(pid).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("process {pid} is gone: no pid file written"),
            )
        })?;
        Ok(PidRecord {
            service: service.to_string(),
            pid,
            pgid: stat.pgrp,
            start_time: stat.start_time,
            detached,
        })
    }
}

/// What [`recover`] did about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// A non-detached service's leftover processes were stopped; the record is removed.
    Stopped {
        /// The record found.
        record: PidRecord,
        /// The pids that were signalled.
        pids: Vec<u32>,
        /// True when SIGTERM was not enough and the group was SIGKILLed.
        forced: bool,
        /// Pids still there after SIGKILL (normally empty).
        remaining: Vec<u32>,
    },
    /// A detached service still runs: adopt it. Its record is kept.
    Adopt(PidRecord),
    /// Nothing of the record is left, or its pid now names another process; nothing was
    /// signalled and the record is removed.
    Gone(PidRecord),
    /// A file under `pids/`, or a slot of a table, that is not a record; it is removed.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why it could not be read (for a table: which slot, and why).
        reason: String,
    },
}

/// `state_dir/pids`
pub fn pid_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pids")
}

/// Writes (or replaces) the service's record in this process's table for `state_dir`:
/// one `pwrite` of a slot, no `fsync` (a record is needed only while the machine stays up:
/// after a reboot none of its processes exist) and no new file (`cargo bench --bench
/// pid_record` compares it with a file per record).
pub fn write(state_dir: &Path, record: &PidRecord) -> io::Result<()> {
    PidTable::of(state_dir)?.write(record)
}

/// Clears the service's record; a record that is not there is not an error.
pub fn remove(state_dir: &Path, service: &str) -> io::Result<()> {
    PidTable::of(state_dir)?.remove(service)
}

/// The service's record in this process's table, if there is one (after [`recover`],
/// that includes the detached daemons it kept for adoption).
pub fn read(state_dir: &Path, service: &str) -> io::Result<Option<PidRecord>> {
    Ok(PidTable::of(state_dir)?.read(service))
}

/// The start time of `pid` (`/proc/PID/stat` field 22, clock ticks after boot), or `None`
/// when there is no such process. A zombie still has one.
pub fn start_time(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_time)
}

/// True while `pid` names a live (non-zombie) process that started at `start_time`: the
/// same process, not a later one that got its number.
pub fn is_running(pid: u32, start_time: u64) -> bool {
    read_stat(pid).is_some_and(|s| s.state != 'Z' && s.start_time == start_time)
}

/// The state letter of `pid` (`S`, `R`, `T`, `Z`, …), or `None` when there is no such
/// process.
pub fn process_state(pid: u32) -> Option<char> {
    read_stat(pid).map(|s| s.state)
}

/// The process group of `pid`, or `None` when there is no such process.
pub fn process_group(pid: u32) -> Option<u32> {
    read_stat(pid).map(|s| s.pgrp)
}

/// Handles every record under `state_dir/pids` (see the module docs), waiting
/// [`RECOVERY_GRACE`] between SIGTERM and SIGKILL. Blocks while it waits: call it before
/// the services start, from a blocking context.
pub fn recover(state_dir: &Path) -> Vec<Recovered> {
    recover_with_grace(state_dir, RECOVERY_GRACE)
}

/// [`recover`] with a chosen grace between SIGTERM and SIGKILL.
pub fn recover_with_grace(state_dir: &Path, grace: Duration) -> Vec<Recovered> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(pid_dir(state_dir)) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    let ours = match PidTable::of(state_dir) {
        Ok(table) => Some(table),
        Err(e) => {
            tracing::warn!(dir = %pid_dir(state_dir).display(), error = %e, "cannot keep pid records: a detached daemon cannot be kept for adoption");
            None
        }
    };
    // Records this process wrote itself before (an earlier runtime on the same state_dir),
    // taken before the daemons moved here below join them.
    let own = ours.as_ref().map(|t| t.records()).unwrap_or_default();
    // A detached daemon that still runs moves to this steward's table; its old file is
    // kept when that fails, so a later boot still finds it.
    let mut keep = |record: &PidRecord| {
        match &ours {
        Some(table) => table.write(record).map_err(|e| {
            tracing::warn!(service = %record.service, error = %e, "cannot move the pid record of a daemon kept for adoption");
        }),
        None => Err(()),
    }
    };
    for path in paths {
        if ours.as_ref().is_some_and(|t| t.path() == path) {
            continue;
        }
        match path.extension().and_then(|x| x.to_str()) {
            Some("json") => recover_file(&path, grace, &mut keep, &mut out),
            Some(pid_table::EXTENSION) => recover_table(&path, grace, &mut keep, &mut out),
            _ => {}
        }
    }
    if let Some(table) = &ours {
        for record in own {
            let outcome = recover_one(record, grace);
            if let Recovered::Stopped { record, .. } | Recovered::Gone(record) = &outcome {
                let _ = table.remove(&record.service);
            }
            out.push(outcome);
        }
    }
    out
}

/// A `<service>.json` record, as steward wrote them before the tables.
fn recover_file(
    path: &Path,
    grace: Duration,
    keep: &mut impl FnMut(&PidRecord) -> Result<(), ()>,
    out: &mut Vec<Recovered>,
) {
    let record = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| serde_json::from_slice::<PidRecord>(&bytes).map_err(|e| e.to_string()));
    let record = match record {
        Ok(record) => record,
        Err(reason) => {
            tracing::warn!(path = %path.display(), %reason, "unreadable pid file removed");
            let _ = std::fs::remove_file(path);
            out.push(Recovered::Unreadable {
                path: path.to_path_buf(),
                reason,
            });
            return;
        }
    };
    let outcome = recover_one(record, grace);
    let kept = match &outcome {
        Recovered::Adopt(record) => keep(record).is_ok(),
        _ => true,
    };
    if kept {
        let _ = std::fs::remove_file(path);
    }
    out.push(outcome);
}

/// The table of another steward process: left alone while that steward runs, else each
/// record is recovered and the file removed.
fn recover_table(
    path: &Path,
    grace: Duration,
    keep: &mut impl FnMut(&PidRecord) -> Result<(), ()>,
    out: &mut Vec<Recovered>,
) {
    if let Some((pid, started)) = pid_table::owner(path)
        && pid != std::process::id()
        && is_running(pid, started)
    {
        tracing::warn!(table = %path.display(), pid, "another steward still uses this state_dir: its pid records are left alone");
        return;
    }
    let pid_table::TableFile { records, bad } = match pid_table::read_file(path) {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(table = %path.display(), error = %e, "cannot read a pid table");
            return;
        }
    };
    for (slot, reason) in bad {
        tracing::warn!(table = %path.display(), slot, %reason, "unreadable pid record removed");
        out.push(Recovered::Unreadable {
            path: path.to_path_buf(),
            reason: format!("slot {slot}: {reason}"),
        });
    }
    let mut all_kept = true;
    for record in records {
        let outcome = recover_one(record, grace);
        if let Recovered::Adopt(record) = &outcome {
            all_kept &= keep(record).is_ok();
        }
        out.push(outcome);
    }
    if all_kept {
        let _ = std::fs::remove_file(path);
    }
}

fn recover_one(record: PidRecord, grace: Duration) -> Recovered {
    if record.detached {
        return if start_time(record.pid) == Some(record.start_time) {
            tracing::info!(service = %record.service, pid = record.pid, "detached service still runs: adopted");
            Recovered::Adopt(record)
        } else {
            Recovered::Gone(record)
        };
    }
    let pids = leftovers(&record);
    if pids.is_empty() {
        return Recovered::Gone(record);
    }
    tracing::warn!(service = %record.service, pgid = record.pgid, ?pids, "stopping processes left by a previous steward");
    signal_leftovers(&record, Signal::SIGTERM);
    let mut remaining = wait_until_gone(&record, grace);
    let forced = !remaining.is_empty();
    if forced {
        signal_leftovers(&record, Signal::SIGKILL);
        remaining = wait_until_gone(&record, KILL_WAIT);
    }
    Recovered::Stopped {
        record,
        pids,
        forced,
        remaining,
    }
}

/// Signals the record's group and, when it has left that group (e.g. with `setsid`), the
/// recorded process itself, if it is still the same process.
fn signal_leftovers(record: &PidRecord, signal: Signal) {
    let _ = signal_group(record.pgid, signal);
    if let Some(leader) = read_stat(record.pid)
        && leader.start_time == record.start_time
        && leader.pgrp != record.pgid
        && let Ok(pid) = i32::try_from(record.pid)
        && pid > 1
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// Polls until no leftover of `record` remains or `within` has passed; returns what is left.
fn wait_until_gone(record: &PidRecord, within: Duration) -> Vec<u32> {
    let deadline = Instant::now() + within;
    loop {
        let left = leftovers(record);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live (non-zombie) processes of the record's group that belong to it: none when the
/// group's number now belongs to a process other than the recorded leader.
pub(crate) fn leftovers(record: &PidRecord) -> Vec<u32> {
    if record.pgid <= 1 {
        return Vec::new();
    }
    // The group is named after its leader: if that pid now names a process that started
    // at another time, the number was reused, so the old group had emptied and whatever
    // is in the group now is a stranger's.
    if let Some(leader) = read_stat(record.pgid) {
        let expected = (record.pgid == record.pid).then_some(record.start_time);
        if expected.is_some_and(|t| t != leader.start_time) {
            return Vec::new();
        }
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            read_stat(*pid).is_some_and(|s| {
                s.state != 'Z'
                    && (s.pgrp == record.pgid && s.start_time >= record.start_time
                        // The recorded process itself, even if it left the group.
                        || *pid == record.pid && s.start_time == record.start_time)
            })
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The fields of `/proc/PID/stat` that recovery and the process-group mode's walks need.
pub(crate) struct Stat {
    /// `R`, `S`, `Z`, …
    pub(crate) state: char,
    /// The process group.
    pub(crate) pgrp: u32,
    /// The session.
    pub(crate) session: u32,
    /// Start time in clock ticks after boot.
    pub(crate) start_time: u64,
}

/// The `/proc/PID/stat` fields of `pid`, or `None` when it is gone.
pub(crate) fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
/// itself contain spaces and parentheses, so the fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: field 3 (state) is index 0, so field n is index n - 3.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (we (ird) name) S 1 4240 4239 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615";
        let stat = parse_stat(line).expect("parses");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.pgrp, 4240);
        assert_eq!(stat.session, 4239);
        assert_eq!(stat.start_time, 987_654);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn our_own_start_time_is_stable() {
        let me = std::process::id();
        let first = start_time(me).expect("we exist");
        assert_eq!(start_time(me), Some(first));
        assert!(start_time(u32::MAX).is_none());
    }

    #[test]
    fn records_round_trip_and_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let record = PidRecord::of_process("web", std::process::id(), false).expect("record");
        write(dir.path(), &record).expect("write");
        assert_eq!(read(dir.path(), "web").expect("read"), Some(record.clone()));
        remove(dir.path(), "web").expect("remove");
        remove(dir.path(), "web").expect("removing twice is fine");
        assert_eq!(read(dir.path(), "web").expect("read"), None);
        let spaced = PidRecord {
            service: "two words".into(),
            ..record
        };
        assert!(write(dir.path(), &spaced).is_err());
    }

    /// A slot as a steward writes it.
    fn slot(record: &PidRecord) -> Vec<u8> {
        pid_table::encode(record).expect("fits").to_vec()
    }

    fn gone(service: &str) -> PidRecord {
        // A pid that cannot exist.
        PidRecord {
            service: service.into(),
            pid: 4_194_304 + 7,
            pgid: 4_194_304 + 7,
            start_time: 1,
            detached: false,
        }
    }

    #[test]
    fn unreadable_and_stale_records_are_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(pid_dir(dir.path())).expect("dir");
        std::fs::write(pid_dir(dir.path()).join("junk.json"), "{").expect("write");
        let stale = gone("old");
        write(dir.path(), &stale).expect("write");
        let outcome = recover(dir.path());
        // Files first, in name order (junk.json), then this process's own table.
        assert!(
            matches!(&outcome[..], [Recovered::Unreadable { .. }, Recovered::Gone(r)] if *r == stale),
            "{outcome:?}"
        );
        assert_eq!(read(dir.path(), "old").expect("read"), None);
        let left: Vec<PathBuf> = std::fs::read_dir(pid_dir(dir.path()))
            .expect("dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        let table = PidTable::of(dir.path()).expect("table");
        assert_eq!(left, vec![table.path().to_path_buf()]);
        let on_disk = pid_table::read_file(table.path()).expect("read");
        assert!(
            on_disk.records.is_empty() && on_disk.bad.is_empty(),
            "{on_disk:?}"
        );
    }

    #[test]
    fn a_dead_stewards_table_is_recovered_and_a_live_ones_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = pid_dir(dir.path());
        std::fs::create_dir_all(&pids).expect("dir");
        let me = std::process::id();
        let daemon = PidRecord {
            detached: true,
            ..PidRecord::of_process("daemon", me, true).expect("record")
        };
        let mut damaged = slot(&gone("torn"));
        // The pid's first digit, after the checksum and a space.
        damaged[9] = b'9';
        let dead = pids.join(format!("steward-{}-1.table", 4_194_304 + 9));
        let text = [
            slot(&gone("old")),
            slot(&daemon),
            damaged,
            vec![b' '; pid_table::SLOT],
        ];
        std::fs::write(&dead, text.concat()).expect("write");
        // A record of an older steward, one file per service.
        let legacy = pids.join("legacy.json");
        std::fs::write(&legacy, serde_json::to_vec(&gone("legacy")).expect("json")).expect("write");
        // pid 1 runs: its table is another steward's, in use.
        let init = start_time(1).expect("pid 1 runs");
        let live = pids.join(format!("steward-1-{init}.table"));
        std::fs::write(&live, slot(&gone("theirs"))).expect("write");

        let outcome = recover(dir.path());
        assert!(
            matches!(&outcome[..], [
                Recovered::Gone(legacy_record),
                Recovered::Unreadable { path, reason },
                Recovered::Gone(old),
                Recovered::Adopt(adopted),
            ] if legacy_record.service == "legacy" && *path == dead
                && reason.starts_with("slot 2: checksum")
                && old.service == "old" && *adopted == daemon),
            "{outcome:?}"
        );
        assert!(
            !dead.exists() && !legacy.exists(),
            "recovered files removed"
        );
        assert!(live.exists(), "a live steward's table is left alone");
        // The daemon kept for adoption is in this process's table now.
        assert_eq!(read(dir.path(), "daemon").expect("read"), Some(daemon));
    }
}
