//! Spawning without copying steward: `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` and a
//! few lines of child code that end in `execve`.
//!
//! A `fork` copies the page tables of the whole parent, so with `pre_exec` (which std can
//! only honour by forking) every spawn costs ≈ 45 µs per MiB that steward holds: 3 ms per
//! spawn at 1000 services (docs/BENCHMARKS.md, finding 2). `posix_spawn` avoids the copy
//! by running the child on the parent's memory until it execs, but it cannot set
//! `PR_SET_PDEATHSIG` nor switch users with `setgroups`, which the design requires
//! (DESIGN §1, §10). This module does what glibc's `posix_spawn` does, plus those:
//!
//! 1. the parent builds everything the child needs (argv, envp, the paths to try, the
//!    working directory, the credentials) and blocks all signals;
//! 2. `clone` starts the child on a separate stack, sharing the parent's memory; the
//!    calling thread is suspended until the child has exec'd or exited;
//! 3. the child joins its service's cgroup when it has one (a raw `write` of `0` to the
//!    leaf's `cgroup.procs`, opened by the parent), resets every handled signal (and `SIGPIPE`, which Rust ignores) to its
//!    default, leads a new process group, puts its pipes on 0/1/2, enters its working
//!    directory, drops to its user with raw syscalls (glibc's `setuid` would signal the
//!    *parent's* threads, whose memory the child shares), sets the parent-death signal,
//!    checks the parent is still there, clears its signal mask and execs;
//! 4. a failing step writes its errno into the parent's memory and `_exit`s; the parent
//!    reads it, reaps the child and reports which step failed.
//!
//! The child also shares the parent's descriptor table (`CLONE_FILES`) until its first
//! step, `close_range(bound, ~0, CLOSE_RANGE_UNSHARE)`, gives it a private copy of only
//! the descriptors below `bound`. The parent stages the child's three stream ends on three
//! reserved low descriptors (the *slots*) below that bound. Without this, every child
//! copied steward's whole table (four descriptors per running service) and closed them
//! all again at exec: ≈ 600 µs more per spawn with 4,000 open descriptors. The slots are
//! used by one spawn at a time (a lock held for the ≈ 80 µs of a spawn). Kernels before
//! 5.9 refuse the flag; the child then reports it and steward stops asking.
//!
//! The child calls only async-signal-safe functions on data prepared by the parent,
//! allocates nothing and cannot panic. `CLONE_PIDFD` hands the parent a pidfd, which
//! [`Child`](crate::process::child::Child) polls for the exit.
//!
//! The calling thread is the child's "parent" for `PR_SET_PDEATHSIG`, as with `fork`:
//! spawn from a long-lived thread (a runtime worker, never `spawn_blocking`).
//!
//! Length: one unsafe concept (the child's steps on a borrowed stack) kept whole in one
//! file, so every `// SAFETY:` note can be read against the others.

use std::ffi::{CString, c_char, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::libc;

/// The child's stack: its code uses a few hundred bytes; glibc's `posix_spawn` uses 32 KiB
/// plus the size of argv.
const STACK_BYTES: usize = 64 * 1024;

/// The search path when the service's environment has no `PATH` (glibc's `execvp`'s).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// Credentials to switch to, applied in this order.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// Supplementary groups.
    pub groups: Vec<libc::gid_t>,
    /// Primary group.
    pub gid: libc::gid_t,
    /// User.
    pub uid: libc::uid_t,
}

/// What the child does, prepared by the parent.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The program paths to try in turn (`execvp`'s search, done ahead).
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    /// What goes on fd 0, 1 and 2 (each numbered 3 or above).
    stdio: [RawFd; 3],
    credentials: Option<Credentials>,
    die_with_parent: bool,
    /// The service's `cgroup.procs`, opened for writing by the caller (kept open across
    /// the spawn): the child joins that cgroup first, so nothing it runs starts outside.
    cgroup_procs: Option<RawFd>,
    /// The open-file limits steward was started with, when it raised its own: the child
    /// gets them back (see `fd_limit`).
    nofile: Option<libc::rlimit>,
}

