//! Probes and the HealthChecker against real servers and commands.
//!
//! Every test runs the real `HealthChecker` actor with a small stand-in actor in the
//! Server's place that forwards the `ServerMsg`s it receives into a channel. The probes hit
//! real sockets on 127.0.0.1 (ephemeral ports): an HTTP server written here whose status
//! can be switched (or scripted) at run time and that counts the requests it receives, TCP
//! listeners that are dropped to refuse connections, and real commands.
//!
//! Nothing waits on a bare sleep: tests wait for events (verdicts, request counts) under
//! deadlines. "Nothing happened for a while" is shown against a second, independent
//! HealthChecker used as a clock: its server must see several more requests while the
//! counter under test stays still.
//!
//! Length (over 600 lines): 17 tests over one scriptable HTTP server and the stand-in
//! Server, both defined here and used by every test.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use steward::config::{
    CommandSpec, FunctionProbe, ProbeCheck, ProbeKind, ProbeSpec, ServiceDefinition,
};
use steward::probe::{ProbeContext, run_probe};
use steward::runtime::service::generation::Generation;
use steward::runtime::service::health_checker::{
    HealthChecker, HealthCheckerArgs, HealthCheckerMsg,
};
use steward::runtime::service::server::ServerMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{group_empties, group_members, stand_in, wait_for};

/// Generous bound for anything that should happen within a few probe intervals.
const DEADLINE: Duration = Duration::from_secs(10);

/// Probe interval used throughout: short, to keep the tests fast.
const INTERVAL: Duration = Duration::from_millis(50);

/// A `ServerMsg::ProbeVerdict`, flattened.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    run: u64,
    probe: ProbeKind,
    healthy: bool,
    cause: String,
}

fn verdict(run: u64, probe: ProbeKind, healthy: bool, cause: &str) -> Verdict {
    Verdict {
        run,
        probe,
        healthy,
        cause: cause.to_string(),
    }
}

/// A HealthChecker under test, its stand-in Server and the channel of what it reported.
/// Stops both actors when dropped.
struct Harness {
    checker: ActorRef<HealthCheckerMsg>,
    stand_in: ActorRef<ServerMsg>,
    verdicts: mpsc::UnboundedReceiver<ServerMsg>,
}

impl Harness {
    async fn start(definition: ServiceDefinition) -> Harness {
        let (tx, verdicts) = mpsc::unbounded_channel();
        // A stand-in Server: every message goes to the test.
        let stand_in = stand_in(tx, Some).await;
        let args = HealthCheckerArgs {
            definition: Arc::new(definition),
            server: stand_in.clone(),
            http: reqwest::Client::new(),
            notify_socket: None,
        };
        let (checker, _) = Actor::spawn(None, HealthChecker, args)
            .await
            .expect("spawn health checker");
        Harness {
            checker,
            stand_in,
            verdicts,
        }
    }

    fn send(&self, msg: HealthCheckerMsg) {
        self.checker.cast(msg).expect("health checker alive");
    }

    /// Watches `run` with this process's environment.
    fn watch(&self, run: u64) {
        self.watch_with(run, std::env::vars().collect());
    }

    fn watch_with(&self, run: u64, env: Vec<(String, String)>) {
        self.send(HealthCheckerMsg::Watch {
            run: Generation(run),
            env: Arc::new(env),
            user: Ok(None),
            pid: None,
        });
    }

    /// The next verdict reported to the Server (fails after [`DEADLINE`]).
    async fn next_verdict(&mut self) -> Verdict {
        loop {
            let msg = tokio::time::timeout(DEADLINE, self.verdicts.recv())
                .await
                .expect("a verdict before the deadline")
                .expect("stand-in server alive");
            if let ServerMsg::ProbeVerdict {
                run,
                healthy,
                cause,
            } = msg
            {
                return Verdict {
                    run: run.0,
                    probe: cause.probe,
                    healthy,
                    cause: cause.to_string(),
                };
            }
        }
    }

