//! The actor tree: a panic in any of a service's four actors restarts all four
//! (one-for-all) and brings the process back; log history survives; past the actor restart
//! intensity the service is failed while the root and other services stay up; and the
//! processes die with steward's host process (pdeathsig).

use std::time::Duration;

use steward::config::{FunctionProbe, ProbeCheck, ProbeSpec};
use steward::events::EventKind;
use steward::logs::LogLine;
use steward::{ActorKind, ServiceStatus, Steward};

use crate::support::*;

fn probed(id: &str) -> steward::ServiceDefinition {
    let mut def = service(id, "echo hello; exec sleep 300");
    let mut probe = ProbeSpec::new(ProbeCheck::Function(FunctionProbe::new(
        "always",
        || async { Ok(()) },
    )));
    probe.interval = Duration::from_millis(50);
    probe.failure_threshold = 1;
    def.readiness = Some(probe);
    def
}

async fn hellos(steward: &Steward, id: &str) -> Vec<LogLine> {
    steward
        .logs(id, 100)
        .await
        .expect("logs")
        .into_iter()
        .filter(|l| l.line == "hello")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_any_actor_restarts_all_four_and_keeps_the_log() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(service("bystander", "sleep 300"))
        .await
        .expect("define");
    let bystander = steward.get("bystander").await.expect("get").state.pid;

    let kinds = [
        ActorKind::Server,
        ActorKind::PortManager,
        ActorKind::LogBuffer,
        ActorKind::HealthChecker,
    ];
    for kind in kinds {
        // One service per actor kind, so each sees exactly one actor failure.
        let id = format!("victim-{}", kind.as_str());
        steward.define(probed(&id)).await.expect("define");
        event_of(&mut events, &id, EventKind::Ready).await;
        let before = running_pid(&steward, &id).await;
        wait_for("hello in the log", SOON, || async {
            (hellos(&steward, &id).await.len() == 1).then_some(())
        })
        .await;

        steward.inject_panic(&id, kind).await.expect("inject");
        let restarting = event_of(&mut events, &id, EventKind::Restarting).await;
        let cause = restarting.cause.expect("cause");
        assert!(
            cause.contains(&format!("actor {} panicked", kind.as_str())),
            "cause: {cause}"
        );
        let started = event_of(&mut events, &id, EventKind::Started).await;
        let after = started.pid.expect("pid");
        assert_ne!(before, after, "a fresh process after a {kind:?} panic");
        process_ends("the old process to be gone", before).await;
        // The probes run again in the new generation.
        event_of(&mut events, &id, EventKind::Ready).await;
        // History survives: the first process's hello is still in the ring, before the
        // second one's.
        let lines = wait_for("the new hello", SOON, || async {
            let lines = hellos(&steward, &id).await;
            (lines.len() >= 2).then_some(lines)
        })
        .await;
        let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
        assert_eq!(seqs, vec![1, 2], "{kind:?}: {lines:?}");
    }
    assert_eq!(
        steward.get("bystander").await.expect("get").state.pid,
        bystander
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_actor_failures_fail_the_service_but_not_the_runtime() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(service("fragile", "sleep 300"))
        .await
        .expect("define");
    steward
        .define(service("bystander", "sleep 300"))
        .await
        .expect("define");
    let bystander = steward.get("bystander").await.expect("get").state.pid;
    let max = steward::runtime::service::supervisor::ACTOR_MAX_RESTARTS;
    for _ in 0..max {
        steward
            .inject_panic("fragile", ActorKind::PortManager)
            .await
            .expect("inject");
        // Recovered: the actors were restarted and the process is back.
        event_of(&mut events, "fragile", EventKind::Restarting).await;
        event_of(&mut events, "fragile", EventKind::Started).await;
    }
    let last_pid = running_pid(&steward, "fragile").await;
    steward
        .inject_panic("fragile", ActorKind::PortManager)
        .await
        .expect("inject");
    let failed = event_of(&mut events, "fragile", EventKind::Failed).await;
    assert!(failed.cause.expect("cause").contains("gave up"));
    let state = steward.get("fragile").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Failed);
    process_ends("the last process to be gone", last_pid).await;
    // The runtime and the other service are untouched.
    assert_eq!(
        steward.get("bystander").await.expect("get").state.pid,
        bystander
    );
    // A manual start brings up a fresh generation.
    let state = steward.start("fragile").await.expect("start again");
    assert_eq!(state.status, ServiceStatus::Running);
    steward.shutdown().await.expect("shutdown");
}

/// When `STEWARD_TEST_HOST` is set, this test acts as the host process of a steward
/// runtime for `children_die_with_the_host_process`: it starts a service, prints its pid
/// and waits to be killed.
#[test]
fn pdeathsig_host() {
    if std::env::var_os("STEWARD_TEST_HOST").is_none() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let steward = Steward::spawn().await.expect("runtime");
        let state = steward
            .define(service("orphan-candidate", "sleep 300"))
            .await
            .expect("define");
        println!("CHILD_PID={}", state.pid.expect("pid"));
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_die_with_the_host_process() {
    let (mut host, child_pid) = start_host(
        "supervision::pdeathsig_host",
        &[("STEWARD_TEST_HOST", std::ffi::OsStr::new("1"))],
        "CHILD_PID=",
    )
    .await;
    assert!(pid_alive(child_pid));
    kill_host(&mut host).await;
    process_ends("the service process to die with its host", child_pid).await;
}

/// A one-for-all restart SIGKILLs the old process group (with its PortManager) and starts
/// the new process only once that group is gone: two instances are never alive at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_for_all_restart_starts_the_new_process_only_after_the_old_group_is_gone() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    // A group whose members take time to die: each holds 1 GiB, which the kernel frees
    // after the SIGKILL (tens to hundreds of milliseconds), so a new process started at
    // once would overlap them. The file says the memory is touched.
    let dir = tempfile::tempdir().expect("tempdir");
    let hold =
        "import sys,time\nb=bytearray(1<<30)\nopen(sys.argv[1],'a').write('x')\ntime.sleep(300)";
    let line = format!(
        "for i in 1 2; do python3 -c \"{hold}\" {}/held & done; wait",
        dir.path().display()
    );
    steward
        .define(service("crowd", &line))
        .await
        .expect("define");
    for kind in [
        ActorKind::PortManager,
        ActorKind::Server,
        ActorKind::PortManager,
    ] {
        let old = running_pid(&steward, "crowd").await;
        let held = dir.path().join("held");
        let _ = std::fs::remove_file(&held);
        wait_for("both members to hold their memory", SOON, || async {
            (std::fs::read_to_string(&held).ok()?.len() == 2).then_some(())
        })
        .await;
        steward.inject_panic("crowd", kind).await.expect("inject");
        next_event(&mut events, "the new process's start", SOON, |e| {
            e.service == "crowd" && e.kind == EventKind::Started && e.pid != Some(old)
        })
        .await;
        assert_eq!(
            group_members(old),
            Vec::<u32>::new(),
            "after a {kind:?} panic the old group is gone when the new process has started"
        );
    }
    steward.shutdown().await.expect("shutdown");
}
