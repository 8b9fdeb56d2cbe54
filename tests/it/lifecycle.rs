//! Service lifecycle through the public API, with real processes: start, stop, kill,
//! restart policies, backoff, restart intensity, environment and cwd checks, logs, input.
//!
//! Length (over 600 lines): 26 short tests, one per lifecycle rule, each on a runtime of
//! its own; the later sections group the regressions of issues 10 and 14. A split would be
//! by issue, not by concept.

use std::time::Duration;

use steward::config::RestartPolicy;
use steward::events::EventKind;
use steward::{ControlAction, ControlError, Health, ServiceStatus, Steward};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restarts_after_each_configured_backoff_delay() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut def = service("crasher", "echo up; exit 3");
    def.backoff = vec![Duration::from_millis(100), Duration::from_millis(300)];
    steward.define(def).await.expect("define");

    let mut delays = Vec::new();
    let mut last_exit_ts = None;
    for _ in 0..3 {
        let exited = event_of(&mut events, "crasher", EventKind::Exited).await;
        assert_eq!(exited.exit_code, Some(3));
        let backoff = event_of(&mut events, "crasher", EventKind::Backoff).await;
        assert_eq!(backoff.cause.as_deref(), Some("exit code 3"));
        let delay = backoff.delay_ms.expect("backoff carries its delay");
        let started = event_of(&mut events, "crasher", EventKind::Started).await;
        // Loose check: the restart never comes before its delay.
        let waited = (started.ts - exited.ts).num_milliseconds();
        assert!(
            waited >= delay as i64,
            "restarted after {waited} ms, delay was {delay} ms"
        );
        delays.push(delay);
        last_exit_ts = Some(exited.ts);
    }
    assert!(last_exit_ts.is_some());
    // The last delay repeats.
    assert_eq!(delays, vec![100, 300, 300]);
    let state = steward.get("crasher").await.expect("get").state;
    assert!(state.restart_count >= 3);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_restarts_only_after_a_failure() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut ok = service("clean", "exit 0");
    ok.restart = RestartPolicy::Transient;
    let mut bad = service("dirty", "exit 1");
    bad.restart = RestartPolicy::Transient;
    bad.max_restarts = 100;
    steward.define(ok).await.expect("define");
    steward.define(bad).await.expect("define");

    let state = status_becomes(&steward, "clean", ServiceStatus::Exited).await;
    assert_eq!(state.last_exit.and_then(|e| e.code), Some(0));
    event_of(&mut events, "dirty", EventKind::Backoff).await;
    // A second start proves the restart happened.
    event_of(&mut events, "dirty", EventKind::Started).await;
    event_of(&mut events, "dirty", EventKind::Started).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_never_restarts_and_permanent_always_does() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut temp = service("temp", "exit 1");
    temp.restart = RestartPolicy::Temporary;
    let perm = service("perm", "exit 0");
    steward.define(temp).await.expect("define");
    steward.define(perm).await.expect("define");

    let state = status_becomes(&steward, "temp", ServiceStatus::Exited).await;
    assert_eq!(state.last_exit.and_then(|e| e.code), Some(1));
    assert_eq!(state.restart_count, 0);
    // A clean exit of a permanent service is restarted.
    let backoff = event_of(&mut events, "perm", EventKind::Backoff).await;
    assert_eq!(backoff.cause.as_deref(), Some("exit code 0"));
    event_of(&mut events, "perm", EventKind::Started).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_the_restart_intensity_marks_the_service_failed() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut def = service("flappy", "exit 1");
    def.backoff = vec![Duration::ZERO];
    def.max_restarts = 3;
    steward.define(def).await.expect("define");

    let failed = event_of(&mut events, "flappy", EventKind::Failed).await;
    let cause = failed.cause.expect("failed has a cause");
    assert!(
        cause.contains("4 restarts in 5m > max_restarts 3"),
        "cause: {cause}"
    );
    let history = steward.tables().events.history(None);
    let launches = history
        .iter()
        .filter(|e| e.service == "flappy" && e.kind == EventKind::Started)
        .count();
    assert_eq!(launches, 4, "max_restarts 3 means at most four launches");
    let state = steward.get("flappy").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Failed);
    assert_eq!(state.restart_count, 3);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_ignores_sigterm_is_killed_after_stop_timeout() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut def = service("stubborn", "");
    def.command = steward::CommandSpec::Argv(vec![
        "sh".into(),
        "-c".into(),
        "trap '' TERM; echo armed; while :; do sleep 0.05; done".into(),
    ]);
    def.stop_timeout = Duration::from_millis(300);
    steward.define(def).await.expect("define");
    // Wait until the trap is installed before asking it to stop.
    logged(&steward, "stubborn", "armed").await;
    let pid = running_pid(&steward, "stubborn").await;
    let state = steward.stop("stubborn").await.expect("stop");
    assert_eq!(state.status, ServiceStatus::Stopped);
    let exited = event_of(&mut events, "stubborn", EventKind::Exited).await;
    assert_eq!(exited.signal.as_deref(), Some("SIGKILL"));
    let cause = exited.cause.expect("cause");
    assert!(cause.contains("stop_timeout"), "cause: {cause}");
    assert!(!pid_alive(pid));
    group_empties("every member of the group to be gone", pid).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_leaves_no_grandchild_behind() {
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(service("family", "sleep 300 & sleep 300"))
        .await
        .expect("define");
    let pid = running_pid(&steward, "family").await;
    wait_for("the background grandchild", SOON, || async {
        (group_members(pid).len() >= 2).then_some(())
    })
    .await;
    steward.stop("family").await.expect("stop");
    // The kernel closes a dying process's pipes a moment before it leaves the process
    // table, so a member may still be on its way out when stop returns.
    group_empties("every member of the group to be gone", pid).await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_required_env_or_cwd_fails_without_starting() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut env = service("needs-env", "sleep 300");
    env.required_env = vec!["STEWARD_TEST_SURELY_UNSET_VAR".into()];
    let err = steward.define(env).await.expect_err("must not start");
    match &err {
        ControlError::StartFailed { reason, .. } => {
            assert!(reason.contains("STEWARD_TEST_SURELY_UNSET_VAR"), "{reason}")
        }
        other => panic!("unexpected {other:?}"),
    }
    let state = steward.get("needs-env").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Failed);
    assert!(state.pid.is_none());

    let mut cwd = service("bad-cwd", "sleep 300");
    cwd.cwd = "/nonexistent/steward-test".into();
    let err = steward.define(cwd).await.expect_err("must not start");
    assert!(
        err.to_string().contains("/nonexistent/steward-test"),
        "{err}"
    );
    let started = steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .filter(|e| e.kind == EventKind::Started)
        .count();
    assert_eq!(started, 0);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_file_that_is_a_fifo_or_a_device_fails_the_start_at_once() {
    // Reading either used to hang the start (a FIFO without a writer) or grow steward
    // without bound (/dev/zero); now both are refused, naming what the path is.
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo.env");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let zero = dir.path().join("zero.env");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let steward = Steward::spawn().await.expect("runtime");
    for (id, path, what) in [
        ("fifo-env", &fifo, "a FIFO"),
        ("zero-env", &zero, "a character device"),
    ] {
        let mut def = service(id, "sleep 300");
        def.env_file = Some(path.clone());
        let err = tokio::time::timeout(SOON, steward.define(def))
            .await
            .expect("the start is answered")
            .expect_err("must not start");
        let text = err.to_string();
        assert!(text.contains(what) && text.contains("env_file"), "{text}");
        let state = steward.get(id).await.expect("get").state;
        assert_eq!(state.status, ServiceStatus::Failed);
    }
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_actions_never_count_as_crashes() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("manual", "sleep 300");
    def.max_restarts = 0;
    steward.define(def).await.expect("define");
    let first = running_pid(&steward, "manual").await;
    let mut pid = first;
    for _ in 0..3 {
        let state = steward.restart("manual").await.expect("restart");
        assert_eq!(state.status, ServiceStatus::Running);
        let new_pid = state.pid.expect("pid");
        assert_ne!(new_pid, pid);
        assert!(!pid_alive(pid));
        pid = new_pid;
    }
    let state = steward.kill("manual").await.expect("kill");
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert_eq!(state.restart_count, 0);
    assert!(!pid_alive(pid));
    let state = steward.start("manual").await.expect("start");
    assert_eq!(state.status, ServiceStatus::Running);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_subscribe_and_stdin_input() {
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(service("echo", "cat"))
        .await
        .expect("define");
    let mut sub = steward
        .subscribe_logs("echo", None)
        .await
        .expect("subscribe");
    steward
        .input("echo", "hello\nworld\n")
        .await
        .expect("input");
    let mut got = Vec::new();
    while got.len() < 2 {
        match tokio::time::timeout(SOON, sub.recv()).await {
            Ok(Some(steward::logs::LogRecord::Line(l))) => got.push(l.line),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, vec!["hello", "world"]);
    let tail = steward.logs("echo", 1).await.expect("logs");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].line, "world");
    assert_eq!(tail[0].seq, 2);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_errors_are_typed() {
    let steward = Steward::spawn().await.expect("runtime");
    assert!(matches!(
        steward.start("ghost").await,
        Err(ControlError::NotFound(_))
    ));
    assert!(matches!(
        steward.get("ghost").await,
        Err(ControlError::NotFound(_))
    ));
    let mut web = service("web", "sleep 300");
    web.tags = vec!["frontend".into()];
    steward.define(web).await.expect("define");
    assert!(matches!(
        steward.define(service("web", "sleep 1")).await,
        Err(ControlError::AlreadyExists(_))
    ));
    assert!(matches!(
        steward.remove("web").await,
        Err(ControlError::Running(_))
    ));
    let mut idle = service("idle", "sleep 300");
    idle.autostart = false;
    let state = steward.define(idle).await.expect("define");
    assert_eq!(state.status, ServiceStatus::Pending);
    assert_eq!(state.health, Health::Unknown);
    let tagged = steward.list_by_tag("frontend").await.expect("list");
    assert_eq!(
        tagged.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec!["web"]
    );
    assert_eq!(steward.list().await.expect("list").len(), 2);
    assert!(matches!(
        steward.input("idle", "x").await,
        Err(ControlError::NotRunning { .. })
    ));
    steward.stop("web").await.expect("stop");
    steward.remove("web").await.expect("remove");
    assert!(matches!(
        steward.get("web").await,
        Err(ControlError::NotFound(_))
    ));
    let bad = service("Not Valid", "sleep 1");
    assert!(matches!(
        steward.define(bad).await,
        Err(ControlError::InvalidDefinition(_))
    ));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_stops_every_service_with_events_in_sequence() {
    let steward = Steward::spawn().await.expect("runtime");
    for id in ["a", "b", "c"] {
        steward
            .define(service(id, "sleep 300"))
            .await
            .expect("define");
    }
    let results = steward.stop_all().await.expect("stop all");
    assert!(results.iter().all(|(_, r)| r.is_ok()));
    // No dependencies: one level, asked at once, in no set order (dependency order is
    // checked in dependencies.rs). Each service went through `stopping` to `stopped`.
    let history = steward.tables().events.history(None);
    for id in ["a", "b", "c"] {
        let kinds: Vec<EventKind> = history
            .iter()
            .filter(|e| e.service == id)
            .filter(|e| matches!(e.kind, EventKind::Stopping | EventKind::Stopped))
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EventKind::Stopping, EventKind::Stopped], "{id}");
    }
    let seqs: Vec<u64> = steward
        .tables()
        .events
        .history(None)
        .iter()
        .map(|e| e.seq)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "event seq has holes"
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_freezes_the_group_and_resume_thaws_it() {
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(service("napper", "sleep 300"))
        .await
        .expect("define");
    let pid = running_pid(&steward, "napper").await;
    let state = steward.pause("napper").await.expect("pause");
    assert_eq!(state.status, ServiceStatus::Paused);
    wait_for("the process to be stopped (T)", SOON, || async {
        (pid_state(pid).as_deref() == Some("T")).then_some(())
    })
    .await;
    let state = steward.resume("napper").await.expect("resume");
    assert_eq!(state.status, ServiceStatus::Running);
    wait_for("the process to run again", SOON, || async {
        (pid_state(pid).as_deref() == Some("S")).then_some(())
    })
    .await;
    // Stopping a paused service works too (stop signal, then SIGCONT).
    steward.pause("napper").await.expect("pause");
    let state = steward.stop("napper").await.expect("stop");
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert!(!pid_alive(pid));
    steward.shutdown().await.expect("shutdown");
}

/// "paused" is said once it is true: the answer to a pause comes after the process has
/// taken its SIGSTOP, in cgroup mode and in process-group mode alike (a signal takes effect
/// when the process next runs; on a busy machine that is not at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_answered_once_the_process_is_stopped_in_either_tracking_mode() {
    for cgroups in [true, false] {
        let steward = Steward::spawn_with_cgroups(None, None, cgroups)
            .await
            .expect("runtime");
        steward
            .define(service("napper", "sleep 300"))
            .await
            .expect("define");
        let pid = running_pid(&steward, "napper").await;
        for round in 0..5 {
            let state = steward.pause("napper").await.expect("pause");
            assert_eq!(state.status, ServiceStatus::Paused);
            assert_eq!(
                pid_state(pid).as_deref(),
                Some("T"),
                "cgroups {cgroups}, round {round}: stopped when the pause is answered"
            );
            steward.resume("napper").await.expect("resume");
        }
        steward.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_every_process() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut pids = Vec::new();
    for id in ["one", "two"] {
        let state = steward
            .define(service(id, "sleep 300 & sleep 300"))
            .await
            .expect("define");
        pids.push(state.pid.expect("pid"));
    }
    steward.shutdown().await.expect("shutdown");
    for pid in pids {
        assert!(group_members(pid).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_user_fails_the_start_with_a_reason() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("as-ghost", "sleep 300");
    def.user = Some("steward-no-such-user".into());
    let err = steward.define(def).await.expect_err("must not start");
    assert!(
        err.to_string()
            .contains("unknown user `steward-no-such-user`"),
        "{err}"
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_env_file_writes_the_service_variables_before_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("compose", "cat .env; exec sleep 300");
    def.cwd = dir.path().to_path_buf();
    def.write_env_file = true;
    def.env
        .insert("GREETING".into(), "hello \"world\" $HOME".into());
    steward.define(def).await.expect("define");
    let line = wait_for("the .env line in the log", SOON, || async {
        let lines = steward.logs("compose", 10).await.ok()?;
        lines
            .into_iter()
            .find(|l| l.line.starts_with("GREETING="))
            .map(|l| l.line)
    })
    .await;
    assert_eq!(line, r#"GREETING="hello \"world\" \$HOME""#);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join(".env"))
            .expect(".env")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_step_without_a_state_dir_fails_the_start_instead_of_being_skipped() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("needs-install", "sleep 300");
    def.install = Some(steward::CommandSpec::Line("make".into()));
    let err = steward.define(def).await.expect_err("must not start");
    assert!(
        err.to_string()
            .contains("`install` needs a state directory"),
        "{err}"
    );
    assert!(
        steward
            .get("needs-install")
            .await
            .expect("get")
            .state
            .pid
            .is_none()
    );
    steward.shutdown().await.expect("shutdown");
}

/// `ServerMsg::ShutdownKill` (sent by the root when steward's shutdown budget is spent):
/// SIGKILL to the group at once, the service `stopped`, and the `stopping`, `exited` and
/// `stopped` events say the budget was spent instead of "stopped on request". Driven
/// through a ServiceSupervisor of its own, as the root does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_at_the_shutdown_budget_says_the_budget_was_spent() {
    use std::sync::Arc;

    use ractor::Actor;
    use steward::logs::LogRing;
    use steward::runtime::Tables;
    use steward::runtime::service::server::ServerMsg;
    use steward::runtime::service::supervisor::{
        ServiceSupervisor, ServiceSupervisorArgs, ServiceSupervisorMsg,
    };

    let tables = Arc::new(Tables::new());
    let mut def = service("budget", "sleep 300");
    // A stop would wait this long; the budget's kill must not.
    def.stop_timeout = Duration::from_secs(300);
    tables.insert_ring(
        &def.id,
        Arc::new(LogRing::new(&def.id, 100, tables.events.clone())),
    );
    let mut events = tables.events.subscribe(None);
    let (supervisor, handle) = Actor::spawn(
        None,
        ServiceSupervisor,
        ServiceSupervisorArgs {
            definition: Arc::new(def),
            tables: tables.clone(),
        },
    )
    .await
    .expect("service supervisor");

    let started = supervisor
        .call(
            |reply| ServiceSupervisorMsg::Control(ServerMsg::Start(reply)),
            Some(SOON),
        )
        .await
        .expect("supervisor answers")
        .expect("start reply")
        .expect("started");
    let pid = started.pid.expect("a running process has a pid");

    let stopped = supervisor
        .call(
            |reply| {
                ServiceSupervisorMsg::Control(ServerMsg::ShutdownKill {
                    budget: Duration::from_secs(30),
                    reply,
                })
            },
            Some(SOON),
        )
        .await
        .expect("supervisor answers")
        .expect("shutdown kill reply")
        .expect("stopped");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert!(!pid_alive(pid), "the process was SIGKILLed");

    let stopping = event_of(&mut events, "budget", EventKind::Stopping).await;
    assert_eq!(stopping.cause.as_deref(), Some("shutdown budget 30s spent"));
    let exited = event_of(&mut events, "budget", EventKind::Exited).await;
    assert_eq!(exited.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(exited.cause.as_deref(), Some("shutdown budget 30s spent"));
    let stopped = event_of(&mut events, "budget", EventKind::Stopped).await;
    assert_eq!(stopped.cause.as_deref(), Some("shutdown budget 30s spent"));

    supervisor.stop(None);
    handle.await.expect("supervisor stopped");
}

/// Issue 10, item 7: a runtime shutdown whose budget runs out kills what is left, and
/// says so: the events of the service it killed name the budget, not a stop request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_whose_budget_runs_out_kills_and_names_the_budget() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    // Ignores SIGTERM (and so does its sleep, which inherits the ignored disposition).
    let mut def = service(
        "stubborn",
        "trap '' TERM; echo armed; while :; do sleep 1; done",
    );
    def.stop_timeout = Duration::from_secs(300);
    steward.define(def).await.expect("define");
    let pid = running_pid(&steward, "stubborn").await;
    // SIGTERM must come after the trap is set, or the shell dies of it.
    logged(&steward, "stubborn", "armed").await;
    let pgid = pid; // every service leads its own process group

    steward
        .shutdown_within(Duration::from_secs(1))
        .await
        .expect("shutdown");

    let stopping = event_of(&mut events, "stubborn", EventKind::Stopping).await;
    assert_eq!(stopping.cause.as_deref(), Some("stop requested"));
    let exited = event_of(&mut events, "stubborn", EventKind::Exited).await;
    assert_eq!(exited.signal.as_deref(), Some("SIGKILL"));
    assert_eq!(exited.cause.as_deref(), Some("shutdown budget 1s spent"));
    let stopped = event_of(&mut events, "stubborn", EventKind::Stopped).await;
    assert_eq!(stopped.cause.as_deref(), Some("shutdown budget 1s spent"));
    assert!(!pid_alive(pid), "the service's process was killed");
    assert!(
        group_members(pgid).is_empty(),
        "nothing of its group is left"
    );
}

// ------------------------------------------- every request is answered (issue 14, item 1)

/// Polls `request` once and hands it back to be awaited later. ractor's `call` puts its
/// message in the root's mailbox before it first waits, and the root passes a service's
/// verbs on in the order it got them: requests sent this way reach the Server in the order
/// of the calls, with no sleep between them.
async fn sent<'a, T: Send + 'a>(
    request: impl std::future::Future<Output = T> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> {
    let mut request: std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>> =
        Box::pin(request);
    match futures::poll!(&mut request) {
        // Answered already (another worker thread did it all between send and poll).
        std::task::Poll::Ready(answer) => Box::pin(std::future::ready(answer)),
        std::task::Poll::Pending => request,
    }
}

/// A service whose shell ignores SIGTERM (so a stop waits for its 60 s `stop_timeout`)
/// and exits when a line arrives on its stdin; running, with the trap armed.
async fn stubborn(steward: &Steward, id: &str) {
    let mut def = service(id, "trap '' TERM; echo armed; read line; exit 0");
    def.stop_timeout = Duration::from_secs(60);
    steward.define(def).await.expect("define");
    logged(steward, id, "armed").await;
}

/// Regression (issue 14, item 1): a start queued behind a stop, then a second stop: the
/// start waited in `start_waiters` and the exit answered only the stops, so the start was
/// never answered. It is answered when the run ends, with what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_queued_behind_a_stop_is_answered_when_a_later_stop_wins() {
    let steward = Steward::spawn().await.expect("runtime");
    stubborn(&steward, "stubborn").await;
    let stopping = steward
        .control_no_wait("stubborn", ControlAction::Stop)
        .await
        .expect("stop");
    assert_eq!(stopping.status, ServiceStatus::Stopping);
    let start = sent(steward.start("stubborn")).await;
    let second_stop = sent(steward.stop("stubborn")).await;
    let killed = steward.kill("stubborn").await.expect("kill");
    assert_eq!(killed.status, ServiceStatus::Stopped);

    let started = tokio::time::timeout(SOON, start)
        .await
        .expect("the queued start is answered once the run is over");
    match started {
        Err(ControlError::Superseded {
            action, by, status, ..
        }) => {
            assert_eq!((action.as_str(), by.as_str()), ("start", "stop"));
            assert_eq!(status, "stopped");
        }
        other => panic!("expected the start to be superseded, got {other:?}"),
    }
    let stopped = tokio::time::timeout(SOON, second_stop)
        .await
        .expect("the second stop is answered")
        .expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    let now = steward.get("stubborn").await.expect("get").state;
    assert_eq!((now.status, now.pid), (ServiceStatus::Stopped, None));
    steward.shutdown().await.expect("shutdown");
}

/// Regression (issue 14, item 1): a restart waits for the old process to go; a kill that
/// overtakes it must still answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_overtaken_by_a_kill_is_answered() {
    let steward = Steward::spawn().await.expect("runtime");
    stubborn(&steward, "stubborn").await;
    let restart = sent(steward.restart("stubborn")).await;
    let killed = steward.kill("stubborn").await.expect("kill");
    assert_eq!(killed.status, ServiceStatus::Stopped);
    let restarted = tokio::time::timeout(SOON, restart)
        .await
        .expect("the restart is answered once the run is over");
    assert!(
        matches!(&restarted, Err(ControlError::Superseded { status, .. }) if status == "stopped"),
        "{restarted:?}"
    );
    steward.shutdown().await.expect("shutdown");
}

/// Regression (issue 14, item 1): a stop, then a start queued behind it. The stop's
/// answer said `stopping` (it was sent just before the new start); now it says `stopped`,
/// with a `stopped` event, and the start is answered with the new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_then_a_queued_start_each_get_a_true_answer() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    stubborn(&steward, "stubborn").await;
    let old_pid = steward.get("stubborn").await.expect("get").state.pid;
    let stop = sent(steward.stop("stubborn")).await;
    let start = sent(steward.start("stubborn")).await;
    // The shell ignores SIGTERM; a line on its stdin ends it.
    steward.input("stubborn", "go\n").await.expect("input");

    let stopped = tokio::time::timeout(SOON, stop)
        .await
        .expect("the stop is answered")
        .expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert_eq!(stopped.pid, None);
    let started = tokio::time::timeout(SOON, start)
        .await
        .expect("the start is answered")
        .expect("start");
    assert_eq!(started.status, ServiceStatus::Running);
    assert!(
        started.pid.is_some() && started.pid != old_pid,
        "{started:?}"
    );
    for kind in [EventKind::Exited, EventKind::Stopped, EventKind::Started] {
        event_of(&mut events, "stubborn", kind).await;
    }
    steward.kill("stubborn").await.expect("kill");
    steward.shutdown().await.expect("shutdown");
}

/// Regression (issue 14, item 1): 300 start / stop / restart / kill requests sent at once
/// in a scrambled order (30 of 500 went unanswered before). Every one is answered, and
/// the only refusal is "overtaken by a later stop".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_requests_are_all_answered() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = service("churn", "trap '' TERM; sleep 1000 & wait");
    def.stop_timeout = Duration::from_millis(200);
    steward.define(def).await.expect("define");
    status_becomes(&steward, "churn", ServiceStatus::Running).await;

    // A fixed xorshift sequence: the same scramble every run.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let actions = [
        ControlAction::Start,
        ControlAction::Stop,
        ControlAction::Restart,
        ControlAction::Kill,
    ];
    for _round in 0..6 {
        let mut requests = Vec::new();
        for _ in 0..50 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let action = actions[(seed % 4) as usize];
            let steward = steward.clone();
            requests.push(tokio::spawn(async move {
                (action, steward.control("churn", action).await)
            }));
        }
        for request in requests {
            let (action, answer) = tokio::time::timeout(Duration::from_secs(60), request)
                .await
                .unwrap_or_else(|_| panic!("a request went unanswered"))
                .expect("task");
            if let Err(e) = &answer {
                assert!(
                    matches!(e, ControlError::Superseded { .. }),
                    "{action:?}: {e}"
                );
            }
        }
    }
    let state = steward.stop("churn").await.expect("stop");
    assert_eq!((state.status, state.pid), (ServiceStatus::Stopped, None));
    steward.shutdown().await.expect("shutdown");
}