    /// Every verdict received so far, without waiting.
    fn drain(&mut self) -> Vec<Verdict> {
        let mut out = Vec::new();
        while let Ok(msg) = self.verdicts.try_recv() {
            if let ServerMsg::ProbeVerdict {
                run,
                healthy,
                cause,
            } = msg
            {
                out.push(Verdict {
                    run: run.0,
                    probe: cause.probe,
                    healthy,
                    cause: cause.to_string(),
                });
            }
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.checker.stop(None);
        self.stand_in.stop(None);
    }
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP server with a switchable status.

/// Status meaning "read the request, never answer, and note when the client gives up".
const HOLD: u16 = 0;

/// An HTTP/1.1 server on an ephemeral port. Answers every request with the next scripted
/// status, or the current `status` once the script is empty. Stops accepting when dropped.
struct HttpServer {
    addr: std::net::SocketAddr,
    status: Arc<AtomicU16>,
    script: Arc<Mutex<VecDeque<u16>>>,
    /// Requests received (counted when the request head is read, before answering).
    hits: Arc<AtomicU32>,
    /// Requests being held (status [`HOLD`]).
    held: Arc<AtomicU32>,
    /// Held requests whose client closed the connection.
    abandoned: Arc<AtomicU32>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    async fn start(status: u16) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let status = Arc::new(AtomicU16::new(status));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let hits = Arc::new(AtomicU32::new(0));
        let held = Arc::new(AtomicU32::new(0));
        let abandoned = Arc::new(AtomicU32::new(0));
        let accept_loop = tokio::spawn({
            let (status, script) = (status.clone(), script.clone());
            let (hits, held, abandoned) = (hits.clone(), held.clone(), abandoned.clone());
            async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (status, script) = (status.clone(), script.clone());
                    let (hits, held, abandoned) = (hits.clone(), held.clone(), abandoned.clone());
                    tokio::spawn(async move {
                        let mut head = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        hits.fetch_add(1, Ordering::SeqCst);
                        let next = script.lock().expect("script lock").pop_front();
                        let code = next.unwrap_or_else(|| status.load(Ordering::SeqCst));
                        if code == HOLD {
                            held.fetch_add(1, Ordering::SeqCst);
                            // Only the client closing (or failing) ends this read.
                            while let Ok(n) = stream.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                            }
                            abandoned.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        let response = format!(
                            "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = stream.write_all(response.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        });
        HttpServer {
            addr,
            status,
            script,
            hits,
            held,
            abandoned,
            accept_loop,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn script(&self, statuses: &[u16]) {
        self.script
            .lock()
            .expect("script lock")
            .extend(statuses.iter().copied());
    }

    fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }

    async fn wait_hits(&self, what: &str, at_least: u32) {
        let hits = self.hits.clone();
        wait_for(what, DEADLINE, || {
            let hits = hits.clone();
            async move { (hits.load(Ordering::SeqCst) >= at_least).then_some(()) }
        })
        .await;
    }

    async fn wait_counter(&self, what: &str, counter: &Arc<AtomicU32>, at_least: u32) {
        let counter = counter.clone();
        wait_for(what, DEADLINE, || {
            let counter = counter.clone();
            async move { (counter.load(Ordering::SeqCst) >= at_least).then_some(()) }
        })
        .await;
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

// ---------------------------------------------------------------------------------------
// Definitions, probes and a clock.

fn service(id: &str) -> ServiceDefinition {
    ServiceDefinition::new(id, CommandSpec::Line("sleep 1000".into()))
}

/// A probe every [`INTERVAL`], with a timeout long enough never to fire by accident.
fn probe(check: ProbeCheck) -> ProbeSpec {
    let mut spec = ProbeSpec::new(check);
    spec.interval = INTERVAL;
    spec.timeout = Duration::from_secs(5);
    spec
}

fn http(url: String) -> ProbeCheck {
    ProbeCheck::Http {
        url,
        expect_status: 200,
    }
}

/// An independent HealthChecker whose requests mark the passing of probe intervals.
struct Clock {
    server: HttpServer,
    _harness: Harness,
}

impl Clock {
    async fn start() -> Clock {
        let server = HttpServer::start(200).await;
        let mut def = service("clock");
        def.readiness = Some(probe(http(server.url("/tick"))));
        let harness = Harness::start(def).await;
        harness.watch(1);
        Clock {
            server,
            _harness: harness,
        }
    }

    /// Returns once the clock has probed `n` more times.
    async fn wait_intervals(&self, n: u32) {
        let now = self.server.hits();
        self.server.wait_hits("clock ticks", now + n).await;
    }
}

fn context(cwd: &Path) -> ProbeContext {
    ProbeContext {
        http: reqwest::Client::new(),
        cwd: cwd.to_path_buf(),
        env: Arc::new(std::env::vars().collect()),
        user: Ok(None),
    }
}

/// A port on 127.0.0.1 with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

// ---------------------------------------------------------------------------------------
// Single probe runs.

#[tokio::test]
async fn http_probe_details_say_what_happened() {
    let server = HttpServer::start(503).await;
    let ctx = context(&std::env::temp_dir());
    let timeout = Duration::from_secs(5);

    let out = run_probe(&http(server.url("/health")), timeout, &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "http 503");

    server.set_status(200);
    let out = run_probe(&http(server.url("/health")), timeout, &ctx).await;
    assert!(out.ok);
    assert_eq!(out.detail, "http 200");

    let expects_204 = ProbeCheck::Http {
        url: server.url("/health"),
        expect_status: 204,
    };
    assert!(!run_probe(&expects_204, timeout, &ctx).await.ok);

    let refused = http(format!("http://127.0.0.1:{}/health", closed_port()));
    let out = run_probe(&refused, timeout, &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "http connection refused");

    server.set_status(HOLD);
    let out = run_probe(&http(server.url("/slow")), Duration::from_millis(200), &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "http timed out after 200ms");

    let https = http("https://127.0.0.1:8443/health".into());
    let out = run_probe(&https, timeout, &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "https probes are not supported yet");
}

#[tokio::test]
async fn tcp_probe_details_say_what_happened() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let ctx = context(&std::env::temp_dir());
    let check = ProbeCheck::Tcp {
        address: address.clone(),
    };
    let out = run_probe(&check, Duration::from_secs(5), &ctx).await;
    assert!(out.ok, "{}", out.detail);
    assert_eq!(out.detail, format!("tcp {address} open"));

    drop(listener);
    let out = run_probe(&check, Duration::from_secs(5), &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, format!("tcp {address} connection refused"));
}

/// Benchmark finding 7: a TCP probe closes with a reset (SO_LINGER 0), so it leaves no
/// socket in TIME_WAIT; the service sees the connection reset instead of a clean end.
#[tokio::test]
async fn a_tcp_probe_closes_its_connection_with_a_reset() {
    use tokio::io::AsyncReadExt as _;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let ctx = context(&std::env::temp_dir());
    let out = run_probe(&ProbeCheck::Tcp { address }, Duration::from_secs(5), &ctx).await;
    assert!(out.ok, "{}", out.detail);
    let (mut accepted, _) = listener.accept().await.expect("the probe's connection");
    let mut byte = [0u8; 1];
    let read = accepted.read(&mut byte).await;
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "a FIN (Ok(0)) would mean the probe closed gracefully"
    );
}

#[tokio::test]
async fn command_probe_timeout_kills_its_whole_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    // The shell leads the probe's group; it leaves a background child in the group, then
    // becomes `sleep` itself.
    let check = ProbeCheck::Command {
        command: CommandSpec::Line("echo $$ > leader.pid; sleep 30 & exec sleep 30".into()),
    };
    let running =
        tokio::spawn(async move { run_probe(&check, Duration::from_secs(2), &ctx).await });

    let pid_file = dir.path().join("leader.pid");
    let pgid: u32 = wait_for("the probe's group with two members", DEADLINE, || {
        let pid_file = pid_file.clone();
        async move {
            let pgid = std::fs::read_to_string(&pid_file)
                .ok()?
                .trim()
                .parse()
                .ok()?;
            (group_members(pgid).len() >= 2).then_some(pgid)
        }
    })
    .await;

    let out = running.await.expect("probe task");
    assert!(!out.ok);
    assert_eq!(out.detail, "command timed out after 2s");
    assert!(
        !Path::new(&format!("/proc/{pgid}")).exists(),
        "the group leader is killed and reaped before the outcome"
    );
    group_empties("the probe's process group to be gone", pgid).await;
}

#[tokio::test]
async fn function_probe_timeout_and_errors_are_failed_runs() {
    let ctx = context(&std::env::temp_dir());
    let stuck = ProbeCheck::Function(FunctionProbe::new("stuck", || async {
        std::future::pending::<()>().await;
        Ok(())
    }));
    let out = run_probe(&stuck, Duration::from_millis(100), &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "function stuck timed out after 100ms");

    let failing = ProbeCheck::Function(FunctionProbe::new("db ping", || async {
        Err("connection reset".to_string())
    }));
    let out = run_probe(&failing, Duration::from_secs(1), &ctx).await;
    assert!(!out.ok);
    assert_eq!(out.detail, "function db ping: connection reset");
}

// ---------------------------------------------------------------------------------------
// The HealthChecker.

#[tokio::test]
async fn http_verdict_flips_only_after_consecutive_thresholds() {
    let server = HttpServer::start(200).await;
    let mut readiness = probe(http(server.url("/health")));
    readiness.failure_threshold = 3;
    readiness.success_threshold = 2;
    let mut def = service("web");
    def.readiness = Some(readiness);
    // Runs of failures and passes each shorter than their threshold, then the real ones.
    server.script(&[
        200, 200, // 2 passes → healthy (requests 1-2)
        503, 503, 200, 503, 503, 200, // never 3 failures in a row (3-8)
        503, 503, 503, // → unhealthy (9-11)
        200, 503, 200, // never 2 passes in a row (12-14)
        200, // → healthy (15); then the default 200 keeps it so
    ]);
    let mut h = Harness::start(def).await;
    h.watch(1);

    let first = h.next_verdict().await;
    assert_eq!(
        first,
        verdict(1, ProbeKind::Readiness, true, "readiness http 200 ×2")
    );
    assert!(server.hits() >= 2);

    // The channel is ordered: had the short runs flipped the verdict, that report would
    // come here instead.
    let down = h.next_verdict().await;
    assert_eq!(
        down,
        verdict(1, ProbeKind::Readiness, false, "readiness http 503 ×3")
    );
    assert!(
        server.hits() >= 11,
        "flipped after only {} requests",
        server.hits()
    );

    let up = h.next_verdict().await;
    assert_eq!(
        up,
        verdict(1, ProbeKind::Readiness, true, "readiness http 200 ×2")
    );
    assert!(
        server.hits() >= 15,
        "flipped after only {} requests",
        server.hits()
    );

    // Still healthy: more passes report nothing.
    let now = server.hits();
    server.wait_hits("more probe requests", now + 3).await;
    assert_eq!(h.drain(), vec![]);
}

#[tokio::test]
async fn tcp_refused_turns_liveness_unhealthy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    let accepting = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let mut def = service("db");
    def.liveness = Some(probe(ProbeCheck::Tcp {
        address: address.clone(),
    }));
    let mut h = Harness::start(def).await;
    h.watch(7);

    let up = h.next_verdict().await;
    assert_eq!(
        up,
        verdict(
            7,
            ProbeKind::Liveness,
            true,
            &format!("liveness tcp {address} open")
        )
    );

    accepting.abort();
    let _ = accepting.await; // the listener is dropped with its task
    let down = h.next_verdict().await;
    assert_eq!(
        down,
        verdict(
            7,
            ProbeKind::Liveness,
            false,
            &format!("liveness tcp {address} connection refused ×2")
        )
    );
}

#[tokio::test]
async fn command_probe_runs_in_service_cwd_and_env_and_judges_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set_code = |code: &str| {
        let tmp = dir.path().join("code.tmp");
        std::fs::write(&tmp, code).expect("write code");
        std::fs::rename(&tmp, dir.path().join("code")).expect("rename code");
    };
    set_code("0");
    let mut def = service("worker");
    def.cwd = dir.path().to_path_buf();
    // Relative path and a variable only the service's environment has.
    def.readiness = Some(probe(ProbeCheck::Command {
        command: CommandSpec::Line(
            r#"test "$PROBE_SECRET" = s3cret || exit 9; exit $(cat code)"#.into(),
        ),
    }));
    let mut h = Harness::start(def).await;
    h.watch_with(
        1,
        vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("PROBE_SECRET".into(), "s3cret".into()),
        ],
    );

    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Readiness, true, "readiness command exit 0")
    );
    set_code("1");
    assert_eq!(
        h.next_verdict().await,
        verdict(
            1,
            ProbeKind::Readiness,
            false,
            "readiness command exit 1 ×2"
        )
    );
    set_code("0");
    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Readiness, true, "readiness command exit 0")
    );
}

