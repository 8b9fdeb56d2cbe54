//! The `steward` binary end to end: `validate` and `up` on temp config directories, and
//! every client command against a real daemon on a free 127.0.0.1 port running real
//! processes. One-shot commands run through `assert_cmd`; the daemon and the followers
//! (`logs -f`, `events -f`) are `std::process` children whose output is read line by line
//! with deadlines. Processes are checked in /proc, not trusted from the daemon's word.
//!
//! Length (over 600 lines): 27 tests, one or two per client command, sharing the `Daemon`
//! harness (which cgroup.rs and limits.rs use too).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use steward::events::{Event, EventKind};
use steward::{ServiceState, ServiceStatus};

use crate::support::{
    DaemonGuard, LAUNCHER, SOON, STOPPER, free_port, group_empties, group_members, pid_alive,
    pid_state, process_ends, wait_for,
};

/// Longer than SOON: a daemon's boot includes spawning its services.
const BOOT: Duration = Duration::from_secs(20);

/// A ticking log writer and a quiet long sleeper: enough for every client command.
const TWO_SERVICES: &str = r#"version: 1
settings:
  shutdown_timeout: 20s
services:
  ticker:
    argv: [sh, -c, "echo ticker-up; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done"]
    stop_timeout: 5s
  sleeper:
    command: sleep 600
    stop_timeout: 5s
"#;

/// A temp config directory holding `services_yml` as its services.yml.
pub(crate) fn config_dir(services_yml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("services.yml"), services_yml).expect("write services.yml");
    dir
}

/// `steward ARGS`, with no daemon location or token inherited from the environment.
fn steward(args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("steward")
        .expect("the steward binary")
        .env_remove("STEWARD_URL")
        .env_remove("STEWARD_TOKEN")
        .env_remove("NO_COLOR")
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run steward")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a command succeeded, showing its output when it did not; returns stdout.
fn ok(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asserts a command failed with exit code 1; returns stderr.
fn fails(output: &Output, what: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "{what} should exit 1:\nstdout: {}\nstderr: {}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stderr)
}

/// Lines of a child's pipe, read on a thread, received with deadlines.
struct Lines {
    rx: Receiver<String>,
    /// Everything read so far, for failure messages.
    seen: Arc<Mutex<String>>,
}

impl Lines {
    fn of(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = channel();
        let seen = Arc::new(Mutex::new(String::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut log) = log.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
                if tx.send(line).is_err() {
                    // Nobody reads any more; keep draining so the child never blocks.
                    continue;
                }
            }
        });
        Lines { rx, seen }
    }

    fn seen(&self) -> String {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The first line (from now) that `pred` accepts; panics after `deadline`.
    fn until(&self, what: &str, deadline: Duration, mut pred: impl FnMut(&str) -> bool) -> String {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "timed out after {deadline:?} waiting for {what}; read:\n{}",
                        self.seen()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the stream ended while waiting for {what}; read:\n{}",
                        self.seen()
                    )
                }
            }
        }
    }
}

/// A `steward up` child on a free port; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) url: String,
    token: Option<String>,
    /// The daemon's log (stderr).
    log: Lines,
    /// The daemon's stdout (nothing is expected there).
    stdout: Lines,
    http: reqwest::Client,
}

impl Daemon {
    /// Starts `steward up --config DIR --listen 127.0.0.1:PORT EXTRA...` with `env`.
    pub(crate) fn spawn(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn_on("127.0.0.1", dir, extra, env)
    }

    /// Starts `steward up --config DIR --listen HOST:PORT EXTRA...` with `env`; the client
    /// side always talks to 127.0.0.1:PORT.
    fn spawn_on(host: &str, dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let listen = format!("{host}:{port}");
        let mut command = StdCommand::new(env!("CARGO_BIN_EXE_steward"));
        command
            .args(["up", "--config"])
            .arg(dir)
            .args(["--listen", &listen])
            .args(extra)
            .env_remove("STEWARD_URL")
            .env_remove("STEWARD_TOKEN")
            .env("STEWARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn steward up");
        let log = Lines::of(child.stderr.take().expect("stderr"));
        let stdout = Lines::of(child.stdout.take().expect("stdout"));
        Daemon {
            child,
            url: format!("http://127.0.0.1:{port}"),
            token: None,
            log,
            stdout,
            http: reqwest::Client::new(),
        }
    }