/// Why [`spawn`] failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `clone` with these flags is not available here (old kernel, seccomp): fork instead.
    Unavailable(io::Error),
    /// The child could not be started; the error says at which step.
    Failed(io::Error),
}

/// How one clone failed.
#[derive(Debug)]
enum Attempt {
    Failed(Failure),
    /// The kernel refused `CLOSE_RANGE_UNSHARE` (before 5.9): spawn without the slots.
    UnshareRefused,
}

impl From<Attempt> for Failure {
    /// For a clone without the slots, which never asks for the unshare.
    fn from(attempt: Attempt) -> Failure {
        match attempt {
            Attempt::Failed(failure) => failure,
            Attempt::UnshareRefused => Failure::Failed(io::Error::other(
                "the kernel refused a private descriptor table",
            )),
        }
    }
}

/// The step of the child that failed (written by the child, read by the parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Step {
    Cgroup = 12,
    Limits = 13,
    Unshare = 11,
    Group = 1,
    Stdio = 2,
    Cwd = 3,
    Groups = 4,
    Gid = 5,
    Uid = 6,
    DeathSignal = 7,
    ParentGone = 8,
    SignalMask = 9,
    Exec = 10,
}

impl Step {
    fn from_raw(raw: i32) -> Option<Step> {
        [
            Step::Cgroup,
            Step::Limits,
            Step::Unshare,
            Step::Group,
            Step::Stdio,
            Step::Cwd,
            Step::Groups,
            Step::Gid,
            Step::Uid,
            Step::DeathSignal,
            Step::ParentGone,
            Step::SignalMask,
            Step::Exec,
        ]
        .into_iter()
        .find(|s| *s as i32 == raw)
    }

    fn describe(self) -> &'static str {
        match self {
            Step::Cgroup => "cannot join the service's cgroup (cgroup.procs)",
            Step::Unshare => "cannot make a private descriptor table",
            Step::Group => "cannot start a new process group",
            Step::Stdio => "cannot connect stdin/stdout/stderr",
            Step::Cwd => "cannot enter the working directory",
            Step::Limits => "cannot restore the open-file limit steward was started with",
            Step::Groups => "cannot set the supplementary groups",
            Step::Gid => "cannot switch group",
            Step::Uid => "cannot switch user",
            Step::DeathSignal => "cannot set the parent-death signal",
            Step::ParentGone => "steward exited while the process was starting",
            Step::SignalMask => "cannot clear the signal mask",
            Step::Exec => "cannot exec",
        }
    }
}

fn c_string(s: &str, what: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte: remove it"),
        )
    })
}

impl Prepared {
    /// Prepares a spawn of `argv` (non-empty) in `cwd` with exactly `env`, with `stdio` on
    /// 0/1/2, switching to `credentials` and, with `die_with_parent`, bound to die with
    /// this thread.
    pub fn new(
        argv: &[String],
        cwd: &std::path::Path,
        env: &[(String, String)],
        stdio: [RawFd; 3],
        credentials: Option<Credentials>,
        die_with_parent: bool,
    ) -> io::Result<Prepared> {
        let program = argv
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let candidates = if program.contains('/') {
            vec![c_string(program, "the program")?]
        } else {
            let path = env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
            path.split(':')
                .map(|dir| {
                    let dir = if dir.is_empty() { "." } else { dir };
                    c_string(&format!("{dir}/{program}"), "PATH")
                })
                .collect::<io::Result<Vec<_>>>()?
        };
        let argv = argv
            .iter()
            .map(|a| c_string(a, "an argument"))
            .collect::<io::Result<Vec<_>>>()?;
        let env = env
            .iter()
            .map(|(k, v)| c_string(&format!("{k}={v}"), "an environment variable"))
            .collect::<io::Result<Vec<_>>>()?;
        let cwd = CString::new(cwd.as_os_str().as_encoded_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the working directory contains a NUL byte",
            )
        })?;
        Ok(Prepared {
            candidates,
            argv,
            env,
            cwd,
            stdio,
            credentials,
            die_with_parent,
            cgroup_procs: None,
            nofile: super::fd_limit::for_children(),
        })
    }

    /// Makes the child join the cgroup whose `cgroup.procs` is open as `procs` (which must
    /// stay open until the spawn returns).
    pub fn in_cgroup(mut self, procs: Option<RawFd>) -> Prepared {
        self.cgroup_procs = procs;
        self
    }
}

