//! Running in production (DESIGN §11): steward as PID 1 of a PID namespace (orphans
//! reaped, SIGTERM → exit 0), as a child subreaper outside PID 1, `exit_with`, and the
//! notify protocol towards steward's own manager.
//!
//! PID namespaces come from `unshare --pid --fork --mount-proc`, which needs root; a
//! machine without it says so and skips those tests (CI runs as root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::config_dir;
use crate::support::{SOON, children_of, free_port, parent_of, pid_alive, wait_for};

/// How long a `steward up` may take to boot and to stop.
const BOOT: Duration = Duration::from_secs(20);

/// True when this process may create PID namespaces with `unshare`.
fn can_unshare() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !(root && unshare) {
        eprintln!("skipped: needs root and `unshare --pid --fork --mount-proc` (util-linux)");
    }
    root && unshare
}

/// A `steward up` (optionally as PID 1 of a new PID namespace), killed when dropped.
struct Up {
    child: Child,
    /// steward's pid as this (the host's) namespace sees it.
    steward: u32,
    url: String,
    log: PathBuf,
}

impl Up {
    fn start(dir: &Path, pid1: bool, env: &[(&str, &str)]) -> Up {
        let port = free_port();
        let log = dir.join("steward.log");
        let mut command = if pid1 {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork", "--mount-proc"])
                .arg(env!("CARGO_BIN_EXE_steward"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_steward"))
        };
        command
            .args(["up", "--config"])
            .arg(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env("STEWARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn steward up");
        let steward = if pid1 {
            let unshare = child.id();
            let deadline = Instant::now() + BOOT;
            loop {
                if let Some(&pid) = children_of(unshare).first() {
                    break pid;
                }
                assert!(Instant::now() < deadline, "unshare never forked steward");
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            child.id()
        };
        Up {
            child,
            steward,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_live(&mut self) {
        let url = format!("{}/health/live", self.url);
        let deadline = Instant::now() + BOOT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "steward exited ({status}) before answering:\n{}",
                    self.log()
                );
            }
            if reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "steward did not answer within {BOOT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.steward as i32), signal).expect("signal steward");
    }

    /// Waits for the exit (of `unshare`, which exits as its child did).
    async fn exit(&mut self, within: Duration) -> ExitStatus {
        let what = format!("steward to exit (log:\n{})", self.log());
        let child = &mut self.child;
        wait_for(&what, within, || {
            let status = child.try_wait().ok().flatten();
            async move { status }
        })
        .await
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.steward as i32), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pid that a service wrote to `file`, once it is there.
async fn pid_in(file: &Path) -> u32 {
    let what = format!("{} to hold a pid", file.display());
    wait_for(&what, SOON, || {
        let pid = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        async move { pid }
    })
    .await
}

/// 60 short-lived orphans (a subshell backgrounds `sleep`, then exits), then `spawned`,
/// then the service keeps running.
const DOUBLE_FORKER: &str = r#"version: 1
services:
  forker:
    command: "sh -c 'echo $$ > forker.pid; i=0; while [ $i -lt 60 ]; do (sleep 0.01 &); i=$((i+1)); done; touch spawned; exec sleep 1000'"
    stop_timeout: 5s
"#;

/// Regression for issue 17: as PID 1 steward left every orphan a zombie (102 after 20 s).
#[tokio::test]
async fn as_pid1_steward_reaps_every_orphan_and_exits_0_on_sigterm() {
    if !can_unshare() {
        return;
    }
    let dir = config_dir(DOUBLE_FORKER);
    let mut up = Up::start(dir.path(), true, &[]);
    up.wait_live().await;
    let spawned = dir.path().join("spawned");
    wait_for("the forker to spawn its orphans", SOON, || {
        let done = spawned.exists();
        async move { done.then_some(()) }
    })
    .await;
    // Every orphan came to steward (PID 1) and was reaped: only the service is left, and
    // it is no zombie. (Its pid file holds its pid inside the namespace, not ours.)
    let steward = up.steward;
    let what = format!(
        "steward's only child to be the service (log:\n{})",
        up.log()
    );
    let forker = wait_for(&what, SOON, || {
        // Direct children only (not `lineage::descendants`): the service's own shell
        // has its `sleep` below it, and that is not an orphan.
        let only = match children_of(steward).as_slice() {
            [only] if pid_alive(*only) => Some(*only),
            _ => None,
        };
        async move { only }
    })
    .await;
    up.signal(Signal::SIGTERM);
    let status = up.exit(BOOT).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", up.log());
    assert!(!pid_alive(forker), "the service was stopped");
    assert!(up.log().contains("role=\"init\"") || up.log().contains("role=init"));
}

/// Outside PID 1 steward is a child subreaper: a `setsid` grandchild whose parent exits
/// is reparented to steward, not to the host's init.
#[tokio::test]
async fn outside_pid1_a_daemonizing_grandchild_is_reparented_to_steward() {
    let dir = config_dir(
        r#"version: 1
services:
  launcher:
    command: "sh -c '(setsid sh -c \"echo \\$$ > grandchild.pid; exec sleep 1000\" &); exec sleep 1000'"
"#,
    );
    let mut up = Up::start(dir.path(), false, &[]);
    up.wait_live().await;
    let grandchild = pid_in(&dir.path().join("grandchild.pid")).await;
    let steward = up.steward;
    let reparented = wait_for("the grandchild to be reparented to steward", SOON, || {
        let parent = parent_of(grandchild);
        async move { (parent == Some(steward)).then_some(true) }
    })
    .await;
    assert!(reparented);
    let _ = kill(Pid::from_raw(grandchild as i32), Signal::SIGKILL);
    // Once it exits, steward reaps it as it reaps any orphan.
    wait_for("the grandchild to be reaped", SOON, || {
        let gone = !std::path::Path::new(&format!("/proc/{grandchild}")).exists();
        async move { gone.then_some(()) }
    })
    .await;
    up.signal(Signal::SIGTERM);
    assert_eq!(up.exit(BOOT).await.code(), Some(0), "log:\n{}", up.log());
}

/// `exit_with: app`, `app` waits for a `go` file and then exits 3; `helper` runs on.
const MAIN_EXITS_3: &str = r#"version: 1
settings:
  exit_with: app
services:
  app:
    command: "sh -c 'while [ ! -e go ]; do sleep 0.05; done; exit 3'"
    restart: temporary
  helper:
    command: "sh -c 'echo $$ > helper.pid; exec sleep 1000'"
    stop_timeout: 5s
"#;

/// A container's main process exiting 3 ends the container with 3: steward (PID 1 where
/// the machine allows) stops the helper gracefully and exits 3.
#[tokio::test]
async fn exit_with_passes_the_main_services_exit_code_on_and_stops_the_rest() {
    let dir = config_dir(MAIN_EXITS_3);
    let mut up = Up::start(dir.path(), can_unshare(), &[]);
    up.wait_live().await;
    pid_in(&dir.path().join("helper.pid")).await;
    std::fs::write(dir.path().join("go"), "").expect("write go");
    let status = up.exit(BOOT).await;
    let log = up.log();
    assert_eq!(status.code(), Some(3), "log:\n{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("service=helper") && l.contains("kind=\"stopped\"")),
        "the helper was stopped gracefully; log:\n{log}"
    );
}

/// A main process killed by SIGKILL gives 128 + 9.
#[tokio::test]
async fn exit_with_a_main_service_killed_by_sigkill_exits_137() {
    let dir = config_dir(
        r#"version: 1
settings:
  exit_with: app
services:
  app:
    command: "sh -c 'echo $$ > app.pid; exec sleep 1000'"
    restart: temporary
"#,
    );
    let mut up = Up::start(dir.path(), false, &[]);
    up.wait_live().await;
    let app = pid_in(&dir.path().join("app.pid")).await;
    kill(Pid::from_raw(app as i32), Signal::SIGKILL).expect("kill the main process");
    let status = up.exit(BOOT).await;
    assert_eq!(status.code(), Some(137), "log:\n{}", up.log());
}

/// `exit_with` naming a service no file defines is a config error, before anything starts.
#[test]
fn exit_with_naming_no_service_is_refused_by_validate() {
    let dir = config_dir(
        r#"version: 1
settings:
  exit_with: nosuch
services:
  app:
    command: sleep 1000
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["validate", "--config"])
        .arg(dir.path())
        .output()
        .expect("run steward validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // Located like every config error: the `exit_with:` value in services.yml.
    let place = format!("{}:3:14: ", dir.path().join("services.yml").display());
    assert!(
        stderr.contains(&format!(
            "{place}invalid `exit_with` in `settings`: no service `nosuch` is defined"
        )),
        "{stderr}"
    );
}

/// A service that takes its time to stop: at SIGTERM it writes `stopping` and exits only
/// once the test writes `release`.
const SLOW_STOP: &str = r#"version: 1
settings:
  shutdown_timeout: 60s
services:
  slow:
    argv: [sh, -c, "trap 'touch stopping; while [ ! -e release ]; do sleep 0.05; done; exit 0' TERM; while true; do sleep 0.05; done"]
    stop_timeout: 60s
"#;

async fn get_status(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Draining (DESIGN §11): from the first SIGTERM `/health/ready` answers 503, so a load
/// balancer takes the instance out, while `/health/live` stays 200 (no restart of a pod
/// that is merely stopping) until the API closes.
#[tokio::test]
async fn during_a_slow_shutdown_ready_is_503_while_live_stays_200() {
    let dir = config_dir(SLOW_STOP);
    let mut up = Up::start(dir.path(), false, &[]);
    up.wait_live().await;
    let ready = format!("{}/health/ready", up.url);
    let live = format!("{}/health/live", up.url);
    wait_for("/health/ready to answer 200", SOON, || {
        let ready = ready.clone();
        async move { (get_status(&ready).await == 200).then_some(()) }
    })
    .await;

    up.signal(Signal::SIGTERM);
    let stopping = dir.path().join("stopping");
    wait_for("the service to get its stop signal", SOON, || {
        let seen = stopping.exists();
        async move { seen.then_some(()) }
    })
    .await;
    // The service is still stopping (it waits for `release`): steward drains.
    assert_eq!(get_status(&ready).await, 503, "log:\n{}", up.log());
    assert_eq!(get_status(&live).await, 200, "log:\n{}", up.log());
    assert!(
        matches!(up.child.try_wait(), Ok(None)),
        "steward is still up"
    );

    std::fs::write(dir.path().join("release"), "").expect("write release");
    assert_eq!(up.exit(BOOT).await.code(), Some(0), "log:\n{}", up.log());
}

/// Reads datagrams from `socket` until one satisfies `want`; panics after `deadline`.
fn datagram_until(
    socket: &std::os::unix::net::UnixDatagram,
    what: &str,
    deadline: Duration,
    mut want: impl FnMut(&str) -> bool,
) -> String {
    let end = Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what}; got: {seen:?}"
        );
        socket.set_read_timeout(Some(left)).expect("read timeout");
        match socket.recv(&mut buf) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if want(&message) {
                    return message;
                }
                seen.push(message);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        // Other tests' children end meanwhile (SIGCHLD).
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// steward under a manager (systemd's Type=notify): READY=1 once boot is done, WATCHDOG=1
/// when WATCHDOG_USEC asks, STATUS= when the counts change, RELOADING=1 then READY=1 around a SIGHUP reload, STOPPING=1
/// at SIGTERM; and the service never inherits steward's NOTIFY_SOCKET.
#[tokio::test]
async fn steward_tells_its_manager_ready_watchdog_reloading_and_stopping() {
    let dir = config_dir(
        r#"version: 1
services:
  app:
    command: "sh -c 'env > env.txt; while [ ! -e go ]; do sleep 0.05; done'"
    restart: temporary
"#,
    );
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    let notify = path.to_str().expect("utf-8 path").to_string();
    let mut up = Up::start(
        dir.path(),
        false,
        &[("NOTIFY_SOCKET", &notify), ("WATCHDOG_USEC", "200000")],
    );
    let ready = datagram_until(&socket, "READY=1", BOOT, |m| m.contains("READY=1"));
    assert!(
        ready.contains("STATUS=1 service: 1 running (1 ready)"),
        "READY comes once boot is done: {ready:?}"
    );
    datagram_until(&socket, "WATCHDOG=1", SOON, |m| m == "WATCHDOG=1");

    // The counts change (app exits for good): a new STATUS= line says so.
    std::fs::write(dir.path().join("go"), "").expect("write go");
    datagram_until(&socket, "STATUS= with app exited", SOON, |m| {
        m == "STATUS=1 service: 0 running (0 ready), 1 other"
    });

    up.signal(Signal::SIGHUP);
    datagram_until(&socket, "RELOADING=1", SOON, |m| m.contains("RELOADING=1"));
    datagram_until(&socket, "READY=1 after the reload", SOON, |m| {
        m.contains("READY=1")
    });

    up.signal(Signal::SIGTERM);
    datagram_until(&socket, "STOPPING=1", SOON, |m| m.contains("STOPPING=1"));
    assert_eq!(up.exit(BOOT).await.code(), Some(0), "log:\n{}", up.log());

    let env = std::fs::read_to_string(dir.path().join("env.txt")).expect("the service's env");
    assert!(!env.contains("NOTIFY_SOCKET="), "{env}");
    assert!(!env.contains("WATCHDOG_USEC="), "{env}");
}

/// The configs shipped in deploy/ load: the Docker example and the Kubernetes
/// ConfigMaps, laid out as the Deployment's projected volume mounts them.
#[test]
fn the_deployment_examples_are_valid_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docker = steward::config::load_dir(&root.join("deploy/docker/config"))
        .unwrap_or_else(|e| panic!("deploy/docker/config: {e}"));
    assert_eq!(docker.settings.exit_with.as_deref(), Some("app"));

    let text = std::fs::read_to_string(root.join("deploy/kubernetes/configmap.yaml"))
        .expect("deploy/kubernetes/configmap.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("services.d")).expect("services.d");
    for document in text.split("\n---\n") {
        let map: serde_json::Value = serde_saphyr::from_str(document).expect("a YAML document");
        let name = map["metadata"]["name"].as_str().expect("metadata.name");
        let data = map["data"].as_object().expect("data");
        for (key, value) in data {
            let path = match name {
                "steward-config" => dir.path().join(key),
                _ => dir.path().join("services.d").join(key),
            };
            std::fs::write(path, value.as_str().expect("text")).expect("write");
        }
    }
    let config = steward::config::load_dir(dir.path())
        .unwrap_or_else(|e| panic!("deploy/kubernetes/configmap.yaml: {e}"));
    let ids: Vec<&str> = config.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["app", "worker"]);
    assert_eq!(config.settings.shutdown_timeout, Duration::from_secs(30));
}
