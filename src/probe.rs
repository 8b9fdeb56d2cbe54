//! Running one probe, once.
//!
//! A probe is the question Kubernetes asks a container ("are you up?"), asked by steward of
//! a service: an HTTP GET, a TCP connect, a command run like the service, or an async
//! function of the embedding app. [`run_probe`] asks it exactly once, within a timeout, and
//! answers with a [`ProbeOutcome`] whose `detail` is short words a person can act on
//! (`http 503`, `tcp 127.0.0.1:5432 connection refused`, `command timed out after 1s`).
//! Schedules and thresholds are the HealthChecker's business, not this module's.
//!
//! `run_probe` never panics, whatever the probe does: a function probe that panics is a
//! failed run, and a command probe that outlives its timeout is SIGKILLed with its whole
//! process group and reaped before the outcome is returned.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;

use crate::config::{CommandSpec, FunctionProbe, ProbeCheck};
use crate::process::command_line::argv_for;
use crate::process::secrets::MaskedEnv;
use crate::process::signal::signal_group;
use crate::process::spawn::{Pipes, SpawnPlan, spawn_with};
use crate::process::user::ResolvedUser;

/// Longest stderr excerpt a command probe puts in its detail, in characters.
const STDERR_EXCERPT_CHARS: usize = 120;

/// Bytes of a command probe's stderr kept while it runs (only the tail matters).
const STDERR_TAIL_BYTES: usize = 4096;

/// How long a finished command probe's stderr may take to reach end of file. Its group is
/// killed by then, so only a process that left the group (setsid) can hold the pipe open;
/// the detail must not wait on that.
const STDERR_GRACE: Duration = Duration::from_millis(50);

/// What a probe run needs besides the check itself: probes run like the service (DESIGN
/// §10), so command probes get the service's cwd, environment and user. Its `Debug` shows
/// the environment's names only.
#[derive(Clone)]
pub struct ProbeContext {
    /// Shared HTTP client (plain http; connection pool shared by all probes).
    pub http: reqwest::Client,
    /// The service's working directory, where command probes run.
    pub cwd: PathBuf,
    /// The service's complete resolved environment; command probes get exactly this
    /// (with `user:`, including that user's `HOME`, `USER` and `LOGNAME`).
    pub env: Arc<Vec<(String, String)>>,
    /// The user command probes run as (`user:` / `group:`); `Ok(None)` is steward's own.
    /// `Err` holds why the service's user could not be resolved: command probes then fail
    /// with that reason rather than run as steward's (often more powerful) user.
    pub user: ProbeUser,
}

impl std::fmt::Debug for ProbeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeContext")
            .field("cwd", &self.cwd)
            .field("env", &MaskedEnv(&self.env))
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Who command probes run as: `Ok(Some(user))` the service's `user:`, `Ok(None)` steward's
/// own user, `Err` why the service's user could not be resolved.
pub type ProbeUser = Result<Option<ResolvedUser>, String>;

/// The result of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// True when the check passed.
    pub ok: bool,
    /// What happened, in words for an event cause (`http 503`, `command exit 1`).
    pub detail: String,
    /// Time from the start of the run to its outcome.
    pub latency: Duration,
}

/// Runs `check` once, giving it at most `timeout`. Never panics.
pub async fn run_probe(check: &ProbeCheck, timeout: Duration, ctx: &ProbeContext) -> ProbeOutcome {
    let started = Instant::now();
    let (ok, detail) = match check {
        ProbeCheck::Http { url, expect_status } => {
            http_probe(url, *expect_status, timeout, &ctx.http).await
        }
        ProbeCheck::Tcp { address } => tcp_probe(address, timeout).await,
        ProbeCheck::Command { command } => command_probe(command, timeout, ctx).await,
        ProbeCheck::Function(function) => function_probe(function, timeout).await,
        // The HealthChecker never schedules it: `READY=1` arrives on the notify socket.
        ProbeCheck::Notify => (false, "notify readiness is not polled".to_string()),
    };
    ProbeOutcome {
        ok,
        detail,
        latency: started.elapsed(),
    }
}

/// `1s`, `250ms`, `1s 500ms`.
fn human(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(duration)
}

