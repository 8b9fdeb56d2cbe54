//! service → steward over systemd's notification protocol (issue 17 item 5): a service with
//! `readiness: { notify: true }` or `watchdog:` gets `NOTIFY_SOCKET`; `READY=1` makes it
//! ready (and gates `condition: healthy` dependents and /health/ready), `STATUS=` shows in
//! its state, `STOPPING=1`/`RELOADING=1` are `notified` events, a missed `WATCHDOG=1`
//! restarts it with the watchdog cause, and datagrams from foreign processes are ignored.
//!
//! The services are real python3 processes using only the `socket` module (as any
//! sd_notify client would), driven by files the test creates: the test decides when a
//! service speaks, and waits for what follows with deadlines.
//!
//! Length (over 600 lines): nine tests over one stand-in script and the helpers that read
//! its state, with the keys' load, save and error tests beside the behaviour they
//! configure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use steward::Steward;
use steward::config::{
    CommandSpec, DependencyCondition, ProbeCheck, ProbeSpec, RestartPolicy, ServiceDefinition,
    load_dir, service_to_yaml,
};
use steward::events::EventKind;
use steward::{ServiceState, ServiceStatus};

use crate::support::*;

/// The stand-in service. Modes:
/// * `ready-on-file GO`: `STATUS=waiting for GO`, then, once GO exists, removes it and
///   sends `READY=1` + `STATUS=serving` (so each run waits for its own GO);
/// * `ready-now`: `READY=1` at once;
/// * `ping-until-file STOP`: `WATCHDOG=1` every 50 ms (printing `ping N`) until STOP
///   exists, then no more;
/// * `status-on-file GO`: `STATUS=waiting`, then `STATUS=genuine` once GO exists;
/// * `reload-then-stop GO1 GO2`: `READY=1`; at GO1 `RELOADING=1` then `READY=1`; at GO2
///   `STOPPING=1` and exit 0.
///
/// Each mode then idles (a service keeps running).
const SCRIPT: &str = r#"
import os, socket, sys, time

def address():
    a = os.environ["NOTIFY_SOCKET"]
    return "\0" + a[1:] if a.startswith("@") else a

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

def send(text):
    sock.sendto(text.encode(), address())

def wait_for(path):
    while not os.path.exists(path):
        time.sleep(0.02)

print("NOTIFY_SOCKET=" + os.environ.get("NOTIFY_SOCKET", ""), flush=True)
print("WATCHDOG_USEC=" + os.environ.get("WATCHDOG_USEC", ""), flush=True)
mode = sys.argv[1]
if mode == "ready-on-file":
    go = sys.argv[2]
    send("STATUS=waiting for " + os.path.basename(go))
    wait_for(go)
    os.remove(go)
    send("READY=1\nSTATUS=serving")
elif mode == "ready-now":
    send("READY=1\nSTATUS=ready at once")
elif mode == "ping-until-file":
    i = 0
    while not os.path.exists(sys.argv[2]):
        i += 1
        send("WATCHDOG=1")
        print("ping %d" % i, flush=True)
        time.sleep(0.05)
    print("stopped pinging", flush=True)
elif mode == "status-on-file":
    send("STATUS=waiting")
    wait_for(sys.argv[2])
    send("STATUS=genuine")
elif mode == "reload-then-stop":
    send("READY=1")
    wait_for(sys.argv[2])
    send("RELOADING=1")
    send("READY=1")
    wait_for(sys.argv[3])
    send("STOPPING=1")
    sys.exit(0)
while True:
    time.sleep(3600)
"#;

