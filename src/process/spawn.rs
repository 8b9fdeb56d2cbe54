//! Spawning a service process: its own process group, bound to die with steward.
//!
//! The child starts with `process_group(0)`, so it leads a new group whose id is its pid
//! and every signal steward sends addresses the group (DESIGN §1). In the forked child,
//! before exec, `PR_SET_PDEATHSIG(SIGKILL)` asks the kernel to kill it when its parent
//! goes away, so a killed steward leaves no service behind.
//!
//! With a [`ResolvedUser`] the child first drops to that user (`setgroups`, `setgid`,
//! `setuid`) and only then sets the parent-death signal, which the kernel clears on a
//! credential change (DESIGN §10).
//!
//! A detached service's launcher (a plan marked `detached`, e.g. `docker compose up -d`)
//! is the one exception: it gets no parent-death signal, because what it leaves behind is
//! meant to outlive it, and steward (DESIGN §1, §10 "Install, source, detached").
//!
//! Linux delivers the parent-death signal when the *thread* that forked the child exits,
//! not the process. Call [`spawn`] from an async task on a long-lived runtime worker (as
//! the PortManager does), never from `spawn_blocking`, whose threads come and go.

use std::io::{Error, ErrorKind};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::Stdio;

use nix::sys::signal::Signal;

use crate::process::environment::check_dir;
use crate::process::secrets::MaskedEnv;
use crate::process::user::{ResolvedUser, switch_refusal};

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

fn stdio(piped: bool) -> Stdio {
    if piped { Stdio::piped() } else { Stdio::null() }
}

/// Spawns `plan` with stdin, stdout and stderr piped, in a new process group (pgid ==
/// pid), with `PR_SET_PDEATHSIG(SIGKILL)` unless the plan is detached.
///
/// The child is not killed when the returned handle is dropped: its owner keeps a
/// [`ProcessGroupGuard`](crate::process::signal::ProcessGroupGuard) for that. Errors say
/// what to fix: a missing working directory, a program that is not found or not
/// executable.
pub fn spawn(plan: &SpawnPlan) -> std::io::Result<tokio::process::Child> {
    spawn_with(plan, Pipes::ALL)
}

/// [`spawn`] with only the streams in `pipes` piped (the others read from and write to
/// `/dev/null`). Command probes use it, so they run exactly like the service: same cwd,
/// environment and user, own process group, parent-death signal (DESIGN §10).
pub fn spawn_with(plan: &SpawnPlan, pipes: Pipes) -> std::io::Result<tokio::process::Child> {
    let Some((program, args)) = plan.argv.split_first() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "empty command: give `command` or `argv` a program",
        ));
    };
    check_dir(&plan.cwd).map_err(|why| Error::new(ErrorKind::NotFound, why))?;
    let switch_to = match &plan.user {
        Some(user) => {
            let euid = nix::unistd::geteuid().as_raw();
            let egid = nix::unistd::getegid().as_raw();
            if let Some(reason) = switch_refusal(euid, egid, user) {
                return Err(Error::new(ErrorKind::PermissionDenied, reason));
            }
            // A non-root steward asked to run as itself changes nothing (and could not
            // call setgroups); root always switches, which also sheds its own groups.
            (euid == 0).then_some(user)
        }
        None => None,
    };

    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&plan.cwd)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdio(pipes.stdin))
        .stdout(stdio(pipes.stdout))
        .stderr(stdio(pipes.stderr))
        .process_group(0)
        .kill_on_drop(false);
    bind_to_parent(command.as_std_mut(), switch_to, !plan.detached);

    command
        .spawn()
        .map_err(|e| explain_spawn_error(e, program, plan))
}

/// Makes the child drop to `user` (when given) and then, with `die_with_parent`, die with
/// this process: `PR_SET_PDEATHSIG(SIGKILL)` after the credential change, just before exec.
#[allow(unsafe_code)]
fn bind_to_parent(
    command: &mut std::process::Command,
    user: Option<&ResolvedUser>,
    die_with_parent: bool,
) {
    // Read before the fork: in the child, `getppid()` must still name this process.
    let parent = nix::unistd::getpid();
    // Built before the fork, so the child only reads them.
    let credentials = user.map(|u| {
        let groups: Vec<nix::unistd::Gid> = u
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        (
            groups,
            nix::unistd::Gid::from_raw(u.gid),
            nix::unistd::Uid::from_raw(u.uid),
        )
    });
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe operations are allowed. It makes raw syscalls only (setgroups,
    // setgid, setuid, prctl, getppid) on data prepared before the fork, touches no lock
    // and allocates nothing (errors are built from a raw errno). glibc's setuid/setgid
    // broadcast to other threads, but the forked child has a single thread; std's own
    // `CommandExt::uid` makes the same calls at the same point.
    unsafe {
        command.pre_exec(move || {
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
    Error::new(error.kind(), message)
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

    #[tokio::test]
    async fn child_leads_its_own_group_with_a_clean_environment() {
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
        let child = spawn(&p).expect("spawns");
        let pid = child.id().expect("pid");
        let out = child.wait_with_output().await.expect("output");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("this unset"));
        // `cat` is a child of sh; its stat names its pgrp (field 5), which must be sh's pid.
        let stat = lines.next().expect("stat line");
        let after_comm = stat.rsplit_once(')').expect("comm").1;
        let pgrp = after_comm.split_whitespace().nth(2).expect("pgrp");
        assert_eq!(pgrp, pid.to_string());
    }
}
