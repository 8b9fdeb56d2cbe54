//! The PortManager actor and the process layer under it, with real processes.
//!
//! Each test spawns the real PortManager with two small stand-in actors for the Server
//! and the LogBuffer; both forward what they receive, in order, into one channel, so a
//! test sees the exact sequence "lines, flush, exit" the Server would. Every wait is
//! bounded by a deadline; no sleep stands in for an event.
//!
//! Length (over 600 lines): 24 tests over one harness (the PortManager with two stand-ins),
//! defined at the top.

use std::io::Write as _;
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::{Actor, ActorRef, ActorStatus};
use steward::config::{CommandSpec, ServiceDefinition};
use steward::logs::{LogStream, MAX_LINE_BYTES, RawLine};
use steward::process::{
    ProcessGroupGuard, ResolvedUser, SpawnPlan, argv_for, resolve, resolve_user, spawn,
};
use steward::runtime::service::generation::Generation;
use steward::runtime::service::log_buffer::LogBufferMsg;
use steward::runtime::service::port_manager::{PortManager, PortManagerArgs, PortManagerMsg};
use steward::runtime::service::server::ServerMsg;
use steward::state::ExitInfo;
use tokio::sync::mpsc;

use crate::support::{
    comm_of, free_port, group_empties, group_members, kill_host, pgrp_of, pid_alive, pid_state,
    process_ends, stand_in, start_host, wait_for,
};

/// Generous bound for anything a test waits for; reaching it is a failure, not a timing.
const DEADLINE: Duration = Duration::from_secs(30);
/// Tells the test binary, re-executed by the pdeathsig test, to act as the host.
const HOST_ENV: &str = "STEWARD_TEST_PDEATHSIG_HOST";
/// How the host announces the pid of the child it spawned.
const CHILD_PID_PREFIX: &str = "STEWARD_CHILD_PID=";
/// When set, the pdeathsig host runs its child as this user.
const HOST_USER_ENV: &str = "STEWARD_TEST_PDEATHSIG_USER";

/// What the stand-in actors received, in the order they received it.
#[derive(Debug)]
enum Seen {
    Lines(Vec<RawLine>),
    Flush,
    Exited {
        run: Generation,
        exit: ExitInfo,
        forced_kill: bool,
    },
}

/// What the stand-in Server passes on: `ProcessExited`.
fn server_relay(msg: ServerMsg) -> Option<Seen> {
    match msg {
        ServerMsg::ProcessExited {
            run,
            exit,
            forced_kill,
        } => Some(Seen::Exited {
            run,
            exit,
            forced_kill,
        }),
        _ => None,
    }
}

/// What the stand-in LogBuffer passes on: batches and flushes; `Tail` gets nothing.
fn log_buffer_relay(msg: LogBufferMsg) -> Option<Seen> {
    match msg {
        LogBufferMsg::Lines(batch)
        | LogBufferMsg::Drained(batch)
        | LogBufferMsg::Read { lines: batch, .. } => {
            (!batch.is_empty()).then_some(Seen::Lines(batch))
        }
        LogBufferMsg::Flush => Some(Seen::Flush),
        LogBufferMsg::Tail { reply, .. } => {
            let _ = reply.send(Vec::new());
            None
        }
        LogBufferMsg::FlushTick => None,
        LogBufferMsg::Panic(why) => panic!("{why}"),
    }
}

/// How one process ended, with everything seen since the previous exit.
#[derive(Debug)]
struct Ended {
    run: Generation,
    exit: ExitInfo,
    forced_kill: bool,
    lines: Vec<RawLine>,
    /// True when a Flush was seen after the last batch and before the exit.
    flushed_before_exit: bool,
}

impl Ended {
    fn texts(&self, stream: LogStream) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.line.as_str())
            .collect()
    }
}

/// A PortManager with its two stand-ins.
struct Harness {
    port: ActorRef<PortManagerMsg>,
    rx: mpsc::UnboundedReceiver<Seen>,
    /// Lines received since the last exit.
    lines: Vec<RawLine>,
    flushed: bool,
    next_run: Generation,
}

