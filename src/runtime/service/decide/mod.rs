//! The Server's decisions, as plain functions over plain data (OTP's restart rules for one
//! child, DESIGN §10 "Statuses", "Manual actions are not crashes", "Restart intensity").
//!
//! The Server gathers the facts (what it meant the service to do, how the process ended,
//! why steward itself took it down), calls [`decide_exit`] or [`decide_verdict`], and
//! performs the answer. Nothing here spawns, sends or reads a clock, so every rule is
//! tested below without an actor.
//!
//! Causes are typed values ([`KillCause`], [`VerdictCause`], [`ExitedCause`], …, in
//! `cause.rs`); each `Display` is the one place its words are written, and what the
//! restart metric counts (`crash`, `liveness`) comes from the type, never from the words.
//! The tests (`tests.rs`) name each rule of DESIGN §10 they hold.

use std::time::{Duration, Instant};

use crate::config::{ProbeKind, RestartPolicy};
use crate::restart::{self, RestartIntensity};
use crate::state::{ExitInfo, Health};

mod cause;
#[cfg(test)]
mod tests;

pub use cause::{
    Ending, ExitedCause, FunctionEnd, GaveUp, KillCause, RestartReason, StoppedCause, VerdictCause,
    WatchdogCause,
};

/// What the service should do once its current process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Keep it running: apply the restart policy to an exit.
    Run,
    /// A person or actor asked it to stop.
    Stop,
    /// A person or actor asked for a restart: start again once the process is gone.
    Restart,
}

/// What the Server knows when a process of the service has exited.
#[derive(Debug, Clone)]
pub struct ExitFacts {
    /// What the service was meant to do.
    pub intent: Intent,
    /// How the process ended.
    pub exit: ExitInfo,
    /// The PortManager SIGKILLed the group after `stop_timeout`.
    pub forced_kill: bool,
    /// Why steward took the process down itself, if it did.
    pub kill_cause: Option<KillCause>,
    /// The service's restart policy.
    pub policy: RestartPolicy,
    /// The service's `stop_timeout` (for the words of a forced stop).
    pub stop_timeout: Duration,
    /// A function service's own account of how its task ended (`None` for a process):
    /// the words of an ending on its own (`panicked: …`, `returned an error: …`).
    pub function: Option<FunctionEnd>,
}

impl ExitFacts {
    /// True when the process was SIGKILLed instead of being let go (after `stop_timeout`,
    /// or at once when the shutdown budget ran out): the exit's log line says so.
    pub fn forced(&self) -> bool {
        self.forced_kill || self.kill_cause.as_ref().is_some_and(KillCause::is_forced)
    }
}

/// Where the backoff stands before an exit.
#[derive(Debug, Clone, Copy)]
pub struct BackoffFacts<'a> {
    /// The service's `backoff` delays.
    pub delays: &'a [Duration],
    /// Index of the delay for the next automatic restart.
    pub next_index: u32,
    /// How long the process that exited ran.
    pub ran_for: Duration,
}

/// What follows an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A stop or kill was asked for: the service is `stopped`.
    Stopped {
        /// The `exited` event's cause.
        exited: ExitedCause,
        /// The `stopped` event's cause.
        stopped: StoppedCause,
    },
    /// A restart was asked for: start again now (not counted, no backoff).
    Restart {
        /// The `exited` event's cause.
        exited: ExitedCause,
        /// The `stopped` event's cause, when a stop request waits on this run too (a stop,
        /// then a start queued behind it: the stop is answered `stopped` first).
        stopped: StoppedCause,
    },
    /// The policy does not restart it: the service is `exited`.
    Exited {
        /// The `exited` event's cause (always [`ExitedCause::NotRestarted`]).
        exited: ExitedCause,
    },
    /// Restart intensity passed: the service is `failed`.
    Failed {
        /// The `exited` event's cause, if it has one.
        exited: Option<ExitedCause>,
        /// The `failed` event's cause.
        cause: GaveUp,
    },
    /// An automatic restart after `delay` (status `backoff`).
    Backoff {
        /// The `exited` event's cause, if it has one.
        exited: Option<ExitedCause>,
        /// How long to wait.
        delay: Duration,
        /// The backoff index for the restart after this one.
        next_index: u32,
        /// What the restart metric counts it as.
        reason: RestartReason,
        /// The `backoff` event's cause.
        cause: Ending,
    },
}

