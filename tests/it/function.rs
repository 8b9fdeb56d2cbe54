//! Function services (issue 15): the app's own async functions supervised in the same tree
//! as OS processes. Real tokio tasks, real processes, real TCP listeners; every wait is on
//! an event, a channel or a file the test controls, with a deadline.
//!
//! Length (over 600 lines): 16 tests, each with the async functions and probes it
//! supervises written inline, where the test reads them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use steward::config::{Dependency, DependencyCondition, ProbeCheck, ProbeSpec, RestartPolicy};
use steward::events::EventKind;
use steward::logs::{LogRecord, LogStream};
use steward::{
    ControlError, FunctionService, ServiceContext, ServiceDefinition, ServiceKind, ServiceStatus,
    Steward,
};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::support::*;

/// A function service with the fast test defaults of [`service`].
fn function(id: &str, function: FunctionService) -> ServiceDefinition {
    let mut def = ServiceDefinition::function(id, function);
    def.backoff = vec![Duration::from_millis(50)];
    def.stop_timeout = Duration::from_secs(5);
    def
}

/// Sends on `tx` when dropped: tells the test that a function's future is gone (it
/// returned, or its task was aborted).
struct DropSignal(mpsc::UnboundedSender<&'static str>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

async fn recv_soon<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(SOON, rx.recv()).await {
        Ok(Some(value)) => value,
        Ok(None) => panic!("channel closed while waiting for {what}"),
        Err(_) => panic!("timed out after {SOON:?} waiting for {what}"),
    }
}

