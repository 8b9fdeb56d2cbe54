//! The causes the Server's decisions deal in, as typed values. Each `Display` is the one
//! place their words are written: event causes, state reasons and error messages show
//! them as they are (`liveness http 503 ×3`, `shutdown budget 30s spent`,
//! `11 restarts in 1m > max_restarts 10 (last: exit code 1)`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{ProbeKind, RestartPolicy};
use crate::restart::IntensityExceeded;
use crate::state::ExitInfo;

/// Why a probe's verdict changed: `liveness http 503 ×3`, `readiness http 200`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictCause {
    /// Which probe.
    pub probe: ProbeKind,
    /// What its last run found (`http 503`, `tcp connection refused`).
    pub detail: String,
    /// Passes or failures in a row that made the verdict.
    pub streak: u32,
}

impl fmt::Display for VerdictCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.probe.as_str(), self.detail)?;
        if self.streak > 1 {
            write!(f, " ×{}", self.streak)?;
        }
        Ok(())
    }
}

/// Why steward itself takes the current process down (not a person's request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillCause {
    /// The liveness probe failed.
    Liveness(VerdictCause),
    /// The startup probe never passed.
    FailedStart(VerdictCause),
    /// A detached service's launcher ended badly.
    LauncherFailed(ExitInfo),
    /// A detached service's launcher did not exit within this limit.
    LauncherTimeout(Duration),
    /// A detached service's daemon disappeared (its liveness, when it has no probe).
    DaemonGone {
        /// The daemon's pid.
        pid: u32,
        /// The pid file that named it.
        pid_file: PathBuf,
    },
    /// steward's shutdown budget ran out while the service was stopping.
    ShutdownBudget(Duration),
    /// The service's `watchdog` went off (its liveness over the notify socket).
    Watchdog(WatchdogCause),
    /// The service's process tree used more memory than `max_memory` for two samples in
    /// a row.
    MemoryExceeded {
        /// Bytes the tree used at the second sample.
        used: u64,
        /// `max_memory`.
        limit: u64,
    },
    /// The kernel's OOM killer ended the process (SIGKILL, and the `oom_kill` count of its
    /// cgroup's `memory.events` went up): not steward's doing, but worded with the
    /// other takedowns so the exit says it (`killed by the kernel: out of memory, limit
    /// 512MiB`).
    OutOfMemory {
        /// The service's `limits.memory`, if it has one.
        limit: Option<u64>,
    },
}

impl KillCause {
    /// True when the kill is a failure of the service: a transient service is restarted
    /// after it even when the process exited 0 on the stop signal.
    pub fn is_failure(&self) -> bool {
        !matches!(self, KillCause::ShutdownBudget(_))
    }

    /// True when the process was SIGKILLed without its grace period.
    pub fn is_forced(&self) -> bool {
        matches!(self, KillCause::ShutdownBudget(_))
    }

    /// What the restart metric counts a restart after this kill as.
    pub fn restart_reason(&self) -> RestartReason {
        match self {
            KillCause::Liveness(_) | KillCause::DaemonGone { .. } | KillCause::Watchdog(_) => {
                RestartReason::Liveness
            }
            _ => RestartReason::Crash,
        }
    }
}

impl fmt::Display for KillCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillCause::Liveness(verdict) => verdict.fmt(f),
            KillCause::FailedStart(verdict) => write!(f, "failed start: {verdict}"),
            KillCause::LauncherFailed(exit) => write!(
                f,
                "failed start: the launcher ended with {}",
                exit.describe()
            ),
            KillCause::LauncherTimeout(limit) => write!(
                f,
                "failed start: the launcher did not exit within {} (a detached `command` must \
                 launch and exit, like `docker compose up -d`)",
                humantime::format_duration(*limit)
            ),
            KillCause::DaemonGone { pid, pid_file } => write!(
                f,
                "liveness pid_file: process {pid} (from {}) is gone",
                pid_file.display()
            ),
            KillCause::ShutdownBudget(budget) => write!(
                f,
                "shutdown budget {} spent",
                humantime::format_duration(*budget)
            ),
            KillCause::MemoryExceeded { used, limit } if limit % (1 << 20) == 0 => write!(
                f,
                "memory {}MiB > max_memory {}MiB",
                used >> 20,
                limit >> 20
            ),
            KillCause::MemoryExceeded { used, limit } => {
                write!(f, "memory {used} bytes > max_memory {limit} bytes")
            }
            KillCause::Watchdog(cause) => cause.fmt(f),
            KillCause::OutOfMemory { limit: Some(limit) } => write!(
                f,
                "killed by the kernel: out of memory, limit {}",
                crate::config::size_text(*limit)
            ),
            KillCause::OutOfMemory { limit: None } => {
                f.write_str("killed by the kernel: out of memory, no limit")
            }
        }
    }
}

/// Why a service's watchdog went off: `watchdog: no ping for 30s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchdogCause {
    /// No `WATCHDOG=1` for the service's `watchdog` duration (the first one counted from
    /// the spawn).
    Missed(Duration),
    /// The service sent `WATCHDOG=trigger`: it asks to be treated as hung.
    Triggered,
}

impl fmt::Display for WatchdogCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Written as the config writes durations (`30s`, `1m`, `1500ms`).
            WatchdogCause::Missed(limit) => write!(
                f,
                "watchdog: no ping for {}",
                crate::config::duration_text(*limit)
            ),
            WatchdogCause::Triggered => f.write_str("watchdog: the service sent WATCHDOG=trigger"),
        }
    }
}

