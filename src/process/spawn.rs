//! Spawning a service process: its own process group, bound to die with steward.
//!
//! The child leads a new group whose id is its pid, and every signal steward sends
//! addresses the group (DESIGN §1). Before exec, `PR_SET_PDEATHSIG(SIGKILL)` asks the
//! kernel to kill it when its parent goes away, so a killed steward leaves no service
//! behind. With a [`ResolvedUser`] the child first drops to that user (`setgroups`,
//! `setgid`, `setuid`) and only then sets the parent-death signal, which the kernel clears
//! on a credential change (DESIGN §10).
//!
//! Two paths do this, with the same result:
//!
//! * the normal one, [`vfork`](super::vfork): `clone(CLONE_VM | CLONE_VFORK |
//!   CLONE_PIDFD)` and steward's own child code, so a spawn does not copy steward's page
//!   tables (a flat cost instead of ≈ 45 µs per MiB steward holds);
//! * the fallback, std's `Command` with a `pre_exec` (a fork), used where that `clone` is
//!   refused (kernels before 5.2, seccomp filters) and when `STEWARD_SPAWN=fork` is set.
//!
//! A detached service's launcher (a plan marked `detached`, e.g. `docker compose up -d`)
//! is the one exception: it gets no parent-death signal, because what it leaves behind is
//! meant to outlive it, and steward (DESIGN §1, §10 "Install, source, detached").
//!
//! Linux delivers the parent-death signal when the *thread* that spawned the child exits,
//! not the process. Call [`spawn`] from an async task on a long-lived runtime worker (as
//! the PortManager does), never from `spawn_blocking`, whose threads come and go.
//!
//! Length: about 460 lines of code and 290 of tests that run both spawn paths (exit codes,
//! signals, stdin, fd hygiene, signal masks, PATH search); the two paths share their plan
//! and pipes here, which keeps them from drifting apart.

use std::io::{Error, ErrorKind};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::Signal;

use crate::process::cgroup::Leaf;
use crate::process::child::{Child, StdioPlan};
use crate::process::environment::check_dir;
use crate::process::secrets::MaskedEnv;
use crate::process::user::{ResolvedUser, switch_refusal};
use crate::process::vfork::{self, Credentials, Failure, Prepared};

/// Everything needed to spawn one process. Its `Debug` shows the environment's names only.
#[derive(Clone, PartialEq, Eq)]
pub struct SpawnPlan {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Run as this user (`user:` / `group:`); `None` runs as steward's own user.
    pub user: Option<ResolvedUser>,
    /// A detached service's launcher: no `PR_SET_PDEATHSIG`, and its group is not killed
    /// when it exits (what it launched is meant to outlive it).
    pub detached: bool,
}

impl std::fmt::Debug for SpawnPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnPlan")
            .field("argv", &self.argv)
            .field("cwd", &self.cwd)
            .field("env", &MaskedEnv(&self.env))
            .field("user", &self.user)
            .finish()
    }
}

impl SpawnPlan {
    /// A plan that runs as steward's own user.
    pub fn new(argv: Vec<String>, cwd: PathBuf, env: Vec<(String, String)>) -> Self {
        SpawnPlan {
            argv,
            cwd,
            env,
            user: None,
            detached: false,
        }
    }

    /// Marks the plan as a detached service's launcher (no parent-death signal).
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Runs the plan as `user`, and sets `HOME`, `USER` and `LOGNAME` to that user's,
    /// except those among `explicit` (the service's own `env`, which wins).
    pub fn run_as(
        mut self,
        user: ResolvedUser,
        explicit: &std::collections::BTreeMap<String, String>,
    ) -> Self {
        for (key, value) in user.identity_env() {
            if explicit.contains_key(&key) {
                continue;
            }
            match self.env.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => self.env.push((key, value)),
            }
        }
        self.user = Some(user);
        self
    }
}

/// Which of the child's standard streams are piped to steward; the others are connected
/// to `/dev/null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipes {
    /// Pipe stdin (a service reads `POST …/input`).
    pub stdin: bool,
    /// Pipe stdout.
    pub stdout: bool,
    /// Pipe stderr.
    pub stderr: bool,
}