/// What the child reads (and writes its failure into), in the parent's memory.
struct Shared<'a> {
    prepared: &'a Prepared,
    /// What goes on fd 0, 1 and 2 in the child (the slots, or the prepared descriptors).
    stdio: [RawFd; 3],
    /// With `CLONE_FILES`: the child's first step keeps only the descriptors below this.
    unshare_below: libc::c_uint,
    candidates: &'a [*const c_char],
    argv: *const *const c_char,
    envp: *const *const c_char,
    empty_mask: libc::sigset_t,
    parent: libc::pid_t,
    step: AtomicI32,
    errno: AtomicI32,
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Set once a child reported that `CLOSE_RANGE_UNSHARE` is refused (kernel before 5.9).
static NO_UNSHARE: AtomicBool = AtomicBool::new(false);

/// The reserved descriptors a child's streams are staged on, and `/dev/null` to park them
/// on between spawns.
struct Slots {
    slots: [OwnedFd; 3],
    null: OwnedFd,
}

static SLOTS: Mutex<Option<Slots>> = Mutex::new(None);

impl Slots {
    fn open() -> io::Result<Slots> {
        let null = || -> io::Result<OwnedFd> {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")?;
            // Never 0, 1 or 2 (steward may run with a closed stdin): the child's `dup2` of
            // a slot onto its own number would keep close-on-exec.
            let fd = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nobody else owns.
            #[allow(unsafe_code)]
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        Ok(Slots {
            slots: [null()?, null()?, null()?],
            null: null()?,
        })
    }

    /// One more than the highest slot.
    fn bound(&self) -> libc::c_uint {
        let highest = self.slots.iter().map(|s| s.as_raw_fd()).max().unwrap_or(2);
        (highest + 1) as libc::c_uint
    }

    /// Puts `fds` on the slots (close-on-exec), or parks the slots on `/dev/null` again.
    fn stage(&self, fds: Option<[RawFd; 3]>) -> io::Result<()> {
        for (i, slot) in self.slots.iter().enumerate() {
            let source = fds.map_or(self.null.as_raw_fd(), |f| f[i]);
            // SAFETY: both descriptors are open and owned here (the slot by `self`, the
            // source by the caller); dup3 atomically replaces what the slot referred to.
            #[allow(unsafe_code)]
            let done = unsafe { libc::dup3(source, slot.as_raw_fd(), libc::O_CLOEXEC) };
            if done < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Spawns the prepared process: its pid and a pidfd for it.
pub(crate) fn spawn(prepared: &Prepared) -> Result<(u32, OwnedFd), Failure> {
    if NO_UNSHARE.load(Ordering::Relaxed) {
        return Ok(spawn_once(prepared, prepared.stdio, 0)?);
    }
    // A poisoned lock only means a spawn panicked; the slots are re-staged below anyway.
    let mut guard = SLOTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        match Slots::open() {
            Ok(slots) => *guard = Some(slots),
            Err(error) => {
                tracing::debug!(%error, "no descriptor slots: the child copies the whole table");
                drop(guard);
                return Ok(spawn_once(prepared, prepared.stdio, 0)?);
            }
        }
    }
    let Some(slots) = guard.as_ref() else {
        return Ok(spawn_once(prepared, prepared.stdio, 0)?);
    };
    if let Err(error) = slots.stage(Some(prepared.stdio)) {
        let _ = slots.stage(None);
        return Err(Failure::Failed(error));
    }
    let staged = [
        slots.slots[0].as_raw_fd(),
        slots.slots[1].as_raw_fd(),
        slots.slots[2].as_raw_fd(),
    ];
    let result = spawn_once(prepared, staged, slots.bound());
    // The slots no longer hold the child's pipe ends (or the parent would keep a pipe
    // open that must reach end of file).
    if let Err(error) = slots.stage(None) {
        tracing::warn!(%error, "could not park the spawn slots on /dev/null");
    }
    drop(guard);
    match result {
        Err(Attempt::UnshareRefused) => {
            tracing::info!(
                "close_range(CLOSE_RANGE_UNSHARE) is refused: children copy the descriptor table"
            );
            NO_UNSHARE.store(true, Ordering::Relaxed);
            Ok(spawn_once(prepared, prepared.stdio, 0)?)
        }
        other => Ok(other?),
    }
}

/// One clone: with `unshare_below > 0` the child shares the descriptor table until it
/// keeps only the descriptors below that, and `stdio` names descriptors below it.
#[allow(unsafe_code)]
fn spawn_once(
    prepared: &Prepared,
    stdio: [RawFd; 3],
    unshare_below: libc::c_uint,
) -> Result<(u32, OwnedFd), Attempt> {
    let argv = null_terminated(&prepared.argv);
    let envp = null_terminated(&prepared.env);
    let candidates: Vec<*const c_char> = prepared.candidates.iter().map(|c| c.as_ptr()).collect();
    // SAFETY: sigset_t is plain data; sigemptyset/sigfillset initialise it.
    let (empty_mask, all) = unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigfillset(&mut all);
        (empty, all)
    };
    let shared = Shared {
        prepared,
        stdio,
        unshare_below,
        candidates: &candidates,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        empty_mask,
        parent: nix::unistd::getpid().as_raw(),
        step: AtomicI32::new(0),
        errno: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; STACK_BYTES];
    // The stack grows down from its end, 16-byte aligned as the ABI wants.
    let top = (stack.as_mut_ptr() as usize + STACK_BYTES) & !15;
    let mut pidfd: c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    if unshare_below > 0 {
        flags |= libc::CLONE_FILES;
    }

    // SAFETY: signals are blocked around the clone so that no handler of steward's runs
    // in the child, which shares steward's memory (the child resets them to their
    // defaults before unblocking). `child_main` gets a pointer to `shared`, which lives
    // until after `clone` returns: with CLONE_VFORK this thread is suspended until the
    // child has exec'd or exited, so the child never outlives the data or the stack.
    // `pidfd` is written by the kernel (CLONE_PIDFD stores it at the parent_tid pointer).
    let (pid, clone_errno) = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top as *mut c_void,
            flags,
            &shared as *const Shared as *mut c_void,
            &mut pidfd as *mut c_int,
        );
        let clone_errno = *libc::__errno_location();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        (pid, clone_errno)
    };
    drop(stack);
    if pid < 0 {
        let error = io::Error::from_raw_os_error(clone_errno);
        return Err(Attempt::Failed(match clone_errno {
            libc::EINVAL | libc::ENOSYS | libc::EPERM => Failure::Unavailable(error),
            _ => Failure::Failed(error),
        }));
    }
    // SAFETY: the kernel stored a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let step = shared.step.load(Ordering::Acquire);
    if step == 0 {
        return Ok((pid as u32, pidfd));
    }
    let errno = shared.errno.load(Ordering::Acquire);
    // The child has `_exit`ed: reap it (it is a zombie, or about to be one).
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let os = io::Error::from_raw_os_error(errno);
    Err(match Step::from_raw(step) {
        Some(Step::Unshare) if errno == libc::EINVAL => Attempt::UnshareRefused,
        // The program's own errors keep their kind (not found, not executable), which the
        // caller turns into advice.
        Some(Step::Exec) => Attempt::Failed(Failure::Failed(os)),
        Some(step) => Attempt::Failed(Failure::Failed(io::Error::other(format!(
            "{}: {os}",
            step.describe()
        )))),
        None => Attempt::Failed(Failure::Failed(io::Error::other(format!(
            "the child failed: {os}"
        )))),
    })
}

