//! The decision core's rules, one named test each (DESIGN §10 "Statuses", "Manual
//! actions are not crashes", "Restart intensity"), and properties over any exit.
//!
//! Length: one short test per rule of the contract plus the properties; a file of tests.

use super::*;
use std::path::PathBuf;

use chrono::Utc;
use proptest::prelude::*;

const WINDOW: Duration = Duration::from_secs(60);

fn exit_code(code: i32) -> ExitInfo {
    ExitInfo {
        code: Some(code),
        signal: None,
        at: Utc::now(),
    }
}

fn killed_by(signal: &str) -> ExitInfo {
    ExitInfo {
        code: None,
        signal: Some(signal.to_string()),
        at: Utc::now(),
    }
}

fn facts(intent: Intent, exit: ExitInfo, policy: RestartPolicy) -> ExitFacts {
    ExitFacts {
        intent,
        exit,
        forced_kill: false,
        kill_cause: None,
        policy,
        stop_timeout: Duration::from_secs(10),
        function: None,
    }
}

fn liveness_503() -> VerdictCause {
    VerdictCause {
        probe: ProbeKind::Liveness,
        detail: "http 503".to_string(),
        streak: 3,
    }
}

const NO_BACKOFF: BackoffFacts<'static> = BackoffFacts {
    delays: &[],
    next_index: 0,
    ran_for: Duration::ZERO,
};

fn decide(facts: ExitFacts) -> Outcome {
    let mut intensity = RestartIntensity::new(10, WINDOW);
    decide_exit(facts, NO_BACKOFF, &mut intensity, Instant::now())
}

/// How many more automatic restarts `intensity` allows right now.
fn restarts_left(mut intensity: RestartIntensity, now: Instant) -> usize {
    (0..100)
        .take_while(|_| intensity.record(now).is_ok())
        .count()
}

#[test]
fn exit_1_under_temporary_is_exited_not_failed() {
    let outcome = decide(facts(Intent::Run, exit_code(1), RestartPolicy::Temporary));
    let Outcome::Exited { exited } = outcome else {
        panic!("expected exited, got {outcome:?}");
    };
    assert_eq!(
        exited.to_string(),
        "exit code 1; restart policy temporary does not restart it"
    );
}

#[test]
fn permanent_restarts_a_clean_exit_0() {
    let outcome = decide(facts(Intent::Run, exit_code(0), RestartPolicy::Permanent));
    assert!(matches!(
        outcome,
        Outcome::Backoff {
            exited: None,
            reason: RestartReason::Crash,
            ..
        }
    ));
}

#[test]
fn transient_leaves_a_clean_exit_0_exited() {
    let outcome = decide(facts(Intent::Run, exit_code(0), RestartPolicy::Transient));
    let Outcome::Exited { exited } = outcome else {
        panic!("expected exited, got {outcome:?}");
    };
    assert_eq!(
        exited.to_string(),
        "exit code 0; restart policy transient does not restart it"
    );
}

#[test]
fn transient_restarts_a_failing_exit_and_a_signal() {
    for exit in [exit_code(1), killed_by("SIGSEGV")] {
        let outcome = decide(facts(Intent::Run, exit, RestartPolicy::Transient));
        assert!(matches!(outcome, Outcome::Backoff { .. }), "{outcome:?}");
    }
}

#[test]
fn transient_restarts_a_process_taken_down_by_liveness_even_after_exit_0() {
    let mut f = facts(Intent::Run, exit_code(0), RestartPolicy::Transient);
    f.kill_cause = Some(KillCause::Liveness(liveness_503()));
    let outcome = decide(f);
    let Outcome::Backoff {
        exited,
        reason,
        cause,
        ..
    } = outcome
    else {
        panic!("expected backoff, got {outcome:?}");
    };
    assert_eq!(reason, RestartReason::Liveness);
    assert_eq!(cause.to_string(), "liveness http 503 ×3");
    assert_eq!(
        exited.map(|c| c.to_string()).as_deref(),
        Some("liveness http 503 ×3")
    );
}