#[tokio::test]
async fn command_probe_timeout_is_a_failure() {
    let mut liveness = probe(ProbeCheck::Command {
        command: CommandSpec::Argv(vec!["sleep".into(), "5".into()]),
    });
    liveness.timeout = Duration::from_millis(200);
    liveness.failure_threshold = 1;
    let mut def = service("hung");
    def.liveness = Some(liveness);
    let mut h = Harness::start(def).await;
    h.watch(1);
    assert_eq!(
        h.next_verdict().await,
        verdict(
            1,
            ProbeKind::Liveness,
            false,
            "liveness command timed out after 200ms"
        )
    );
}

#[tokio::test]
async fn function_probe_verdicts_carry_its_words() {
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    let check = FunctionProbe::new("db ping", move || {
        let ok = flag.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err("db says no".to_string())
            }
        }
    });
    let mut def = service("app");
    def.readiness = Some(probe(ProbeCheck::Function(check)));
    let mut h = Harness::start(def).await;
    h.watch(1);

    assert_eq!(
        h.next_verdict().await,
        verdict(
            1,
            ProbeKind::Readiness,
            true,
            "readiness function db ping ok"
        )
    );
    healthy.store(false, Ordering::SeqCst);
    assert_eq!(
        h.next_verdict().await,
        verdict(
            1,
            ProbeKind::Readiness,
            false,
            "readiness function db ping: db says no ×2"
        )
    );
}