/// The child: runs on its own stack in the parent's memory until `execve`.
#[allow(unsafe_code)]
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `Shared` of `spawn`, alive while the parent waits for us.
    let shared = unsafe { &*(arg as *const Shared) };
    // SAFETY: see `run_child`.
    let (step, errno) = unsafe { run_child(shared) };
    shared.errno.store(errno, Ordering::Release);
    shared.step.store(step as i32, Ordering::Release);
    // SAFETY: ends the child at once, without running any of the parent's exit handlers.
    unsafe { libc::_exit(127) }
}

/// The child's steps; returns only on failure, with the step and its errno.
///
/// # Safety
/// Runs in the vfork-like child: only async-signal-safe libc calls, on data the parent
/// prepared; no allocation, no panics (no indexing that could fail, no unwraps).
#[allow(unsafe_code)]
unsafe fn run_child(shared: &Shared) -> (Step, c_int) {
    let errno = || unsafe { *libc::__errno_location() };
    let prepared = shared.prepared;
    unsafe {
        // Before anything else, so nothing of the service runs outside its cgroup. The
        // descriptor is the parent's (the table is still shared, or copied whole), and a
        // write does not change the table. `0` names the writer: this child alone, since
        // it is a process of its own (no CLONE_THREAD), even though it shares the memory.
        if let Some(procs) = prepared.cgroup_procs
            && libc::write(procs, b"0".as_ptr() as *const c_void, 1) != 1
        {
            return (Step::Cgroup, errno());
        }
        // First, before touching any descriptor: while the table is shared, a dup2 here
        // would change steward's own descriptors.
        if shared.unshare_below > 0
            && libc::syscall(
                libc::SYS_close_range,
                shared.unshare_below,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_UNSHARE,
            ) != 0
        {
            return (Step::Unshare, errno());
        }
        // Handlers of steward's must not run here (nor survive as "ignored" into the
        // service, for SIGPIPE, which Rust ignores).
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..65 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || signal == libc::SIGPIPE {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return (Step::Group, errno());
        }
        for (target, fd) in (0..).zip(shared.stdio) {
            if libc::dup2(fd, target) < 0 {
                return (Step::Stdio, errno());
            }
        }
        if libc::chdir(prepared.cwd.as_ptr()) != 0 {
            return (Step::Cwd, errno());
        }
        // A limit is per process (this child has its own, copied at the clone): lowering
        // it here leaves steward's raised one alone. Before the user switch, which does
        // not matter for lowering, so that every path through here does it.
        if let Some(limit) = &prepared.nofile
            && libc::setrlimit(libc::RLIMIT_NOFILE, limit) != 0
        {
            return (Step::Limits, errno());
        }
        if let Some(c) = &prepared.credentials {
            // Raw syscalls: glibc's wrappers would apply the change to every thread of
            // steward (whose memory, and thread list, this child shares).
            if libc::syscall(libc::SYS_setgroups, c.groups.len(), c.groups.as_ptr()) != 0 {
                return (Step::Groups, errno());
            }
            if libc::syscall(libc::SYS_setgid, c.gid) != 0 {
                return (Step::Gid, errno());
            }
            if libc::syscall(libc::SYS_setuid, c.uid) != 0 {
                return (Step::Uid, errno());
            }
        }
        if prepared.die_with_parent {
            // After the user switch: a credential change clears the parent-death signal.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return (Step::DeathSignal, errno());
            }
            // steward may have died before the prctl; then the signal never comes.
            if libc::getppid() != shared.parent {
                return (Step::ParentGone, libc::ESRCH);
            }
        }
        if libc::sigprocmask(libc::SIG_SETMASK, &shared.empty_mask, std::ptr::null_mut()) != 0 {
            return (Step::SignalMask, errno());
        }
        // execvp's search: a missing or non-directory entry moves on; a permission error
        // is remembered (and reported if nothing else runs); any other error stops.
        let mut denied = false;
        for candidate in shared.candidates {
            libc::execve(*candidate, shared.argv, shared.envp);
            match errno() {
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE => {}
                libc::EACCES => denied = true,
                other => return (Step::Exec, other),
            }
        }
        (Step::Exec, if denied { libc::EACCES } else { libc::ENOENT })
    }
}