// ------------------------------------------------ stdin never blocks control (issue 14, item 3)

/// Regression (issue 14, item 3): input to a process that never reads its stdin held the
/// Server until the PortManager call timed out ("the process manager did not answer"), and
/// a stop sent meanwhile waited as long. Input is queued up to a bound and answered at
/// once: accepted while there is room, "stdin buffer full" past it, and a stop goes
/// through with input still waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_input_never_blocks_control_of_the_service() {
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(service("deaf", "sleep 1000"))
        .await
        .expect("define");
    status_becomes(&steward, "deaf", ServiceStatus::Running).await;

    // Far more than a pipe holds (64 KiB), within the 1 MiB bound: queued.
    steward
        .input("deaf", vec![b'x'; 512 * 1024])
        .await
        .expect("queued although the process does not read");
    // Past the bound: refused at once, saying so.
    match steward.input("deaf", vec![b'y'; 768 * 1024]).await {
        Err(ControlError::Input { reason, .. }) => {
            assert!(reason.contains("stdin buffer full"), "{reason}")
        }
        other => panic!("expected stdin buffer full, got {other:?}"),
    }
    // More input, and a stop behind it: the stop is answered, and so is the input.
    let more = sent(steward.input("deaf", vec![b'z'; 256 * 1024])).await;
    let stopped = steward.stop("deaf").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    more.await.expect("queued before the stop");
    steward.shutdown().await.expect("shutdown");
}