async fn http_probe(
    url: &str,
    expect_status: u16,
    timeout: Duration,
    client: &reqwest::Client,
) -> (bool, String) {
    let parsed = match reqwest::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return (false, format!("http invalid url {url:?}: {e}")),
    };
    match parsed.scheme() {
        "http" => {}
        // The crate is built without a TLS stack (reqwest default features off).
        "https" => return (false, "https probes are not supported yet".to_string()),
        other => return (false, format!("http unsupported url scheme {other:?}")),
    }
    // reqwest's own timeout covers connect and headers; the outer one is a backstop so a
    // misbehaving connection can never hold the run past its budget.
    let request = client.get(parsed).timeout(timeout).send();
    match tokio::time::timeout(timeout, request).await {
        Err(_) => (false, format!("http timed out after {}", human(timeout))),
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            (status == expect_status, format!("http {status}"))
        }
        Ok(Err(e)) if e.is_timeout() => (false, format!("http timed out after {}", human(timeout))),
        Ok(Err(e)) if is_connection_refused(&e) => (false, "http connection refused".to_string()),
        Ok(Err(e)) if e.is_connect() => (false, format!("http connect failed: {}", root_cause(&e))),
        Ok(Err(e)) => (false, format!("http {}", root_cause(&e))),
    }
}

/// True when somewhere in the error chain the OS refused the connection.
fn is_connection_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The innermost error's message: reqwest's outer layers only say "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

async fn tcp_probe(address: &str, timeout: Duration) -> (bool, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Err(_) => (
            false,
            format!("tcp {address} timed out after {}", human(timeout)),
        ),
        Ok(Ok(stream)) => {
            // Closed with a reset rather than a FIN exchange: the probe sent nothing, so
            // nothing can be lost, and a socket per probe is not left in TIME_WAIT
            // (100 probes a second would keep ≈ 6,000 of them). Best effort: the probe
            // has its answer either way.
            let _ = stream.set_zero_linger();
            (true, format!("tcp {address} open"))
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            (false, format!("tcp {address} connection refused"))
        }
        Ok(Err(e)) => (false, format!("tcp {address} {e}")),
    }
}

/// SIGKILLs a probe's process group when dropped, so a probe run that is cancelled (its
/// task aborted while the command runs) leaves nothing behind either.
///
/// Declared after the `Child` it guards, so it drops first, while the group leader is not
/// yet reaped and the group id cannot have been reused.
struct ProcessGroupGuard {
    pgid: Option<u32>,
}

impl ProcessGroupGuard {
    /// Kills the group now; the guard then does nothing on drop.
    fn kill_now(&mut self) {
        if let Some(pgid) = self.pgid.take()
            && let Err(e) = signal_group(pgid, Signal::SIGKILL)
        {
            tracing::warn!(pgid, error = %e, "could not kill a probe's process group");
        }
    }
}

impl Drop for ProcessGroupGuard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

async fn command_probe(
    command: &CommandSpec,
    timeout: Duration,
    ctx: &ProbeContext,
) -> (bool, String) {
    let argv = argv_for(command);
    if argv.is_empty() {
        return (false, "command is empty".to_string());
    }
    let user = match &ctx.user {
        Ok(user) => user.clone(),
        Err(why) => return (false, format!("command failed to start: {why}")),
    };
    // The same spawning path as the service: own process group, the service's user, and
    // PR_SET_PDEATHSIG set after the user switch, so a killed steward leaves no probe.
    let plan = SpawnPlan {
        argv,
        cwd: ctx.cwd.clone(),
        env: ctx.env.as_ref().clone(),
        user,
        detached: false,
    };
    let mut child = match spawn_with(&plan, Pipes::STDERR) {
        Ok(child) => child,
        Err(e) => return (false, format!("command failed to start: {e}")),
    };
    // If this future is dropped mid-run the guard SIGKILLs the whole group, and the
    // dropped `Child` reaps its leader in the background.
    let mut group = ProcessGroupGuard {
        pgid: Some(child.id()),
    };
    let mut stderr_tail = AbortOnDrop(
        child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(read_tail(pipe))),
    );

    match tokio::time::timeout(timeout, child.wait()).await {
        Err(_) => {
            group.kill_now();
            if let Err(e) = child.wait().await {
                tracing::warn!(error = %e, "could not reap a timed-out probe command");
            }
            (false, format!("command timed out after {}", human(timeout)))
        }
        Ok(Err(e)) => {
            group.kill_now();
            (false, format!("command wait failed: {e}"))
        }
        Ok(Ok(status)) => {
            // The leader is reaped; whatever it left running in its group goes too, so
            // probes never accumulate. Its group id cannot be reused while members live.
            group.kill_now();
            let excerpt = match stderr_tail.0.as_mut() {
                Some(handle) => tokio::time::timeout(STDERR_GRACE, handle)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .map(|tail| last_line_excerpt(&tail))
                    .unwrap_or_default(),
                None => String::new(),
            };
            let ok = status.success();
            let mut detail = match (status.code(), signal_of(&status)) {
                (Some(code), _) => format!("command exit {code}"),
                (None, Some(signal)) => format!("command killed by signal {signal}"),
                (None, None) => format!("command {status}"),
            };
            if !ok && !excerpt.is_empty() {
                detail.push_str(": ");
                detail.push_str(&excerpt);
            }
            (ok, detail)
        }
    }
}