#[test]
fn transient_restarts_a_failed_start_even_after_exit_0_and_counts_it_as_a_crash() {
    let mut f = facts(Intent::Run, exit_code(0), RestartPolicy::Transient);
    f.kill_cause = Some(KillCause::FailedStart(VerdictCause {
        probe: ProbeKind::Startup,
        detail: "tcp connection refused".to_string(),
        streak: 2,
    }));
    let Outcome::Backoff { reason, cause, .. } = decide(f) else {
        panic!("expected backoff");
    };
    assert_eq!(reason, RestartReason::Crash);
    assert_eq!(
        cause.to_string(),
        "failed start: startup tcp connection refused ×2"
    );
}

#[test]
fn temporary_never_restarts_even_after_a_liveness_kill() {
    let mut f = facts(Intent::Run, killed_by("SIGTERM"), RestartPolicy::Temporary);
    f.kill_cause = Some(KillCause::Liveness(liveness_503()));
    let Outcome::Exited { exited } = decide(f) else {
        panic!("expected exited");
    };
    assert_eq!(
        exited.to_string(),
        "liveness http 503 ×3; restart policy temporary does not restart it"
    );
}

#[test]
fn a_daemon_gone_restarts_as_liveness() {
    let mut f = facts(Intent::Run, killed_by("SIGKILL"), RestartPolicy::Transient);
    f.kill_cause = Some(KillCause::DaemonGone {
        pid: 42,
        pid_file: PathBuf::from("/run/d.pid"),
    });
    let Outcome::Backoff { reason, cause, .. } = decide(f) else {
        panic!("expected backoff");
    };
    assert_eq!(reason, RestartReason::Liveness);
    assert_eq!(
        cause.to_string(),
        "liveness pid_file: process 42 (from /run/d.pid) is gone"
    );
}

#[test]
fn manual_stop_leaves_the_service_stopped_on_request() {
    let outcome = decide(facts(
        Intent::Stop,
        killed_by("SIGTERM"),
        RestartPolicy::Permanent,
    ));
    assert_eq!(
        outcome,
        Outcome::Stopped {
            exited: ExitedCause::StoppedOnRequest,
            stopped: StoppedCause::OnRequest,
        }
    );
    let Outcome::Stopped { exited, stopped } = outcome else {
        unreachable!()
    };
    assert_eq!(exited.to_string(), "stopped on request");
    assert_eq!(stopped.to_string(), "stopped on request");
}

#[test]
fn a_stop_that_needed_sigkill_says_stop_timeout() {
    let mut f = facts(Intent::Stop, killed_by("SIGKILL"), RestartPolicy::Permanent);
    f.forced_kill = true;
    f.stop_timeout = Duration::from_millis(1500);
    assert!(f.forced());
    let Outcome::Stopped { exited, stopped } = decide(f) else {
        panic!("expected stopped");
    };
    assert_eq!(
        exited.to_string(),
        "did not exit within stop_timeout 1s 500ms; killed with SIGKILL"
    );
    assert_eq!(stopped.to_string(), "stopped (SIGKILL after stop_timeout)");
}

#[test]
fn a_kill_at_the_shutdown_budget_is_forced_and_names_the_budget() {
    let mut f = facts(Intent::Stop, killed_by("SIGKILL"), RestartPolicy::Permanent);
    f.kill_cause = Some(KillCause::ShutdownBudget(Duration::from_secs(30)));
    assert!(f.forced(), "the exit's log line says forced_kill");
    let Outcome::Stopped { exited, stopped } = decide(f) else {
        panic!("expected stopped");
    };
    assert_eq!(exited.to_string(), "shutdown budget 30s spent");
    assert_eq!(stopped.to_string(), "shutdown budget 30s spent");
}