#[tokio::test]
async fn startup_gates_readiness_and_liveness_until_it_passes() {
    let startup_server = HttpServer::start(503).await;
    let ready_server = HttpServer::start(200).await;
    let live_server = HttpServer::start(200).await;
    let mut startup = probe(http(startup_server.url("/startup")));
    startup.failure_threshold = 1000;
    let mut def = service("slow-boot");
    def.startup = Some(startup);
    def.readiness = Some(probe(http(ready_server.url("/ready"))));
    def.liveness = Some(probe(http(live_server.url("/live"))));
    let mut h = Harness::start(def).await;
    h.watch(1);

    startup_server.wait_hits("startup probe requests", 3).await;
    assert_eq!(
        ready_server.hits(),
        0,
        "readiness ran before startup passed"
    );
    assert_eq!(live_server.hits(), 0, "liveness ran before startup passed");
    assert_eq!(
        h.drain(),
        vec![],
        "failures below the threshold report nothing"
    );

    startup_server.set_status(200);
    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Startup, true, "startup http 200")
    );
    let mut rest = vec![h.next_verdict().await, h.next_verdict().await];
    rest.sort_by_key(|v| v.probe == ProbeKind::Liveness);
    assert_eq!(
        rest,
        vec![
            verdict(1, ProbeKind::Readiness, true, "readiness http 200"),
            verdict(1, ProbeKind::Liveness, true, "liveness http 200"),
        ]
    );

    // Startup ran its last time before readiness began; it is not run again, not even
    // after a suspend and resume of the same run.
    let startup_hits = startup_server.hits();
    h.send(HealthCheckerMsg::Suspend);
    h.send(HealthCheckerMsg::Resume);
    let now = ready_server.hits();
    ready_server
        .wait_hits("readiness after resume", now + 3)
        .await;
    assert_eq!(startup_server.hits(), startup_hits);
    assert_eq!(
        h.drain(),
        vec![],
        "unchanged verdicts are not reported again"
    );
}