/// Aborts a helper task that is no longer needed when its owner is dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<Vec<u8>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = &self.0 {
            handle.abort();
        }
    }
}

fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

/// Reads a pipe to its end, keeping only the last [`STDERR_TAIL_BYTES`].
async fn read_tail(mut pipe: tokio::net::unix::pipe::Receiver) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > STDERR_TAIL_BYTES {
                    let excess = tail.len() - STDERR_TAIL_BYTES;
                    tail.drain(..excess);
                }
            }
        }
    }
    tail
}

/// The last non-blank line, trimmed and cut to [`STDERR_EXCERPT_CHARS`].
fn last_line_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("");
    let mut excerpt: String = line.chars().take(STDERR_EXCERPT_CHARS).collect();
    if line.chars().count() > STDERR_EXCERPT_CHARS {
        excerpt.push('…');
    }
    excerpt
}

async fn function_probe(function: &FunctionProbe, timeout: Duration) -> (bool, String) {
    let name = &function.name;
    // An embedder's closure may panic when called or when polled; either is a failed run.
    let future = match std::panic::catch_unwind(AssertUnwindSafe(|| (function.check)())) {
        Ok(future) => future,
        Err(payload) => {
            return (
                false,
                format!("function {name} panicked: {}", panic_message(&payload)),
            );
        }
    };
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_) => (
            false,
            format!("function {name} timed out after {}", human(timeout)),
        ),
        Ok(Ok(Ok(()))) => (true, format!("function {name} ok")),
        Ok(Ok(Err(why))) => (false, format!("function {name}: {why}")),
        Ok(Err(payload)) => (
            false,
            format!("function {name} panicked: {}", panic_message(&payload)),
        ),
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ProbeContext {
        ProbeContext {
            http: reqwest::Client::new(),
            cwd: std::env::temp_dir(),
            env: Arc::new(vec![("PATH".into(), "/usr/bin:/bin".into())]),
            user: Ok(None),
        }
    }

    #[test]
    fn excerpt_is_the_last_non_blank_line_cut_short() {
        assert_eq!(last_line_excerpt(b"first\nsecond  \n\n"), "second");
        assert_eq!(last_line_excerpt(b""), "");
        let long = "x".repeat(500);
        let excerpt = last_line_excerpt(long.as_bytes());
        assert_eq!(excerpt.chars().count(), STDERR_EXCERPT_CHARS + 1);
        assert!(excerpt.ends_with('…'));
    }

    #[tokio::test]
    async fn probe_https_is_refused_with_a_clear_detail() {
        let check = ProbeCheck::Http {
            url: "https://127.0.0.1:1/health".into(),
            expect_status: 200,
        };
        let outcome = run_probe(&check, Duration::from_secs(1), &ctx()).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.detail, "https probes are not supported yet");
    }

    #[tokio::test]
    async fn probe_invalid_url_fails_without_panicking() {
        let check = ProbeCheck::Http {
            url: "not a url".into(),
            expect_status: 200,
        };
        let outcome = run_probe(&check, Duration::from_secs(1), &ctx()).await;
        assert!(!outcome.ok);
        assert!(
            outcome.detail.starts_with("http invalid url"),
            "{}",
            outcome.detail
        );
    }

    #[tokio::test]
    async fn probe_command_reports_exit_code_and_stderr_line() {
        let check = ProbeCheck::Command {
            command: CommandSpec::Line("echo 'not ready: db down' >&2; exit 3".into()),
        };
        let outcome = run_probe(&check, Duration::from_secs(5), &ctx()).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.detail, "command exit 3: not ready: db down");
    }

    #[tokio::test]
    async fn probe_command_that_cannot_start_says_why() {
        let check = ProbeCheck::Command {
            command: CommandSpec::Argv(vec!["/nonexistent/probe-binary".into()]),
        };
        let outcome = run_probe(&check, Duration::from_secs(5), &ctx()).await;
        assert!(!outcome.ok);
        assert!(
            outcome.detail.starts_with("command failed to start"),
            "{}",
            outcome.detail
        );
        let empty = ProbeCheck::Command {
            command: CommandSpec::Argv(vec![]),
        };
        assert_eq!(
            run_probe(&empty, Duration::from_secs(1), &ctx())
                .await
                .detail,
            "command is empty"
        );
    }

    #[tokio::test]
    async fn probe_function_panic_is_a_failed_run() {
        let check = ProbeCheck::Function(FunctionProbe::new("boom", || async {
            panic!("kaboom");
        }));
        let outcome = run_probe(&check, Duration::from_secs(1), &ctx()).await;
        assert!(!outcome.ok);
        assert_eq!(outcome.detail, "function boom panicked: kaboom");
    }
}