impl Harness {
    async fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let server = stand_in(tx.clone(), server_relay).await;
        let log_buffer = stand_in(tx, log_buffer_relay).await;
        let args = PortManagerArgs {
            service: "test".to_string(),
            server,
            log_buffer,
            tracking: None,
            max_memory: None,
            limits: Default::default(),
        };
        let (port, _) = Actor::spawn(None, PortManager, args)
            .await
            .expect("port manager");
        Harness {
            port,
            rx,
            lines: Vec::new(),
            flushed: false,
            next_run: Generation(1),
        }
    }

    /// Spawns `plan` as a new run; `(run, pid)`.
    async fn spawn_plan(&mut self, plan: SpawnPlan) -> Result<(Generation, u32), String> {
        let run = self.next_run;
        self.next_run = run.next();
        let pid = self
            .port
            .call(
                |reply| PortManagerMsg::Spawn { run, plan, reply },
                Some(DEADLINE),
            )
            .await
            .expect("port manager answers")
            .expect("spawn reply")
            .map_err(|e| e.to_string())?;
        Ok((run, pid))
    }

    async fn spawn(&mut self, argv: &[&str]) -> (Generation, u32) {
        self.spawn_plan(plan(argv)).await.expect("spawns")
    }

    async fn signal(&self, run: Generation, signal: Signal) -> Result<(), String> {
        self.port
            .call(
                |reply| PortManagerMsg::Signal { run, signal, reply },
                Some(DEADLINE),
            )
            .await
            .expect("port manager answers")
            .expect("signal reply")
            .map_err(|e| e.to_string())
    }

    async fn input(&self, data: &[u8]) -> Result<(), String> {
        let data = data.to_vec();
        self.port
            .call(
                |reply| PortManagerMsg::Input { data, reply },
                Some(DEADLINE),
            )
            .await
            .expect("port manager answers")
            .expect("input reply")
            .map_err(|e| e.to_string())
    }

    async fn next_seen(&mut self, what: &str) -> Seen {
        match tokio::time::timeout(DEADLINE, self.rx.recv()).await {
            Ok(Some(seen)) => seen,
            Ok(None) => panic!("stand-ins are gone while waiting for {what}"),
            Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
        }
    }

    /// Waits for a line matching `pred` (lines seen on the way are kept for `next_exit`).
    async fn wait_line(&mut self, what: &str, pred: impl Fn(&RawLine) -> bool) -> RawLine {
        if let Some(line) = self.lines.iter().find(|l| pred(l)) {
            return line.clone();
        }
        loop {
            match self.next_seen(what).await {
                Seen::Lines(batch) => {
                    self.flushed = false;
                    let found = batch.iter().find(|l| pred(l)).cloned();
                    self.lines.extend(batch);
                    if let Some(line) = found {
                        return line;
                    }
                }
                Seen::Flush => self.flushed = true,
                Seen::Exited { exit, .. } => {
                    panic!("process exited ({exit:?}) while waiting for {what}")
                }
            }
        }
    }

    /// Waits for the next exit report.
    async fn next_exit(&mut self) -> Ended {
        loop {
            match self.next_seen("the exit").await {
                Seen::Lines(batch) => {
                    self.flushed = false;
                    self.lines.extend(batch);
                }
                Seen::Flush => self.flushed = true,
                Seen::Exited {
                    run,
                    exit,
                    forced_kill,
                } => {
                    let ended = Ended {
                        run,
                        exit,
                        forced_kill,
                        lines: std::mem::take(&mut self.lines),
                        flushed_before_exit: self.flushed,
                    };
                    self.flushed = false;
                    return ended;
                }
            }
        }
    }
}

fn plan(argv: &[&str]) -> SpawnPlan {
    SpawnPlan::new(
        argv.iter().map(|s| s.to_string()).collect(),
        std::env::temp_dir(),
        std::env::vars().collect(),
    )
}

