//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Polls `check` every 10 ms until it returns `Some`, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The fields of `/proc/PID/stat` after the `(comm)` part (which may hold spaces):
/// `[0]` the state letter, `[1]` the parent pid, `[2]` the process group, `[3]` the session.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn stat_number(pid: u32, field: usize) -> Option<u32> {
    stat_fields(pid)?.get(field)?.parse().ok()
}

/// True while a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    !matches!(pid_state(pid).as_deref(), Some("Z") | Some("X") | None)
}

/// Waits until process `pid` has ended (gone, or a zombie nobody reaped yet).
pub async fn process_ends(what: &str, pid: u32) {
    wait_for(
        what,
        SOON,
        || async move { (!pid_alive(pid)).then_some(()) },
    )
    .await
}

/// Waits until no live process is left in process group `pgid`.
pub async fn group_empties(what: &str, pgid: u32) {
    wait_for(what, SOON, || async move {
        group_members(pgid).is_empty().then_some(())
    })
    .await
}

/// The process state letter from /proc (`S`, `R`, `T`, `Z`, …).
pub fn pid_state(pid: u32) -> Option<String> {
    stat_fields(pid)?.into_iter().next()
}

/// The parent pid of `pid`, from /proc.
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_number(pid, 1)
}

/// The process group of `pid`, from /proc.
pub fn pgrp_of(pid: u32) -> Option<u32> {
    stat_number(pid, 2)
}

/// The session of `pid`, from /proc.
pub fn session_of(pid: u32) -> Option<u32> {
    stat_number(pid, 3)
}

/// The command name of `pid` (`/proc/PID/comm`): it changes at the exec.
pub fn comm_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// A TCP port on 127.0.0.1 that nobody listened on a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The direct children of `pid` (every thread's `/proc/PID/task/TID/children`). Unlike
/// `steward::process::cgroup::lineage::descendants`, which follows them down, this
/// answers "who is this process the parent of" (steward as a reaper of orphans).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Pids of every live process in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| {
            // A zombie has left its group in all but name.
            pgrp_of(pid) == Some(pgid) && pid_state(pid).as_deref() != Some("Z")
        })
        .collect()
}

use steward::config::{CommandSpec, ServiceDefinition};
use steward::events::{Event, EventItem, EventKind, EventSubscription};
use steward::{ServiceState, ServiceStatus, Steward};

/// The deadline for "this should happen soon" waits. Generous: it only bounds a failure,
/// and a loaded 2-core CI machine (builds, a fuzzing campaign) can take many seconds for
/// what takes milliseconds on a quiet one.
pub const SOON: Duration = Duration::from_secs(60);

/// A definition running `line` with fast defaults for tests (short backoff and stop timeout).
pub fn service(id: &str, line: &str) -> ServiceDefinition {
    let mut def = ServiceDefinition::new(id, CommandSpec::Line(line.to_string()));
    def.backoff = vec![Duration::from_millis(50)];
    def.stop_timeout = Duration::from_secs(5);
    def
}

