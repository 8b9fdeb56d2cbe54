//! Crash recovery with real process groups: what a SIGKILLed steward leaves behind is
//! found from its pid files by process group and start time, and stopped; a reused pid is
//! never touched; a detached service is handed back for adoption.
//!
//! The "killed steward" is this test binary re-executed as a host: it spawns a service the
//! way the PortManager does (its own group, `PR_SET_PDEATHSIG`), writes the pid record and
//! waits to be SIGKILLed. The parent-death signal reaches only the group's leader (a
//! shell); the shell's background child survives, as it would in production.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use steward::process::pid_file::{self, PidRecord, Recovered, recover_with_grace};
use steward::process::{ProcessGroupGuard, SpawnPlan, spawn};

use crate::support::{
    group_members, kill_host, pid_alive, process_ends, running_pid, start_host, wait_for,
};

/// Generous bound for anything a test waits for; reaching it is a failure, not a timing.
const DEADLINE: Duration = Duration::from_secs(30);
/// Tells the re-executed test binary to act as the host, with this state_dir.
const HOST_STATE_DIR_ENV: &str = "STEWARD_TEST_RECOVERY_HOST";
/// How the host announces the pid of the group leader it spawned.
const LEADER_PID_PREFIX: &str = "STEWARD_LEADER_PID=";
/// A short grace: these groups either obey SIGTERM at once or ignore it.
const GRACE: Duration = Duration::from_millis(300);

fn plan(line: &str) -> SpawnPlan {
    SpawnPlan::new(
        vec!["sh".into(), "-c".into(), line.into()],
        std::env::temp_dir(),
        std::env::vars().collect(),
    )
}

/// Waits until the group has at least `count` live members.
async fn wait_for_members(pgid: u32, count: usize) {
    wait_for("the group's members to start", DEADLINE, || async move {
        (group_members(pgid).len() >= count).then_some(())
    })
    .await;
}

/// Not a test on its own: the body of the host process. It spawns a shell with a
/// background child from an async task, writes the record, prints the leader's pid and
/// blocks until it is killed.
#[test]
fn recovery_host() {
    let Some(state_dir) = std::env::var_os(HOST_STATE_DIR_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let child = tokio::spawn(async { spawn(&plan("sleep 300 & sleep 300")) })
            .await
            .expect("task")
            .expect("spawn");
        let pid = child.id();
        let record = PidRecord::of_process("web", pid, false).expect("record");
        pid_file::write(Path::new(&state_dir), &record).expect("pid file");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{LEADER_PID_PREFIX}{pid}").expect("print");
        out.flush().expect("flush");
        drop(out);
        std::future::pending::<()>().await;
        drop(child);
    });
}

#[tokio::test]
async fn a_killed_stewards_leftover_group_is_stopped_at_the_next_boot() {
    let state = tempfile::tempdir().expect("state dir");
    let (mut host, leader) = start_host(
        "recovery::recovery_host",
        &[(HOST_STATE_DIR_ENV, state.path().as_os_str())],
        LEADER_PID_PREFIX,
    )
    .await;
    // If recovery fails, the guard still kills the group at the end of the test.
    let mut leftover = ProcessGroupGuard::new(leader);
    // The shell and its two sleeps.
    wait_for_members(leader, 3).await;

    kill_host(&mut host).await;
    process_ends("the leader to die with its host", leader).await;
    let mut orphans = group_members(leader);
    orphans.sort_unstable();
    assert!(
        !orphans.is_empty(),
        "the background sleep outlives the killed host"
    );

    let dir = state.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || recover_with_grace(&dir, GRACE))
        .await
        .expect("recover");
    match &outcome[..] {
        [
            Recovered::Stopped {
                record,
                pids,
                forced: false,
                remaining,
            },
        ] => {
            assert_eq!(record.pid, leader);
            assert_eq!(pids, &orphans);
            assert!(remaining.is_empty(), "{remaining:?}");
        }
        other => panic!("expected one stopped group, got {other:?}"),
    }
    assert!(group_members(leader).is_empty());
    assert_eq!(
        pid_file::read(state.path(), "web").expect("read"),
        None,
        "the record is removed"
    );
    leftover.disarm();
}