impl Pipes {
    /// All three piped: a service, whose output goes to its log ring.
    pub const ALL: Pipes = Pipes {
        stdin: true,
        stdout: true,
        stderr: true,
    };
    /// Only stderr piped: a command probe, whose last stderr line explains a failure.
    pub const STDERR: Pipes = Pipes {
        stdin: false,
        stdout: false,
        stderr: true,
    };
}

/// Set when `clone` with `CLONE_PIDFD` turned out to be unavailable, or when the
/// environment variable `STEWARD_SPAWN=fork` asks for the fork path: every later spawn
/// then forks.
static FORK_ONLY: AtomicBool = AtomicBool::new(false);
static FORK_ASKED: OnceLock<bool> = OnceLock::new();

fn fork_only() -> bool {
    FORK_ONLY.load(Ordering::Relaxed)
        || *FORK_ASKED.get_or_init(|| std::env::var("STEWARD_SPAWN").is_ok_and(|v| v == "fork"))
}

/// Spawns `plan` with stdin, stdout and stderr piped, in a new process group (pgid ==
/// pid), with `PR_SET_PDEATHSIG(SIGKILL)` unless the plan is detached.
///
/// The child is not killed when the returned handle is dropped: its owner keeps a
/// [`ProcessGroupGuard`](crate::process::signal::ProcessGroupGuard) for that. Errors say
/// what to fix: a missing working directory, a program that is not found or not
/// executable. Must be called inside a tokio runtime.
pub fn spawn(plan: &SpawnPlan) -> std::io::Result<Child> {
    spawn_with(plan, Pipes::ALL)
}

/// [`spawn`] with only the streams in `pipes` piped (the others read from and write to
/// `/dev/null`). Command probes use it, so they run exactly like the service: same cwd,
/// environment and user, own process group, parent-death signal (DESIGN §10).
pub fn spawn_with(plan: &SpawnPlan, pipes: Pipes) -> std::io::Result<Child> {
    spawn_placed(plan, pipes, None)
}

/// [`spawn_with`], with the process placed in the cgroup `leaf` before it execs (a
/// service in cgroup mode, DESIGN §11). The child writes to the leaf's `cgroup.procs`,
/// opened here; when it cannot join, the spawn fails with that cause (a process is never
/// started outside its cgroup).
pub fn spawn_placed(plan: &SpawnPlan, pipes: Pipes, leaf: Option<&Leaf>) -> std::io::Result<Child> {
    let (program, credentials) = check(plan)?;
    let procs = leaf.map(Leaf::open_procs).transpose()?;
    let procs_fd = procs.as_ref().map(|fd| fd.as_raw_fd());
    let stdio = StdioPlan::new(pipes.stdin, pipes.stdout, pipes.stderr)?;
    let placed = |error: Error| match leaf {
        Some(leaf) if is_placement(&error) => Error::new(
            error.kind(),
            format!(
                "{error} (cgroup {}); the process was not started",
                leaf.path().display()
            ),
        ),
        _ => error,
    };
    if !fork_only() {
        let prepared = Prepared::new(
            &plan.argv,
            &plan.cwd,
            &plan.env,
            stdio.child.each_ref().map(|fd| fd.as_raw_fd()),
            credentials.clone(),
            !plan.detached,
        )?
        .in_cgroup(procs_fd);
        // Registered with tokio before the spawn, so nothing can fail after it.
        let parent = stdio.parent.into_pipes()?;
        // Held across the clone: the orphan sweep never sees this child unowned.
        let mut owned = super::reaper::owned();
        let spawned = vfork::spawn(&prepared);
        if let Ok((pid, _)) = &spawned {
            owned.insert(*pid);
        }
        drop(owned);
        match spawned {
            Ok((pid, pidfd)) => {
                return Child::with_pidfd(pid, pidfd, parent).inspect_err(|_| {
                    // Without a handle nobody would ever stop or reap it.
                    let pid = nix::unistd::Pid::from_raw(pid as i32);
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    let _ = nix::sys::wait::waitpid(pid, None);
                    super::reaper::disown(pid.as_raw() as u32);
                });
            }
            Err(Failure::Failed(error)) if is_placement(&error) => return Err(placed(error)),
            Err(Failure::Failed(error)) => return Err(explain_spawn_error(error, program, plan)),
            Err(Failure::Unavailable(error)) => {
                tracing::info!(%error, "clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) is not available: spawning by fork from now on");
                FORK_ONLY.store(true, Ordering::Relaxed);
                // The parent's ends went to tokio already: new pipes, once per process.
                let stdio = StdioPlan::new(pipes.stdin, pipes.stdout, pipes.stderr)?;
                return spawn_forked(plan, stdio, credentials, procs_fd).map_err(placed);
            }
        }
    }
    spawn_forked(plan, stdio, credentials, procs_fd).map_err(placed)
}