/// Reads the subscription until an event matches, or panics after `deadline`.
pub async fn next_event(
    sub: &mut EventSubscription,
    what: &str,
    deadline: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Event {
    let found = tokio::time::timeout(deadline, async {
        while let Some(item) = sub.recv().await {
            if let EventItem::Event(e) = item
                && pred(&e)
            {
                return Some(e);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        Ok(None) => panic!("event stream ended while waiting for {what}"),
        Err(_) => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// Waits for an event of `kind` about `service`.
pub async fn event_of(sub: &mut EventSubscription, service: &str, kind: EventKind) -> Event {
    let what = format!("{service} {}", kind.as_str());
    next_event(sub, &what, SOON, |e| e.service == service && e.kind == kind).await
}

/// Waits until the service's status is `status`.
pub async fn status_becomes(steward: &Steward, id: &str, status: ServiceStatus) -> ServiceState {
    let what = format!("{id} to become {status}");
    wait_for(&what, SOON, || async {
        steward
            .get(id)
            .await
            .ok()
            .filter(|i| i.state.status == status)
            .map(|i| i.state)
    })
    .await
}

/// Waits until the service is `running` with a process, and returns that process's pid.
pub async fn running_pid(steward: &Steward, id: &str) -> u32 {
    let what = format!("{id} to be running with a pid");
    wait_for(&what, SOON, || async {
        let state = steward.get(id).await.ok()?.state;
        (state.status == ServiceStatus::Running)
            .then_some(state.pid)
            .flatten()
    })
    .await
}

/// Waits until the service's log holds the line `line` (in its last 1000 lines): the
/// sign that the process got past a point of its own (a trap armed, a file read).
pub async fn logged(steward: &Steward, id: &str, line: &str) {
    let what = format!("{id} to log {line:?}");
    wait_for(&what, SOON, || async {
        let lines = steward.logs(id, 1000).await.ok()?;
        lines.iter().any(|l| l.line == line).then_some(())
    })
    .await
}

/// The sequence numbers of the events of `kind` about `service` in the runtime's history,
/// oldest first.
pub fn seqs_of(steward: &Steward, service: &str, kind: EventKind) -> Vec<u64> {
    steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .filter(|e| e.service == service && e.kind == kind)
        .map(|e| e.seq)
        .collect()
}

/// The first such event after sequence number `after`; a panic naming it if there is none.
pub fn seq_after(steward: &Steward, service: &str, kind: EventKind, after: u64) -> u64 {
    seqs_of(steward, service, kind)
        .into_iter()
        .find(|seq| *seq > after)
        .unwrap_or_else(|| panic!("no {} event for {service} after {after}", kind.as_str()))
}

/// The first such event in the history; a panic naming it if there is none.
pub fn first_seq(steward: &Steward, service: &str, kind: EventKind) -> u64 {
    seq_after(steward, service, kind, 0)
}

/// Re-executes this test binary to run only `test` (a host process of a runtime, which a
/// test can SIGKILL as a crash would), with `env` set; returns it with the number it
/// prints after `prefix` on its stdout.
pub async fn start_host(
    test: &str,
    env: &[(&str, &std::ffi::OsStr)],
    prefix: &str,
) -> (tokio::process::Child, u32) {
    use tokio::io::AsyncBufReadExt as _;
    let exe = std::env::current_exe().expect("test binary");
    let mut host = tokio::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("host starts");
    let stdout = host.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let what = format!("{test} to print {prefix}");
    let pid = tokio::time::timeout(SOON, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            // libtest prints `test name ... ` first, on the same line.
            if let Some((_, pid)) = line.split_once(prefix) {
                return pid.trim().parse().expect("pid");
            }
        }
        panic!("{test} ended without printing {prefix}");
    })
    .await
    .unwrap_or_else(|_| panic!("timed out after {SOON:?} waiting for {what}"));
    (host, pid)
}

/// SIGKILLs a host from [`start_host`], as a crash would, and reaps it.
pub async fn kill_host(host: &mut tokio::process::Child) {
    host.start_kill().expect("SIGKILL the host");
    host.wait().await.expect("host reaped");
}

/// A real actor standing in for a sibling of the actor under test (a Server, a
/// LogBuffer): it hands each message to its `relay`, which may answer the message (a
/// reply port) and returns what, if anything, to pass on to the test's channel.
pub struct StandIn<M, T>(std::marker::PhantomData<fn(M) -> T>);

/// What a [`StandIn`] does with a message: `Some(item)` goes to the test's channel.
pub type Relay<M, T> = fn(M) -> Option<T>;

impl<M: ractor::Message, T: Send + 'static> ractor::Actor for StandIn<M, T> {
    type Msg = M;
    type State = (tokio::sync::mpsc::UnboundedSender<T>, Relay<M, T>);
    type Arguments = (tokio::sync::mpsc::UnboundedSender<T>, Relay<M, T>);

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<M>,
        args: Self::Arguments,
    ) -> Result<Self::State, ractor::ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<M>,
        msg: M,
        (tx, relay): &mut Self::State,
    ) -> Result<(), ractor::ActorProcessingErr> {
        if let Some(item) = relay(msg) {
            let _ = tx.send(item);
        }
        Ok(())
    }
}

/// Spawns a [`StandIn`] that relays into `tx`.
pub async fn stand_in<M: ractor::Message, T: Send + 'static>(
    tx: tokio::sync::mpsc::UnboundedSender<T>,
    relay: Relay<M, T>,
) -> ractor::ActorRef<M> {
    let (actor, _) = ractor::Actor::spawn(None, StandIn(std::marker::PhantomData), (tx, relay))
        .await
        .expect("spawn a stand-in actor");
    actor
}

// ---------------------------------------------------------------------------------------
// A stand-in for `docker compose up -d`: a detached daemon and its stop_command.

/// The stand-in launcher: starts the HTTP server in a session of its own (so it leaves
/// the launcher's process group, as a daemon does), writes its pid file atomically,
/// counts its launches, and exits 0. `fail` makes it exit 1 before launching anything.
pub const LAUNCHER: &str = r#"
import os, subprocess, sys
port, pid_file, counter = sys.argv[1], sys.argv[2], sys.argv[3]
with open(counter, "a") as f:
    f.write("launched\n")
if len(sys.argv) > 4 and sys.argv[4] == "fail":
    print("launcher: refusing to launch", flush=True)
    sys.exit(1)
daemon = subprocess.Popen(
    [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", port],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    start_new_session=True,
)
with open(pid_file + ".tmp", "w") as f:
    f.write(str(daemon.pid))
os.rename(pid_file + ".tmp", pid_file)
print(f"launcher: daemon {daemon.pid} on port {port}", flush=True)
"#;

/// The stand-in `stop_command`: SIGTERM to the pid in the file, a marker line, and the
/// pid file removed (as `docker compose down` would leave nothing behind).
pub const STOPPER: &str = r#"
import os, signal, sys
pid_file, marker = sys.argv[1], sys.argv[2]
try:
    pid = int(open(pid_file).read().split()[0])
except (OSError, ValueError, IndexError):
    print("stop_command: no pid file", flush=True)
    sys.exit(0)
try:
    os.kill(pid, signal.SIGTERM)
except ProcessLookupError:
    pass
os.remove(pid_file)
with open(marker, "a") as f:
    f.write(f"stopped {pid}\n")
print(f"stop_command: sent SIGTERM to {pid}", flush=True)
"#;

/// Kills every daemon it was shown (its whole session's group), if that same process (by
/// start time) still runs when the guard is dropped: no test leaves a server behind.
#[derive(Default)]
pub struct DaemonGuard(Mutex<Vec<(u32, u64)>>);

impl DaemonGuard {
    /// Remembers `pid` (with its start time) to kill at the end; returns it.
    pub fn watch(&self, pid: u32) -> u32 {
        if let Some(started) = steward::process::start_time(pid) {
            self.0.lock().expect("lock").push((pid, started));
        }
        pid
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        let seen = self.0.lock().map(|v| v.clone()).unwrap_or_default();
        for (pid, started) in seen {
            if steward::process::pid_file::is_running(pid, started) {
                let _ = steward::process::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// Sends `request` through the API router in-process and reads the answer as
/// `(status, JSON body)` (`Value::Null` when the body is not JSON; bodies up to 16 MiB).
pub async fn request_json(
    app: &axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, serde_json::Value) {
    use tower::ServiceExt;
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