/// Waits until `pid`'s command name is `name`. The spawn returns once the child has
/// started its exec, and the kernel renames it a moment later.
async fn becomes(pid: u32, name: &'static str) {
    wait_for(
        &format!("process {pid} to run {name}"),
        DEADLINE,
        || async move { (comm_of(pid).as_deref() == Some(name)).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn stdout_and_stderr_lines_are_tagged_and_in_order() {
    let mut h = Harness::new().await;
    let script = "i=0; while [ $i -lt 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
    let (run, _) = h.spawn(&["sh", "-c", script]).await;
    let ended = h.next_exit().await;
    assert_eq!(ended.run, run);
    assert_eq!(ended.exit.code, Some(0));
    let want_out: Vec<String> = (0..500).map(|i| format!("out{i}")).collect();
    let want_err: Vec<String> = (0..500).map(|i| format!("err{i}")).collect();
    assert_eq!(ended.texts(LogStream::Stdout), want_out);
    assert_eq!(ended.texts(LogStream::Stderr), want_err);
    assert!(ended.lines.iter().all(|l| !l.truncated));
}

#[tokio::test]
async fn exit_code_and_signal_are_reported() {
    let mut h = Harness::new().await;
    h.spawn(&["sh", "-c", "exit 3"]).await;
    let ended = h.next_exit().await;
    assert_eq!(
        (ended.exit.code, ended.exit.signal.as_deref()),
        (Some(3), None)
    );
    assert!(!ended.forced_kill);

    h.spawn(&["sh", "-c", "kill -USR1 $$"]).await;
    let ended = h.next_exit().await;
    assert_eq!(
        (ended.exit.code, ended.exit.signal.as_deref()),
        (None, Some("SIGUSR1"))
    );

    let (run, pid) = h.spawn(&["sleep", "300"]).await;
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    let ended = h.next_exit().await;
    assert_eq!(
        (ended.exit.code, ended.exit.signal.as_deref()),
        (None, Some("SIGKILL"))
    );
    assert!(
        !ended.forced_kill,
        "a kill asked for is not a forced kill after stop_timeout"
    );
    assert!(!pid_alive(pid));
}

#[tokio::test]
async fn last_line_without_newline_is_delivered_before_the_exit() {
    let mut h = Harness::new().await;
    h.spawn(&["printf", "first\\nlast without newline"]).await;
    let ended = h.next_exit().await;
    assert_eq!(
        ended.texts(LogStream::Stdout),
        ["first", "last without newline"],
        "lines delivered before ProcessExited"
    );
    assert!(
        ended.flushed_before_exit,
        "LogBuffer was told to flush before the exit was reported"
    );
}

#[tokio::test]
async fn invalid_utf8_and_a_1mib_line_are_survived() {
    let mut h = Harness::new().await;
    let script = "printf 'bad \\377\\376 bytes\\n'; head -c 1048576 /dev/zero | tr '\\0' a; echo; echo after";
    h.spawn(&["sh", "-c", script]).await;
    let ended = h.next_exit().await;
    assert_eq!(ended.exit.code, Some(0));
    let out: Vec<&RawLine> = ended
        .lines
        .iter()
        .filter(|l| l.stream == LogStream::Stdout)
        .collect();
    assert_eq!(
        out.len(),
        3,
        "{:?}",
        out.iter().map(|l| l.line.len()).collect::<Vec<_>>()
    );
    assert_eq!(out[0].line, "bad \u{fffd}\u{fffd} bytes");
    assert!(!out[0].truncated);
    let cut = format!(
        "{}…[cut {} bytes]",
        "a".repeat(MAX_LINE_BYTES),
        1_048_576 - MAX_LINE_BYTES
    );
    assert!(out[1].truncated);
    assert!(
        out[1].line == cut,
        "cut line is {} bytes",
        out[1].line.len()
    );
    assert_eq!(out[2].line, "after");

    // The actor is fine and spawns again.
    assert_eq!(h.port.get_status(), ActorStatus::Running);
    h.spawn(&["echo", "again"]).await;
    assert_eq!(h.next_exit().await.texts(LogStream::Stdout), ["again"]);
}

#[tokio::test]
async fn child_leads_its_own_process_group() {
    let mut h = Harness::new().await;
    let (run, pid) = h.spawn(&["sleep", "300"]).await;
    assert_eq!(pgrp_of(pid), Some(pid));
    assert_ne!(pgrp_of(std::process::id()), Some(pid));
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    h.next_exit().await;
}

#[tokio::test]
async fn stop_ends_a_cooperative_process_without_sigkill() {
    let mut h = Harness::new().await;
    let (run, _) = h.spawn(&["sleep", "300"]).await;
    h.port
        .cast(PortManagerMsg::Stop {
            run,
            signal: Signal::SIGTERM,
            timeout: DEADLINE,
        })
        .expect("cast");
    let ended = h.next_exit().await;
    assert_eq!(ended.exit.signal.as_deref(), Some("SIGTERM"));
    assert!(!ended.forced_kill);
}

#[tokio::test]
async fn stop_sigkills_a_child_that_ignores_sigterm_after_stop_timeout() {
    let mut h = Harness::new().await;
    // The trap makes sh and every child it starts ignore SIGTERM; the loop never ends.
    let script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    let (run, pid) = h.spawn(&["sh", "-c", script]).await;
    h.wait_line("ready", |l| l.line == "ready").await;
    h.port
        .cast(PortManagerMsg::Stop {
            run,
            signal: Signal::SIGTERM,
            timeout: Duration::from_millis(200),
        })
        .expect("cast");
    let ended = h.next_exit().await;
    assert_eq!(ended.exit.signal.as_deref(), Some("SIGKILL"));
    assert!(ended.forced_kill);
    // The group was SIGKILLed; a member closes its pipes a moment before it leaves the
    // process table.
    group_empties("the process group to be empty", pid).await;
}

#[tokio::test]
async fn stop_leaves_no_background_grandchild() {
    let mut h = Harness::new().await;
    let (run, pid) = h.spawn(&["sh", "-c", "sleep 300 & sleep 300"]).await;
    let mut leftover = ProcessGroupGuard::new(pid);
    let members = wait_for(
        "the leader and its background sleep",
        DEADLINE,
        || async move {
            let m = group_members(pid);
            (m.len() >= 2).then_some(m)
        },
    )
    .await;
    h.port
        .cast(PortManagerMsg::Stop {
            run,
            signal: Signal::SIGTERM,
            timeout: DEADLINE,
        })
        .expect("cast");
    let ended = h.next_exit().await;
    assert!(!ended.forced_kill);
    group_empties("the process group to be empty", pid).await;
    for member in members {
        assert!(!pid_alive(member), "{member} survived the stop");
    }
    leftover.disarm();
}

#[tokio::test]
async fn leader_crash_kills_leftover_grandchildren() {
    let mut h = Harness::new().await;
    // The grandchild holds stdout open, so the exit can only be reported once it is dead
    // (or after the drain timeout, when the test then fails on it being alive).
    let (_, pid) = h.spawn(&["sh", "-c", "sleep 300 & echo $!; exit 7"]).await;
    // Cleans up if the test fails with the grandchild alive.
    let mut leftover = ProcessGroupGuard::new(pid);
    let ended = h.next_exit().await;
    assert_eq!(ended.exit.code, Some(7));
    let grandchild: u32 = ended.texts(LogStream::Stdout)[0]
        .parse()
        .expect("grandchild pid");
    process_ends("the orphaned grandchild", grandchild).await;
    group_empties("the process group to be empty", pid).await;
    leftover.disarm();
}

#[tokio::test]
async fn stdin_input_reaches_the_process() {
    let mut h = Harness::new().await;
    assert!(h.input(b"nobody\n").await.is_err(), "no process, no stdin");
    let (run, _) = h.spawn(&["cat"]).await;
    h.input(b"hello\n").await.expect("written");
    h.input(b"two lines\nin one write\n")
        .await
        .expect("written");
    h.wait_line("the second echo", |l| l.line == "in one write")
        .await;
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    let ended = h.next_exit().await;
    assert_eq!(
        ended.texts(LogStream::Stdout),
        ["hello", "two lines", "in one write"]
    );
}

#[tokio::test]
async fn sigstop_and_sigcont_pause_and_resume_the_group() {
    let mut h = Harness::new().await;
    let (run, pid) = h.spawn(&["sleep", "300"]).await;
    h.signal(run, Signal::SIGSTOP).await.expect("stopped");
    wait_for("state T", DEADLINE, || async move {
        (pid_state(pid).as_deref() == Some("T")).then_some(())
    })
    .await;
    h.signal(run, Signal::SIGCONT).await.expect("continued");
    wait_for("state S", DEADLINE, || async move {
        (pid_state(pid).as_deref() == Some("S")).then_some(())
    })
    .await;
    assert!(
        h.signal(Generation(run.0 + 100), Signal::SIGSTOP)
            .await
            .is_err(),
        "stale run refused"
    );
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    h.next_exit().await;
}

#[tokio::test]
async fn stopping_a_paused_process_lets_it_act_on_the_stop_signal() {
    let mut h = Harness::new().await;
    // A handler runs only while the process runs: without the SIGCONT that follows the stop
    // signal it would sit stopped until SIGKILL (forced_kill). The loop waits on stdin
    // (held open by the PortManager) rather than forking: dash vforks, and a parent whose
    // vforked child was stopped before exec sits in state D, never T.
    let script = "trap 'echo got-term; exit 0' TERM; echo ready; while :; do read x; done";
    let (run, pid) = h.spawn(&["sh", "-c", script]).await;
    h.wait_line("ready", |l| l.line == "ready").await;
    h.signal(run, Signal::SIGSTOP).await.expect("paused");
    wait_for("state T", DEADLINE, || async move {
        (pid_state(pid).as_deref() == Some("T")).then_some(())
    })
    .await;
    h.port
        .cast(PortManagerMsg::Stop {
            run,
            signal: Signal::SIGTERM,
            timeout: Duration::from_secs(20),
        })
        .expect("cast");
    let ended = h.next_exit().await;
    assert_eq!(ended.exit.code, Some(0));
    assert!(!ended.forced_kill);
    assert!(ended.texts(LogStream::Stdout).contains(&"got-term"));
}

#[tokio::test]
async fn one_process_at_a_time_and_stale_runs_are_ignored() {
    let mut h = Harness::new().await;
    let (run, pid) = h.spawn(&["sleep", "300"]).await;
    let err = h
        .spawn_plan(plan(&["sleep", "1"]))
        .await
        .expect_err("refused");
    assert!(err.contains("still running"), "{err}");
    h.port
        .cast(PortManagerMsg::Kill {
            run: Generation(run.0 + 100),
        })
        .expect("cast");
    h.port
        .cast(PortManagerMsg::Stop {
            run: Generation(run.0 + 100),
            signal: Signal::SIGKILL,
            timeout: Duration::ZERO,
        })
        .expect("cast");
    // Answered after the two casts above were handled (one mailbox, in order).
    h.signal(run, Signal::SIGCONT).await.expect("current run");
    assert!(
        pid_alive(pid),
        "a stale kill or stop must not touch the current process"
    );
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    assert_eq!(h.next_exit().await.run, run);
}

#[tokio::test]
async fn stopping_the_actor_kills_the_group() {
    let mut h = Harness::new().await;
    let (_, pid) = h.spawn(&["sh", "-c", "sleep 300 & sleep 300"]).await;
    let mut leftover = ProcessGroupGuard::new(pid);
    wait_for(
        "the leader and its background sleep",
        DEADLINE,
        || async move { (group_members(pid).len() >= 2).then_some(()) },
    )
    .await;
    h.port
        .stop_and_wait(None, Some(DEADLINE))
        .await
        .expect("stopped");
    group_empties("the process group to be empty", pid).await;
    leftover.disarm();
}

#[tokio::test]
async fn a_panicking_port_manager_leaves_no_process_behind() {
    let mut h = Harness::new().await;
    let (_, pid) = h.spawn(&["sh", "-c", "sleep 300 & sleep 300"]).await;
    let mut leftover = ProcessGroupGuard::new(pid);
    wait_for(
        "the leader and its background sleep",
        DEADLINE,
        || async move { (group_members(pid).len() >= 2).then_some(()) },
    )
    .await;
    h.port
        .cast(PortManagerMsg::Panic("injected".into()))
        .expect("cast");
    group_empties("the process group to be empty", pid).await;
    leftover.disarm();
}

#[tokio::test]
async fn plain_word_commands_are_execd_directly() {
    let mut h = Harness::new().await;
    let argv = argv_for(&CommandSpec::Line("sleep 300".into()));
    let (run, pid) = h
        .spawn_plan(SpawnPlan { argv, ..plan(&[]) })
        .await
        .expect("spawns");
    becomes(pid, "sleep").await;
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    h.next_exit().await;

    // A shell line runs under sh (dash does not exec the last command of a list).
    let argv = argv_for(&CommandSpec::Line("sleep 300; true".into()));
    let (run, pid) = h
        .spawn_plan(SpawnPlan { argv, ..plan(&[]) })
        .await
        .expect("spawns");
    becomes(pid, "sh").await;
    h.port.cast(PortManagerMsg::Kill { run }).expect("cast");
    h.next_exit().await;
}

#[tokio::test]
async fn resolved_environment_reaches_the_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".env"),
        "export FROM_FILE='from file'\nBOTH=file\n",
    )
    .expect("write");
    let mut def = ServiceDefinition::new("envtest", CommandSpec::Line("unused".into()));
    def.cwd = dir.path().to_path_buf();
    def.env_file = Some(dir.path().join(".env"));
    def.env.insert("BOTH".into(), "env".into());
    def.required_env = vec![
        "STEWARD_TEST_REQUIRED_A".into(),
        "FROM_FILE".into(),
        "STEWARD_TEST_REQUIRED_B".into(),
    ];
    assert_eq!(
        resolve(&def),
        Err("missing required environment variable(s) STEWARD_TEST_REQUIRED_A, STEWARD_TEST_REQUIRED_B: \
             set them in env, env_file or steward's environment"
            .to_string())
    );
    def.required_env = vec!["FROM_FILE".into()];
    let env = resolve(&def).expect("resolves");

    let mut h = Harness::new().await;
    let plan = SpawnPlan::new(
        vec![
            "sh".into(),
            "-c".into(),
            "echo \"$FROM_FILE|$BOTH|$(pwd)\"".into(),
        ],
        def.cwd.clone(),
        env,
    );
    h.spawn_plan(plan).await.expect("spawns");
    let ended = h.next_exit().await;
    let cwd = dir.path().canonicalize().expect("canonical");
    assert_eq!(
        ended.texts(LogStream::Stdout),
        [format!("from file|env|{}", cwd.display())]
    );
}