#[tokio::test]
async fn a_group_that_ignores_sigterm_is_sigkilled() {
    let state = tempfile::tempdir().expect("state dir");
    let child = spawn(&plan("trap '' TERM; sleep 300 & sleep 300")).expect("spawns");
    let leader = child.id();
    let mut leftover = ProcessGroupGuard::new(leader);
    wait_for_members(leader, 3).await;
    let record = PidRecord::of_process("stubborn", leader, false).expect("record");
    pid_file::write(state.path(), &record).expect("write");

    let dir = state.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || recover_with_grace(&dir, GRACE))
        .await
        .expect("recover");
    match &outcome[..] {
        [
            Recovered::Stopped {
                pids,
                forced: true,
                remaining,
                ..
            },
        ] => {
            assert_eq!(pids.len(), 3, "{pids:?}");
            assert!(remaining.is_empty(), "{remaining:?}");
        }
        other => panic!("expected a forced stop, got {other:?}"),
    }
    assert!(group_members(leader).is_empty());
    leftover.disarm();
    drop(child);
}

#[tokio::test]
async fn a_record_whose_pid_was_reused_is_left_alone() {
    let state = tempfile::tempdir().expect("state dir");
    let child = spawn(&plan("sleep 300 & sleep 300")).expect("spawns");
    let pid = child.id();
    let mut guard = ProcessGroupGuard::new(pid);
    wait_for_members(pid, 3).await;
    // The record of an older process that had the same pid: another start time.
    let mut record = PidRecord::of_process("web", pid, false).expect("record");
    record.start_time = record.start_time.saturating_sub(1);
    pid_file::write(state.path(), &record).expect("write");

    let dir = state.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || recover_with_grace(&dir, GRACE))
        .await
        .expect("recover");
    assert_eq!(outcome, [Recovered::Gone(record)]);
    assert!(pid_alive(pid), "a reused pid is never signalled");
    assert_eq!(group_members(pid).len(), 3);
    assert_eq!(pid_file::read(state.path(), "web").expect("read"), None);
    guard.kill().expect("cleanup");
    drop(child);
}

#[tokio::test]
async fn a_detached_record_is_returned_for_adoption() {
    let state = tempfile::tempdir().expect("state dir");
    let child = spawn(&plan("sleep 300")).expect("spawns");
    let pid = child.id();
    let mut guard = ProcessGroupGuard::new(pid);
    let record = PidRecord::of_process("compose", pid, true).expect("record");
    pid_file::write(state.path(), &record).expect("write");

    let dir = state.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || recover_with_grace(&dir, GRACE))
        .await
        .expect("recover");
    assert_eq!(outcome, [Recovered::Adopt(record.clone())]);
    assert!(pid_alive(pid), "an adopted process is not stopped");
    assert_eq!(
        pid_file::read(state.path(), "compose").expect("read"),
        Some(record),
        "the adopted record is kept"
    );
    guard.kill().expect("cleanup");
    drop(child);
}

#[tokio::test]
async fn a_recorded_process_that_left_its_group_is_still_stopped() {
    let state = tempfile::tempdir().expect("state dir");
    // A group that existed once and is gone now: the number of a reaped process.
    let gone = spawn(&plan("true")).expect("spawns");
    let old_group = gone.id();
    gone.wait_with_output().await.expect("reaped");
    // `exec`: the recorded process is the sleep itself, with no child of its own that
    // recovery (which signals only that process, its group being gone) would leave.
    let child = spawn(&plan("exec sleep 300")).expect("spawns");
    let pid = child.id();
    let mut guard = ProcessGroupGuard::new(pid);
    // As if the process had moved out of the group it was recorded in.
    let mut record = PidRecord::of_process("moved", pid, false).expect("record");
    record.pgid = old_group;
    pid_file::write(state.path(), &record).expect("write");

    let dir = state.path().to_path_buf();
    let outcome = tokio::task::spawn_blocking(move || recover_with_grace(&dir, GRACE))
        .await
        .expect("recover");
    match &outcome[..] {
        [
            Recovered::Stopped {
                pids, remaining, ..
            },
        ] => {
            assert_eq!(pids, &[pid]);
            assert!(remaining.is_empty(), "{remaining:?}");
        }
        other => panic!("expected the moved process to be stopped, got {other:?}"),
    }
    assert!(!pid_alive(pid));
    guard.disarm();
    drop(child);
}

