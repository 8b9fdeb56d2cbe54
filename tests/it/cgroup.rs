//! Nothing escapes (DESIGN §11, issue 13): a service whose grandchildren leave its process
//! group (`setsid`, a double fork) is still stopped, killed, restarted and paused as a
//! whole, in cgroup mode and in process-group + subreaper mode; a killed steward's leftover
//! cgroups are emptied at the next boot; the mode in force is shown.
//!
//! Each runtime creates `<own cgroup>/steward-<pid>-<n>/`; the tests check it is gone
//! when they finish. Where no writable cgroup v2 hierarchy exists, the cgroup-mode tests
//! print why and return.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use steward::process::cgroup::{TrackingMode, TrackingStatus};
use steward::{ControlAction, ServiceStatus, Steward};

use crate::cli::{Daemon, config_dir};
use crate::support::{SOON, comm_of, pid_alive, service, session_of, status_becomes, wait_for};

/// The service: a shell that starts one process in a new session (`setsid sleep`, its
/// parent stays) and one that double-forks into a new session (its parent exits at once),
/// records both pids, counts its starts, and execs a long sleep.
const ESCAPER: &str = r#"#!/bin/sh
echo start >> "$1/starts"
setsid sleep 1000 &
echo $! >> "$1/pids"
setsid sh -c 'sleep 1000 & echo $! >> "$1/pids"' sh "$1" &
exec sleep 1000
"#;

/// A directory with the escaper script; the service's command line.
fn escaper() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("escaper.sh");
    std::fs::write(&script, ESCAPER).expect("write the script");
    let line = format!("sh {} {}", script.display(), dir.path().display());
    (dir, line)
}

/// The escaped pids recorded by the run that wrote lines `from..from+2` of `dir/pids`,
/// once both are recorded and run `sleep`. A pid is written as soon as it is forked, before
/// `setsid` has made its new session; once it has exec'd `sleep` it has left.
async fn escaped(dir: &Path, from: usize) -> Vec<u32> {
    let file = dir.join("pids");
    wait_for("the two escaped processes", SOON, || {
        let pids: Vec<u32> = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .skip(from)
            .collect();
        let left = pids.len() >= 2
            && pids
                .iter()
                .all(|p| pid_alive(*p) && comm_of(*p).as_deref() == Some("sleep"));
        async move { left.then_some(pids) }
    })
    .await
}

/// A runtime in cgroup mode, or `None` (with the reason printed) where there is none.
async fn cgroup_runtime() -> Option<(Steward, PathBuf)> {
    let steward = Steward::spawn_with_cgroups(None, None, true)
        .await
        .expect("runtime");
    let status = steward.status().await.expect("status").tracking;
    match (status.mode, &status.cgroup) {
        (TrackingMode::Cgroup, Some(path)) => Some((steward, PathBuf::from(path))),
        _ => {
            eprintln!(
                "skipped: no cgroup mode here ({})",
                status.reason.unwrap_or_default()
            );
            None
        }
    }
}

/// Shuts the runtime down and checks its cgroup subtree is gone.
async fn shut_down(steward: Steward, subtree: &Path) {
    steward.shutdown().await.expect("shutdown");
    assert!(
        !subtree.exists(),
        "the runtime's cgroup subtree {} is left behind",
        subtree.display()
    );
}

fn assert_all_gone(pids: &[u32], what: &str) {
    let alive: Vec<u32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(alive.is_empty(), "{what}: {alive:?} still alive");
}

/// What steward waits for in cgroup mode before it answers a stop, kill or restart: none
/// of `pids` is in the service's cgroup any more (the kernel takes a dying process out of
/// its cgroup, making it unpopulated, a moment before the process becomes a zombie).
/// Then each of them ends (a process past that point cannot go back; on a loaded machine
/// it may not have been scheduled yet to finish its exit).
async fn left_the_cgroup_and_ended(leaf: &Path, pids: &[u32], what: &str) {
    let members = std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap_or_default();
    let inside: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| members.lines().any(|l| l == p.to_string()))
        .collect();
    assert!(
        inside.is_empty(),
        "{what}: {inside:?} still in {}",
        leaf.display()
    );
    wait_for(&format!("{what}: {pids:?} to end"), SOON, || {
        let ended = pids.iter().all(|p| !pid_alive(*p));
        async move { ended.then_some(()) }
    })
    .await;
}