/// The words of a failed cgroup placement (vfork path: the child's step; fork path: the
/// `pre_exec` error below).
const PLACEMENT: &str = "cannot join the service's cgroup";

fn is_placement(error: &Error) -> bool {
    error.to_string().starts_with(PLACEMENT)
}

/// The spawn path that forks (std's `Command` with a `pre_exec`): the fallback where
/// `clone` with a pidfd is not available, and what `STEWARD_SPAWN=fork` selects. Same
/// behaviour, but each spawn copies steward's page tables.
pub(crate) fn spawn_forked(
    plan: &SpawnPlan,
    stdio: StdioPlan,
    credentials: Option<Credentials>,
    cgroup_procs: Option<RawFd>,
) -> std::io::Result<Child> {
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(empty_command());
    };
    let StdioPlan { child, parent } = stdio;
    let [stdin, stdout, stderr] = child;
    let parent = parent.into_pipes()?;
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&plan.cwd)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .kill_on_drop(false);
    bind_to_parent(
        command.as_std_mut(),
        credentials,
        !plan.detached,
        cgroup_procs,
    );
    let mut owned = super::reaper::owned();
    let child = command.spawn().map_err(|e| {
        // std reports a `pre_exec` error as a raw errno only: a placement failure is told
        // apart by an errno no other step of a spawn returns.
        if cgroup_procs.is_some() && e.raw_os_error() == Some(PLACEMENT_ERRNO) {
            Error::other(format!("{PLACEMENT} (cgroup.procs)"))
        } else {
            explain_spawn_error(e, program, plan)
        }
    })?;
    if let Some(pid) = child.id() {
        owned.insert(pid);
    }
    drop(owned);
    Child::with_tokio(child, parent)
}

fn empty_command() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "empty command: give `command` or `argv` a program",
    )
}

/// Checks what can be checked before spawning: a program, an existing working directory,
/// a user steward may switch to. Returns the program and the credentials to switch to.
fn check(plan: &SpawnPlan) -> std::io::Result<(&str, Option<Credentials>)> {
    let Some(program) = plan.argv.first() else {
        return Err(empty_command());
    };
    check_dir(&plan.cwd).map_err(|why| Error::new(ErrorKind::NotFound, why))?;
    let credentials = match &plan.user {
        Some(user) => {
            let euid = nix::unistd::geteuid().as_raw();
            let egid = nix::unistd::getegid().as_raw();
            if let Some(reason) = switch_refusal(euid, egid, user) {
                return Err(Error::new(ErrorKind::PermissionDenied, reason));
            }
            // A non-root steward asked to run as itself changes nothing (and could not
            // call setgroups); root always switches, which also sheds its own groups.
            (euid == 0).then(|| Credentials {
                groups: user.groups.clone(),
                gid: user.gid,
                uid: user.uid,
            })
        }
        None => None,
    };
    Ok((program, credentials))
}

/// The errno a forked child reports when it could not join its cgroup (std passes only
/// an errno back from `pre_exec`; this one is otherwise never seen from a spawn).
const PLACEMENT_ERRNO: i32 = nix::libc::EXFULL;