    /// Boots TWO_SERVICES and waits until both run.
    async fn two_services(dir: &Path) -> Daemon {
        let mut daemon = Daemon::spawn(dir, &[], &[]);
        daemon.wait_live().await;
        daemon.wait_running(&["ticker", "sleeper"]).await;
        daemon
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/health/live` answers (panics with the daemon's log if it exits).
    pub(crate) async fn wait_live(&mut self) {
        let url = format!("{}/health/live", self.url);
        let deadline = Instant::now() + BOOT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "steward up exited ({status}) before answering:\n{}",
                    self.log.seen()
                );
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "steward up did not answer within {BOOT:?}:\n{}",
                self.log.seen()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The states, read with a plain HTTP client (not the CLI under test).
    pub(crate) async fn states(&self) -> Option<Vec<ServiceState>> {
        let mut request = self.http.get(format!("{}/api/v1/services", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        // The list is a bare array or `{"services": [...]}`: read either.
        let body: serde_json::Value = request.send().await.ok()?.json().await.ok()?;
        let list = body.get("services").cloned().unwrap_or(body);
        serde_json::from_value(list).ok()
    }

    pub(crate) async fn state(&self, id: &str) -> Option<ServiceState> {
        self.states().await?.into_iter().find(|s| s.id == id)
    }

    /// Waits until every service in `ids` is running with a pid.
    pub(crate) async fn wait_running(&self, ids: &[&str]) {
        let what = format!("{ids:?} to run (daemon log:\n{})", self.log.seen());
        wait_for(&what, BOOT, || async {
            let states = self.states().await?;
            ids.iter()
                .all(|id| {
                    states.iter().any(|s| {
                        s.id == *id && s.status == ServiceStatus::Running && s.pid.is_some()
                    })
                })
                .then_some(())
        })
        .await;
    }

    pub(crate) async fn pid_of(&self, id: &str) -> u32 {
        self.state(id)
            .await
            .and_then(|s| s.pid)
            .unwrap_or_else(|| panic!("{id} has no pid"))
    }

    /// `steward --url URL ARGS` (the global flag first; tests also put flags after).
    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--url", self.url.as_str()];
        all.extend_from_slice(args);
        steward(&all)
    }

    /// A client child with piped stdout, for the followers.
    fn follow(&self, args: &[&str]) -> (Child, Lines) {
        let mut child = StdCommand::new(env!("CARGO_BIN_EXE_steward"))
            .args(["--url", &self.url])
            .args(args)
            .env_remove("STEWARD_URL")
            .env_remove("STEWARD_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a follower");
        let lines = Lines::of(child.stdout.take().expect("stdout"));
        (child, lines)
    }

    /// The first line of the daemon's log (from now) that `pred` accepts; panics with the
    /// log after `deadline`.
    pub(crate) fn wait_log(
        &self,
        what: &str,
        deadline: Duration,
        pred: impl FnMut(&str) -> bool,
    ) -> String {
        self.log.until(what, deadline, pred)
    }

    pub(crate) fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).expect("signal steward up");
    }

    /// Waits for the daemon to exit; returns its status.
    pub(crate) async fn exit(&mut self, deadline: Duration) -> ExitStatus {
        let child = &mut self.child;
        let what = "steward up to exit";
        wait_for(what, deadline, || {
            let done = child.try_wait().ok().flatten();
            async move { done }
        })
        .await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills a follower client and reaps it.
fn stop_follower(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn states_of(stdout: &str) -> Vec<ServiceState> {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not a JSON state list ({e}):\n{stdout}"))
}

// ---------------------------------------------------------------------------------------
// validate and up, without a client

#[test]
fn validate_accepts_a_good_config_and_prints_a_summary() {
    let dir = config_dir(TWO_SERVICES);
    let config = dir.path().to_string_lossy().into_owned();
    let stdout = ok(&steward(&["validate", "--config", &config]), "validate");
    assert!(
        stdout.contains("2 services (ticker, sleeper)") && stdout.contains("no errors"),
        "{stdout}"
    );
}

/// Two broken services in one file: both errors are reported, each with file:line:col.
const TWO_ERRORS: &str = r#"version: 1
services:
  web:
    comand: sleep 10
  db:
    command: sleep 10
    stop_timeout: soon
"#;

fn assert_both_errors(stderr: &str, file: &Path) {
    let file = file.display().to_string();
    let located: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.trim_start()
                .strip_prefix(&format!("{file}:"))
                .and_then(|rest| {
                    let mut parts = rest.splitn(3, ':');
                    let line = parts.next()?.parse::<u32>().ok()?;
                    let column = parts.next()?.parse::<u32>().ok()?;
                    (line > 0 && column > 0).then_some(())
                })
                .is_some()
        })
        .collect();
    assert_eq!(located.len(), 2, "two located errors expected:\n{stderr}");
    assert!(located.iter().any(|l| l.contains("comand")), "{stderr}");
    assert!(
        located.iter().any(|l| l.contains("stop_timeout")),
        "{stderr}"
    );
    assert!(
        located.iter().any(|l| l.contains(&format!("{file}:4:"))),
        "{stderr}"
    );
    assert!(
        located.iter().any(|l| l.contains(&format!("{file}:7:"))),
        "{stderr}"
    );
}

#[test]
fn validate_prints_every_error_with_file_line_col_and_exits_1() {
    let dir = config_dir(TWO_ERRORS);
    let config = dir.path().to_string_lossy().into_owned();
    let stderr = fails(&steward(&["validate", "--config", &config]), "validate");
    assert_both_errors(&stderr, &dir.path().join("services.yml"));
}

#[test]
fn up_with_config_errors_prints_them_all_and_exits_1() {
    let dir = config_dir(TWO_ERRORS);
    let config = dir.path().to_string_lossy().into_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let stderr = fails(
        &steward(&["up", "--config", &config, "--listen", &listen]),
        "up",
    );
    assert_both_errors(&stderr, &dir.path().join("services.yml"));
}

#[test]
fn up_refuses_a_non_loopback_address_without_a_token() {
    let dir = config_dir(TWO_SERVICES);
    let config = dir.path().to_string_lossy().into_owned();
    let listen = format!("0.0.0.0:{}", free_port());
    let stderr = fails(
        &steward(&["up", "--config", &config, "--listen", &listen]),
        "up on 0.0.0.0",
    );
    assert!(
        stderr.contains(&format!("refusing to listen on {listen} without a token"))
            && stderr.contains("token_env"),
        "the message says how to set a token:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// client commands

#[test]
fn a_client_without_a_daemon_says_so_in_one_line_and_exits_1() {
    let url = format!("http://127.0.0.1:{}", free_port());
    for args in [
        vec!["status"],
        vec!["start", "web"],
        vec!["logs", "web", "-f"],
        vec!["events"],
    ] {
        let mut all = vec!["--url", url.as_str()];
        all.extend(args);
        let stderr = fails(&steward(&all), "a client without daemon");
        assert_eq!(
            stderr,
            format!("steward: no daemon at {url} (is `steward up` running?)\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_boots_and_status_lists_the_services_plain_and_as_json() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;

    let table = ok(&daemon.run(&["status"]), "status");
    assert!(
        !table.contains('\x1b'),
        "piped output has no colors:\n{table}"
    );
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID", "STATUS", "HEALTH", "PID", "UPTIME", "RESTARTS", "CPU", "MEM"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    for (row, id) in rows.iter().zip(["ticker", "sleeper"]) {
        assert_eq!(&row[..2], [id, "running"], "{table}");
        let pid: u32 = row[3].parse().expect("a pid column");
        assert!(pid_alive(pid));
    }

    // The global flag after the subcommand, and a filter by id.
    let json = ok(
        &daemon.run(&["status", "sleeper", "--json"]),
        "status --json",
    );
    let states = states_of(&json);
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].id, "sleeper");
    assert_eq!(states[0].status, ServiceStatus::Running);

    let stderr = fails(&daemon.run(&["status", "nope"]), "status of an unknown id");
    assert!(
        stderr.starts_with("steward: ") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_control_verb_waits_for_its_state() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;
    let first = daemon.pid_of("sleeper").await;

    let stdout = ok(&daemon.run(&["stop", "sleeper"]), "stop");
    assert_eq!(stdout, "sleeper: stopped\n");
    assert!(!pid_alive(first), "stop leaves no process");

    let stdout = ok(&daemon.run(&["start", "sleeper"]), "start");
    let started = daemon.pid_of("sleeper").await;
    assert_eq!(stdout, format!("sleeper: running (pid {started})\n"));
    assert!(pid_alive(started));

    let stdout = ok(&daemon.run(&["pause", "sleeper"]), "pause");
    assert!(stdout.starts_with("sleeper: paused"), "{stdout}");
    assert_eq!(
        pid_state(started).as_deref(),
        Some("T"),
        "SIGSTOP reached the process"
    );

    let stdout = ok(&daemon.run(&["resume", "sleeper"]), "resume");
    assert!(stdout.starts_with("sleeper: running"), "{stdout}");
    assert_ne!(
        pid_state(started).as_deref(),
        Some("T"),
        "SIGCONT reached the process"
    );

    let json = ok(
        &daemon.run(&["restart", "--json", "sleeper"]),
        "restart --json",
    );
    let states = states_of(&json);
    let restarted = states[0].pid.expect("a new pid");
    assert_ne!(restarted, started, "restart runs a new process");
    assert_eq!(states[0].status, ServiceStatus::Running);
    assert!(!pid_alive(started));

    let stdout = ok(&daemon.run(&["kill", "sleeper"]), "kill");
    assert_eq!(stdout, "sleeper: stopped\n");
    assert!(!pid_alive(restarted));

    // Several ids at once: each is reported.
    let stdout = ok(&daemon.run(&["stop", "ticker", "sleeper"]), "stop two");
    assert_eq!(stdout, "ticker: stopped\nsleeper: stopped\n");

    let stderr = fails(&daemon.run(&["start", "nope"]), "start of an unknown id");
    assert!(
        stderr.starts_with("steward: nope: start failed: ") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_prints_the_last_n_lines() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;
    // Wait until the ring holds more than we ask for.
    wait_for("ticker to write 5 lines", SOON, || async {
        let output = daemon.run(&["logs", "ticker", "-n", "100"]);
        (output.status.success() && text(&output.stdout).lines().count() >= 5).then_some(())
    })
    .await;

    let stdout = ok(&daemon.run(&["logs", "ticker", "-n", "2"]), "logs -n 2");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let numbers: Vec<u64> = lines
        .iter()
        .map(|l| {
            l.strip_prefix("tick ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a tick line: {l}"))
        })
        .collect();
    assert_eq!(numbers[1], numbers[0] + 1, "the last two lines, in order");

    let json = ok(
        &daemon.run(&["logs", "ticker", "-n", "3", "--json"]),
        "logs --json",
    );
    let lines: Vec<steward::logs::LogLine> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one LogLine per line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.windows(2).all(|w| w[1].seq == w[0].seq + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_receives_live_lines() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;
    let (child, lines) = daemon.follow(&["logs", "ticker", "-f", "-n", "1"]);
    let tick = |line: &str| {
        line.strip_prefix("tick ")
            .and_then(|n| n.parse::<u64>().ok())
    };
    let backlog = lines.until("the backlog line", SOON, |_| true);
    let after = tick(&backlog).unwrap_or(0);
    // Only a live line can come after a one-line backlog.
    lines.until("a live tick", SOON, |l| tick(l).is_some_and(|n| n > after));
    stop_follower(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_lists_the_history_and_follow_receives_live_events() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;

    let history = ok(&daemon.run(&["events", "--json"]), "events");
    let events: Vec<Event> = history
        .lines()
        .map(|l| serde_json::from_str(l).expect("one Event per line"))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.service == "sleeper" && e.kind == EventKind::Started),
        "{history}"
    );
    assert!(events.windows(2).all(|w| w[1].seq > w[0].seq), "in order");

    let (child, lines) = daemon.follow(&["events", "-f", "--json", "--service", "sleeper"]);
    // The replay comes first: once it shows, the stream is open.
    lines.until("the replayed events", SOON, |_| true);
    ok(&daemon.run(&["stop", "sleeper"]), "stop");
    let line = lines.until("sleeper stopped", SOON, |l| {
        serde_json::from_str::<Event>(l)
            .is_ok_and(|e| e.service == "sleeper" && e.kind == EventKind::Stopped)
    });
    assert!(line.contains("\"seq\""), "{line}");
    stop_follower(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn define_adds_services_and_remove_takes_them_away() {
    let dir = config_dir(TWO_SERVICES);
    let daemon = Daemon::two_services(dir.path()).await;
    let extra_dir = tempfile::tempdir().expect("temp dir");
    let file: PathBuf = extra_dir.path().join("extra.yml");
    std::fs::write(
        &file,
        "version: 1\nservices:\n  extra:\n    argv: [sh, -c, \"pwd; exec sleep 600\"]\n",
    )
    .expect("write extra.yml");

    let stdout = ok(&daemon.run(&["define", &file.to_string_lossy()]), "define");
    assert!(stdout.starts_with("defined extra: running"), "{stdout}");
    daemon.wait_running(&["extra"]).await;
    // Paths in the file are relative to it: its folder is the default cwd.
    let folder = extra_dir.path().canonicalize().expect("canonical folder");
    wait_for("extra to print its cwd", SOON, || async {
        let output = daemon.run(&["logs", "extra"]);
        let stdout = text(&output.stdout);
        stdout
            .lines()
            .any(|l| Path::new(l) == folder || Path::new(l) == extra_dir.path())
            .then_some(())
    })
    .await;

    let stderr = fails(&daemon.run(&["remove", "extra"]), "remove while running");
    assert!(stderr.contains("running"), "{stderr}");
    ok(&daemon.run(&["stop", "extra"]), "stop extra");
    let stdout = ok(&daemon.run(&["remove", "extra"]), "remove");
    assert_eq!(stdout, "removed extra\n");
    let states = states_of(&ok(&daemon.run(&["status", "--json"]), "status"));
    assert!(states.iter().all(|s| s.id != "extra"));

    let stdout = ok(&daemon.run(&["explain", "sleeper"]), "explain");
    assert!(!stdout.trim().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_service_and_exits_0() {
    let dir = config_dir(TWO_SERVICES);
    let mut daemon = Daemon::two_services(dir.path()).await;
    let states = states_of(&ok(&daemon.run(&["status", "--json"]), "status"));
    let pids: Vec<u32> = states.iter().filter_map(|s| s.pid).collect();
    assert_eq!(pids.len(), 2);

    daemon.signal(Signal::SIGTERM);
    let status = daemon.exit(BOOT).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log.seen());
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} outlived steward");
        assert!(
            group_members(pid).is_empty(),
            "group {pid} outlived steward"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_kills_every_group_at_once() {
    // A service that ignores SIGTERM, with a stop budget longer than any test deadline:
    // only the forced kill can end it in time.
    let dir = config_dir(
        r#"version: 1
settings:
  shutdown_timeout: 300s
services:
  stubborn:
    argv: [sh, -c, "trap '' TERM; echo armed; while true; do sleep 0.1; done"]
    stop_timeout: 300s
"#,
    );
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["stubborn"]).await;
    wait_for("the trap to be armed", SOON, || async {
        let output = daemon.run(&["logs", "stubborn"]);
        text(&output.stdout).contains("armed").then_some(())
    })
    .await;
    let pid = daemon.pid_of("stubborn").await;

    daemon.signal(Signal::SIGINT);
    wait_for("stubborn to be stopping", SOON, || async {
        daemon
            .state("stubborn")
            .await
            .filter(|s| s.status == ServiceStatus::Stopping)
    })
    .await;
    daemon.signal(Signal::SIGINT);
    let status = daemon.exit(SOON).await;
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log.seen());
    group_empties("the stubborn group to be gone", pid).await;
}

/// Waits until the service's log shows `line` (read through the CLI under test).
async fn log_shows(daemon: &Daemon, id: &str, line: &str) {
    let what = format!("{id} to log `{line}`");
    wait_for(&what, SOON, || async {
        let output = daemon.run(&["logs", id]);
        text(&output.stdout).contains(line).then_some(())
    })
    .await;
}

/// Regression for `stop --no-wait` that blocked until the process was gone: the daemon
/// now answers as soon as the stop signal is sent, so a service that ignores SIGTERM
/// (its stop_timeout far beyond the command's own deadline) is still `stopping`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_no_wait_returns_once_the_daemon_accepted_with_stopping() {
    let dir = config_dir(
        r#"version: 1
settings:
  shutdown_timeout: 2s
services:
  stubborn:
    argv: [sh, -c, "trap '' TERM; echo armed; while true; do sleep 0.1; done"]
    stop_timeout: 30s
"#,
    );
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["stubborn"]).await;
    log_shows(&daemon, "stubborn", "armed").await;
    let pid = daemon.pid_of("stubborn").await;

    let stdout = ok(
        &daemon.run(&["stop", "--no-wait", "stubborn", "--json"]),
        "stop --no-wait",
    );
    let states = states_of(&stdout);
    assert_eq!(states.len(), 1, "{stdout}");
    assert_eq!(states[0].status, ServiceStatus::Stopping, "{stdout}");
    assert!(pid_alive(pid), "the stubborn process still runs");
    let plain = ok(
        &daemon.run(&["stop", "--no-wait", "stubborn"]),
        "stop --no-wait again",
    );
    assert!(plain.contains("stubborn: stopping"), "{plain}");

    // The daemon still does what it accepted: kill ends it now.
    ok(&daemon.run(&["kill", "stubborn"]), "kill");
    group_empties("the stubborn group to be gone", pid).await;
}

/// A chain db ← api ← web (and an unrelated service): `stop --cascade db` stops web, then
/// api, then db, prints them in that order, and leaves the unrelated service running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cascade_stops_the_dependents_first_in_order() {
    let dir = config_dir(
        r#"version: 1
services:
  db:
    command: sleep 620
    stop_timeout: 5s
  api:
    command: sleep 621
    stop_timeout: 5s
    depends_on: [db]
  web:
    command: sleep 622
    stop_timeout: 5s
    depends_on: [api]
  other:
    command: sleep 623
    stop_timeout: 5s
"#,
    );
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["db", "api", "web", "other"]).await;

    // Without --cascade the stop is refused, and the refusal names the way out.
    let stderr = fails(&daemon.run(&["stop", "db"]), "stop db without cascade");
    assert!(stderr.contains("--cascade"), "{stderr}");
    assert!(stderr.contains("cascade=true"), "{stderr}");

    let stdout = ok(
        &daemon.run(&["stop", "--cascade", "db", "--json"]),
        "stop --cascade",
    );
    let states = states_of(&stdout);
    let ids: Vec<&str> = states.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["web", "api", "db"], "{stdout}");
    assert!(
        states.iter().all(|s| s.status == ServiceStatus::Stopped),
        "{stdout}"
    );

    let history = ok(&daemon.run(&["events", "--json"]), "events");
    let stopped = |id: &str| {
        history
            .lines()
            .filter_map(|l| serde_json::from_str::<Event>(l).ok())
            .find(|e| e.service == id && e.kind == EventKind::Stopped)
            .map(|e| e.seq)
            .unwrap_or_else(|| panic!("no stopped event for {id}:\n{history}"))
    };
    assert!(stopped("web") < stopped("api"), "{history}");
    assert!(stopped("api") < stopped("db"), "{history}");
    let other = daemon.state("other").await.expect("other's state");
    assert_eq!(other.status, ServiceStatus::Running);

    let plain = ok(&daemon.run(&["start", "web"]), "start web again");
    assert!(plain.contains("web: running"), "{plain}");
    let plain = ok(&daemon.run(&["stop", "--cascade", "db"]), "plain cascade");
    let order: Vec<&str> = plain.lines().filter_map(|l| l.split(':').next()).collect();
    assert_eq!(order, ["web", "api", "db"], "{plain}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_with_token_env_wants_the_token() {
    let dir = config_dir(
        &TWO_SERVICES.replace("settings:\n", "settings:\n  token_env: CLI_TEST_TOKEN\n"),
    );
    let mut daemon = Daemon::spawn(dir.path(), &[], &[("CLI_TEST_TOKEN", "s3cret")]);
    daemon.token = Some("s3cret".to_string());
    daemon.wait_live().await;
    daemon.wait_running(&["ticker", "sleeper"]).await;

    let stderr = fails(&daemon.run(&["status"]), "status without a token");
    assert!(stderr.contains("--token"), "says how to pass one: {stderr}");
    let stderr = fails(
        &daemon.run(&["status", "--token", "wrong"]),
        "status with a wrong token",
    );
    assert!(stderr.starts_with("steward: "), "{stderr}");
    ok(
        &daemon.run(&["status", "--token", "s3cret"]),
        "status --token",
    );
    let output = assert_cmd::Command::cargo_bin("steward")
        .expect("the steward binary")
        .env("STEWARD_URL", &daemon.url)
        .env("STEWARD_TOKEN", "s3cret")
        .args(["status", "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run steward");
    assert_eq!(
        states_of(&ok(&output, "status with STEWARD_TOKEN")).len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_daemon_serves_with_a_token_from_token_env() {
    let dir = config_dir(TWO_SERVICES);
    let mut daemon = Daemon::spawn_on(
        "0.0.0.0",
        dir.path(),
        &["--token-env", "CLI_TEST_FLAG_TOKEN"],
        &[("CLI_TEST_FLAG_TOKEN", "flag-token")],
    );
    daemon.token = Some("flag-token".to_string());
    daemon.wait_live().await;
    daemon.wait_running(&["ticker", "sleeper"]).await;
    fails(&daemon.run(&["status"]), "status without the token");
    ok(
        &daemon.run(&["--token", "flag-token", "status"]),
        "status --token",
    );
}

#[test]
fn a_daemon_whose_token_variable_is_unset_refuses_to_start() {
    let dir = config_dir(&TWO_SERVICES.replace(
        "settings:\n",
        "settings:\n  token_env: CLI_TEST_UNSET_TOKEN\n",
    ));
    let config = dir.path().to_string_lossy().into_owned();
    let listen = format!("127.0.0.1:{}", free_port());
    let stderr = fails(
        &steward(&["up", "--config", &config, "--listen", &listen]),
        "up without the token variable",
    );
    assert!(stderr.contains("CLI_TEST_UNSET_TOKEN"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// up --watch

/// Writes `text` to `dir/file` the way editors do: a hidden temp file, then a rename.
fn write_config(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    let folder = path.parent().expect("a folder");
    std::fs::create_dir_all(folder).expect("mkdir");
    let name = path.file_name().expect("a name").to_string_lossy();
    let temp = folder.join(format!(".{name}.tmp"));
    std::fs::write(&temp, text).expect("write temp");
    std::fs::rename(&temp, &path).expect("rename into place");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_watch_reloads_when_config_files_change() {
    let dir = config_dir("version: 1\nservices:\n  base:\n    command: sleep 600\n");
    let mut daemon = Daemon::spawn(dir.path(), &["--watch"], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["base"]).await;
    let base = daemon.pid_of("base").await;

    // A new file: its service is defined and started.
    let x_yml = "services.d/x.yml";
    write_config(
        dir.path(),
        x_yml,
        "version: 1\nservices:\n  x:\n    command: sleep 601\n",
    );
    daemon.wait_running(&["x"]).await;
    let first = daemon.pid_of("x").await;

    // A changed command: restarted, a new pid.
    write_config(
        dir.path(),
        x_yml,
        "version: 1\nservices:\n  x:\n    command: sleep 602\n",
    );
    let second = wait_for("x to run with a new pid", BOOT, || async {
        let state = daemon.state("x").await?;
        (state.status == ServiceStatus::Running)
            .then_some(state.pid)
            .flatten()
            .filter(|pid| *pid != first)
    })
    .await;
    assert!(!pid_alive(first), "the old process is gone");

    // steward's own save (define --persist) writes services.d/saved.yml; the reload that
    // follows finds the same definition and keeps the process.
    let extra = tempfile::tempdir().expect("temp dir");
    let file = extra.path().join("saved.yml");
    std::fs::write(
        &file,
        "version: 1\nservices:\n  saved:\n    command: sleep 603\n",
    )
    .expect("write saved.yml");
    ok(
        &daemon.run(&["define", &file.to_string_lossy(), "--persist"]),
        "define --persist",
    );
    daemon.wait_running(&["saved"]).await;
    let saved = daemon.pid_of("saved").await;
    assert!(dir.path().join("services.d/saved.yml").is_file());
    daemon.log.until("the reload after the save", BOOT, |line| {
        line.contains("reload") && line.contains("saved") && line.contains("Keep")
    });
    assert_eq!(
        daemon.pid_of("saved").await,
        saved,
        "same definition, same pid"
    );

    // A broken file: nothing changes, the error is logged with file:line:col.
    write_config(
        dir.path(),
        "services.d/broken.yml",
        "version: 1\nservices:\n  y:\n    comand: sleep 604\n",
    );
    let error = daemon.log.until("the reload error", BOOT, |line| {
        line.contains("broken.yml:4:")
    });
    assert!(error.contains("comand"), "{error}");
    let states = daemon.states().await.expect("states");
    assert!(states.iter().all(|s| s.id != "y"), "{states:?}");
    assert_eq!(daemon.pid_of("x").await, second);
    assert_eq!(daemon.pid_of("base").await, base);

    // Both files gone: x is stopped and removed, the rest keeps running.
    std::fs::remove_file(dir.path().join("services.d/broken.yml")).expect("rm broken.yml");
    std::fs::remove_file(dir.path().join(x_yml)).expect("rm x.yml");
    wait_for("x to be removed", BOOT, || async {
        let states = daemon.states().await?;
        states.iter().all(|s| s.id != "x").then_some(())
    })
    .await;
    process_ends("x's process to end", second).await;
    assert_eq!(daemon.pid_of("base").await, base);
    assert_eq!(daemon.pid_of("saved").await, saved);
}

/// A refused `steward reload` prints each problem on its own line with file:line:col, from
/// the API's structured `details`, and exits 1 with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refused_prints_each_problem_with_its_place() {
    let dir = config_dir("version: 1\nservices:\n  base:\n    command: sleep 640\n");
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["base"]).await;
    let base = daemon.pid_of("base").await;
    write_config(
        dir.path(),
        "services.d/one.yml",
        "version: 1\nservices:\n  one:\n    comand: sleep 641\n",
    );
    write_config(
        dir.path(),
        "services.d/two.yml",
        "version: 1\nservices:\n  two:\n    command: sleep 642\n    restart: sometimes\n",
    );
    let stderr = fails(&daemon.run(&["reload"]), "reload of a broken config");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("steward: invalid definition (2 problems)"),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("one.yml:4:5:") && l.contains("comand")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("two.yml:5:") && l.contains("sometimes")),
        "{stderr}"
    );
    assert_eq!(daemon.pid_of("base").await, base, "nothing changed");
    let states = daemon.states().await.expect("states");
    assert_eq!(states.len(), 1, "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_without_watching() {
    let dir = config_dir("version: 1\nservices:\n  base:\n    command: sleep 610\n");
    let mut daemon = Daemon::spawn(dir.path(), &[], &[]);
    daemon.wait_live().await;
    daemon.wait_running(&["base"]).await;
    let base = daemon.pid_of("base").await;
    write_config(
        dir.path(),
        "services.d/h.yml",
        "version: 1\nservices:\n  h:\n    command: sleep 611\n",
    );
    // Without --watch nothing reads the new file until the signal.
    daemon.signal(Signal::SIGHUP);
    daemon.wait_running(&["h"]).await;
    assert_eq!(daemon.pid_of("base").await, base, "unchanged, same pid");
}

// ---------------------------------------------------------------------------------------
// Secrets never appear in steward's output

/// Every secret the masking test plants; none may appear in anything steward shows.
const SECRETS: [&str; 5] = [
    "tok-s3cr3t-1",
    "tok-s3cr3t-2",
    "hunter2-s3cr3t",
    "file-s3cr3t",
    "save-s3cr3t",
];

fn vault_yml(token: &str) -> String {
    format!(
        r#"version: 1
settings:
  shutdown_timeout: 20s
services:
  vault:
    argv: [sh, -c, "env > seen.$$.env; exec sleep 600"]
    env: {{ API_TOKEN: {token}, PLAIN: visible-ok }}
    env_file: vault.env
    stop_timeout: 5s
"#
    )
}

/// Runs a client command that must succeed; keeps its stdout and stderr in `outputs`.
fn cli(daemon: &Daemon, outputs: &mut Vec<(String, String)>, what: &str, args: &[&str]) -> String {
    let output = daemon.run(args);
    let stdout = ok(&output, what);
    outputs.push((format!("{what} (stderr)"), text(&output.stderr)));
    outputs.push((what.to_string(), stdout.clone()));
    stdout
}

/// Asserts that `output` (named `what`) shows none of [`SECRETS`].
fn assert_no_secret(what: &str, output: &str) {
    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "{what} shows the secret {secret}:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_any_output() {
    let dir = config_dir(&vault_yml("tok-s3cr3t-1"));
    std::fs::write(
        dir.path().join("vault.env"),
        "DB_PASSWORD=hunter2-s3cr3t\nFROM_FILE=file-s3cr3t\n",
    )
    .expect("write vault.env");
    let mut daemon = Daemon::spawn(
        dir.path(),
        &[],
        &[("STEWARD_LOG", "debug"), ("RUST_LOG", "debug")],
    );
    daemon.wait_live().await;
    daemon.wait_running(&["vault"]).await;
    // The service writes its environment to seen.<pid>.env (the shell execs, so its pid
    // is the service's).
    let saw_all = |pid: u32, values: &'static [&'static str]| {
        let seen = dir.path().join(format!("seen.{pid}.env"));
        async move {
            let text = std::fs::read_to_string(&seen).ok()?;
            values.iter().all(|v| text.contains(v)).then_some(())
        }
    };
    let first = daemon.pid_of("vault").await;
    wait_for("the service to see every value", SOON, || {
        saw_all(
            first,
            &[
                "tok-s3cr3t-1",
                "hunter2-s3cr3t",
                "file-s3cr3t",
                "visible-ok",
            ],
        )
    })
    .await;

    let mut outputs: Vec<(String, String)> = Vec::new();
    cli(&daemon, &mut outputs, "restart", &["restart", "vault"]);
    let second = daemon.pid_of("vault").await;
    assert_ne!(second, first);
    wait_for("the restarted service to see every value", SOON, || {
        saw_all(second, &["tok-s3cr3t-1", "hunter2-s3cr3t", "file-s3cr3t"])
    })
    .await;

    // A definition defined at run time and persisted keeps its real value on disk.
    let extra = tempfile::tempdir().expect("temp dir");
    let file = extra.path().join("keeper.yml");
    std::fs::write(
        &file,
        "version: 1\nservices:\n  keeper:\n    command: sleep 600\n    env: { SAVE_TOKEN: save-s3cr3t }\n",
    )
    .expect("write keeper.yml");
    cli(
        &daemon,
        &mut outputs,
        "define --persist",
        &["define", &file.to_string_lossy(), "--persist"],
    );
    let saved = std::fs::read_to_string(dir.path().join("services.d/keeper.yml"))
        .expect("services.d/keeper.yml");
    assert!(
        saved.contains("save-s3cr3t"),
        "save writes the real value:\n{saved}"
    );

    // A changed token: the plan says what changed, never the values.
    std::fs::write(dir.path().join("services.yml"), vault_yml("tok-s3cr3t-2"))
        .expect("rewrite services.yml");
    let plan = cli(
        &daemon,
        &mut outputs,
        "reload --dry-run",
        &["reload", "--dry-run"],
    );
    assert!(plan.contains("env"), "{plan}");
    cli(
        &daemon,
        &mut outputs,
        "reload --dry-run --json",
        &["reload", "--dry-run", "--json"],
    );
    cli(&daemon, &mut outputs, "reload", &["reload"]);
    let third = wait_for("vault to run again after the reload", SOON, || async {
        let state = daemon.state("vault").await?;
        (state.status == ServiceStatus::Running)
            .then_some(state.pid)
            .flatten()
            .filter(|pid| *pid != second)
    })
    .await;
    wait_for("the reloaded service to see the new token", SOON, || {
        saw_all(third, &["tok-s3cr3t-2", "hunter2-s3cr3t", "file-s3cr3t"])
    })
    .await;
    daemon.wait_running(&["vault", "keeper"]).await;

    // A broken env_file: the reason names the file and line, never the line's text.
    std::fs::write(
        dir.path().join("vault.env"),
        "DB_PASSWORD hunter2-s3cr3t\nFROM_FILE=file-s3cr3t\n",
    )
    .expect("break vault.env");
    let output = daemon.run(&["restart", "vault"]);
    outputs.push(("restart, broken env_file".to_string(), text(&output.stdout)));
    outputs.push((
        "restart, broken env_file (stderr)".to_string(),
        text(&output.stderr),
    ));
    let failed = wait_for("vault to fail on its env_file", SOON, || async {
        daemon
            .state("vault")
            .await
            .filter(|s| s.status == ServiceStatus::Failed)
    })
    .await;
    let reason = failed.reason.unwrap_or_default();
    assert!(reason.contains("vault.env:1"), "{reason}");

    cli(&daemon, &mut outputs, "status", &["status"]);
    cli(
        &daemon,
        &mut outputs,
        "status --json",
        &["status", "--json"],
    );
    cli(&daemon, &mut outputs, "events", &["events"]);
    cli(
        &daemon,
        &mut outputs,
        "events --json",
        &["events", "--json"],
    );
    cli(&daemon, &mut outputs, "explain", &["explain", "vault"]);
    cli(
        &daemon,
        &mut outputs,
        "explain --json",
        &["explain", "vault", "--json"],
    );
    cli(&daemon, &mut outputs, "logs", &["logs", "vault"]);

    let http = reqwest::Client::new();
    let mut detail = None;
    for path in [
        "/api/v1/services",
        "/api/v1/services/vault",
        "/api/v1/services/keeper",
        "/api/v1/services/vault/explain",
        "/api/v1/status",
        "/api/v1/openapi.json",
        "/metrics",
    ] {
        let body = http
            .get(format!("{}{path}", daemon.url))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        if path == "/api/v1/services/vault" {
            detail = Some(body.clone());
        }
        outputs.push((format!("GET {path}"), body));
    }
    let plan = http
        .post(format!("{}/api/v1/reload?dry_run=true", daemon.url))
        .send()
        .await
        .expect("POST reload")
        .text()
        .await
        .expect("body");
    outputs.push(("POST /api/v1/reload?dry_run=true".to_string(), plan));
    let mut events = http
        .get(format!("{}/api/v1/events?since=0", daemon.url))
        .send()
        .await
        .expect("GET events");
    let mut ring = String::new();
    // The ring is replayed first; the stream then follows, so read until the last event.
    let last_seq = {
        let output = daemon.run(&["events", "--json"]);
        let events: Vec<Event> = text(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        events.last().map(|e| e.seq).expect("some events")
    };
    let wanted = format!("\"seq\":{last_seq}");
    while !ring.contains(&wanted) {
        let chunk = tokio::time::timeout(SOON, events.chunk())
            .await
            .expect("the event ring in time")
            .expect("read events")
            .expect("the stream stays open");
        ring.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(events);
    outputs.push(("GET /api/v1/events (ring)".to_string(), ring));

    // The definition view shows plain values, masks the secret, names the env_file.
    let detail: serde_json::Value =
        serde_json::from_str(&detail.expect("the detail")).expect("JSON detail");
    let env = &detail["definition"]["env"];
    assert_eq!(env["PLAIN"], "visible-ok", "{detail}");
    assert_eq!(env["API_TOKEN"], "***", "{detail}");
    assert!(
        detail["definition"]["env_file"]
            .as_str()
            .is_some_and(|p| p.ends_with("vault.env")),
        "{detail}"
    );

    daemon.signal(Signal::SIGTERM);
    daemon.exit(BOOT).await;
    wait_for("the daemon's log to end", SOON, || async {
        daemon.log.seen().contains("bye").then_some(())
    })
    .await;
    let log = daemon.log.seen();
    assert!(
        log.contains("DEBUG"),
        "the daemon logged at debug level:\n{log}"
    );
    outputs.push(("steward up (stderr)".to_string(), log));
    outputs.push(("steward up (stdout)".to_string(), daemon.stdout.seen()));
    for (what, output) in &outputs {
        assert_no_secret(what, output);
    }
}

// ---------------------------------------------------------------------------------------
// One boot path: `steward up` cleans up after a killed steward as `Steward::boot` does.

/// A config directory with the detached stand-in (a python HTTP server daemonized by
/// `launcher.py`, stopped by `stopper.py`) as service `stack`, and its port.
fn detached_stage() -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("launcher.py"), LAUNCHER).expect("launcher");
    std::fs::write(dir.path().join("stopper.py"), STOPPER).expect("stopper");
    let port = free_port();
    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("services.yml"),
        format!(
            r#"version: 1
settings:
  state_dir: {state}
services:
  stack:
    argv: [python3, launcher.py, "{port}", daemon.pid, launches]
    detached: true
    stop_command: python3 stopper.py daemon.pid stopped
    pid_file: daemon.pid
    readiness:
      http: {{ url: "http://127.0.0.1:{port}/" }}
      interval: 100ms
"#,
            state = state.display()
        ),
    )
    .expect("write services.yml");
    (dir, port)
}

/// Runs a `steward up` with the detached `stack`, SIGKILLs it once the daemon is ready,
/// rewrites services.yml with `next` (after the settings), boots `steward up` again and
/// checks the daemon the first one left is stopped at boot.
async fn a_leftover_daemon_is_stopped_when_up_boots(next: &str) {
    let (dir, _port) = detached_stage();
    let guard = DaemonGuard::default();
    let mut first = Daemon::spawn(dir.path(), &[], &[]);
    first.wait_live().await;
    let what = format!("stack to be ready (log:\n{})", first.log.seen());
    let daemon = wait_for(&what, BOOT, || async {
        first
            .state("stack")
            .await
            .filter(|s| s.status == ServiceStatus::Running && s.ready)
            .and_then(|s| s.pid)
    })
    .await;
    guard.watch(daemon);
    first.signal(Signal::SIGKILL);
    first.exit(SOON).await;
    assert!(
        pid_alive(daemon),
        "a detached daemon survives a killed steward"
    );

    let state = dir.path().join("state");
    std::fs::write(
        dir.path().join("services.yml"),
        format!(
            "version: 1\nsettings:\n  state_dir: {}\n{next}",
            state.display()
        ),
    )
    .expect("rewrite services.yml");
    let mut second = Daemon::spawn(dir.path(), &[], &[]);
    // The API serves only once the boot's cleanup is done: no wait beyond this one.
    second.wait_live().await;
    assert!(
        !pid_alive(daemon),
        "the unclaimed daemon was stopped at boot; log:\n{}",
        second.log.seen()
    );
    assert!(group_members(daemon).is_empty());
    second
        .log
        .until("the warning about the daemon", SOON, |line| {
            line.contains("no longer detached") && line.contains("stack")
        });
    let launches = std::fs::read_to_string(dir.path().join("launches")).unwrap_or_default();
    assert_eq!(launches.lines().count(), 1, "launched once: {launches}");
    second.signal(Signal::SIGTERM);
    assert_eq!(second.exit(BOOT).await.code(), Some(0));
}

/// Regression for `steward up` re-implementing the boot without the cleanup of
/// unclaimed detached daemons: the service is still defined, now as a plain command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_stops_a_daemon_left_by_a_killed_steward_whose_service_is_no_longer_detached() {
    a_leftover_daemon_is_stopped_when_up_boots(
        "services:\n  stack:\n    command: sleep 631\n    autostart: false\n",
    )
    .await;
}

/// The same with the service gone from the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_stops_a_daemon_left_by_a_killed_steward_whose_service_is_removed() {
    a_leftover_daemon_is_stopped_when_up_boots("services:\n  other:\n    command: sleep 632\n")
        .await;
}

/// Issue 10, item 7: when `shutdown_timeout` runs out during `steward up`'s shutdown, the
/// forced kill is a WARN line that names the service and its pid (not an anonymous
/// "killing what is left"), and steward still exits 0 once nothing of its own is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_budget_kill_warns_with_the_service_and_its_pid() {
    let dir = config_dir(
        r#"version: 1
settings:
  shutdown_timeout: 1s
services:
  stubborn:
    argv: [sh, -c, "trap '' TERM; echo armed; while true; do sleep 0.1; done"]
    stop_timeout: 30s
"#,
    );
    let mut daemon = Daemon::spawn(dir.path(), &[], &[("NO_COLOR", "1")]);
    daemon.wait_live().await;
    daemon.wait_running(&["stubborn"]).await;
    log_shows(&daemon, "stubborn", "armed").await;
    let pid = daemon.pid_of("stubborn").await;

    daemon.signal(Signal::SIGTERM);
    let warning = daemon.log.until("the budget's kill warning", SOON, |line| {
        line.contains("shutdown budget 1s spent")
    });
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("stubborn"), "{warning}");
    assert!(warning.contains(&pid.to_string()), "{warning}");
    let status = daemon.exit(SOON).await;
    assert_eq!(status.code(), Some(0), "{}", daemon.log.seen());
    assert!(
        group_members(pid).is_empty(),
        "nothing of the group is left"
    );
}

/// Whether this process has `CAP_SYS_RESOURCE` (bit 24 of `CapEff`).
fn may_raise_hard_limits() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let caps = status.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(caps.trim_start_matches("CapEff:").trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0)
}

/// The soft and hard "Max open files" of a process, from /proc.
fn open_file_limits(pid: u32) -> Option<(String, String)> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line.trim_start_matches("Max open files").split_whitespace();
    Some((fields.next()?.to_string(), fields.next()?.to_string()))
}

/// `steward up --config DIR --listen LISTEN` started by `sh` after `ulimit LIMIT` (so the
/// limit is the one steward boots with), output discarded. With `hard_fixed`, steward may
/// not raise the hard limit: where this test runs with `CAP_SYS_RESOURCE` (which would
/// let `up` raise it to `fs.nr_open`), `setpriv` drops that capability first.
fn up_under_ulimit(limit: &str, dir: &Path, listen: &str, hard_fixed: bool) -> Child {
    let mut command = if hard_fixed && may_raise_hard_limits() {
        let mut setpriv = StdCommand::new("setpriv");
        setpriv.args(["--bounding-set", "-sys_resource", "sh"]);
        setpriv
    } else {
        StdCommand::new("sh")
    };
    command
        .arg("-c")
        .arg(format!(r#"ulimit {limit} && exec "$0" "$@""#))
        .arg(env!("CARGO_BIN_EXE_steward"))
        .args(["up", "--config"])
        .arg(dir)
        .args(["--listen", listen])
        .env_remove("STEWARD_URL")
        .env_remove("STEWARD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn steward up")
}

/// Regression (issue 14, item 4): steward kept the soft open-file limit it was given (often
/// 1024, or less), so idle sockets and pipes exhausted it long before the hard limit. `up`
/// raises the soft limit to the hard one at boot (and the hard one to `fs.nr_open` where
/// it may, issue 16); the services get the limits steward was started with, as systemd
/// gives its services theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_raises_its_open_file_limit_and_its_services_get_the_one_it_was_started_with() {
    let dir = config_dir("version: 1\nservices:\n  sleeper: { command: sleep 300 }\n");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = up_under_ulimit("-Sn 256", dir.path(), &listen, false);
    let pid = child.id();
    let url = format!("http://{listen}/api/v1/services/sleeper");
    let http = reqwest::Client::new();
    let sleeper_pid = wait_for("the service to run", SOON, || async {
        let state: serde_json::Value = http.get(&url).send().await.ok()?.json().await.ok()?;
        state["pid"].as_u64()
    })
    .await;
    let (soft, hard) = open_file_limits(pid).expect("steward's limits");
    assert_ne!(soft, "256", "the soft limit was not raised");
    assert_eq!(soft, hard);
    // The hard limit this test runs with is the one `sh` passed on to steward.
    let (_, started_hard) = open_file_limits(std::process::id()).expect("the test's limits");
    let raised: u64 = hard.parse().expect("a number");
    assert!(
        raised >= started_hard.parse().expect("a number"),
        "{hard} < {started_hard}"
    );
    let inherited = open_file_limits(sleeper_pid as u32).expect("the service's limits");
    assert_eq!(inherited, ("256".to_string(), started_hard));
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

/// Regression (issue 14, item 4): a spawn that failed with EMFILE made the service `failed`
/// for good. Under a real open-file limit of 40 (soft and hard, so the boot cannot raise
/// it), twelve services do not all fit: those whose spawn fails go through backoff, and
/// run once descriptors are free again (here: the services that run are stopped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_that_fails_with_emfile_is_retried_through_backoff() {
    let mut yml = String::from("version: 1\nservices:\n");
    for i in 1..=12 {
        yml.push_str(&format!(
            "  s{i:02}: {{ command: sleep 1000, backoff: [200ms], max_restarts: 100000 }}\n"
        ));
    }
    let dir = config_dir(&yml);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = up_under_ulimit("-n 40", dir.path(), &listen, true);
    let base = format!("http://{listen}/api/v1/services");
    let http = reqwest::Client::new();
    let list = || async {
        let page: serde_json::Value = http.get(&base).send().await.ok()?.json().await.ok()?;
        page["services"].as_array().cloned()
    };
    // Some spawn failed: retried (a restart counted) or, before the fix, `failed`.
    wait_for("a spawn to fail with EMFILE", SOON, || async {
        let states = list().await?;
        states
            .iter()
            .any(|s| s["restart_count"].as_u64() > Some(0) || s["status"] == "failed")
            .then_some(())
    })
    .await;
    let states = list().await.expect("list");
    for state in &states {
        assert_ne!(state["status"], "failed", "{state}");
    }
    let short: Vec<String> = states
        .iter()
        .filter(|s| s["status"] != "running")
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    assert!(!short.is_empty(), "{states:?}");
    // Free descriptors: stop the services that run.
    for state in &states {
        if state["status"] == "running" {
            let id = state["id"].as_str().expect("id");
            http.post(format!("{base}/{id}/stop"))
                .send()
                .await
                .expect("stop")
                .error_for_status()
                .expect("stopped");
        }
    }
    // As many of them as the freed descriptors allow run; none gives up.
    wait_for("a service short of descriptors to run", SOON, || async {
        let states = list().await?;
        assert!(states.iter().all(|s| s["status"] != "failed"), "{states:?}");
        states
            .iter()
            .any(|s| {
                s["status"] == "running"
                    && s["id"]
                        .as_str()
                        .is_some_and(|id| short.iter().any(|x| x == id))
            })
            .then_some(())
    })
    .await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