#[test]
fn the_shutdown_budget_outranks_a_stop_timeout_that_also_fired() {
    let mut f = facts(Intent::Stop, killed_by("SIGKILL"), RestartPolicy::Permanent);
    f.forced_kill = true;
    f.kill_cause = Some(KillCause::ShutdownBudget(Duration::from_secs(30)));
    let Outcome::Stopped { exited, stopped } = decide(f) else {
        panic!("expected stopped");
    };
    assert_eq!(exited.to_string(), "shutdown budget 30s spent");
    assert_eq!(
        stopped,
        StoppedCause::ShutdownBudget(Duration::from_secs(30))
    );
}

#[test]
fn a_stop_during_a_liveness_takedown_keeps_the_liveness_cause_on_the_exit() {
    let mut f = facts(Intent::Stop, exit_code(0), RestartPolicy::Permanent);
    f.kill_cause = Some(KillCause::Liveness(liveness_503()));
    let Outcome::Stopped { exited, stopped } = decide(f) else {
        panic!("expected stopped");
    };
    assert_eq!(exited.to_string(), "liveness http 503 ×3");
    assert_eq!(stopped, StoppedCause::OnRequest);
}

#[test]
fn manual_restart_starts_again_without_counting() {
    let mut intensity = RestartIntensity::new(1, WINDOW);
    let now = Instant::now();
    for _ in 0..5 {
        let outcome = decide_exit(
            facts(Intent::Restart, exit_code(1), RestartPolicy::Permanent),
            NO_BACKOFF,
            &mut intensity,
            now,
        );
        let Outcome::Restart { exited, stopped } = outcome else {
            panic!("expected restart, got {outcome:?}");
        };
        assert_eq!(exited.to_string(), "restart requested");
        assert_eq!(stopped, StoppedCause::OnRequest);
    }
    assert_eq!(restarts_left(intensity, now), 1, "no restart was counted");
}

#[test]
fn manual_stop_and_kill_never_count_toward_max_restarts() {
    let mut intensity = RestartIntensity::new(2, WINDOW);
    let now = Instant::now();
    for exit in [exit_code(1), killed_by("SIGKILL"), exit_code(0)] {
        let outcome = decide_exit(
            facts(Intent::Stop, exit, RestartPolicy::Permanent),
            NO_BACKOFF,
            &mut intensity,
            now,
        );
        assert!(matches!(outcome, Outcome::Stopped { .. }));
    }
    assert_eq!(restarts_left(intensity, now), 2);
}