/// A function that never ends by itself and ignores cancellation.
fn stubborn(dropped: mpsc::UnboundedSender<&'static str>) -> FunctionService {
    FunctionService::new("stubborn", move |_ctx: ServiceContext| {
        let guard = DropSignal(dropped.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok::<(), String>(())
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_function_is_restarted_with_backoff_and_failed_past_the_intensity() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward
        .define(service("bystander", "sleep 300"))
        .await
        .expect("define bystander");
    let bystander = status_becomes(&steward, "bystander", ServiceStatus::Running).await;

    let launches = Arc::new(AtomicUsize::new(0));
    let counted = launches.clone();
    let mut def = function(
        "panicky",
        FunctionService::new("panicky", move |_ctx: ServiceContext| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n > 0 {
                    panic!("boom {n}");
                }
                Ok::<(), String>(())
            }
        }),
    );
    def.backoff = vec![Duration::from_millis(50), Duration::from_millis(100)];
    def.max_restarts = 2;
    steward.define(def).await.expect("define");

    for (n, delay) in [(1, 50), (2, 100)] {
        let started = event_of(&mut events, "panicky", EventKind::Started).await;
        assert_eq!(started.pid, None, "a function service has no pid");
        let exited = event_of(&mut events, "panicky", EventKind::Exited).await;
        assert_eq!(exited.exit_code, None);
        assert_eq!(exited.signal, None);
        assert_eq!(
            exited.cause.as_deref(),
            Some(&*format!("panicked: boom {n}"))
        );
        let backoff = event_of(&mut events, "panicky", EventKind::Backoff).await;
        assert_eq!(
            backoff.cause.as_deref(),
            Some(&*format!("panicked: boom {n}"))
        );
        assert_eq!(backoff.delay_ms, Some(delay));
    }
    let failed = event_of(&mut events, "panicky", EventKind::Failed).await;
    let cause = failed.cause.expect("failed has a cause");
    assert!(cause.contains("> max_restarts 2"), "{cause}");
    assert!(cause.ends_with("(last: panicked: boom 3)"), "{cause}");
    let state = status_becomes(&steward, "panicky", ServiceStatus::Failed).await;
    assert_eq!(state.restart_count, 2);
    assert_eq!(state.kind, ServiceKind::Function);
    assert_eq!(
        launches.load(Ordering::SeqCst),
        3,
        "launched max_restarts + 1 times"
    );

    // Neither the runtime nor the other service noticed.
    let other = steward.get("bystander").await.expect("get").state;
    assert_eq!(other.status, ServiceStatus::Running);
    assert_eq!(other.pid, bystander.pid);
    assert!(steward.status().await.is_ok());
    // A start after `failed` is a fresh start: it runs (and panics) again.
    steward.start("panicky").await.expect("start again");
    let again = event_of(&mut events, "panicky", EventKind::Exited).await;
    assert_eq!(again.cause.as_deref(), Some("panicked: boom 4"));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_the_function_cooperatively() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let def = function(
        "polite",
        FunctionService::new("polite", |ctx: ServiceContext| async move {
            ctx.log().stdout("working");
            ctx.cancelled().await;
            assert!(ctx.is_cancelled());
            ctx.log().stdout("cleaning up");
            Ok::<(), String>(())
        }),
    );
    steward.define(def).await.expect("define");
    status_becomes(&steward, "polite", ServiceStatus::Running).await;

    let stopped = steward.stop("polite").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert_eq!(stopped.last_exit.as_ref().and_then(|e| e.code), Some(0));
    let stopping = event_of(&mut events, "polite", EventKind::Stopping).await;
    assert_eq!(stopping.cause.as_deref(), Some("stop requested"));
    let exited = event_of(&mut events, "polite", EventKind::Exited).await;
    assert_eq!(exited.cause.as_deref(), Some("stopped on request"));
    assert_eq!(exited.exit_code, Some(0));
    let done = event_of(&mut events, "polite", EventKind::Stopped).await;
    assert_eq!(
        done.cause.as_deref(),
        Some("stopped on request"),
        "not forced"
    );
    // The line written after cancellation is in the ring before the stop is answered.
    let lines: Vec<String> = steward
        .logs("polite", 10)
        .await
        .expect("logs")
        .into_iter()
        .map(|l| l.line.to_string())
        .collect();
    assert_eq!(lines, ["working", "cleaning up"]);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_ignores_cancellation_is_aborted_after_stop_timeout_as_forced() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (dropped, mut drops) = mpsc::unbounded_channel();
    let mut def = function("stubborn", stubborn(dropped));
    def.stop_timeout = Duration::from_millis(200);
    steward.define(def).await.expect("define");
    status_becomes(&steward, "stubborn", ServiceStatus::Running).await;

    let stopped = steward.stop("stubborn").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert_eq!(recv_soon(&mut drops, "the aborted future").await, "dropped");
    let exited = event_of(&mut events, "stubborn", EventKind::Exited).await;
    assert_eq!(
        exited.cause.as_deref(),
        Some("did not return within stop_timeout 200ms of its cancellation; its task was aborted")
    );
    assert_eq!(exited.exit_code, None);
    let done = event_of(&mut events, "stubborn", EventKind::Stopped).await;
    assert_eq!(
        done.cause.as_deref(),
        Some("stopped (task aborted after stop_timeout)")
    );
    // Stopped is stopped: no restart follows, whatever the policy.
    let state = steward.get("stubborn").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Stopped);
    assert_eq!(state.restart_count, 0);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_aborts_the_function_at_once() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (dropped, mut drops) = mpsc::unbounded_channel();
    let mut def = function("stuck", stubborn(dropped));
    // Far beyond the test's deadline: only an abort at once lets the kill finish in time.
    def.stop_timeout = Duration::from_secs(3600);
    steward.define(def).await.expect("define");
    status_becomes(&steward, "stuck", ServiceStatus::Running).await;

    let killed = tokio::time::timeout(SOON, steward.kill("stuck"))
        .await
        .expect("the kill does not wait for stop_timeout")
        .expect("kill");
    assert_eq!(killed.status, ServiceStatus::Stopped);
    assert_eq!(recv_soon(&mut drops, "the aborted future").await, "dropped");
    let stopping = event_of(&mut events, "stuck", EventKind::Stopping).await;
    assert_eq!(stopping.cause.as_deref(), Some("kill requested"));
    let exited = event_of(&mut events, "stuck", EventKind::Exited).await;
    assert_eq!(exited.cause.as_deref(), Some("stopped on request"));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_os_process_waits_for_a_function_service_to_report_ready() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (go, gate) = watch::channel(false);
    let api = function(
        "api",
        FunctionService::new("api", move |ctx: ServiceContext| {
            let mut gate = gate.clone();
            async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                ctx.log()
                    .stdout(format!("listening on {}", listener.local_addr()?));
                // The test says when the function reports ready.
                let _ = gate.wait_for(|go| *go).await;
                ctx.ready();
                ctx.cancelled().await;
                Ok::<(), std::io::Error>(())
            }
        })
        .reporting_ready(),
    );
    steward.define(api).await.expect("define api");
    let mut worker = service("worker", "sleep 300");
    worker.depends_on = vec![Dependency {
        service: "api".into(),
        condition: DependencyCondition::Healthy,
    }];
    let mut early = service("early", "sleep 300");
    early.depends_on = vec![Dependency {
        service: "api".into(),
        condition: DependencyCondition::Started,
    }];
    // A start that waits for `healthy` is answered only once it is met: asked without waiting.
    worker.autostart = false;
    steward.define(worker).await.expect("define worker");
    steward.define(early).await.expect("define early");
    steward
        .control_no_wait("worker", steward::ControlAction::Start)
        .await
        .expect("start worker");

    // `started` is met by a running function; `healthy` waits for its report.
    status_becomes(&steward, "early", ServiceStatus::Running).await;
    let api_state = status_becomes(&steward, "api", ServiceStatus::Running).await;
    assert!(!api_state.ready, "not ready before it reports so");
    let waiting = steward.get("worker").await.expect("get").state;
    assert_eq!(waiting.status, ServiceStatus::Starting);
    let reason = waiting.reason.unwrap_or_default();
    assert!(reason.contains("waiting for api: healthy"), "{reason}");

    go.send_replace(true);
    let ready = event_of(&mut events, "api", EventKind::Ready).await;
    assert_eq!(
        ready.cause.as_deref(),
        Some("readiness reported by the function")
    );
    let started = event_of(&mut events, "worker", EventKind::Started).await;
    assert!(started.pid.is_some());
    assert!(
        ready.seq < started.seq,
        "api ready (#{}) before worker started (#{})",
        ready.seq,
        started.seq
    );
    let api_state = steward.get("api").await.expect("get").state;
    assert!(api_state.ready);
    assert_eq!(api_state.health, steward::Health::Healthy);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_os_process_waits_for_a_function_service_healthy_by_its_function_probe() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let warm = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checked = warm.clone();
    let mut cache = function(
        "cache",
        FunctionService::new("cache", |ctx: ServiceContext| async move {
            ctx.cancelled().await;
            Ok::<(), String>(())
        }),
    );
    let mut readiness = ProbeSpec::new(ProbeCheck::Function(steward::config::FunctionProbe::new(
        "cache warm",
        move || {
            let warm = checked.load(Ordering::SeqCst);
            async move {
                if warm {
                    Ok(())
                } else {
                    Err("cold".to_string())
                }
            }
        },
    )));
    readiness.interval = Duration::from_millis(20);
    readiness.failure_threshold = 1;
    cache.readiness = Some(readiness);
    steward.define(cache).await.expect("define cache");
    let mut reader = service("reader", "sleep 300");
    reader.depends_on = vec![Dependency {
        service: "cache".into(),
        condition: DependencyCondition::Healthy,
    }];
    reader.autostart = false;
    steward.define(reader).await.expect("define reader");
    steward
        .control_no_wait("reader", steward::ControlAction::Start)
        .await
        .expect("start reader");
    let cold = next_event(&mut events, "cache unhealthy", SOON, |e| {
        e.service == "cache" && e.kind == EventKind::HealthChanged
    })
    .await;
    assert_eq!(
        cold.cause.as_deref(),
        Some("readiness function cache warm: cold")
    );
    let waiting = steward.get("reader").await.expect("get").state;
    assert_eq!(waiting.status, ServiceStatus::Starting);

    warm.store(true, Ordering::SeqCst);
    let ready = event_of(&mut events, "cache", EventKind::Ready).await;
    let started = event_of(&mut events, "reader", EventKind::Started).await;
    assert!(ready.seq < started.seq, "cache ready before reader started");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_service_waits_for_an_os_process_to_be_healthy() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let port = free_port();
    // The process listens only once the test writes a line to its stdin.
    let script = format!(
        "import socket, sys\n\
         sys.stdin.readline()\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\n\
         s.listen()\n\
         while True:\n    s.accept()[0].close()\n"
    );
    let mut db = ServiceDefinition::new(
        "db",
        steward::CommandSpec::Argv(vec!["python3".into(), "-c".into(), script]),
    );
    let mut readiness = ProbeSpec::new(ProbeCheck::Tcp {
        address: format!("127.0.0.1:{port}"),
    });
    readiness.interval = Duration::from_millis(50);
    readiness.failure_threshold = 1;
    db.readiness = Some(readiness);
    steward.define(db).await.expect("define db");

    let (calls, mut called) = mpsc::unbounded_channel();
    let mut warmer = function(
        "warmer",
        FunctionService::new("cache warmer", move |ctx: ServiceContext| {
            let calls = calls.clone();
            async move {
                // The dependency is healthy: its port answers now.
                tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                ctx.log().stdout("connected to db");
                let _ = calls.send(());
                ctx.cancelled().await;
                Ok::<(), std::io::Error>(())
            }
        }),
    );
    warmer.depends_on = vec![Dependency {
        service: "db".into(),
        condition: DependencyCondition::Healthy,
    }];
    warmer.autostart = false;
    steward.define(warmer).await.expect("define warmer");
    steward
        .control_no_wait("warmer", steward::ControlAction::Start)
        .await
        .expect("start warmer");

    let waiting = status_becomes(&steward, "warmer", ServiceStatus::Starting).await;
    let reason = waiting.reason.unwrap_or_default();
    assert!(reason.contains("waiting for db: healthy"), "{reason}");
    assert!(called.try_recv().is_err(), "not run before db is healthy");

    steward.input("db", "go\n").await.expect("input");
    let ready = event_of(&mut events, "db", EventKind::Ready).await;
    let started = event_of(&mut events, "warmer", EventKind::Started).await;
    assert!(ready.seq < started.seq, "db ready before warmer started");
    recv_soon(&mut called, "the warmer to connect").await;
    // Lines travel to the ring as a process's do, a moment after they are written.
    wait_for("the warmer's line in the ring", SOON, || async {
        let lines = steward.logs("warmer", 5).await.ok()?;
        lines
            .iter()
            .any(|l| l.line.as_str() == "connected to db")
            .then_some(())
    })
    .await;
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_waits_for_a_function_job_to_complete_and_an_error_carries_its_message() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let mut migrate = function(
        "migrate",
        FunctionService::new("migrate", move |_ctx: ServiceContext| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    return Err("db unreachable".to_string());
                }
                Ok(())
            }
        }),
    );
    migrate.restart = RestartPolicy::Transient;
    // The function itself waits for a process to complete first.
    migrate.depends_on = vec![Dependency {
        service: "seed".into(),
        condition: DependencyCondition::Completed,
    }];
    let mut seed = service("seed", "echo seeded");
    seed.restart = RestartPolicy::Temporary;
    steward.define(seed).await.expect("define seed");
    steward.define(migrate).await.expect("define migrate");
    let mut app = service("app", "sleep 300");
    app.depends_on = vec![Dependency {
        service: "migrate".into(),
        condition: DependencyCondition::Completed,
    }];
    steward.define(app).await.expect("define app");

    let seeded = event_of(&mut events, "seed", EventKind::Exited).await;
    assert_eq!(seeded.exit_code, Some(0));
    let first = event_of(&mut events, "migrate", EventKind::Started).await;
    assert!(
        seeded.seq < first.seq,
        "the process completed before the function ran"
    );
    let failed_run = event_of(&mut events, "migrate", EventKind::Exited).await;
    assert_eq!(failed_run.exit_code, Some(1));
    assert_eq!(
        failed_run.cause.as_deref(),
        Some("returned an error: db unreachable")
    );
    let backoff = event_of(&mut events, "migrate", EventKind::Backoff).await;
    assert_eq!(
        backoff.cause.as_deref(),
        Some("returned an error: db unreachable")
    );
    let done = event_of(&mut events, "migrate", EventKind::Exited).await;
    assert_eq!(done.exit_code, Some(0));
    assert_eq!(
        done.cause.as_deref(),
        Some("returned Ok; restart policy transient does not restart it")
    );
    let app_started = event_of(&mut events, "app", EventKind::Started).await;
    assert!(done.seq < app_started.seq);
    let state = steward.get("migrate").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Exited);
    assert_eq!(state.last_exit.and_then(|e| e.code), Some(0));
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_log_lines_are_in_the_ring_and_reach_a_log_subscription() {
    let steward = Steward::spawn().await.expect("runtime");
    let (more, later) = mpsc::unbounded_channel::<String>();
    let wanted = Arc::new(tokio::sync::Mutex::new(Some(later)));
    let def = function(
        "chatty",
        FunctionService::new("chatty", move |ctx: ServiceContext| {
            let wanted = wanted.clone();
            async move {
                ctx.log().stdout("hello\nworld");
                ctx.log().stderr("oops");
                let Some(mut lines) = wanted.lock().await.take() else {
                    return Ok(());
                };
                // Later lines, when the test asks for them.
                while let Some(line) = lines.recv().await {
                    ctx.log().stdout(line);
                }
                Ok::<(), String>(())
            }
        }),
    );
    steward.define(def).await.expect("define");
    let lines = wait_for("the first three lines", SOON, || async {
        steward
            .logs("chatty", 10)
            .await
            .ok()
            .filter(|l| l.len() == 3)
    })
    .await;
    let shown: Vec<(u64, LogStream, String)> = lines
        .iter()
        .map(|l| (l.seq, l.stream, l.line.to_string()))
        .collect();
    assert_eq!(
        shown,
        [
            (1, LogStream::Stdout, "hello".to_string()),
            (2, LogStream::Stdout, "world".to_string()),
            (3, LogStream::Stderr, "oops".to_string()),
        ]
    );
    assert!(lines[0].ts <= lines[2].ts);

    let mut sub = steward
        .subscribe_logs("chatty", None)
        .await
        .expect("subscribe");
    for expected in ["hello", "world", "oops"] {
        let record = tokio::time::timeout(SOON, sub.recv())
            .await
            .expect("backlog");
        let Some(LogRecord::Line(line)) = record else {
            panic!("expected a line, got {record:?}");
        };
        assert_eq!(line.line.as_str(), expected);
    }
    more.send("live line".to_string())
        .expect("function listens");
    let record = tokio::time::timeout(SOON, sub.recv())
        .await
        .expect("live line");
    let Some(LogRecord::Line(line)) = record else {
        panic!("expected a line, got {record:?}");
    };
    assert_eq!((line.seq, line.line.as_str()), (4, "live line"));
    steward.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------
// Faces: the HTTP API, YAML, reload.

async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
        .expect("request");
    crate::support::request_json(app, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_state_over_the_http_api_shows_kind_function_and_refuses_pause() {
    let steward = Steward::spawn().await.expect("runtime");
    let app = steward::api::router(steward.clone(), None);
    let mut def = function(
        "inapp",
        FunctionService::new("in-app worker", |ctx: ServiceContext| async move {
            ctx.cancelled().await;
            Ok::<(), String>(())
        }),
    );
    def.tags = vec!["app".into()];
    steward.define(def).await.expect("define");
    steward
        .define(service("proc", "sleep 300"))
        .await
        .expect("define proc");
    status_becomes(&steward, "inapp", ServiceStatus::Running).await;
    status_becomes(&steward, "proc", ServiceStatus::Running).await;

    let (status, one) = call(&app, "GET", "/api/v1/services/inapp", None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["kind"], "function");
    assert_eq!(one["status"], "running");
    assert_eq!(one["ready"], true);
    assert!(one["pid"].is_null(), "{one}");
    assert!(one["cpu_percent"].is_null() && one["rss_bytes"].is_null());
    assert_eq!(one["definition"]["kind"], "function");
    assert_eq!(one["definition"]["function"], "in-app worker");
    assert!(one["definition"].get("command").is_none());
    assert!(one["definition"].get("argv").is_none());

    let (_, list) = call(&app, "GET", "/api/v1/services?tag=app", None).await;
    let listed = list["services"].as_array().expect("services");
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["kind"], "function");
    let (_, proc_state) = call(&app, "GET", "/api/v1/services/proc", None).await;
    assert_eq!(proc_state["kind"], "process");
    assert_eq!(proc_state["definition"]["kind"], "process");

    for action in ["pause", "resume"] {
        let (status, body) = call(
            &app,
            "POST",
            &format!("/api/v1/services/inapp/{action}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["error"]["code"], "conflict");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("a function service cannot be paused"),
            "{message}"
        );
    }
    let refused = steward.pause("inapp").await;
    assert!(
        matches!(refused, Err(ControlError::FunctionNotPausable { .. })),
        "{refused:?}"
    );
    // The agent tools see it like any service, and get the same refusal.
    let tools = steward::tools::Tools::new(steward.clone());
    let status = tools
        .call("service_status", serde_json::json!({"id": "inapp"}))
        .await
        .expect("service_status");
    assert_eq!(status["kind"], "function", "{status}");
    assert!(status["pid"].is_null(), "{status}");
    assert_eq!(
        status["definition"]["function"], "in-app worker",
        "{status}"
    );
    let paused = tools
        .call("service_pause", serde_json::json!({"id": "inapp"}))
        .await
        .expect_err("refused");
    assert_eq!(paused.code(), "conflict");
    // Still running, untouched.
    let state = steward.get("inapp").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Running);
    // Metrics list it like any other service.
    let metrics = metrics_page(&app).await;
    assert!(
        metrics.contains("steward_service_up{service=\"inapp\"} 1"),
        "{metrics}"
    );
    steward.shutdown().await.expect("shutdown");
}

/// `GET /metrics` through the router.
async fn metrics_page(app: &Router) -> String {
    let request = Request::get("/metrics")
        .body(Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_and_http_cannot_define_a_function_service() {
    let steward = Steward::spawn().await.expect("runtime");
    let app = steward::api::router(steward.clone(), None);
    let (status, body) = call(
        &app,
        "POST",
        "/api/v1/services",
        Some(r#"{"id": "f", "function": "cache warmer"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid_definition");
    assert!(body.to_string().contains("function"), "{body}");
    assert!(steward.get("f").await.is_err(), "nothing was defined");

    // In code, the fields that only mean something to a process are refused, by name.
    let mut odd = function(
        "odd",
        FunctionService::new("odd", |_ctx: ServiceContext| async { Ok::<(), String>(()) }),
    );
    odd.detached = true;
    odd.user = Some("nobody".into());
    odd.watchdog = Some(Duration::from_secs(30));
    let refused = steward.define(odd).await.expect_err("refused");
    let text = refused.to_string();
    assert!(
        matches!(refused, ControlError::InvalidDefinition(_)),
        "{text}"
    );
    assert!(
        text.contains("`detached`") && text.contains("`user`") && text.contains("`watchdog`"),
        "{text}"
    );
    assert!(
        text.contains("a function service runs no process"),
        "{text}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("services.yml"),
        "version: 1\nservices:\n  f:\n    function: cache warmer\n",
    )
    .expect("write");
    let errors = steward::config::load_dir(dir.path()).expect_err("no YAML form");
    let text = errors.to_string();
    assert!(text.contains("function"), "{text}");
    assert!(text.contains("services.yml:4:"), "names the place: {text}");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_and_save_leave_function_services_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("services.yml"),
        "version: 1\nservices:\n  web:\n    command: sleep 300\n",
    )
    .expect("write");
    let steward = Steward::boot_dir(dir.path()).await.expect("boot");
    let launches = Arc::new(AtomicUsize::new(0));
    let counted = launches.clone();
    steward
        .define(function(
            "inapp",
            FunctionService::new("in-app", move |ctx: ServiceContext| {
                counted.fetch_add(1, Ordering::SeqCst);
                async move {
                    ctx.cancelled().await;
                    Ok::<(), String>(())
                }
            }),
        ))
        .await
        .expect("define");
    status_becomes(&steward, "inapp", ServiceStatus::Running).await;

    // A file now names the function's id too: the function stays, untouched.
    std::fs::write(
        dir.path().join("services.yml"),
        "version: 1\nservices:\n  web:\n    command: sleep 300\n  inapp:\n    command: sleep 300\n",
    )
    .expect("write");
    let plan = steward.reload(false).await.expect("reload");
    let entry = plan
        .entries
        .iter()
        .find(|e| e.id == "inapp")
        .expect("planned");
    assert_eq!(entry.action, steward::config::PlanAction::Keep, "{plan:?}");
    assert!(entry.why.contains("function service"), "{}", entry.why);
    // And without it in the file, it is not removed either.
    std::fs::write(
        dir.path().join("services.yml"),
        "version: 1\nservices:\n  web:\n    command: sleep 300\n",
    )
    .expect("write");
    let plan = steward.reload(false).await.expect("reload");
    assert!(
        plan.entries
            .iter()
            .any(|e| e.id == "inapp" && e.action == steward::config::PlanAction::Keep),
        "{plan:?}"
    );
    let state = steward.get("inapp").await.expect("get").state;
    assert_eq!(state.status, ServiceStatus::Running);
    assert_eq!(state.kind, ServiceKind::Function);
    assert_eq!(launches.load(Ordering::SeqCst), 1, "never restarted");

    let refused = steward.save("inapp").await.expect_err("no YAML form");
    assert!(
        refused.to_string().contains("function service"),
        "{refused}"
    );
    assert!(!dir.path().join("services.d/inapp.yml").exists());
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_manager_panic_aborts_the_task_and_runs_the_function_again() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (dropped, mut drops) = mpsc::unbounded_channel();
    steward
        .define(function("sturdy", stubborn(dropped)))
        .await
        .expect("define");
    event_of(&mut events, "sturdy", EventKind::Started).await;
    steward
        .inject_panic("sturdy", steward::ActorKind::PortManager)
        .await
        .expect("inject");
    assert_eq!(
        recv_soon(&mut drops, "the old task aborted").await,
        "dropped"
    );
    let restarting = event_of(&mut events, "sturdy", EventKind::Restarting).await;
    assert!(restarting.cause.is_some(), "{restarting:?}");
    event_of(&mut events, "sturdy", EventKind::Started).await;
    let state = status_becomes(&steward, "sturdy", ServiceStatus::Running).await;
    assert_eq!(state.kind, ServiceKind::Function);
    steward.shutdown().await.expect("shutdown");
}

/// An actor of the app run as a function service: it tells the test its address and
/// when it stops, panics on `"crash"`, stops itself on `"done"`.
struct Worker;

/// What the worker tells the test.
#[derive(Debug)]
enum Told {
    Up(ractor::ActorRef<String>),
    Stopped,
}

impl ractor::Actor for Worker {
    type Msg = String;
    type State = (ServiceContext, mpsc::UnboundedSender<Told>);
    type Arguments = (ServiceContext, mpsc::UnboundedSender<Told>);

    async fn pre_start(
        &self,
        myself: ractor::ActorRef<String>,
        (ctx, tell): Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        ctx.log().stdout("worker up");
        ctx.ready();
        let _ = tell.send(Told::Up(myself));
        Ok((ctx, tell))
    }

    async fn handle(
        &self,
        myself: ractor::ActorRef<String>,
        msg: String,
        _state: &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        match msg.as_str() {
            "crash" => panic!("worker crashed on purpose"),
            "done" => myself.stop(None),
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ractor::ActorRef<String>,
        (ctx, tell): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        ctx.log().stdout("worker stopping");
        let _ = tell.send(Told::Stopped);
        Ok(())
    }
}

async fn worker_up(told: &mut mpsc::UnboundedReceiver<Told>) -> ractor::ActorRef<String> {
    // A failed actor may or may not have run its post_stop: skip that news.
    loop {
        if let Told::Up(actor) = recv_soon(told, "the worker actor to start").await {
            return actor;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ractor_actor_runs_as_a_function_service() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (tell, mut told) = mpsc::unbounded_channel();
    let mut def = function(
        "worker",
        FunctionService::actor("worker actor", move |ctx| (Worker, (ctx, tell.clone())))
            .reporting_ready(),
    );
    def.restart = RestartPolicy::Transient;
    steward.define(def).await.expect("define");
    let first = worker_up(&mut told).await;
    event_of(&mut events, "worker", EventKind::Ready).await;

    // A panic in a handler fails the actor: a failure, restarted through the backoff.
    first.cast("crash".to_string()).expect("cast");
    let exited = event_of(&mut events, "worker", EventKind::Exited).await;
    let cause = exited.cause.unwrap_or_default();
    assert!(
        cause.starts_with("returned an error: actor failed:"),
        "{cause}"
    );
    assert!(cause.contains("worker crashed on purpose"), "{cause}");
    assert_eq!(exited.exit_code, Some(1));
    event_of(&mut events, "worker", EventKind::Backoff).await;
    let second = worker_up(&mut told).await;
    assert_ne!(first.get_id(), second.get_id(), "a new actor");

    // A stop asks the actor to stop: its post_stop runs, the service is stopped, not forced.
    let stopped = steward.stop("worker").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert!(matches!(
        recv_soon(&mut told, "post_stop").await,
        Told::Stopped
    ));
    let done = event_of(&mut events, "worker", EventKind::Stopped).await;
    assert_eq!(done.cause.as_deref(), Some("stopped on request"));

    // An actor that stops by itself is a clean end: transient does not restart it.
    steward.start("worker").await.expect("start");
    let third = worker_up(&mut told).await;
    third.cast("done".to_string()).expect("cast");
    let state = status_becomes(&steward, "worker", ServiceStatus::Exited).await;
    assert_eq!(state.last_exit.and_then(|e| e.code), Some(0));
    let lines = steward.logs("worker", 20).await.expect("logs");
    assert!(
        lines
            .iter()
            .filter(|l| l.line.as_str() == "worker up")
            .count()
            >= 3,
        "{lines:?}"
    );
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_cancels_the_function_and_runs_it_again_without_counting() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (runs, mut ran) = mpsc::unbounded_channel();
    let def = function(
        "again",
        FunctionService::new("again", move |ctx: ServiceContext| {
            let runs = runs.clone();
            async move {
                let _ = runs.send(());
                ctx.cancelled().await;
                Ok::<(), String>(())
            }
        }),
    );
    steward.define(def).await.expect("define");
    recv_soon(&mut ran, "the first run").await;
    let restarted = steward.restart("again").await.expect("restart");
    assert_eq!(restarted.status, ServiceStatus::Running);
    recv_soon(&mut ran, "the second run").await;
    let exited = event_of(&mut events, "again", EventKind::Exited).await;
    assert_eq!(exited.cause.as_deref(), Some("restart requested"));
    assert_eq!(exited.exit_code, Some(0));
    let state = steward.get("again").await.expect("get").state;
    assert_eq!(state.restart_count, 0, "a manual restart is not counted");
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_honours_pause_is_paused_and_resumed() {
    let steward = Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    let (contexts, mut context) = mpsc::unbounded_channel();
    let def = function(
        "consumer",
        FunctionService::new("consumer", move |ctx: ServiceContext| {
            let contexts = contexts.clone();
            async move {
                let _ = contexts.send(ctx.clone());
                ctx.cancelled().await;
                Ok::<(), String>(())
            }
        })
        .honouring_pause(),
    );
    steward.define(def).await.expect("define");
    let ctx = recv_soon(&mut context, "the run's context").await;
    assert!(!ctx.is_paused());

    let paused = steward.pause("consumer").await.expect("pause");
    assert_eq!(paused.status, ServiceStatus::Paused);
    assert!(!paused.ready, "a paused service is not ready");
    assert!(
        ctx.is_paused(),
        "the function is told before the pause is answered"
    );
    event_of(&mut events, "consumer", EventKind::Paused).await;

    let resumed = steward.resume("consumer").await.expect("resume");
    assert_eq!(resumed.status, ServiceStatus::Running);
    assert!(!ctx.is_paused());
    ctx.resumed().await;

    // A stop of a paused function resumes it first, so it can act on the cancellation.
    steward.pause("consumer").await.expect("pause again");
    let stopped = steward.stop("consumer").await.expect("stop");
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert!(!ctx.is_paused() && ctx.is_cancelled());
    let done = event_of(&mut events, "consumer", EventKind::Stopped).await;
    assert_eq!(done.cause.as_deref(), Some("stopped on request"));
    steward.shutdown().await.expect("shutdown");
}