/// Every thread of this test process, and its cgroup: a runtime must never move them.
fn own_threads_cgroups() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("cgroup")).ok())
        .filter_map(|text| {
            text.lines()
                .find(|l| l.starts_with("0::"))
                .map(String::from)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn stop_kill_and_restart_leave_no_escaped_process_in_cgroup_mode() {
    let before = own_threads_cgroups();
    let Some((steward, subtree)) = cgroup_runtime().await else {
        return;
    };
    let (dir, line) = escaper();
    let state = steward
        .define(service("esc", &line))
        .await
        .expect("defined");
    let main = state.pid.expect("pid");
    let pids = escaped(dir.path(), 0).await;
    // They did leave the service's session and group: a group signal would miss them.
    for pid in &pids {
        assert_ne!(session_of(*pid), session_of(main), "{pid} left the session");
    }
    let leaf = subtree.join("esc");
    let members = std::fs::read_to_string(leaf.join("cgroup.procs")).expect("procs");
    for pid in pids.iter().chain([&main]) {
        assert!(
            members.lines().any(|l| l == pid.to_string()),
            "{pid} is in {}: {members}",
            leaf.display()
        );
    }

    // Stop: reported `stopped` only once the cgroup is empty.
    let stopped = steward
        .control("esc", ControlAction::Stop)
        .await
        .expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    left_the_cgroup_and_ended(&leaf, &pids, "after stop").await;
    assert!(!pid_alive(main));

    // Restart: the old run's escapees are gone when the new run starts.
    steward
        .control("esc", ControlAction::Start)
        .await
        .expect("start");
    let pids = escaped(dir.path(), 2).await;
    steward
        .control("esc", ControlAction::Restart)
        .await
        .expect("restart");
    left_the_cgroup_and_ended(&leaf, &pids, "after restart").await;

    // Kill.
    let pids = escaped(dir.path(), 4).await;
    steward
        .control("esc", ControlAction::Kill)
        .await
        .expect("kill");
    left_the_cgroup_and_ended(&leaf, &pids, "after kill").await;

    // Removing the service removes its cgroup.
    status_becomes(&steward, "esc", ServiceStatus::Stopped).await;
    steward.remove("esc").await.expect("remove");
    wait_for("the service's cgroup to be removed", SOON, || {
        let gone = !leaf.exists();
        async move { gone.then_some(()) }
    })
    .await;
    shut_down(steward, &subtree).await;
    assert_eq!(own_threads_cgroups(), before, "the test process was moved");
}

#[tokio::test]
async fn pause_freezes_the_escaped_processes_too() {
    let Some((steward, subtree)) = cgroup_runtime().await else {
        return;
    };
    let (dir, line) = escaper();
    steward
        .define(service("frozen", &line))
        .await
        .expect("defined");
    let pids = escaped(dir.path(), 0).await;
    let paused = steward
        .control("frozen", ControlAction::Pause)
        .await
        .expect("pause");
    assert_eq!(paused.status, ServiceStatus::Paused);
    for pid in &pids {
        // Its own cgroup (read from /proc, not assumed) says frozen.
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("v2 line");
        let dir = subtree
            .ancestors()
            .find(|a| {
                a.join(path.trim_start_matches('/'))
                    .join("cgroup.events")
                    .exists()
            })
            .map(|a| a.join(path.trim_start_matches('/')))
            .expect("the process's cgroup directory");
        let events = std::fs::read_to_string(dir.join("cgroup.events")).expect("events");
        assert!(
            events.contains("frozen 1"),
            "{pid} in {}: {events}",
            dir.display()
        );
    }
    steward
        .control("frozen", ControlAction::Resume)
        .await
        .expect("resume");
    let events = std::fs::read_to_string(subtree.join("frozen/cgroup.events")).expect("events");
    assert!(events.contains("frozen 0"), "{events}");
    // A stop of a paused service thaws it first, and still ends everything.
    steward
        .control("frozen", ControlAction::Pause)
        .await
        .expect("pause again");
    steward
        .control("frozen", ControlAction::Stop)
        .await
        .expect("stop");
    left_the_cgroup_and_ended(
        &subtree.join("frozen"),
        &pids,
        "after stop of a paused service",
    )
    .await;
    shut_down(steward, &subtree).await;
}

#[tokio::test]
async fn the_status_says_which_mode_is_in_force() {
    let steward = Steward::spawn_with_cgroups(None, None, false)
        .await
        .expect("runtime");
    let status: TrackingStatus = steward.status().await.expect("status").tracking;
    assert_eq!(status.mode, TrackingMode::ProcessGroup);
    assert_eq!(
        status.reason.as_deref(),
        Some("disabled by settings.cgroups: false")
    );
    assert_eq!(status.cgroup, None);
    steward.shutdown().await.expect("shutdown");

    let Some((steward, subtree)) = cgroup_runtime().await else {
        return;
    };
    assert!(
        subtree.join("cgroup.procs").exists(),
        "{}",
        subtree.display()
    );
    let name = subtree.file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(
        name.starts_with(&format!("steward-{}-", std::process::id())),
        "{name}"
    );
    shut_down(steward, &subtree).await;
}

#[tokio::test]
async fn a_killed_stewards_escaped_processes_are_ended_at_the_next_boot() {
    let (scripts, line) = escaper();
    let dir = config_dir(&format!(
        "version: 1\nsettings:\n  state_dir: state\nservices:\n  esc:\n    command: {line}\n"
    ));
    let mut first = Daemon::spawn(dir.path(), &[], &[]);
    first.wait_live().await;
    first.wait_running(&["esc"]).await;
    let status = daemon_status(&first).await;
    if status.mode != TrackingMode::Cgroup {
        eprintln!("skipped: no cgroup mode here ({status})");
        return;
    }
    let subtree = PathBuf::from(status.cgroup.expect("path"));
    let pids = escaped(scripts.path(), 0).await;
    first.signal(Signal::SIGKILL);
    first.exit(SOON).await;
    // steward is gone; what escaped its process group lives on.
    assert!(pids.iter().all(|p| pid_alive(*p)), "{pids:?}");
    assert!(subtree.exists());

    let mut second = Daemon::spawn(dir.path(), &[], &[]);
    second.wait_live().await;
    second.wait_running(&["esc"]).await;
    left_the_cgroup_and_ended(&subtree.join("esc"), &pids, "after the next boot").await;
    assert!(!subtree.exists(), "the killed steward's subtree is removed");
    let starts = std::fs::read_to_string(scripts.path().join("starts")).expect("starts");
    assert_eq!(starts.lines().count(), 2, "started once per boot: {starts}");
    let new_pids = escaped(scripts.path(), 2).await;
    let new_subtree = PathBuf::from(daemon_status(&second).await.cgroup.expect("path"));
    second.signal(Signal::SIGTERM);
    assert!(second.exit(Duration::from_secs(30)).await.success());
    left_the_cgroup_and_ended(
        &new_subtree.join("esc"),
        &new_pids,
        "after a clean shutdown",
    )
    .await;
    assert!(!new_subtree.exists(), "removed at a clean shutdown");
}

/// `GET /api/v1/status`'s tracking, read with a plain HTTP client.
async fn daemon_status(daemon: &Daemon) -> TrackingStatus {
    let body: serde_json::Value = reqwest::get(format!("{}/api/v1/status", daemon.url))
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    serde_json::from_value(body["tracking"].clone()).expect("tracking")
}

/// The escaper for process-group mode: one process in a new session whose parent stays
/// (found by the walk at the stop) and one double-forked process left in the group (its
/// parent exits at once; reparented to steward, the subreaper).
const GROUP_ESCAPER: &str = r#"#!/bin/sh
echo start >> "$1/starts"
setsid sleep 1000 &
echo $! >> "$1/pids"
sh -c 'sleep 1000 & echo $! >> "$1/pids"' sh "$1" &
exec sleep 1000
"#;

/// `POST /api/v1/services/ID/VERB`, waiting for the verb to be done.
async fn control(daemon: &Daemon, id: &str, verb: &str) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/services/{id}/{verb}", daemon.url))
        .send()
        .await
        .expect("control");
    assert!(
        response.status().is_success(),
        "{verb}: {}",
        response.status()
    );
    response.json().await.expect("json")
}

#[tokio::test]
async fn stop_kill_and_restart_leave_no_escaped_process_in_group_mode() {
    let scripts = tempfile::tempdir().expect("tempdir");
    let script = scripts.path().join("escaper.sh");
    std::fs::write(&script, GROUP_ESCAPER).expect("script");
    let dir = config_dir(&format!(
        "version: 1\nsettings:\n  cgroups: false\nservices:\n  esc:\n    command: sh {} {}\n",
        script.display(),
        scripts.path().display()
    ));
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["esc"]).await;
    let status = daemon_status(&daemon).await;
    assert_eq!(status.mode, TrackingMode::ProcessGroup);
    assert_eq!(
        status.reason.as_deref(),
        Some("disabled by settings.cgroups: false")
    );
    let main = daemon.pid_of("esc").await;
    let pids = escaped(scripts.path(), 0).await;
    assert_ne!(session_of(pids[0]), session_of(main), "left the session");

    let stopped = control(&daemon, "esc", "stop").await;
    assert_eq!(stopped["status"], "stopped");
    assert_all_gone(&pids, "after stop");

    control(&daemon, "esc", "start").await;
    let pids = escaped(scripts.path(), 2).await;
    control(&daemon, "esc", "restart").await;
    assert_all_gone(&pids, "after restart");

    let pids = escaped(scripts.path(), 4).await;
    control(&daemon, "esc", "kill").await;
    assert_all_gone(&pids, "after kill");
    daemon.signal(Signal::SIGTERM);
    assert!(daemon.exit(Duration::from_secs(30)).await.success());
}