/// Makes the forked child drop to `credentials` (when given) and then, with
/// `die_with_parent`, die with this process: `PR_SET_PDEATHSIG(SIGKILL)` after the
/// credential change, just before exec.
#[allow(unsafe_code)]
fn bind_to_parent(
    command: &mut std::process::Command,
    credentials: Option<Credentials>,
    die_with_parent: bool,
    cgroup_procs: Option<RawFd>,
) {
    // Read before the fork: in the child, `getppid()` must still name this process.
    let parent = nix::unistd::getpid();
    let nofile = super::fd_limit::for_children();
    // Built before the fork, so the child only reads them.
    let credentials = credentials.map(|c| {
        let groups: Vec<nix::unistd::Gid> = c
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        (
            groups,
            nix::unistd::Gid::from_raw(c.gid),
            nix::unistd::Uid::from_raw(c.uid),
        )
    });
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe operations are allowed. It makes raw syscalls only (write, setrlimit, setgroups,
    // setgid, setuid, prctl, getppid) on data prepared before the fork, touches no lock
    // and allocates nothing (errors are built from a raw errno). glibc's setuid/setgid
    // broadcast to other threads, but the forked child has a single thread; std's own
    // `CommandExt::uid` makes the same calls at the same point.
    unsafe {
        command.pre_exec(move || {
            // First, so nothing of the service runs outside its cgroup (see vfork.rs).
            if let Some(procs) = cgroup_procs
                && nix::libc::write(procs, b"0".as_ptr().cast(), 1) != 1
            {
                return Err(Error::from_raw_os_error(PLACEMENT_ERRNO));
            }
            // The limits steward was started with (see fd_limit.rs).
            if let Some(limit) = &nofile
                && nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, limit) != 0
            {
                return Err(Error::last_os_error());
            }
            if let Some((groups, gid, uid)) = &credentials {
                // Groups and gid first: once the uid is dropped they can no longer change.
                nix::unistd::setgroups(groups).map_err(Error::from)?;
                nix::unistd::setgid(*gid).map_err(Error::from)?;
                nix::unistd::setuid(*uid).map_err(Error::from)?;
            }
            if !die_with_parent {
                return Ok(());
            }
            // After setuid: a credential change clears the parent-death signal.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(Error::from)?;
            // The parent may have died between fork and prctl; then the signal will never
            // come. Failing here makes the child `_exit` before exec.
            if nix::unistd::getppid() != parent {
                return Err(Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

fn explain_spawn_error(error: Error, program: &str, plan: &SpawnPlan) -> Error {
    let path = plan
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    // The PATH is quoted only when it is steward's own: one set by an `env_file` must not
    // show up in an event (its values are secret), and the plan no longer says where a
    // different one came from.
    let path = if std::env::var("PATH").is_ok_and(|own| own == path) {
        path.to_string()
    } else {
        "the service's own, not shown".to_string()
    };
    let message = match error.kind() {
        ErrorKind::NotFound if program.contains('/') => format!(
            "program `{program}` not found (relative to {}): fix `command` / `argv` or `cwd`",
            plan.cwd.display()
        ),
        ErrorKind::NotFound => format!(
            "program `{program}` not found in PATH ({path}): install it, give its full path, or fix PATH in `env`"
        ),
        ErrorKind::PermissionDenied => format!(
            "program `{program}` is not executable ({error}): check its permissions (chmod +x) or fix `command` / `argv`"
        ),
        _ => format!(
            "cannot start `{program}` in {}: {error}",
            plan.cwd.display()
        ),
    };
    let kind = error.kind();
    Error::new(
        kind,
        Explained {
            message,
            cause: error,
        },
    )
}

/// A spawn error in words, keeping the OS error it came from (its `source`), so that a
/// caller can still tell a passing shortage (EMFILE, EAGAIN, …) from a lasting problem.
#[derive(Debug)]
pub struct Explained {
    message: String,
    cause: Error,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// The OS error number behind a spawn error, also when [`Explained`] put it in words.
pub fn os_error_code(error: &Error) -> Option<i32> {
    error.raw_os_error().or_else(|| {
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Explained>())
            .and_then(|explained| explained.cause.raw_os_error())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv: &[&str], cwd: &str) -> SpawnPlan {
        SpawnPlan::new(
            argv.iter().map(|s| s.to_string()).collect(),
            cwd.into(),
            std::env::vars().collect(),
        )
    }

    #[tokio::test]
    async fn missing_cwd_is_named() {
        let err = spawn(&plan(&["true"], "/nonexistent/steward-cwd")).expect_err("must fail");
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/steward-cwd") && text.contains("does not exist"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn missing_program_is_named() {
        let err = spawn(&plan(&["steward-no-such-program"], "/")).expect_err("must fail");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let text = err.to_string();
        assert!(
            text.contains("`steward-no-such-program` not found in PATH"),
            "{text}"
        );
        let err = spawn(&plan(&["./nope"], "/")).expect_err("must fail");
        assert!(err.to_string().contains("`./nope` not found"), "{err}");
    }

    #[tokio::test]
    async fn empty_argv_is_refused() {
        let err = spawn(&plan(&[], "/")).expect_err("must fail");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    /// Spawns by the vfork-like path (`fork == false`) or the fork fallback.
    fn spawn_via(fork: bool, plan: &SpawnPlan, pipes: Pipes) -> std::io::Result<Child> {
        if fork {
            let (_, credentials) = check(plan)?;
            let stdio = StdioPlan::new(pipes.stdin, pipes.stdout, pipes.stderr)?;
            spawn_forked(plan, stdio, credentials, None)
        } else {
            spawn_with(plan, pipes)
        }
    }

    async fn read_all(pipe: Option<tokio::net::unix::pipe::Receiver>) -> String {
        use tokio::io::AsyncReadExt as _;
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut out).await.expect("read");
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn child_leads_its_own_group_with_a_clean_environment() {
        for fork in [false, true] {
            let mut p = plan(
                &[
                    "sh",
                    "-c",
                    "echo \"$ONLY\" \"${HOME:-unset}\"; cat /proc/self/stat",
                ],
                "/",
            );
            p.env = vec![
                ("ONLY".into(), "this".into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ];
            let mut child = spawn_via(fork, &p, Pipes::ALL).expect("spawns");
            let pid = child.id();
            let text = read_all(child.stdout.take()).await;
            assert!(child.wait().await.expect("exit").success());
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some("this unset"), "fork {fork}");
            // `cat` is a child of sh; its stat names its pgrp (field 5), which must be sh's pid.
            let stat = lines.next().expect("stat line");
            let after_comm = stat.rsplit_once(')').expect("comm").1;
            let pgrp = after_comm.split_whitespace().nth(2).expect("pgrp");
            assert_eq!(pgrp, pid.to_string(), "fork {fork}");
        }
    }

    #[tokio::test]
    async fn exit_codes_and_signals_are_reported() {
        use std::os::unix::process::ExitStatusExt as _;
        for fork in [false, true] {
            let mut child =
                spawn_via(fork, &plan(&["sh", "-c", "exit 3"], "/"), Pipes::ALL).expect("spawns");
            assert_eq!(child.wait().await.expect("exit").code(), Some(3));
            // Asking again returns the same status.
            assert_eq!(child.wait().await.expect("exit").code(), Some(3));
            let mut child = spawn_via(
                fork,
                &plan(&["sh", "-c", "kill -TERM $$; sleep 5"], "/"),
                Pipes::ALL,
            )
            .expect("spawns");
            let status = child.wait().await.expect("exit");
            assert_eq!(status.signal(), Some(nix::libc::SIGTERM), "fork {fork}");
        }
    }

    #[tokio::test]
    async fn stdin_is_piped_and_only_the_standard_streams_are_inherited() {
        use tokio::io::AsyncWriteExt as _;
        // The child shares steward's descriptor table until it unshares it: its `dup2`s
        // must never land on steward's own 0, 1 and 2.
        let own_stdio =
            || ["0", "1", "2"].map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok());
        let before = own_stdio();
        for fork in [false, true] {
            let mut child = spawn_via(fork, &plan(&["cat"], "/"), Pipes::ALL).expect("spawns");
            let pid = child.id();
            // Nothing of steward's reaches the service: not the parent's ends of its own
            // pipes (it would never see end of file on stdin), not the pidfd. (Descriptors
            // the test process inherited without close-on-exec are passed on, as by std.)
            let link = |fd: &str| {
                std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .map(|l| l.display().to_string())
                    .unwrap_or_default()
            };
            let own: Vec<String> = ["0", "1", "2"].iter().map(|fd| link(fd)).collect();
            assert!(own.iter().all(|l| l.starts_with("pipe:")), "{own:?}");
            for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd dir") {
                let fd = entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned();
                if ["0", "1", "2"].contains(&fd.as_str()) {
                    continue;
                }
                let target = link(&fd);
                assert!(
                    !own.contains(&target) && !target.contains("pidfd"),
                    "fork {fork}: fd {fd} -> {target} leaked into the child"
                );
            }
            let mut stdin =
                tokio::net::unix::pipe::Sender::from_owned_fd(child.stdin.take().expect("stdin"))
                    .expect("register stdin");
            stdin.write_all(b"round trip\n").await.expect("write");
            drop(stdin);
            assert_eq!(read_all(child.stdout.take()).await, "round trip\n");
            assert!(child.wait().await.expect("exit").success());
            assert_eq!(own_stdio(), before, "fork {fork}");
        }
    }

    /// A signal mask of `/proc/PID/status` as a number.
    fn mask(pid: &str, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let hex = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_default();
        u64::from_str_radix(hex, 16).expect("hex mask")
    }

    #[tokio::test]
    async fn the_child_starts_with_no_blocked_or_caught_signal_and_sigpipe_restored() {
        // Rust ignores SIGPIPE and tokio catches SIGCHLD and (here) SIGHUP in steward;
        // none of that may reach the service. Other ignored signals are inherited, as
        // with std and any shell.
        let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .expect("handler");
        let sigpipe = 1u64 << (nix::libc::SIGPIPE - 1);
        assert_ne!(mask("self", "SigIgn:") & sigpipe, 0, "Rust ignores SIGPIPE");
        for fork in [false, true] {
            let mut child =
                spawn_via(fork, &plan(&["sleep", "30"], "/"), Pipes::STDERR).expect("spawns");
            let pid = child.id().to_string();
            // Read once `sleep` sleeps: the spawn returns while the kernel is still
            // finishing the exec, and the C library briefly blocks signals of its own
            // while the new program starts.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
                let asleep = status.contains("Name:\tsleep") && status.contains("State:\tS");
                if asleep
                    && std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                        .is_ok_and(|w| w.contains("nanosleep"))
                {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "sleep never slept");
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            assert_eq!(mask(&pid, "SigBlk:"), 0, "fork {fork}");
            assert_eq!(mask(&pid, "SigCgt:"), 0, "fork {fork}");
            assert_eq!(
                mask(&pid, "SigIgn:"),
                mask("self", "SigIgn:") & !sigpipe,
                "fork {fork}"
            );
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("kill");
            child.wait().await.expect("exit");
        }
    }

    #[tokio::test]
    async fn a_dropped_child_is_reaped_when_it_exits() {
        // Dropped while it runs: the background reaper must collect it, or it would stay a
        // zombie for the life of steward.
        let child =
            spawn_via(false, &plan(&["sh", "-c", "read line"], "/"), Pipes::ALL).expect("spawns");
        let pid = child.id();
        let stdin = child.stdin.as_ref().map(|fd| fd.try_clone().expect("dup"));
        drop(child);
        // Closing stdin ends `read`: the child exits now, after its handle is gone.
        drop(stdin);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{pid} was never reaped"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn the_program_is_looked_up_in_the_plans_path_like_execvp() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        for d in [&first, &second] {
            std::fs::create_dir(d).expect("dir");
        }
        // Not executable in the first directory, executable in the second: execvp skips
        // the first (EACCES) and runs the second.
        std::fs::write(first.join("only-here"), "#!/bin/sh\necho first\n").expect("write");
        std::fs::write(second.join("only-here"), "#!/bin/sh\necho second\n").expect("write");
        std::fs::set_permissions(
            second.join("only-here"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::write(dir.path().join("local"), "#!/bin/sh\necho local\n").expect("write");
        std::fs::set_permissions(
            dir.path().join("local"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        let path = format!("{}:{}:/usr/bin:/bin", first.display(), second.display());
        for fork in [false, true] {
            let mut p = plan(&["only-here"], "/");
            p.env = vec![("PATH".into(), path.clone())];
            let mut child = spawn_via(fork, &p, Pipes::ALL).expect("spawns");
            assert_eq!(
                read_all(child.stdout.take()).await,
                "second\n",
                "fork {fork}"
            );
            child.wait().await.expect("exit");

            // A path with a slash is taken relative to the working directory.
            let p = plan(&["./local"], &dir.path().display().to_string());
            let mut child = spawn_via(fork, &p, Pipes::ALL).expect("spawns");
            assert_eq!(
                read_all(child.stdout.take()).await,
                "local\n",
                "fork {fork}"
            );
            child.wait().await.expect("exit");

            // Only a non-executable one: permission denied, with advice.
            let mut p = plan(&["only-here"], "/");
            p.env = vec![("PATH".into(), first.display().to_string())];
            let err = spawn_via(fork, &p, Pipes::ALL).expect_err("not executable");
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "fork {fork}");
            assert!(err.to_string().contains("chmod +x"), "{err}");
        }
    }
}