/// A temp folder holding the stand-in script.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notifier.py"), SCRIPT).expect("write script");
        Scene { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An argv service running the script in `mode` with `args`.
    fn service(&self, id: &str, mode: &str, args: &[&str]) -> ServiceDefinition {
        let mut argv = vec![
            "python3".to_string(),
            "-u".to_string(),
            self.path("notifier.py").display().to_string(),
            mode.to_string(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        let mut def = ServiceDefinition::new(id, CommandSpec::Argv(argv));
        def.cwd = self.dir.path().to_path_buf();
        def.backoff = vec![Duration::from_millis(50)];
        def.stop_timeout = Duration::from_secs(5);
        def
    }

    /// Creates `name`: the service waiting for it goes on.
    fn go(&self, name: &str) {
        std::fs::write(self.path(name), b"go").expect("create go file");
    }
}

fn notify_readiness(def: &mut ServiceDefinition) {
    def.readiness = Some(ProbeSpec::new(ProbeCheck::Notify));
}

/// Waits until the service's state satisfies `check`.
async fn state_where(
    steward: &Steward,
    id: &str,
    what: &str,
    check: impl Fn(&ServiceState) -> bool,
) -> ServiceState {
    wait_for(&format!("{id}: {what}"), SOON, || async {
        steward
            .get(id)
            .await
            .ok()
            .map(|i| i.state)
            .filter(|s| check(s))
    })
    .await
}

/// A variable of a live process's environment, from /proc.
/// `name` in the environment of `pid` once it has exec'd: a spawn returns as soon as the
/// child starts its exec, and until the exec is done /proc shows steward's environment,
/// so this waits (with a deadline) for the service's own (which has NOTIFY_SOCKET).
async fn environ_var(pid: u32, name: &str) -> Option<String> {
    // One read gives both the sign of the exec (NOTIFY_SOCKET) and the value asked for.
    wait_for("the exec'd environment", SOON, || async {
        let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let vars: Vec<String> = bytes
            .split(|b| *b == 0)
            .map(|entry| String::from_utf8_lossy(entry).into_owned())
            .collect();
        let value = |key: &str| {
            vars.iter()
                .find_map(|v| v.strip_prefix(&format!("{key}=")).map(str::to_string))
        };
        value("NOTIFY_SOCKET").map(|_| value(name))
    })
    .await
}

/// Sends `text` to a `NOTIFY_SOCKET` address from this (the test's) process.
fn send_from_here(address: &str, text: &str) {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let name = address.strip_prefix('@').expect("an abstract address");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
    let socket = UnixDatagram::unbound().expect("socket");
    socket
        .send_to_addr(text.as_bytes(), &addr)
        .expect("send to the service's socket");
}

async fn get_json(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    crate::support::request_json(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_1_makes_the_service_ready_gates_its_dependent_and_health_ready() {
    let scene = Scene::new();
    let go = scene.path("go");
    let mut app = scene.service("app", "ready-on-file", &[&go.display().to_string()]);
    notify_readiness(&mut app);
    let mut client = service("client", "sleep 300");
    client.depends_on.push(steward::config::Dependency {
        service: "app".into(),
        condition: DependencyCondition::Healthy,
    });
    let steward = Steward::spawn().await.expect("runtime");
    let router = steward::api::router(steward.clone(), None);
    let started = steward.define(app).await.expect("define app");
    let pid = started.pid.expect("app runs");
    assert!(!started.ready, "not ready at spawn: {started:?}");
    let socket = environ_var(pid, "NOTIFY_SOCKET")
        .await
        .expect("NOTIFY_SOCKET in the environment");
    assert!(socket.starts_with("@steward/"), "{socket}");
    assert_eq!(
        environ_var(pid, "WATCHDOG_USEC").await,
        None,
        "no watchdog configured"
    );

    let define_client = {
        let steward = steward.clone();
        tokio::spawn(async move { steward.define(client).await })
    };
    // The service has spoken (its STATUS= is in the API state) and waits for `go`.
    let waiting = state_where(&steward, "app", "STATUS=waiting", |s| {
        s.notify_status.as_deref() == Some("waiting for go")
    })
    .await;
    assert!(!waiting.ready, "{waiting:?}");
    let (_, api_state) = get_json(&router, "/api/v1/services/app").await;
    assert_eq!(api_state["notify_status"], "waiting for go", "{api_state}");
    assert_eq!(api_state["ready"], false);
    assert_eq!(api_state["definition"]["readiness"]["notify"], true);
    let client_waits = status_becomes(&steward, "client", ServiceStatus::Starting).await;
    assert!(
        client_waits
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("waiting for app: healthy")),
        "{client_waits:?}"
    );
    let (code, body) = get_json(&router, "/health/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.to_string().contains("\"app\""), "{body}");

    scene.go("go");
    let client_up = tokio::time::timeout(SOON, define_client)
        .await
        .expect("client defined before the deadline")
        .expect("task")
        .expect("client starts once app is ready");
    assert_eq!(client_up.status, ServiceStatus::Running);
    let ready = state_where(&steward, "app", "ready", |s| s.ready).await;
    assert_eq!(ready.notify_status.as_deref(), Some("serving"));
    let app_ready = seqs_of(&steward, "app", EventKind::Ready)
        .last()
        .copied()
        .expect("app ready event");
    let client_started = seqs_of(&steward, "client", EventKind::Started)
        .last()
        .copied()
        .expect("client started");
    assert!(app_ready < client_started, "client waited for READY=1");
    let cause = steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .find(|e| e.service == "app" && e.kind == EventKind::Ready)
        .and_then(|e| e.cause);
    assert_eq!(cause.as_deref(), Some("readiness notify READY=1"));
    let (code, body) = get_json(&router, "/health/ready").await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // A restart is not ready until the new process says READY=1 again.
    let restarted = steward.restart("app").await.expect("restart");
    assert_ne!(restarted.pid, Some(pid));
    let again = state_where(&steward, "app", "the new run waiting", |s| {
        s.pid == restarted.pid && s.notify_status.as_deref() == Some("waiting for go")
    })
    .await;
    assert!(!again.ready, "{again:?}");
    scene.go("go");
    state_where(&steward, "app", "ready again", |s| {
        s.ready && s.pid == restarted.pid
    })
    .await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_stops_pinging_is_restarted_with_the_watchdog_cause() {
    let scene = Scene::new();
    let stop = scene.path("stop");
    let mut pinger = scene.service("pinger", "ping-until-file", &[&stop.display().to_string()]);
    pinger.watchdog = Some(Duration::from_secs(3));
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let first = steward.define(pinger).await.expect("define");
    let pid = first.pid.expect("pid");
    assert_eq!(
        environ_var(pid, "WATCHDOG_USEC").await.as_deref(),
        Some("3000000"),
        "WATCHDOG_USEC as systemd sets it"
    );
    assert!(first.ready, "no readiness gate: ready follows running");
    // 80 pings at least 50 ms apart span more than the 3s period: pings move the deadline.
    logged(&steward, "pinger", "ping 80").await;
    let alive = steward.get("pinger").await.expect("get").state;
    assert_eq!(alive.pid, Some(pid), "still the first process: {alive:?}");
    assert_eq!(
        seqs_of(&steward, "pinger", EventKind::Exited)
            .last()
            .copied(),
        None
    );
    scene.go("stop");

    let exited = event_of(&mut events, "pinger", EventKind::Exited).await;
    assert_eq!(exited.cause.as_deref(), Some("watchdog: no ping for 3s"));
    assert_eq!(exited.pid, Some(pid));
    let backoff = event_of(&mut events, "pinger", EventKind::Backoff).await;
    assert_eq!(backoff.cause.as_deref(), Some("watchdog: no ping for 3s"));
    let restarted = state_where(&steward, "pinger", "a new process", |s| {
        s.status == ServiceStatus::Running && s.pid.is_some_and(|p| p != pid)
    })
    .await;
    assert_eq!(restarted.restart_count, 1, "{restarted:?}");
    let last_exit = restarted.last_exit.expect("last exit");
    assert_eq!(
        last_exit.signal.as_deref(),
        Some("SIGTERM"),
        "{last_exit:?}"
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_watchdog_deadline_counts_from_the_spawn() {
    let scene = Scene::new();
    // Ready at once (READY=1 does not start the clock), but never a WATCHDOG=1.
    let mut silent = scene.service("silent", "ready-now", &[]);
    notify_readiness(&mut silent);
    silent.watchdog = Some(Duration::from_millis(500));
    silent.restart = RestartPolicy::Temporary;
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward.define(silent).await.expect("define");
    let exited = event_of(&mut events, "silent", EventKind::Exited).await;
    assert_eq!(
        exited.cause.as_deref(),
        Some("watchdog: no ping for 500ms; restart policy temporary does not restart it")
    );
    let state = status_becomes(&steward, "silent", ServiceStatus::Exited).await;
    assert!(!state.ready && state.notify_status.is_none(), "{state:?}");
    steward.shutdown().await.expect("shutdown");
}

/// True while an abstract socket of this name is bound (`/proc/net/unix` lists it with `@`).
fn abstract_socket_bound(address: &str) -> bool {
    std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .any(|line| line.split_whitespace().last() == Some(address))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_from_a_foreign_process_are_ignored() {
    let scene = Scene::new();
    let go = scene.path("go");
    let mut quiet = scene.service("quiet", "status-on-file", &[&go.display().to_string()]);
    notify_readiness(&mut quiet);
    let steward = Steward::spawn().await.expect("runtime");
    let state = steward.define(quiet).await.expect("define");
    let pid = state.pid.expect("pid");
    state_where(&steward, "quiet", "STATUS=waiting", |s| {
        s.notify_status.as_deref() == Some("waiting")
    })
    .await;
    let socket = environ_var(pid, "NOTIFY_SOCKET")
        .await
        .expect("NOTIFY_SOCKET");
    // The test process is no part of the service: what it says must not count.
    send_from_here(&socket, "READY=1\nSTATUS=forged");
    // Then the service itself speaks; datagrams are read in order, so once its STATUS
    // shows, the forged one has been handled (and ignored).
    scene.go("go");
    let after = state_where(&steward, "quiet", "STATUS=genuine", |s| {
        s.notify_status.as_deref() == Some("genuine")
    })
    .await;
    assert!(!after.ready, "a foreign READY=1 made it ready: {after:?}");
    let page = steward::metrics::render(steward.tables());
    assert!(
        page.contains("steward_notify_ignored_total{service=\"quiet\"} 1"),
        "the ignored datagram is counted:\n{page}"
    );
    assert!(
        steward
            .tables()
            .events
            .history(None)
            .iter()
            .all(|e| !(e.service == "quiet" && e.kind == EventKind::Ready)),
        "no ready event"
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_of_a_shell_line_may_send_ready() {
    let scene = Scene::new();
    // A pipe makes it a shell line: the service's pid is the shell's, python is its child.
    let line = format!(
        "python3 -u {} ready-now | cat",
        scene.path("notifier.py").display()
    );
    let mut shell = service("shell", &line);
    shell.cwd = scene.dir.path().to_path_buf();
    notify_readiness(&mut shell);
    let steward = Steward::spawn().await.expect("runtime");
    let state = steward.define(shell).await.expect("define");
    let pid = state.pid.expect("pid");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert_eq!(comm.trim(), "sh", "the main process is the shell");
    let ready = state_where(&steward, "shell", "ready", |s| s.ready).await;
    assert_eq!(ready.notify_status.as_deref(), Some("ready at once"));
    assert_eq!(ready.pid, Some(pid));

    // The socket lives as long as the service is defined, and goes with it.
    let socket = environ_var(pid, "NOTIFY_SOCKET")
        .await
        .expect("NOTIFY_SOCKET");
    assert!(
        abstract_socket_bound(&socket),
        "{socket} not in /proc/net/unix"
    );
    steward.stop("shell").await.expect("stop");
    steward.remove("shell").await.expect("remove");
    wait_for("the socket closed", SOON, || async {
        (!abstract_socket_bound(&socket)).then_some(())
    })
    .await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloading_and_stopping_are_noted_as_notified_events() {
    let scene = Scene::new();
    let (go1, go2) = (scene.path("go1"), scene.path("go2"));
    let mut svc = scene.service(
        "reloader",
        "reload-then-stop",
        &[&go1.display().to_string(), &go2.display().to_string()],
    );
    notify_readiness(&mut svc);
    svc.restart = RestartPolicy::Transient;
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward.define(svc).await.expect("define");
    event_of(&mut events, "reloader", EventKind::Ready).await;
    scene.go("go1");
    let reloading = event_of(&mut events, "reloader", EventKind::Notified).await;
    assert_eq!(
        reloading.cause.as_deref(),
        Some("the service sent RELOADING=1")
    );
    scene.go("go2");
    let stopping = event_of(&mut events, "reloader", EventKind::Notified).await;
    assert_eq!(
        stopping.cause.as_deref(),
        Some("the service sent STOPPING=1")
    );
    let exited = status_becomes(&steward, "reloader", ServiceStatus::Exited).await;
    assert_eq!(exited.notify_status, None, "cleared with the process");
    steward.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------
// The keys in files: round trip and located errors.

fn config_with(dir: &Path, services: &str) {
    std::fs::write(
        dir.join("services.yml"),
        format!("version: 1\nservices:\n{services}"),
    )
    .expect("write services.yml");
}

fn errors_of(services: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    config_with(dir.path(), services);
    match load_dir(dir.path()) {
        Ok(_) => panic!("expected errors for:\n{services}"),
        Err(errors) => errors
            .to_string()
            .replace(&format!("{}/", dir.path().display()), "<dir>/"),
    }
}

#[test]
fn notify_and_watchdog_load_save_and_load_back_identical() {
    let dir = tempfile::tempdir().expect("tempdir");
    config_with(
        dir.path(),
        "  app:\n    command: sleep 1\n    readiness: { notify: true }\n    watchdog: 30s\n",
    );
    let config = load_dir(dir.path()).expect("valid");
    let app = &config.services[0];
    assert!(app.notify_readiness());
    assert_eq!(
        app.readiness.as_ref().map(|r| &r.check),
        Some(&ProbeCheck::Notify)
    );
    assert_eq!(app.watchdog, Some(Duration::from_secs(30)));
    let yaml = service_to_yaml(app);
    assert!(yaml.contains("readiness: { notify: true }"), "{yaml}");
    assert!(yaml.contains("watchdog: 30s"), "{yaml}");
    let again = tempfile::tempdir().expect("tempdir");
    std::fs::write(again.path().join("services.yml"), &yaml).expect("write");
    let reloaded = load_dir(again.path()).expect("saved yaml loads");
    let mut back = reloaded.services[0].clone();
    back.source_file = app.source_file.clone();
    back.cwd = app.cwd.clone();
    assert_eq!(&back, app);

    // `watchdog` alone gives a socket too; `notify: false` is no readiness source.
    config_with(
        dir.path(),
        "  w:\n    command: sleep 1\n    watchdog: 1500ms\n",
    );
    let config = load_dir(dir.path()).expect("valid");
    assert!(config.services[0].uses_notify() && !config.services[0].notify_readiness());
}

#[test]
fn notify_and_watchdog_errors_name_their_place() {
    let text = errors_of(
        "  a:\n    command: sleep 1\n    readiness:\n      notify: true\n      http: { url: \"http://127.0.0.1:1/\" }\n      interval: 1s\n",
    );
    assert!(
        text.contains("<dir>/services.yml:7:13: `readiness` in service `a` has both `notify: true` and a `http` check"),
        "{text}"
    );
    assert!(
        text.contains("<dir>/services.yml:8:17: invalid `readiness.interval` in service `a`: it does not apply to `notify: true`"),
        "{text}"
    );

    let text = errors_of("  b:\n    command: sleep 1\n    liveness: { notify: true }\n");
    assert!(
        text.contains("services.yml:5:25: `liveness.notify` in service `b` is not allowed")
            && text.contains("watchdog: 30s"),
        "{text}"
    );

    let text = errors_of("  c:\n    command: sleep 1\n    readiness: { notify: maybe }\n");
    assert!(
        text.contains("services.yml:5:26: invalid `readiness.notify` in service `c`"),
        "{text}"
    );

    let text = errors_of("  d:\n    command: sleep 1\n    watchdog: 0s\n");
    assert!(
        text.contains("services.yml:5:15: invalid `watchdog` in service `d`"),
        "{text}"
    );
    let text = errors_of("  e:\n    command: sleep 1\n    watchdog: soon\n");
    assert!(
        text.contains("services.yml:5:15: invalid `watchdog` in service `e`"),
        "{text}"
    );

    let text = errors_of("  f:\n    command: sleep 1\n    watchdgo: 30s\n");
    assert!(
        text.contains("unknown key `watchdgo`") && text.contains("did you mean `watchdog`?"),
        "{text}"
    );
    let text = errors_of("  g:\n    command: sleep 1\n    readiness: { notfy: true }\n");
    assert!(
        text.contains("unknown key `notfy`") && text.contains("did you mean `notify`?"),
        "{text}"
    );

    let text = errors_of(
        "  h:\n    command: up\n    detached: true\n    stop_command: down\n    watchdog: 5s\n",
    );
    assert!(
        text.contains("services.yml:7:15: invalid `watchdog` in service `h`: a detached service cannot use the notification protocol"),
        "{text}"
    );
}

#[test]
fn definitions_over_json_take_the_new_keys() {
    let value = serde_json::json!({
        "command": "sleep 1",
        "readiness": {"notify": true},
        "watchdog": "10s"
    });
    let def =
        steward::config::definition_from_json("api", &value, Path::new("/srv")).expect("valid");
    assert!(def.notify_readiness());
    assert_eq!(def.watchdog, Some(Duration::from_secs(10)));
    let errors = steward::config::definition_from_json(
        "api",
        &serde_json::json!({"command": "x", "readiness": {"notify": true, "tcp": "127.0.0.1:1"}}),
        Path::new("/srv"),
    )
    .expect_err("two sources");
    assert!(
        errors
            .to_string()
            .contains("has both `notify: true` and a `tcp` check"),
        "{errors}"
    );
    // Built in code: the same rules.
    let mut def = ServiceDefinition::new("code", CommandSpec::Line("sleep 1".into()));
    def.liveness = Some(ProbeSpec::new(ProbeCheck::Notify));
    def.watchdog = Some(Duration::ZERO);
    let errors = steward::config::check_definition(&def)
        .expect_err("invalid")
        .to_string();
    assert!(errors.contains("invalid `liveness.notify`"), "{errors}");
    assert!(errors.contains("invalid `watchdog`"), "{errors}");
}