#[tokio::test]
async fn missing_cwd_and_missing_program_are_explained() {
    let mut h = Harness::new().await;
    let err = h
        .spawn_plan(SpawnPlan {
            cwd: "/nonexistent/steward-test-dir".into(),
            ..plan(&["true"])
        })
        .await
        .expect_err("missing cwd");
    assert!(
        err.contains("/nonexistent/steward-test-dir") && err.contains("does not exist"),
        "{err}"
    );

    let err = h
        .spawn_plan(plan(&["steward-test-no-such-program"]))
        .await
        .expect_err("not found");
    assert!(
        err.contains("`steward-test-no-such-program` not found"),
        "{err}"
    );

    // A failed spawn leaves the actor ready for the next one.
    h.spawn(&["true"]).await;
    assert_eq!(h.next_exit().await.exit.code, Some(0));
}

/// Not a test on its own: the body of the pdeathsig tests' host process. It spawns a child
/// from an async task (as the user named by `HOST_USER_ENV`, if set), prints its pid and
/// blocks until it is killed.
#[test]
fn pdeathsig_host() {
    if std::env::var_os(HOST_ENV).is_none() {
        return;
    }
    let mut child_plan = plan(&["sleep", "300"]);
    if let Ok(name) = std::env::var(HOST_USER_ENV) {
        let user = resolve_user(&name, None).expect("the test user exists");
        child_plan = child_plan.run_as(user, &Default::default());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let child = tokio::spawn(async move { spawn(&child_plan) })
            .await
            .expect("task")
            .expect("spawn");
        let pid = child.id();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{CHILD_PID_PREFIX}{pid}").expect("print");
        out.flush().expect("flush");
        drop(out);
        std::future::pending::<()>().await;
        drop(child);
    });
}