/// A child of the service that allocates and touches 100 MiB, then sleeps.
fn allocator(ready: &Path) -> String {
    format!(
        "sh -c 'python3 -c \"import time; b = bytearray(100 << 20); b[::4096] = bytes(25600); b[::4096] = b\\\"\\\\x01\\\" * 25600; open(\\\"{}\\\", \\\"w\\\").close(); time.sleep(1000)\" & exec sleep 1000'",
        ready.display()
    )
}

#[tokio::test]
async fn memory_counts_every_process_of_the_service_in_both_modes() {
    for cgroups in [true, false] {
        let steward = Steward::spawn_with_cgroups(None, None, cgroups)
            .await
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let ready = dir.path().join("ready");
        let state = steward
            .define(service("hog", &allocator(&ready)))
            .await
            .expect("defined");
        let main = state.pid.expect("pid");
        wait_for("the child to allocate", SOON, || {
            let done = ready.exists();
            async move { done.then_some(()) }
        })
        .await;
        let rss = wait_for("the service's memory to count its child", SOON, || async {
            let rss = steward.get("hog").await.ok()?.state.rss_bytes?;
            (rss >= 100 << 20).then_some(rss)
        })
        .await;
        // The process steward spawned is a `sleep`: the memory is its child's.
        let own = std::fs::read_to_string(format!("/proc/{main}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .expect("VmRSS");
        assert!(
            own * 1024 < 100 << 20,
            "cgroups {cgroups}: sleep holds {own} kB"
        );
        eprintln!("cgroups {cgroups}: service memory {} MiB", rss >> 20);
        steward.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn max_memory_restarts_a_growing_service_with_the_figures_and_leaves_a_steady_one() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    // The growth is in a child of the process steward spawned: the whole tree counts.
    let grower = "sh -c 'python3 -c \"import time\nb = []\nwhile True:\n    if len(b) < 30: b.append(bytearray(8 << 20)); b[-1][::4096] = bytes(2048)\n    time.sleep(0.05)\" & exec sleep 1000'";
    let mut grow = service("grow", grower);
    grow.max_memory = Some(50 << 20);
    let mut steady = service("steady", "sleep 1000");
    steady.max_memory = Some(50 << 20);
    let steady_pid = steward
        .define(steady)
        .await
        .expect("steady")
        .pid
        .expect("pid");
    steward.define(grow).await.expect("grow");
    let event = crate::support::next_event(&mut events, "a max_memory restart", SOON, |e| {
        e.service == "grow"
            && e.cause
                .as_deref()
                .is_some_and(|c| c.contains("> max_memory 50MiB"))
    })
    .await;
    let cause = event.cause.unwrap_or_default();
    let used: u64 = cause
        .strip_prefix("memory ")
        .and_then(|rest| rest.split_once("MiB > max_memory 50MiB"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("cause in words with the figures: {cause}"));
    assert!(used > 50, "{cause}");
    wait_for("grow to run again after its restart", SOON, || async {
        let state = steward.get("grow").await.ok()?.state;
        (state.restart_count >= 1 && state.status == ServiceStatus::Running).then_some(())
    })
    .await;
    // The steady service was sampled as often meanwhile and is left alone.
    let state = steward.get("steady").await.expect("steady").state;
    assert_eq!(state.restart_count, 0);
    assert_eq!(state.pid, Some(steady_pid));
    steward.shutdown().await.expect("shutdown");
}

#[test]
fn max_memory_and_settings_cgroups_load_and_bad_values_name_the_place() {
    let dir = config_dir(
        "version: 1\nsettings:\n  cgroups: false\nservices:\n  web:\n    command: sleep 1\n    max_memory: 400MiB\n",
    );
    let config = steward::config::load_dir(dir.path()).expect("loads");
    assert!(!config.settings.cgroups);
    assert_eq!(config.services[0].max_memory, Some(400 << 20));
    let dir = config_dir("version: 1\nservices:\n  web:\n    command: sleep 1\n");
    let config = steward::config::load_dir(dir.path()).expect("loads");
    assert!(config.settings.cgroups, "on by default");
    assert_eq!(config.services[0].max_memory, None);
    let dir = config_dir(
        "version: 1\nsettings:\n  cgroups: maybe\nservices:\n  web:\n    command: sleep 1\n    max_memory: lots\n",
    );
    let error = steward::config::load_dir(dir.path())
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("services.yml:3:12") && error.contains("cgroups"),
        "{error}"
    );
    assert!(
        error.contains("services.yml:7:17") && error.contains("max_memory"),
        "{error}"
    );
}