/// Decides what follows an exit. Only an exit under [`Intent::Run`] that the policy
/// restarts is recorded in `intensity` (at `now`) and moves the backoff: manual stops,
/// kills and restarts never count (DESIGN §10).
pub fn decide_exit(
    facts: ExitFacts,
    backoff: BackoffFacts<'_>,
    intensity: &mut RestartIntensity,
    now: Instant,
) -> Outcome {
    let ExitFacts {
        intent,
        exit,
        forced_kill,
        kill_cause,
        policy,
        stop_timeout,
        function,
    } = facts;
    let budget = match &kill_cause {
        Some(KillCause::ShutdownBudget(budget)) => Some(*budget),
        _ => None,
    };
    let exited = match (&kill_cause, intent, forced_kill) {
        (Some(cause @ KillCause::ShutdownBudget(_)), _, _) => {
            Some(ExitedCause::Killed(cause.clone()))
        }
        (_, Intent::Stop | Intent::Restart, true) if function.is_some() => {
            Some(ExitedCause::AbortedAfterStopTimeout(stop_timeout))
        }
        (_, Intent::Stop | Intent::Restart, true) => Some(ExitedCause::StopTimeout(stop_timeout)),
        (Some(cause), _, _) => Some(ExitedCause::Killed(cause.clone())),
        (None, Intent::Stop, _) => Some(ExitedCause::StoppedOnRequest),
        (None, Intent::Restart, _) => Some(ExitedCause::RestartRequested),
        (None, Intent::Run, _) => None,
    };
    let stopped = match (budget, forced_kill) {
        (Some(budget), _) => StoppedCause::ShutdownBudget(budget),
        (None, true) if function.is_some() => StoppedCause::AbortedAfterStopTimeout,
        (None, true) => StoppedCause::AfterStopTimeout,
        (None, false) => StoppedCause::OnRequest,
    };
    match intent {
        Intent::Stop => Outcome::Stopped {
            exited: exited.unwrap_or(ExitedCause::StoppedOnRequest),
            stopped,
        },
        Intent::Restart => Outcome::Restart {
            exited: exited.unwrap_or(ExitedCause::RestartRequested),
            stopped,
        },
        Intent::Run => {
            let restarts = policy_restarts(policy, &exit, kill_cause.as_ref());
            let ending = match (kill_cause, function) {
                (Some(cause), _) => Ending::Killed(cause),
                (None, Some(end)) => Ending::Function(end),
                (None, None) => Ending::Exit(exit),
            };
            if !restarts {
                return Outcome::Exited {
                    exited: ExitedCause::NotRestarted { ending, policy },
                };
            }
            if let Err(limit) = intensity.record(now) {
                return Outcome::Failed {
                    exited,
                    cause: GaveUp {
                        limit,
                        last: ending,
                    },
                };
            }
            let index = restart::backoff_index(backoff.next_index, backoff.ran_for, backoff.delays);
            Outcome::Backoff {
                exited,
                delay: restart::backoff_delay(backoff.delays, index),
                next_index: index.saturating_add(1),
                reason: ending.restart_reason(),
                cause: ending,
            }
        }
    }
}

/// Decides what follows a spawn that failed for a transient reason (EMFILE, ENFILE,
/// EAGAIN, ENOMEM: the machine, or steward, is short of something for a moment). Like a
/// crash: a restart after the backoff delay, counted by the restart intensity, so a
/// shortage that lasts still ends in `failed`. The restart policy is not asked: the
/// process never ran, so there is no exit for it to judge (issue 14, item 4: an EMFILE
/// made the service `failed` for good).
pub fn decide_spawn_failure(
    reason: String,
    backoff: BackoffFacts<'_>,
    intensity: &mut RestartIntensity,
    now: Instant,
) -> Outcome {
    let ending = Ending::SpawnFailed(reason);
    if let Err(limit) = intensity.record(now) {
        return Outcome::Failed {
            exited: None,
            cause: GaveUp {
                limit,
                last: ending,
            },
        };
    }
    let index = restart::backoff_index(backoff.next_index, backoff.ran_for, backoff.delays);
    Outcome::Backoff {
        exited: None,
        delay: restart::backoff_delay(backoff.delays, index),
        next_index: index.saturating_add(1),
        reason: ending.restart_reason(),
        cause: ending,
    }
}

/// Whether `policy` restarts a process that ended with `exit`. A process steward took
/// down as a failure (failed liveness or startup, a failed launch) is a failure even if it
/// exited 0 on the stop signal.
pub fn policy_restarts(policy: RestartPolicy, exit: &ExitInfo, kill: Option<&KillCause>) -> bool {
    match policy {
        RestartPolicy::Permanent => true,
        RestartPolicy::Transient => {
            kill.is_some_and(KillCause::is_failure) || restart::wants_restart(policy, exit)
        }
        RestartPolicy::Temporary => false,
    }
}

/// The probe a verdict changes the record of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Readiness: gates `ready`.
    Readiness,
    /// Liveness: takes the process down when it fails.
    Liveness,
}

/// What a probe verdict leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictEffect {
    /// Nothing (a startup probe that passed: the HealthChecker moves on by itself).
    Nothing,
    /// Take the process down as a failure, whatever was going on.
    TakeDown(KillCause),
    /// Record the new health of `gate`; and take the process down when `take_down` says so.
    Record {
        /// Which probe's health changes.
        gate: Gate,
        /// Its new health.
        health: Health,
        /// Take the process down afterwards (a failed liveness, unless already going down).
        take_down: Option<KillCause>,
    },
}

/// Decides what a verdict of the current run means. `taking_down`: steward is already
/// taking the process down for a cause of its own (a second liveness failure adds nothing).
pub fn decide_verdict(healthy: bool, cause: VerdictCause, taking_down: bool) -> VerdictEffect {
    let health = if healthy {
        Health::Healthy
    } else {
        Health::Unhealthy
    };
    match cause.probe {
        ProbeKind::Startup if healthy => VerdictEffect::Nothing,
        // A startup probe that never passes is a failed start: take the process down and
        // let the restart policy decide.
        ProbeKind::Startup => VerdictEffect::TakeDown(KillCause::FailedStart(cause)),
        ProbeKind::Readiness => VerdictEffect::Record {
            gate: Gate::Readiness,
            health,
            take_down: None,
        },
        ProbeKind::Liveness => VerdictEffect::Record {
            gate: Gate::Liveness,
            health,
            take_down: (!healthy && !taking_down).then_some(KillCause::Liveness(cause)),
        },
    }
}

/// Decides what a watchdog that went off means: take the process down as a liveness
/// failure (the restart policy decides what follows), unless steward already takes it
/// down for a cause of its own.
pub fn decide_watchdog(cause: WatchdogCause, taking_down: bool) -> Option<KillCause> {
    (!taking_down).then_some(KillCause::Watchdog(cause))
}