/// Starts the test binary as a pdeathsig host (its child running as `user`, if given),
/// SIGKILLs the host and checks that the child dies with it. Returns the child's uid as
/// it was while the child ran.
async fn child_dies_with_its_host(user: Option<&str>) -> u32 {
    let mut env = vec![(HOST_ENV, std::ffi::OsStr::new("1"))];
    if let Some(user) = user {
        env.push((HOST_USER_ENV, std::ffi::OsStr::new(user)));
    }
    let (mut host, child_pid) = start_host("process::pdeathsig_host", &env, CHILD_PID_PREFIX).await;
    // If the child outlives the test, the guard kills it (the child leads its group).
    let mut leftover = ProcessGroupGuard::new(child_pid);
    assert!(pid_alive(child_pid));
    let uid = uid_of(child_pid).expect("the child's uid");

    kill_host(&mut host).await;
    process_ends("the child of the killed host", child_pid).await;
    leftover.disarm();
    uid
}

#[tokio::test]
async fn pdeathsig_kills_the_child_when_its_host_dies() {
    child_dies_with_its_host(None).await;
}

/// The real uid of `pid`, from /proc.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A throwaway system user for one test, deleted on drop (also when the test fails).
struct TestUser {
    name: String,
    user: ResolvedUser,
    /// Its home directory, owned by it.
    home: tempfile::TempDir,
}

