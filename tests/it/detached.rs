//! Detached services with real processes: a stand-in for `docker compose up -d` (no Docker
//! here) that daemonizes a python3 HTTP server on 127.0.0.1, writes its pid file and exits
//! 0; the `stop_command` kills the pid from the file. Every test waits for events or states
//! under deadlines, and a [`DaemonGuard`] kills whatever daemon a test saw, even when the
//! test fails.
//!
//! The adoption test re-executes this binary as a host runtime that is SIGKILLed, in the
//! style of `recovery.rs`.
//!
//! Length (over 600 lines): twelve tests sharing one `Stage` (scripts, files, probe) and
//! the adoption host; a split would split the stage.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use steward::config::{CommandSpec, ProbeCheck, ProbeSpec, ServiceDefinition};
use steward::events::{EventKind, EventSubscription};
use steward::process::pid_file::{self, Recovered};
use steward::process::signal_group;
use steward::{ActorKind, ServiceStatus, Steward};

use crate::support::{
    DaemonGuard, LAUNCHER, SOON, STOPPER, free_port, group_members, kill_host, next_event,
    pid_alive, start_host, status_becomes, wait_for,
};

/// Generous bound for a launch, a probe verdict or a restart; reaching it is a failure.
const DEADLINE: Duration = Duration::from_secs(30);

/// A directory with the stand-in scripts and the files a detached service uses (its pid
/// file, launch counter, stop marker and steward's state_dir), and the daemon's port.
struct Stage {
    dir: PathBuf,
    port: u16,
    /// Removes the directory at the end (the adoption host only borrows the test's).
    _owned: Option<tempfile::TempDir>,
}

impl Stage {
    fn new() -> Stage {
        let owned = tempfile::tempdir().expect("tempdir");
        std::fs::write(owned.path().join("launcher.py"), LAUNCHER).expect("launcher");
        std::fs::write(owned.path().join("stopper.py"), STOPPER).expect("stopper");
        Stage {
            dir: owned.path().to_path_buf(),
            port: free_port(),
            _owned: Some(owned),
        }
    }