#[tokio::test]
async fn startup_failing_past_threshold_is_reported_and_probing_stops() {
    let clock = Clock::start().await;
    let startup_server = HttpServer::start(503).await;
    let ready_server = HttpServer::start(200).await;
    let live_server = HttpServer::start(200).await;
    let mut startup = probe(http(startup_server.url("/startup")));
    startup.failure_threshold = 3;
    let mut def = service("never-boots");
    def.startup = Some(startup);
    def.readiness = Some(probe(http(ready_server.url("/ready"))));
    def.liveness = Some(probe(http(live_server.url("/live"))));
    let mut h = Harness::start(def).await;
    h.watch(1);

    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Startup, false, "startup http 503 ×3")
    );
    clock.wait_intervals(5).await;
    assert_eq!(
        startup_server.hits(),
        3,
        "startup probed again after giving up"
    );
    assert_eq!(ready_server.hits(), 0);
    assert_eq!(live_server.hits(), 0);
    assert_eq!(h.drain(), vec![]);
}

#[tokio::test]
async fn suspend_stops_probing_and_resume_restarts_it() {
    let clock = Clock::start().await;
    let server = HttpServer::start(200).await;
    let mut readiness = probe(http(server.url("/health")));
    readiness.failure_threshold = 1;
    // Longer than DEADLINE: a held request can only end early by being cancelled.
    readiness.timeout = Duration::from_secs(60);
    let mut def = service("frozen");
    def.readiness = Some(readiness);
    let mut h = Harness::start(def).await;
    h.watch(1);
    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Readiness, true, "readiness http 200")
    );

    // A run is in flight (the server holds it) when the process is frozen.
    server.set_status(HOLD);
    server
        .wait_counter("a held probe request", &server.held, 1)
        .await;
    h.send(HealthCheckerMsg::Suspend);
    server
        .wait_counter("the in-flight probe to be cancelled", &server.abandoned, 1)
        .await;

    let frozen_hits = server.hits();
    clock.wait_intervals(5).await;
    assert_eq!(server.hits(), frozen_hits, "probed while suspended");
    assert_eq!(h.drain(), vec![], "a frozen process is never judged");

    server.set_status(200);
    h.send(HealthCheckerMsg::Resume);
    server
        .wait_hits("probing after resume", frozen_hits + 2)
        .await;

    // The verdict was remembered: the next report is the change, not a repeat of healthy.
    server.set_status(503);
    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Readiness, false, "readiness http 503")
    );
}