impl TestUser {
    /// Creates `steward-test-<pid>-<tag>` with a fresh home directory it owns; `None`
    /// (with the reason printed) when this test cannot create users (not root).
    fn create(tag: &str) -> Option<TestUser> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: creating a test user needs root");
            return None;
        }
        let name = format!("steward-test-{}-{tag}", std::process::id());
        let home = tempfile::tempdir().expect("home dir");
        // Parallel tests may hold the passwd lock (useradd exits 10); try again then.
        let mut attempts = 0;
        loop {
            let status = std::process::Command::new("useradd")
                .args(["--system", "--no-create-home", "--shell", "/bin/sh"])
                .arg("--home-dir")
                .arg(home.path())
                .arg(&name)
                .status()
                .expect("useradd runs");
            if status.success() {
                break;
            }
            attempts += 1;
            assert!(
                status.code() == Some(10) && attempts < 100,
                "useradd {name} failed: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // From here on, drop deletes the user.
        let mut created = TestUser {
            user: ResolvedUser {
                name: name.clone(),
                uid: 0,
                gid: 0,
                groups: Vec::new(),
                home: home.path().to_path_buf(),
            },
            name,
            home,
        };
        created.user = resolve_user(&created.name, None).expect("resolves");
        nix::unistd::chown(
            created.home.path(),
            Some(nix::unistd::Uid::from_raw(created.user.uid)),
            Some(nix::unistd::Gid::from_raw(created.user.gid)),
        )
        .expect("chown home");
        Some(created)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        for _ in 0..100 {
            match std::process::Command::new("userdel")
                .arg(&self.name)
                .status()
            {
                Ok(status) if status.code() == Some(10) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(status) if !status.success() => {
                    eprintln!("userdel {} failed: {status}", self.name);
                    return;
                }
                Ok(_) => return,
                Err(e) => {
                    eprintln!("userdel {} did not run: {e}", self.name);
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_service_runs_as_its_user_with_that_users_home() {
    let Some(test_user) = TestUser::create("id") else {
        return;
    };
    let user = test_user.user.clone();
    let plan = plan(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; echo \"$HOME|$USER|$LOGNAME\"",
    ])
    .run_as(user.clone(), &Default::default());
    let child = spawn(&plan).expect("spawns");
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("exits in time")
        .expect("output");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let home = user.home.display().to_string();
    assert_eq!(
        lines,
        [
            user.uid.to_string(),
            user.gid.to_string(),
            // root's own groups are shed: only the user's.
            user.gid.to_string(),
            format!("{home}|{0}|{0}", user.name),
        ]
    );
}

#[test]
fn the_service_env_wins_over_the_users_identity() {
    let user = ResolvedUser {
        name: "postgres".into(),
        uid: 105,
        gid: 110,
        groups: vec![110],
        home: "/var/lib/postgresql".into(),
    };
    let mut explicit = std::collections::BTreeMap::new();
    explicit.insert("HOME".to_string(), "/srv/app".to_string());
    let env = vec![
        ("HOME".to_string(), "/srv/app".to_string()),
        ("USER".to_string(), "root".to_string()),
    ];
    let plan = SpawnPlan::new(vec!["true".into()], std::env::temp_dir(), env)
        .run_as(user.clone(), &explicit);
    assert_eq!(
        plan.env,
        [
            ("HOME".to_string(), "/srv/app".to_string()),
            ("USER".to_string(), "postgres".to_string()),
            ("LOGNAME".to_string(), "postgres".to_string()),
        ]
    );
    assert_eq!(plan.user, Some(user));
}

#[tokio::test]
async fn pdeathsig_kills_a_switched_user_child_when_its_host_dies() {
    let Some(test_user) = TestUser::create("pdeath") else {
        return;
    };
    let uid = child_dies_with_its_host(Some(&test_user.name)).await;
    assert_eq!(uid, test_user.user.uid, "the child ran as the test user");
}

/// The bin directory of an installed PostgreSQL (`/usr/lib/postgresql/<version>/bin`), the
/// newest when there are several.
fn postgres_bin_dir() -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// PostgreSQL refuses to run as root: it is the real-world case for `user:` (issue 4).
#[tokio::test]
async fn postgresql_runs_as_an_unprivileged_user() {
    let Some(bin) = postgres_bin_dir() else {
        eprintln!("skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)");
        return;
    };
    let Some(test_user) = TestUser::create("pg") else {
        return;
    };
    let home = test_user.home.path().to_path_buf();
    let data = home.join("data");
    let as_user = |argv: Vec<String>| {
        SpawnPlan::new(argv, home.clone(), std::env::vars().collect())
            .run_as(test_user.user.clone(), &Default::default())
    };
    let tool = |name: &str| bin.join(name).display().to_string();

    let initdb = spawn(&as_user(vec![
        tool("initdb"),
        "-D".into(),
        data.display().to_string(),
        "--no-locale".into(),
        "-E".into(),
        "UTF8".into(),
        "-A".into(),
        "trust".into(),
        "-U".into(),
        "steward".into(),
    ]))
    .expect("initdb spawns");
    let out = tokio::time::timeout(Duration::from_secs(120), initdb.wait_with_output())
        .await
        .expect("initdb finishes")
        .expect("initdb output");
    assert!(
        out.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port().to_string();
    let server = spawn(&as_user(vec![
        tool("postgres"),
        "-D".into(),
        data.display().to_string(),
        "-k".into(),
        home.display().to_string(),
        "-p".into(),
        port.clone(),
        "-c".into(),
        "listen_addresses=127.0.0.1".into(),
    ]))
    .expect("postgres spawns");
    let pid = server.id();
    let mut group = ProcessGroupGuard::new(pid);
    // Drains its pipes while it runs, so its logging never blocks on a full pipe.
    let finished = tokio::spawn(server.wait_with_output());

    let pg_isready = tool("pg_isready");
    wait_for("postgres to accept connections", DEADLINE, || {
        let (pg_isready, port) = (pg_isready.clone(), port.clone());
        async move {
            tokio::process::Command::new(pg_isready)
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "steward"])
                .stdout(std::process::Stdio::null())
                .status()
                .await
                .ok()
                .filter(|s| s.success())
                .map(|_| ())
        }
    })
    .await;
    assert_eq!(
        uid_of(pid),
        Some(test_user.user.uid),
        "postgres runs as the test user"
    );

    // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients).
    group.signal(Signal::SIGINT).expect("SIGINT");
    let out = tokio::time::timeout(DEADLINE, finished)
        .await
        .expect("postgres stops on SIGINT")
        .expect("task")
        .expect("output");
    assert!(
        out.status.success(),
        "postgres exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    group_empties("the process group to be empty", pid).await;
    group.disarm();
}