    /// The stage another process made.
    fn shared(dir: PathBuf, port: u16) -> Stage {
        Stage {
            dir,
            port,
            _owned: None,
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn pid_file(&self) -> PathBuf {
        self.path().join("daemon.pid")
    }

    fn counter(&self) -> PathBuf {
        self.path().join("launches")
    }

    fn marker(&self) -> PathBuf {
        self.path().join("stopped")
    }

    fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    fn launches(&self) -> usize {
        std::fs::read_to_string(self.counter())
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The detached service: the launcher, the stopper, its `pid_file`, an HTTP readiness probe and, with `liveness`, the same as startup and liveness probes.
    fn service(&self, id: &str, liveness: bool) -> ServiceDefinition {
        let mut def = crate::support::service(id, "");
        def.command = CommandSpec::Argv(vec![
            "python3".into(),
            "launcher.py".into(),
            self.port.to_string(),
            "daemon.pid".into(),
            "launches".into(),
        ]);
        def.cwd = self.path().to_path_buf();
        def.detached = true;
        def.stop_command = Some(CommandSpec::Argv(vec![
            "python3".into(),
            "stopper.py".into(),
            "daemon.pid".into(),
            "stopped".into(),
        ]));
        // Definitions built in code carry absolute paths (YAML takes them from `cwd`).
        def.pid_file = Some(self.pid_file());
        def.readiness = Some(self.probe());
        if liveness {
            def.liveness = Some(self.probe());
            // The server takes a moment to listen: liveness waits until startup passed.
            let mut startup = self.probe();
            startup.failure_threshold = 300;
            def.startup = Some(startup);
        }
        def
    }

    /// [`Stage::service`] that its define does not start: the tests start it themselves,
    /// to see what the start answers.
    fn manual(&self, id: &str, liveness: bool) -> ServiceDefinition {
        let mut def = self.service(id, liveness);
        def.autostart = false;
        def
    }

    fn probe(&self) -> ProbeSpec {
        let mut probe = ProbeSpec::new(ProbeCheck::Http {
            url: self.url(),
            expect_status: 200,
        });
        probe.interval = Duration::from_millis(100);
        probe.timeout = Duration::from_secs(2);
        probe.failure_threshold = 2;
        probe
    }

    /// The pid the daemon wrote, once there is one.
    fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Waits for an event of `kind` about `service`.
async fn event(sub: &mut EventSubscription, service: &str, kind: EventKind) -> steward::Event {
    let what = format!("{service} {}", kind.as_str());
    next_event(sub, &what, DEADLINE, |e| {
        e.service == service && e.kind == kind
    })
    .await
}

async fn ready(steward: &Steward, id: &str) -> steward::ServiceState {
    wait_for(&format!("{id} to be ready"), DEADLINE, || async {
        steward
            .get(id)
            .await
            .ok()
            .filter(|i| i.state.ready && i.state.status == ServiceStatus::Running)
            .map(|i| i.state)
    })
    .await
}

/// Starts `stack` and waits until it is ready; its daemon's pid, watched by `guard`.
async fn start_ready(steward: &Steward, guard: &DaemonGuard) -> u32 {
    steward.start("stack").await.expect("start");
    guard.watch(ready(steward, "stack").await.pid.expect("pid"))
}

async fn log_text(steward: &Steward, id: &str) -> String {
    steward
        .logs(id, 1000)
        .await
        .expect("logs")
        .iter()
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_service_runs_once_its_launcher_exits_and_is_ready_by_its_probe() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");

    let state = steward.start("stack").await.expect("start");
    let daemon = guard.watch(stage.daemon_pid().expect("the launcher wrote the pid file"));
    assert_eq!(state.status, ServiceStatus::Running, "{state:?}");
    assert_eq!(state.pid, Some(daemon), "the pid comes from pid_file");

    let starting = event(&mut events, "stack", EventKind::Starting).await;
    let started = event(&mut events, "stack", EventKind::Started).await;
    assert!(starting.seq < started.seq);
    assert_eq!(started.pid, Some(daemon));
    assert!(
        started
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("launcher exited 0")),
        "{started:?}"
    );
    let state = ready(&steward, "stack").await;
    assert_eq!(state.pid, Some(daemon));
    assert!(pid_alive(daemon), "the daemon outlives its launcher");
    assert!(
        log_text(&steward, "stack")
            .await
            .contains(&format!("launcher: daemon {daemon}")),
        "the launcher's output is in the service's log"
    );
    assert_eq!(stage.launches(), 1);

    steward.shutdown().await.expect("shutdown");
    assert!(!pid_alive(daemon), "shutdown stops a detached service too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_daemon_fails_liveness_and_is_restarted_with_stop_command_then_command() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(stage.manual("stack", true))
        .await
        .expect("define");
    let first = start_ready(&steward, &guard).await;

    signal_group(first, Signal::SIGKILL).expect("kill the daemon");
    let backoff = event(&mut events, "stack", EventKind::Backoff).await;
    let cause = backoff.cause.clone().unwrap_or_default();
    assert!(cause.starts_with("liveness"), "{backoff:?}");
    let restarted = event(&mut events, "stack", EventKind::Started).await;
    let second = guard.watch(restarted.pid.expect("a new daemon pid"));
    assert_ne!(second, first);
    let state = ready(&steward, "stack").await;
    assert_eq!(state.pid, Some(second));
    assert_eq!(state.restart_count, 1);
    assert_eq!(stage.launches(), 2, "command ran again");
    assert!(
        std::fs::read_to_string(stage.marker())
            .is_ok_and(|m| m.starts_with(&format!("stopped {first}\n"))),
        "stop_command ran before the new launch"
    );

    steward.stop("stack").await.expect("stop");
    assert!(!pid_alive(second));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_liveness_probe_the_pid_from_pid_file_is_watched() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");
    let first = guard.watch(
        steward
            .start("stack")
            .await
            .expect("start")
            .pid
            .expect("pid"),
    );

    signal_group(first, Signal::SIGKILL).expect("kill the daemon");
    let backoff = event(&mut events, "stack", EventKind::Backoff).await;
    assert_eq!(
        backoff.cause,
        Some(format!(
            "liveness pid_file: process {first} (from {}) is gone",
            stage.pid_file().display()
        ))
    );
    let restarted = event(&mut events, "stack", EventKind::Started).await;
    let second = guard.watch(restarted.pid.expect("a new daemon pid"));
    assert_ne!(second, first);
    assert_eq!(ready(&steward, "stack").await.pid, Some(second));
    assert_eq!(stage.launches(), 2);
    steward.shutdown().await.expect("shutdown");
    assert!(!pid_alive(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_runs_stop_command_and_leaves_nothing_behind() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let state_dir = stage.state_dir();
    let steward = Steward::spawn_with_state(Some(state_dir.clone()))
        .await
        .expect("runtime");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");
    let daemon = start_ready(&steward, &guard).await;
    let record = pid_file::read(&state_dir, "stack")
        .expect("read")
        .expect("a record while it runs");
    assert_eq!((record.pid, record.detached), (daemon, true));

    let mut events = steward.subscribe_events(None).await.expect("events");
    let state = steward.stop("stack").await.expect("stop");
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert_eq!(state.pid, None);
    let stopping = event(&mut events, "stack", EventKind::Stopping).await;
    assert_eq!(stopping.pid, Some(daemon));
    event(&mut events, "stack", EventKind::Stopped).await;

    assert_eq!(
        std::fs::read_to_string(stage.marker()).expect("stop_command left its marker"),
        format!("stopped {daemon}\n")
    );
    assert!(
        log_text(&steward, "stack")
            .await
            .contains(&format!("stop_command: sent SIGTERM to {daemon}")),
        "stop_command's output is in the service's log"
    );
    assert!(!pid_alive(daemon));
    assert!(
        group_members(daemon).is_empty(),
        "nothing of the daemon's group is left"
    );
    assert_eq!(
        pid_file::read(&state_dir, "stack").expect("read"),
        None,
        "the record goes with the daemon"
    );
    assert_eq!(stage.launches(), 1);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_restart_runs_stop_command_then_command() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");
    let first = start_ready(&steward, &guard).await;

    let state = steward.restart("stack").await.expect("restart");
    assert_eq!(state.status, ServiceStatus::Running);
    let second = guard.watch(state.pid.expect("a new daemon pid"));
    assert_ne!(second, first);
    assert!(!pid_alive(first));
    assert_eq!(
        std::fs::read_to_string(stage.marker()).expect("marker"),
        format!("stopped {first}\n")
    );
    assert_eq!(stage.launches(), 2);
    assert_eq!(state.restart_count, 0, "a manual restart is not counted");
    steward.shutdown().await.expect("shutdown");
    assert!(!pid_alive(second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_ignores_stop_command_gets_its_stop_signal_and_a_kill_stops_at_once() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    let mut def = stage.manual("stack", false);
    // A stop_command that does nothing: steward itself must stop the daemon.
    def.stop_command = Some(CommandSpec::Argv(vec!["true".into()]));
    steward.define(def).await.expect("define");
    let daemon = start_ready(&steward, &guard).await;
    let state = steward.stop("stack").await.expect("stop");
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert!(
        !pid_alive(daemon),
        "the daemon got stop_signal after stop_command"
    );

    let daemon = start_ready(&steward, &guard).await;
    let state = steward.kill("stack").await.expect("kill");
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert_eq!(
        state.last_exit.as_ref().and_then(|e| e.signal.as_deref()),
        Some("SIGKILL")
    );
    assert!(!pid_alive(daemon));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_signal_the_daemon_and_are_refused_without_a_pid() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");
    let daemon = start_ready(&steward, &guard).await;
    let state = steward.pause("stack").await.expect("pause");
    assert_eq!(state.status, ServiceStatus::Paused);
    wait_for("the daemon to be stopped", SOON, || async {
        (crate::support::pid_state(daemon).as_deref() == Some("T")).then_some(())
    })
    .await;
    steward.resume("stack").await.expect("resume");
    ready(&steward, "stack").await;
    steward.stop("stack").await.expect("stop");

    // Without pid_file steward knows no process to signal.
    let mut def = stage.manual("blind", false);
    def.pid_file = None;
    def.readiness = None;
    steward.define(def).await.expect("define");
    let state = steward.start("blind").await.expect("start");
    assert_eq!((state.status, state.pid), (ServiceStatus::Running, None));
    guard.watch(stage.daemon_pid().expect("pid file"));
    let err = steward.pause("blind").await.expect_err("refused");
    assert_eq!(err.code(), "conflict");
    assert!(err.to_string().contains("pid_file"), "{err}");
    steward.stop("blind").await.expect("stop");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_launcher_is_a_failed_start_under_the_restart_policy() {
    let stage = Stage::new();
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let mut def = stage.manual("stack", false);
    if let CommandSpec::Argv(argv) = &mut def.command {
        argv.push("fail".into());
    }
    def.max_restarts = 1;
    steward.define(def).await.expect("define");

    let err = steward.start("stack").await.expect_err("a failed start");
    assert!(
        err.to_string()
            .contains("failed start: the launcher ended with exit code 1"),
        "{err}"
    );
    let backoff = event(&mut events, "stack", EventKind::Backoff).await;
    assert_eq!(
        backoff.cause.as_deref(),
        Some("failed start: the launcher ended with exit code 1")
    );
    let failed = event(&mut events, "stack", EventKind::Failed).await;
    let cause = failed.cause.unwrap_or_default();
    assert!(
        cause.contains("> max_restarts 1") && cause.contains("launcher ended with exit code 1"),
        "{cause}"
    );
    let state = status_becomes(&steward, "stack", ServiceStatus::Failed).await;
    assert_eq!(state.pid, None);
    assert_eq!(
        stage.launches(),
        2,
        "launched at most max_restarts + 1 times"
    );
    assert!(
        log_text(&steward, "stack")
            .await
            .contains("launcher: refusing to launch")
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_for_all_restart_of_the_actors_keeps_the_daemon_instead_of_launching_again() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let steward = Steward::spawn().await.expect("runtime");
    steward
        .define(stage.manual("stack", false))
        .await
        .expect("define");
    let daemon = start_ready(&steward, &guard).await;

    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .inject_panic("stack", ActorKind::PortManager)
        .await
        .expect("inject");
    let restarting = event(&mut events, "stack", EventKind::Restarting).await;
    assert!(
        restarting
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("one-for-all")),
        "{restarting:?}"
    );
    let started = event(&mut events, "stack", EventKind::Started).await;
    assert_eq!(started.pid, Some(daemon));
    assert_eq!(
        started.cause.as_deref(),
        Some("adopted: still running after the service's actors restarted")
    );
    assert_eq!(ready(&steward, "stack").await.pid, Some(daemon));
    assert_eq!(stage.launches(), 1, "nothing was launched twice");
    steward.shutdown().await.expect("shutdown");
    assert!(!pid_alive(daemon));
}

// ---------------------------------------------------------------------------------------
// Adoption after a SIGKILLed steward.

/// Tells the re-executed test binary to act as the host: the stage dir and the port.
const HOST_STAGE_ENV: &str = "STEWARD_TEST_DETACHED_HOST";
const HOST_PORT_ENV: &str = "STEWARD_TEST_DETACHED_PORT";
const DAEMON_PID_PREFIX: &str = "STEWARD_DAEMON_PID=";

fn stack_config(stage: &Stage) -> steward::config::Config {
    let state_dir = stage.state_dir();
    let mut settings = steward::config::Settings::defaults_in(stage.path());
    settings.state_dir = state_dir;
    steward::config::Config {
        dir: stage.path().to_path_buf(),
        settings,
        services: vec![stage.service("stack", true)],
    }
}

/// Not a test on its own: a steward booted with the detached service, which prints the
/// daemon's pid once it is ready and waits to be SIGKILLed.
#[test]
fn detached_host() {
    let (Some(dir), Some(port)) = (
        std::env::var_os(HOST_STAGE_ENV),
        std::env::var(HOST_PORT_ENV).ok(),
    ) else {
        return;
    };
    let stage = Stage::shared(PathBuf::from(dir), port.parse().expect("port"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let steward = Steward::boot(stack_config(&stage)).await.expect("boot");
        let pid = ready(&steward, "stack").await.pid.expect("pid");
        let mut out = std::io::stdout().lock();
        writeln!(out, "{DAEMON_PID_PREFIX}{pid}").expect("print");
        out.flush().expect("flush");
        drop(out);
        std::future::pending::<()>().await;
    });
}

/// Re-executes this binary as [`detached_host`] on `stage`; returns it with the pid of
/// the daemon its steward launched (already shown to `guard`).
async fn host_of(stage: &Stage, guard: &DaemonGuard) -> (tokio::process::Child, u32) {
    let port = stage.port.to_string();
    let env = [
        (HOST_STAGE_ENV, stage.path().as_os_str()),
        (HOST_PORT_ENV, std::ffi::OsStr::new(&port)),
    ];
    let (host, daemon) = start_host("detached::detached_host", &env, DAEMON_PID_PREFIX).await;
    (host, guard.watch(daemon))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_steward_adopts_the_daemon_a_killed_one_left_running() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let (mut host, daemon) = host_of(&stage, &guard).await;

    kill_host(&mut host).await;
    assert!(
        pid_alive(daemon),
        "a detached daemon survives a killed steward"
    );
    assert_eq!(stage.launches(), 1);

    // The next boot from the same state_dir keeps the record for adoption ...
    let recovered = Steward::recover(&stage.state_dir()).await;
    assert!(
        matches!(&recovered[..], [Recovered::Adopt(r)] if r.pid == daemon),
        "{recovered:?}"
    );
    // ... and the service, when it starts, adopts the daemon without launching again.
    let config = stack_config(&stage);
    let steward = Steward::spawn_with_state(Some(stage.state_dir()))
        .await
        .expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward.define_all(config.services).await.expect("define");
    let state = steward.start("stack").await.expect("start");
    assert_eq!(
        (state.status, state.pid),
        (ServiceStatus::Running, Some(daemon))
    );
    let started = event(&mut events, "stack", EventKind::Started).await;
    assert_eq!(started.pid, Some(daemon));
    assert_eq!(
        started.cause.as_deref(),
        Some("adopted from a previous steward")
    );
    let state = ready(&steward, "stack").await;
    assert_eq!(state.pid, Some(daemon));
    assert_eq!(stage.launches(), 1, "command was not run again");

    steward.stop("stack").await.expect("stop");
    assert!(!pid_alive(daemon), "the adopted daemon is stopped cleanly");
    assert!(group_members(daemon).is_empty());
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_service_is_no_longer_detached_is_stopped_at_boot() {
    let stage = Stage::new();
    let guard = DaemonGuard::default();
    let (mut host, daemon) = host_of(&stage, &guard).await;
    kill_host(&mut host).await;
    assert!(pid_alive(daemon));

    // The same id, now an ordinary service: nobody adopts the daemon.
    let mut config = stack_config(&stage);
    let def = &mut config.services[0];
    def.detached = false;
    def.stop_command = None;
    def.pid_file = None;
    def.readiness = None;
    def.liveness = None;
    def.startup = None;
    def.autostart = false;
    let steward = Steward::boot(config).await.expect("boot");
    assert!(!pid_alive(daemon), "the unclaimed daemon was stopped");
    assert!(group_members(daemon).is_empty());
    assert_eq!(
        pid_file::read(&stage.state_dir(), "stack").expect("read"),
        None
    );
    assert_eq!(stage.launches(), 1);
    steward.shutdown().await.expect("shutdown");
}