#[tokio::test]
async fn new_watch_after_unwatch_reports_verdicts_for_the_new_run() {
    let server = HttpServer::start(200).await;
    let mut readiness = probe(http(server.url("/health")));
    // Longer than DEADLINE: a held request can only end early by being cancelled.
    readiness.timeout = Duration::from_secs(60);
    let mut def = service("restarted");
    def.readiness = Some(readiness);
    let mut h = Harness::start(def).await;
    h.watch(1);
    assert_eq!(
        h.next_verdict().await,
        verdict(1, ProbeKind::Readiness, true, "readiness http 200")
    );

    // Run 1 has a probe in flight when its process goes away.
    server.set_status(HOLD);
    server
        .wait_counter("a held probe request", &server.held, 1)
        .await;
    h.send(HealthCheckerMsg::Unwatch);
    server
        .wait_counter("the in-flight probe to be cancelled", &server.abandoned, 1)
        .await;

    // The new run starts from unknown: its first verdict is reported even though it
    // equals run 1's last one, and it carries the new run number.
    server.set_status(200);
    h.watch(2);
    assert_eq!(
        h.next_verdict().await,
        verdict(2, ProbeKind::Readiness, true, "readiness http 200")
    );
    server.set_status(503);
    assert_eq!(
        h.next_verdict().await,
        verdict(2, ProbeKind::Readiness, false, "readiness http 503 ×2")
    );
}