/// Input written in pieces larger than the pipe reaches a reading process whole and in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stdin_input_arrives_whole_and_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("stdin.bin");
    let piece = 300 * 1024;
    let line = format!("head -c {} > '{}'; echo done", 3 * piece, out.display());
    let mut def = service("reader", &line);
    def.restart = steward::config::RestartPolicy::Temporary;
    steward_with(def, |steward| async move {
        for byte in [b'a', b'b', b'c'] {
            steward
                .input("reader", vec![byte; piece])
                .await
                .expect("input");
        }
        status_becomes(&steward, "reader", ServiceStatus::Exited).await;
    })
    .await;
    let written = std::fs::read(&out).expect("the reader's file");
    assert_eq!(written.len(), 3 * piece);
    for (i, byte) in [b'a', b'b', b'c'].into_iter().enumerate() {
        assert!(
            written[i * piece..(i + 1) * piece]
                .iter()
                .all(|&b| b == byte),
            "piece {i} out of order"
        );
    }
}

/// Runs `body` against a fresh runtime where `def` is defined, then shuts it down.
async fn steward_with<F, Fut>(def: steward::ServiceDefinition, body: F)
where
    F: FnOnce(Steward) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let steward = Steward::spawn().await.expect("runtime");
    steward.define(def).await.expect("define");
    body(steward.clone()).await;
    steward.shutdown().await.expect("shutdown");
}