/// Tells the re-executed test binary to boot a whole runtime with this state_dir.
const RUNTIME_HOST_ENV: &str = "STEWARD_TEST_RUNTIME_HOST";
const SERVICE_PID_PREFIX: &str = "STEWARD_SERVICE_PID=";

fn family_config(state_dir: &Path) -> steward::config::Config {
    let mut settings = steward::config::Settings::defaults_in(state_dir);
    settings.state_dir = state_dir.to_path_buf();
    steward::config::Config {
        dir: state_dir.to_path_buf(),
        settings,
        services: vec![crate::support::service("family", "sleep 300 & sleep 300")],
    }
}

/// Not a test on its own: a steward runtime booted from a config with a state_dir, which
/// prints its service's pid and waits to be SIGKILLed.
#[test]
fn runtime_host() {
    let Some(state_dir) = std::env::var_os(RUNTIME_HOST_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let steward = steward::Steward::boot(family_config(Path::new(&state_dir)))
            .await
            .expect("boot");
        let pid = running_pid(&steward, "family").await;
        println!("{SERVICE_PID_PREFIX}{pid}");
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_booted_after_a_killed_one_cleans_up_and_starts_once() {
    let state = tempfile::tempdir().expect("state dir");
    let (mut host, old) = start_host(
        "recovery::runtime_host",
        &[(RUNTIME_HOST_ENV, state.path().as_os_str())],
        SERVICE_PID_PREFIX,
    )
    .await;
    let mut leftover = ProcessGroupGuard::new(old);
    wait_for_members(old, 3).await;
    kill_host(&mut host).await;
    process_ends("the leader to die with its host", old).await;
    assert!(
        !group_members(old).is_empty(),
        "the grandchild outlived its steward"
    );

    // The next boot from the same state_dir stops the leftovers, then starts afresh.
    let steward = steward::Steward::boot(family_config(state.path()))
        .await
        .expect("boot again");
    assert!(
        group_members(old).is_empty(),
        "orphans left: {:?}",
        group_members(old)
    );
    let new = running_pid(&steward, "family").await;
    assert_ne!(new, old);
    let record = pid_file::read(state.path(), "family")
        .expect("read")
        .expect("record");
    assert_eq!(record.pid, new, "one pid file, for the new process only");
    steward.shutdown().await.expect("shutdown");
    assert_eq!(pid_file::read(state.path(), "family").expect("read"), None);
    assert!(group_members(new).is_empty());
    leftover.disarm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pid_record_follows_restarts_and_goes_with_a_stop() {
    let state = tempfile::tempdir().expect("state dir");
    let steward = steward::Steward::spawn_with_state(Some(state.path().to_path_buf()))
        .await
        .expect("runtime");
    let mut def = crate::support::service("crashy", "exec sleep 300");
    def.backoff = vec![Duration::ZERO];
    steward.define(def).await.expect("define");
    let first = steward
        .start("crashy")
        .await
        .expect("start")
        .pid
        .expect("pid");
    let recorded = |dir: &Path| {
        pid_file::read(dir, "crashy")
            .expect("read")
            .map(|record| record.pid)
    };
    assert_eq!(recorded(state.path()), Some(first));

    // A crash with a restart right away: the record names the new process once it runs.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let dir = state.path().to_path_buf();
    let second = wait_for("the restarted process's record", DEADLINE, || {
        let dir = dir.clone();
        async move { recorded(&dir).filter(|pid| *pid != first && pid_alive(*pid)) }
    })
    .await;
    assert_eq!(
        steward.get("crashy").await.expect("get").state.pid,
        Some(second)
    );

    // A stop leaves no record.
    steward.stop("crashy").await.expect("stop");
    assert_eq!(recorded(state.path()), None);
    steward.shutdown().await.expect("shutdown");
}