/// The `reason` label of `steward_restarts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// The process ended on its own, or failed to start.
    Crash,
    /// A liveness check took it down.
    Liveness,
    /// A person or actor asked for it.
    Manual,
}

impl RestartReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::Crash => "crash",
            RestartReason::Liveness => "liveness",
            RestartReason::Manual => "manual",
        }
    }
}

/// How a process ended, as far as the restart policy cares: taken down by steward, or
/// exited on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// steward took it down.
    Killed(KillCause),
    /// It ended on its own.
    Exit(ExitInfo),
    /// It could not be spawned, for a reason that passes (no file descriptor, process slot
    /// or memory free for a moment): the words of the error.
    SpawnFailed(String),
    /// A function service's task ended on its own (returned, or panicked).
    Function(FunctionEnd),
}

impl Ending {
    /// What the restart metric counts a restart after it as.
    pub fn restart_reason(&self) -> RestartReason {
        match self {
            Ending::Killed(cause) => cause.restart_reason(),
            Ending::Exit(_) | Ending::SpawnFailed(_) | Ending::Function(_) => RestartReason::Crash,
        }
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Killed(cause) => cause.fmt(f),
            Ending::Exit(exit) => f.write_str(&exit.describe()),
            Ending::SpawnFailed(reason) => write!(f, "spawn failed: {reason}"),
            Ending::Function(end) => end.fmt(f),
        }
    }
}

/// The cause of an `exited` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitedCause {
    /// A stop had to SIGKILL the group after `stop_timeout`.
    StopTimeout(Duration),
    /// A stop had to abort a function service's task after `stop_timeout` (the function's
    /// forced stop: it did not end on cancellation).
    AbortedAfterStopTimeout(Duration),
    /// steward took it down.
    Killed(KillCause),
    /// A stop or kill was asked for.
    StoppedOnRequest,
    /// A restart was asked for.
    RestartRequested,
    /// It ended and the policy does not restart it: the service is `exited`.
    NotRestarted {
        /// How it ended.
        ending: Ending,
        /// The policy that says no.
        policy: RestartPolicy,
    },
}

impl fmt::Display for ExitedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitedCause::StopTimeout(timeout) => write!(
                f,
                "did not exit within stop_timeout {}; killed with SIGKILL",
                humantime::format_duration(*timeout)
            ),
            ExitedCause::AbortedAfterStopTimeout(timeout) => write!(
                f,
                "did not return within stop_timeout {} of its cancellation; its task was aborted",
                humantime::format_duration(*timeout)
            ),
            ExitedCause::Killed(cause) => cause.fmt(f),
            ExitedCause::StoppedOnRequest => f.write_str("stopped on request"),
            ExitedCause::RestartRequested => f.write_str("restart requested"),
            ExitedCause::NotRestarted { ending, policy } => write!(
                f,
                "{ending}; restart policy {} does not restart it",
                policy.as_str()
            ),
        }
    }
}

/// The cause of the `stopped` event after a stop or kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedCause {
    /// It went when asked.
    OnRequest,
    /// It had to be SIGKILLed after `stop_timeout`.
    AfterStopTimeout,
    /// A function service's task had to be aborted after `stop_timeout`.
    AbortedAfterStopTimeout,
    /// steward's shutdown budget ran out and it was SIGKILLed.
    ShutdownBudget(Duration),
}

impl fmt::Display for StoppedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoppedCause::OnRequest => f.write_str("stopped on request"),
            StoppedCause::AfterStopTimeout => f.write_str("stopped (SIGKILL after stop_timeout)"),
            StoppedCause::AbortedAfterStopTimeout => {
                f.write_str("stopped (task aborted after stop_timeout)")
            }
            StoppedCause::ShutdownBudget(budget) => KillCause::ShutdownBudget(*budget).fmt(f),
        }
    }
}

/// Restart intensity passed: the service is `failed`.
/// Worded `11 restarts in 1m > max_restarts 10 (last: exit code 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp {
    /// The limit passed.
    pub limit: IntensityExceeded,
    /// The ending that would have been restarted.
    pub last: Ending,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (last: {})", self.limit, self.last)
    }
}

/// How a function service's task ended: its own account, in words (the service's
/// `ExitInfo` carries the code: 0 for `Ok`, 1 for `Err`, none for a panic or an abort).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionEnd {
    /// It returned `Ok(())`.
    Returned,
    /// It returned `Err`: the error's words.
    Failed(String),
    /// It panicked: the panic's message.
    Panicked(String),
    /// steward aborted the task (a kill, or a stop past `stop_timeout`).
    Aborted,
}

impl FunctionEnd {
    /// The exit code it counts as: 0 for `Ok`, 1 for `Err`, none otherwise.
    pub fn code(&self) -> Option<i32> {
        match self {
            FunctionEnd::Returned => Some(0),
            FunctionEnd::Failed(_) => Some(1),
            FunctionEnd::Panicked(_) | FunctionEnd::Aborted => None,
        }
    }
}

impl fmt::Display for FunctionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FunctionEnd::Returned => f.write_str("returned Ok"),
            FunctionEnd::Failed(error) => write!(f, "returned an error: {error}"),
            FunctionEnd::Panicked(message) => write!(f, "panicked: {message}"),
            FunctionEnd::Aborted => f.write_str("aborted"),
        }
    }
}