#[test]
fn with_max_restarts_3_a_crashing_service_is_launched_at_most_4_times() {
    let mut intensity = RestartIntensity::new(3, WINDOW);
    let now = Instant::now();
    let mut launches = 1;
    loop {
        let outcome = decide_exit(
            facts(Intent::Run, exit_code(1), RestartPolicy::Permanent),
            NO_BACKOFF,
            &mut intensity,
            now,
        );
        match outcome {
            Outcome::Backoff { .. } => launches += 1,
            Outcome::Failed { cause, .. } => {
                assert_eq!(
                    cause.to_string(),
                    "4 restarts in 1m > max_restarts 3 (last: exit code 1)"
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(launches, 4);
}

#[test]
fn giving_up_names_the_limit_and_the_last_exit() {
    let mut intensity = RestartIntensity::new(10, WINDOW);
    let now = Instant::now();
    for _ in 0..10 {
        assert!(intensity.record(now).is_ok());
    }
    let outcome = decide_exit(
        facts(Intent::Run, exit_code(1), RestartPolicy::Permanent),
        NO_BACKOFF,
        &mut intensity,
        now,
    );
    let Outcome::Failed { exited, cause } = outcome else {
        panic!("expected failed");
    };
    assert_eq!(exited, None);
    assert_eq!(
        cause.to_string(),
        "11 restarts in 1m > max_restarts 10 (last: exit code 1)"
    );
}

#[test]
fn backoff_index_advances_while_the_process_crashes_fast() {
    let delays = [Duration::from_secs(1), Duration::from_secs(5)];
    let mut intensity = RestartIntensity::new(100, WINDOW);
    let now = Instant::now();
    let mut next_index = 0;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let backoff = BackoffFacts {
            delays: &delays,
            next_index,
            ran_for: Duration::from_millis(10),
        };
        let Outcome::Backoff {
            delay,
            next_index: n,
            ..
        } = decide_exit(
            facts(Intent::Run, exit_code(1), RestartPolicy::Permanent),
            backoff,
            &mut intensity,
            now,
        )
        else {
            panic!("expected backoff");
        };
        seen.push(delay);
        next_index = n;
    }
    assert_eq!(
        seen,
        [1, 5, 5, 5].map(Duration::from_secs),
        "the last delay repeats"
    );
}

#[test]
fn backoff_index_resets_after_running_for_the_longest_delay() {
    let delays = [Duration::from_secs(1), Duration::from_secs(5)];
    let mut intensity = RestartIntensity::new(100, WINDOW);
    let backoff = BackoffFacts {
        delays: &delays,
        next_index: 7,
        ran_for: Duration::from_secs(5),
    };
    let Outcome::Backoff {
        delay, next_index, ..
    } = decide_exit(
        facts(Intent::Run, exit_code(1), RestartPolicy::Permanent),
        backoff,
        &mut intensity,
        Instant::now(),
    )
    else {
        panic!("expected backoff");
    };
    assert_eq!(delay, Duration::from_secs(1));
    assert_eq!(next_index, 1);
}

#[test]
fn verdict_cause_names_probe_detail_and_streak() {
    assert_eq!(liveness_503().to_string(), "liveness http 503 ×3");
    let single = VerdictCause {
        probe: ProbeKind::Readiness,
        detail: "http 200".to_string(),
        streak: 1,
    };
    assert_eq!(single.to_string(), "readiness http 200");
}

#[test]
fn launcher_failures_are_failed_starts() {
    let failed = KillCause::LauncherFailed(exit_code(2));
    assert_eq!(
        failed.to_string(),
        "failed start: the launcher ended with exit code 2"
    );
    assert!(failed.is_failure());
    assert_eq!(failed.restart_reason(), RestartReason::Crash);
    let slow = KillCause::LauncherTimeout(Duration::from_secs(300));
    assert!(slow.to_string().starts_with(
        "failed start: the launcher did not exit within 5m (a detached `command` must launch"
    ));
}

#[test]
fn a_failed_startup_probe_takes_the_process_down_as_a_failed_start() {
    let cause = VerdictCause {
        probe: ProbeKind::Startup,
        detail: "http 500".to_string(),
        streak: 3,
    };
    let effect = decide_verdict(false, cause.clone(), true);
    assert_eq!(
        effect,
        VerdictEffect::TakeDown(KillCause::FailedStart(cause.clone()))
    );
    assert_eq!(decide_verdict(true, cause, false), VerdictEffect::Nothing);
}

#[test]
fn a_failed_liveness_probe_takes_the_process_down_once() {
    assert_eq!(
        decide_verdict(false, liveness_503(), false),
        VerdictEffect::Record {
            gate: Gate::Liveness,
            health: Health::Unhealthy,
            take_down: Some(KillCause::Liveness(liveness_503())),
        }
    );
    assert_eq!(
        decide_verdict(false, liveness_503(), true),
        VerdictEffect::Record {
            gate: Gate::Liveness,
            health: Health::Unhealthy,
            take_down: None,
        },
        "already going down: nothing more"
    );
}

#[test]
fn readiness_changes_never_take_the_process_down() {
    for healthy in [true, false] {
        let cause = VerdictCause {
            probe: ProbeKind::Readiness,
            detail: "http 503".to_string(),
            streak: 1,
        };
        let VerdictEffect::Record {
            gate, take_down, ..
        } = decide_verdict(healthy, cause, false)
        else {
            panic!("expected a record");
        };
        assert_eq!(gate, Gate::Readiness);
        assert_eq!(take_down, None);
    }
}

fn any_exit() -> impl Strategy<Value = ExitInfo> {
    prop_oneof![
        (0i32..256).prop_map(exit_code),
        prop_oneof![Just("SIGKILL"), Just("SIGTERM"), Just("SIGSEGV")].prop_map(killed_by),
    ]
}

fn any_policy() -> impl Strategy<Value = RestartPolicy> {
    prop_oneof![
        Just(RestartPolicy::Permanent),
        Just(RestartPolicy::Transient),
        Just(RestartPolicy::Temporary),
    ]
}

fn any_kill_cause() -> impl Strategy<Value = Option<KillCause>> {
    prop_oneof![
        Just(None),
        Just(Some(KillCause::Liveness(liveness_503()))),
        (1u64..120).prop_map(|s| Some(KillCause::ShutdownBudget(Duration::from_secs(s)))),
    ]
}

proptest! {
    #[test]
    fn manual_actions_never_count_toward_intensity_or_backoff(
        exit in any_exit(),
        policy in any_policy(),
        kill_cause in any_kill_cause(),
        forced_kill: bool,
        restart: bool,
    ) {
        let mut intensity = RestartIntensity::new(1, WINDOW);
        let now = Instant::now();
        let intent = if restart { Intent::Restart } else { Intent::Stop };
        let mut f = facts(intent, exit, policy);
        f.kill_cause = kill_cause;
        f.forced_kill = forced_kill;
        let outcome = decide_exit(f, NO_BACKOFF, &mut intensity, now);
        prop_assert!(
            matches!(outcome, Outcome::Stopped { .. } | Outcome::Restart { .. }),
            "{outcome:?}"
        );
        prop_assert_eq!(restarts_left(intensity, now), 1);
    }

    #[test]
    fn temporary_never_restarts(exit in any_exit(), kill_cause in any_kill_cause()) {
        let mut f = facts(Intent::Run, exit, RestartPolicy::Temporary);
        f.kill_cause = kill_cause;
        let outcome = decide(f);
        prop_assert!(matches!(outcome, Outcome::Exited { .. }), "{:?}", outcome);
    }

    #[test]
    fn permanent_always_restarts_until_the_limit(exit in any_exit()) {
        let outcome = decide(facts(Intent::Run, exit, RestartPolicy::Permanent));
        prop_assert!(matches!(outcome, Outcome::Backoff { .. }), "{:?}", outcome);
    }

    #[test]
    fn launches_never_exceed_max_restarts_plus_one(
        max in 0u32..12,
        exits in proptest::collection::vec(any_exit(), 1..40),
        policy in any_policy(),
    ) {
        let mut intensity = RestartIntensity::new(max, WINDOW);
        let now = Instant::now();
        let mut launches = 1u32;
        for exit in exits {
            match decide_exit(facts(Intent::Run, exit, policy), NO_BACKOFF, &mut intensity, now) {
                Outcome::Backoff { .. } => launches += 1,
                _ => break,
            }
        }
        prop_assert!(launches <= max + 1, "{launches} launches with max_restarts {max}");
    }

    #[test]
    fn a_service_that_ran_for_the_longest_delay_restarts_after_the_first(
        delays in proptest::collection::vec(1u64..10_000, 1..6),
        next_index in 0u32..20,
        extra in 0u64..10_000,
    ) {
        let delays: Vec<Duration> = delays.into_iter().map(Duration::from_millis).collect();
        let longest = delays.iter().max().copied().unwrap_or_default();
        let backoff = BackoffFacts {
            delays: &delays,
            next_index,
            ran_for: longest + Duration::from_millis(extra),
        };
        let mut intensity = RestartIntensity::new(100, WINDOW);
        let outcome = decide_exit(
            facts(Intent::Run, exit_code(1), RestartPolicy::Permanent),
            backoff,
            &mut intensity,
            Instant::now(),
        );
        let Outcome::Backoff { delay, next_index, .. } = outcome else {
            return Err(TestCaseError::fail("expected backoff"));
        };
        prop_assert_eq!(delay, delays[0]);
        prop_assert_eq!(next_index, 1);
    }
}

/// Issue 14, item 4: a spawn that failed for a transient reason is retried like a crash
/// (backoff, counted), never `failed` at once; past the intensity it gives up.
#[test]
fn a_transient_spawn_failure_goes_through_backoff_like_a_crash() {
    let delays = [Duration::from_millis(100), Duration::from_secs(1)];
    let backoff = BackoffFacts {
        delays: &delays,
        next_index: 0,
        ran_for: Duration::ZERO,
    };
    let mut intensity = RestartIntensity::new(2, WINDOW);
    let now = Instant::now();
    let reason = "Too many open files (os error 24)".to_string();
    let first = decide_spawn_failure(reason.clone(), backoff, &mut intensity, now);
    let Outcome::Backoff {
        exited,
        delay,
        next_index,
        reason: counted,
        cause,
    } = first
    else {
        panic!("expected backoff, got {first:?}");
    };
    assert_eq!((exited, delay, next_index), (None, delays[0], 1));
    assert_eq!(counted, RestartReason::Crash);
    assert_eq!(
        cause.to_string(),
        "spawn failed: Too many open files (os error 24)"
    );
    let second = decide_spawn_failure(reason.clone(), backoff, &mut intensity, now);
    assert!(matches!(second, Outcome::Backoff { .. }), "{second:?}");
    let third = decide_spawn_failure(reason, backoff, &mut intensity, now);
    let Outcome::Failed { cause, .. } = third else {
        panic!("expected failed past the intensity, got {third:?}");
    };
    assert!(cause.to_string().contains("spawn failed"), "{cause}");
}

#[test]
fn a_missed_watchdog_is_a_liveness_failure_worded_with_the_configured_duration() {
    let kill = decide_watchdog(WatchdogCause::Missed(Duration::from_secs(30)), false)
        .expect("a kill when nothing else takes the process down");
    assert_eq!(kill.to_string(), "watchdog: no ping for 30s");
    assert_eq!(kill.restart_reason(), RestartReason::Liveness);
    assert!(kill.is_failure() && !kill.is_forced());
    assert_eq!(
        decide_watchdog(WatchdogCause::Missed(Duration::from_millis(1500)), false)
            .map(|k| k.to_string())
            .as_deref(),
        Some("watchdog: no ping for 1500ms")
    );
    assert_eq!(
        decide_watchdog(WatchdogCause::Triggered, true),
        None,
        "a second cause adds nothing while the process is already going down"
    );
    // A transient service is restarted after it even when it exited 0 on the signal.
    assert!(policy_restarts(
        RestartPolicy::Transient,
        &exit_code(0),
        Some(&kill)
    ));
}

/// How a function service's task ended, as the Server reports it to the decision.
fn function_facts(intent: Intent, end: FunctionEnd, policy: RestartPolicy) -> ExitFacts {
    let exit = ExitInfo {
        code: end.code(),
        signal: None,
        at: Utc::now(),
    };
    ExitFacts {
        function: Some(end),
        ..facts(intent, exit, policy)
    }
}

#[test]
fn a_panicking_function_is_a_crash_restarted_with_its_message_as_the_cause() {
    let end = FunctionEnd::Panicked("boom".to_string());
    let outcome = decide(function_facts(Intent::Run, end, RestartPolicy::Transient));
    let Outcome::Backoff { cause, reason, .. } = outcome else {
        panic!("expected backoff, got {outcome:?}");
    };
    assert_eq!(cause.to_string(), "panicked: boom");
    assert_eq!(reason, RestartReason::Crash);
}

#[test]
fn a_function_that_returns_ok_is_exit_0_and_not_restarted_by_transient() {
    let outcome = decide(function_facts(
        Intent::Run,
        FunctionEnd::Returned,
        RestartPolicy::Transient,
    ));
    let Outcome::Exited { exited } = outcome else {
        panic!("expected exited, got {outcome:?}");
    };
    assert_eq!(
        exited.to_string(),
        "returned Ok; restart policy transient does not restart it"
    );
}

#[test]
fn a_function_error_past_the_intensity_fails_the_service_naming_the_error() {
    let mut intensity = RestartIntensity::new(1, WINDOW);
    let now = Instant::now();
    let end = || FunctionEnd::Failed("db unreachable".to_string());
    let first = decide_exit(
        function_facts(Intent::Run, end(), RestartPolicy::Permanent),
        NO_BACKOFF,
        &mut intensity,
        now,
    );
    assert!(matches!(first, Outcome::Backoff { .. }), "{first:?}");
    let second = decide_exit(
        function_facts(Intent::Run, end(), RestartPolicy::Permanent),
        NO_BACKOFF,
        &mut intensity,
        now,
    );
    let Outcome::Failed { cause, .. } = second else {
        panic!("expected failed, got {second:?}");
    };
    assert!(
        cause
            .to_string()
            .ends_with("(last: returned an error: db unreachable)"),
        "{cause}"
    );
}

#[test]
fn a_function_aborted_after_stop_timeout_is_a_forced_stop() {
    let mut facts = function_facts(Intent::Stop, FunctionEnd::Aborted, RestartPolicy::Permanent);
    facts.forced_kill = true;
    assert!(facts.forced());
    let outcome = decide(facts);
    let Outcome::Stopped { exited, stopped } = outcome else {
        panic!("expected stopped, got {outcome:?}");
    };
    assert_eq!(
        exited,
        ExitedCause::AbortedAfterStopTimeout(Duration::from_secs(10))
    );
    assert_eq!(stopped, StoppedCause::AbortedAfterStopTimeout);
}

#[test]
fn a_kernel_oom_kill_is_worded_with_the_limit() {
    assert_eq!(
        KillCause::OutOfMemory {
            limit: Some(512 << 20)
        }
        .to_string(),
        "killed by the kernel: out of memory, limit 512MiB"
    );
    assert_eq!(
        KillCause::OutOfMemory {
            limit: Some(1 << 30)
        }
        .to_string(),
        "killed by the kernel: out of memory, limit 1GiB"
    );
    assert_eq!(
        KillCause::OutOfMemory { limit: None }.to_string(),
        "killed by the kernel: out of memory, no limit"
    );
}

#[test]
fn an_oom_kill_is_the_exit_cause_and_restarted_as_a_crash() {
    let oom = KillCause::OutOfMemory {
        limit: Some(64 << 20),
    };
    let mut oomed = facts(Intent::Run, killed_by("SIGKILL"), RestartPolicy::Permanent);
    oomed.kill_cause = Some(oom.clone());
    let Outcome::Backoff {
        exited: Some(exited),
        reason,
        cause,
        ..
    } = decide(oomed.clone())
    else {
        panic!("expected a backoff");
    };
    assert_eq!(
        exited.to_string(),
        "killed by the kernel: out of memory, limit 64MiB"
    );
    assert_eq!(reason, RestartReason::Crash);
    assert_eq!(cause, Ending::Killed(oom));
    oomed.policy = RestartPolicy::Temporary;
    let Outcome::Exited { exited } = decide(oomed) else {
        panic!("expected exited");
    };
    assert_eq!(
        exited.to_string(),
        "killed by the kernel: out of memory, limit 64MiB; restart policy temporary does not restart it"
    );
}