#[tokio::test]
async fn panic_message_makes_the_checker_panic() {
    let mut def = service("chaos");
    def.readiness = Some(probe(ProbeCheck::Tcp {
        address: format!("127.0.0.1:{}", closed_port()),
    }));
    let h = Harness::start(def).await;
    h.send(HealthCheckerMsg::Panic("injected".into()));
    let checker = h.checker.clone();
    wait_for("the checker to die", DEADLINE, || {
        let checker = checker.clone();
        async move { matches!(checker.get_status(), ractor::ActorStatus::Stopped).then_some(()) }
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Command probes run like the service (DESIGN §10): a whole runtime, real users.

/// `nobody`, looked up; `None` (the test is skipped) unless steward's tests run as root,
/// the only user that may switch.
fn nobody() -> Option<steward::process::ResolvedUser> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: switching users needs root");
        return None;
    }
    Some(steward::process::user::lookup_user("nobody", None).expect("the user nobody exists"))
}

/// A temp dir anyone may write to, for a service (and its probes) running as `nobody`.
fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_probe_runs_as_the_services_user_with_its_identity() {
    let Some(nobody) = nobody() else { return };
    let dir = shared_dir();
    let mut def = crate::support::service("as-nobody", "sleep 300");
    def.cwd = dir.path().to_path_buf();
    def.user = Some("nobody".into());
    // Passes only as nobody, with nobody's HOME and USER, in the service's cwd and env.
    let check = format!(
        r#"[ "$(id -u)" = "{}" ] && [ "$(id -g)" = "{}" ] && [ "$HOME" = "{}" ] && [ "$USER" = nobody ] && [ "$FROM_ENV" = yes ] && [ "$(pwd)" = "{}" ]"#,
        nobody.uid,
        nobody.gid,
        nobody.home.display(),
        dir.path().display()
    );
    def.env.insert("FROM_ENV".into(), "yes".into());
    let mut readiness = probe(ProbeCheck::Command {
        command: CommandSpec::Line(check),
    });
    readiness.failure_threshold = 1;
    def.readiness = Some(readiness);

    let steward = steward::Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward.define(def).await.expect("define");
    let ready =
        crate::support::next_event(&mut events, "as-nobody ready or unhealthy", DEADLINE, |e| {
            e.service == "as-nobody"
                && (e.kind == steward::events::EventKind::Ready
                    || e.health == Some(steward::Health::Unhealthy))
        })
        .await;
    assert_eq!(
        ready.kind,
        steward::events::EventKind::Ready,
        "the probe failed: {:?}",
        ready.cause
    );
    assert!(steward.get("as-nobody").await.expect("get").state.ready);
    steward.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_command_probe_leaves_no_process_behind() {
    let Some(nobody) = nobody() else { return };
    let dir = shared_dir();
    let mut def = crate::support::service("slow-probe", "sleep 300");
    def.cwd = dir.path().to_path_buf();
    def.user = Some("nobody".into());
    // Each run leaves a `sleep` grandchild in its group, records the pids, then hangs.
    let mut readiness = probe(ProbeCheck::Command {
        command: CommandSpec::Line(
            "sleep 300 & echo $$ $! > run.tmp; mv run.tmp run.pids; sleep 300".into(),
        ),
    });
    // Long enough that a loaded machine's shell writes its pids before the timeout.
    readiness.timeout = Duration::from_secs(1);
    readiness.failure_threshold = 1;
    def.readiness = Some(readiness);

    let steward = steward::Steward::spawn().await.expect("runtime");
    let mut events = steward.subscribe_events(None).await.expect("events");
    steward.define(def).await.expect("define");
    let pids_file = dir.path().join("run.pids");
    // The run and its owner are read while it lives (a run times out and goes at any time).
    let (shell, grandchild, uid): (u32, u32, u32) =
        wait_for("a probe run with its grandchild", DEADLINE, || {
            let pids_file = pids_file.clone();
            async move {
                let text = std::fs::read_to_string(&pids_file).ok()?;
                let mut pids = text.split_whitespace().map(|p| p.parse::<u32>().ok());
                let (shell, grandchild) = (pids.next()??, pids.next()??);
                let uid = uid_of(grandchild)?;
                (!group_members(shell).is_empty()).then_some((shell, grandchild, uid))
            }
        })
        .await;
    assert_eq!(uid, nobody.uid, "the probe runs as the service's user");
    // The run times out: its whole group is SIGKILLed, the grandchild included.
    crate::support::next_event(&mut events, "the probe to time out", DEADLINE, |e| {
        e.service == "slow-probe"
            && e.cause
                .as_deref()
                .is_some_and(|c| c.contains("timed out after 1s"))
    })
    .await;
    wait_for(
        "the timed-out run's group to be gone",
        DEADLINE,
        || async move {
            (group_members(shell).is_empty() && !crate::support::pid_alive(grandchild))
                .then_some(())
        },
    )
    .await;
    steward.shutdown().await.expect("shutdown");
    // After shutdown no probe of any run is left either.
    wait_for("no process of the test's probes", DEADLINE, || {
        let pids_file = pids_file.clone();
        async move {
            let text = std::fs::read_to_string(&pids_file).ok()?;
            let alive = text
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .any(|pid| crate::support::pid_alive(pid) || !group_members(pid).is_empty());
            (!alive).then_some(())
        }
    })
    .await;
}

/// The real uid of `pid`, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
