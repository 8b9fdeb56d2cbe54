//! PortManager: owns a service's OS process (an Erlang port, in OTP terms).
//!
//! Spawns the process in its own group, reads its pipes as lines (batched to the
//! LogBuffer), reports the exit to the Server after both pipes are drained, signals the
//! group on stop / kill / pause, and writes to stdin. An exit of the process is not a
//! failure of this actor: it is reported to the Server, which applies the restart policy.
//!
//! One process at a time. For each spawned process, one task (two once it gets input)
//! runs beside the actor:
//!
//! * the **watcher** reads both pipes (stdout, stderr), sending every read's complete
//!   lines as one [`LogBufferMsg::Read`] batch straight to the LogBuffer (saying whether
//!   the read emptied the pipe, so the log file catches up at once), each batch holding
//!   its credit of the process's backlog: with 4 MiB of lines not yet handled by the
//!   LogBuffer it stops reading until they are, so a slow log file blocks the writer
//!   rather than growing steward's memory (see `logs::Backlog`). It awaits the exit of
//!   the process (its pidfd). At the exit it:
//!   1. SIGKILLs whatever is left in its process group: a service's orphans (a shell's
//!      background jobs, workers that outlive their master) die with it, like systemd's
//!      `KillMode=control-group`;
//!   2. reads both pipes to end of file, so a last line without a newline is kept; if
//!      something that left the group still holds a pipe open, it gives up after
//!      [`DRAIN_TIMEOUT`] and drops what is unread;
//!   3. if the process wrote anything, casts [`LogBufferMsg::Flush`], then makes one
//!      `Tail { n: 0 }` call to the LogBuffer as a barrier: when it answers, every line
//!      was appended;
//!   4. tells this actor ([`PortManagerMsg::Exited`]), which lets go of the process and
//!      reports the exit to the Server ([`ServerMsg::ProcessExited`]): one report, sent
//!      once this actor is free, so the Server's next `Spawn` finds it so;
//! * a **stdin writer**, started by the first [`PortManagerMsg::Input`] (most services
//!   never get one, and a task and its queue per service add up), writes the bytes in
//!   order; a write is answered once it is queued (or refused at once when the bounded
//!   queue is full), never after the process reads it.
//!
//! So the Server hears of an exit only after the output is in the ring.
//!
//! A detached service's launcher (`SpawnPlan::detached`) is the exception to step 1: what
//! it leaves in its group is the service, so the group is not killed, and a pipe still
//! held by what it launched keeps feeding the log instead of being dropped.
//!
//! Every message about a process carries its run's [`Generation`]; one about another run
//! is ignored. Replies are typed ([`PortError`]); the Server words them.
//!
//! In cgroup mode (DESIGN §11) each process joins its service's cgroup before it execs;
//! kill and the stop timeout add `cgroup.kill`, pause and resume freeze and thaw the
//! cgroup, and the watcher reports the exit only once the cgroup is empty
//! (`populated 0`), so nothing that left the group outlives the run (`cgroup.rs`).
//!
//! Files: this one holds the actor and its handlers; `watcher.rs` the watcher task,
//! `stdin.rs` the stdin writer, `error.rs` the typed replies, `cgroup.rs` the cgroup mode,
//! `memory.rs` the `max_memory` check, `function.rs` the run of a function service (a
//! tokio task instead of a process: same messages, same reports).
//!
//! Cleanup never depends on a message arriving: the state holds a [`ProcessGroupGuard`],
//! so when this actor stops, or panics (ractor then skips `post_stop` but drops the
//! state), the whole group is SIGKILLed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use tracing::{debug, info, warn};

use crate::config::Limits;
use crate::process::cgroup::ProcessTracking;
use crate::process::spawn::{Pipes, spawn_placed};
use crate::process::{ProcessGroupGuard, SpawnPlan, signal_name};
use crate::runtime::service::generation::Generation;
use crate::runtime::service::log_buffer::LogBufferMsg;
use crate::runtime::service::server::ServerMsg;
use crate::state::ExitInfo;

mod cgroup;
mod error;
mod function;
mod memory;
mod stdin;
mod watcher;

pub use error::PortError;
use stdin::StdinPort;
use watcher::{Output, Watch, watch_exit};

/// How long the watcher waits for the pipes to reach end of file after the process group
/// was killed. Only a process that left the group (`setsid`) and kept the pipe open makes
/// it wait that long.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages to a PortManager. `run` is the Server's [`Generation`] of one spawned process;
/// messages about another run are ignored.
#[derive(Debug)]
pub enum PortManagerMsg {
    /// Spawn the process; replies with its pid. Refused while a process runs.
    Spawn {
        /// The run number this process will carry.
        run: Generation,
        /// What to exec.
        plan: SpawnPlan,
        /// The pid, or why the spawn failed.
        reply: RpcReplyPort<Result<u32, PortError>>,
    },
    /// Graceful stop: `signal` to the group, then SIGCONT (so a paused group can act on
    /// it), SIGKILL to the group after `timeout` (the exit then has `forced_kill: true`).
    Stop {
        /// Which run.
        run: Generation,
        /// The stop signal.
        signal: Signal,
        /// The grace period.
        timeout: Duration,
    },
    /// SIGKILL to the group now.
    Kill {
        /// Which run.
        run: Generation,
    },
    /// Send a signal to the group (SIGSTOP / SIGCONT for pause and resume).
    Signal {
        /// Which run.
        run: Generation,
        /// The signal.
        signal: Signal,
        /// Done, or why not (a stale run, a process that already exited).
        reply: RpcReplyPort<Result<(), PortError>>,
    },
    /// Write bytes to the process's stdin as they are. Answered at once: queued, or why
    /// not (no process, stdin closed, the queue full); never after the process reads.
    Input {
        /// The bytes.
        data: Vec<u8>,
        /// Queued, or why not.
        reply: RpcReplyPort<Result<(), PortError>>,
    },
    /// Makes the actor panic (chaos testing of the supervision tree).
    Panic(String),
    /// Internal, sent by the PortManager's own watcher task: the process of `run` exited,
    /// its group was killed and its pipes drained. Other actors must not send it.
    Exited {
        /// Which run.
        run: Generation,
        /// How it ended.
        exit: ExitInfo,
    },
    /// Internal, sent by the PortManager's own timer: the `stop_timeout` of `run` expired.
    /// Other actors must not send it.
    StopTimeout {
        /// Which run.
        run: Generation,
    },
    /// Run a function service's function as a task (`function.rs`); replies once it is
    /// spawned. `Stop`, `Kill` and `StopTimeout` then act on the task. Refused while a
    /// process or task runs.
    SpawnFunction {
        /// The run number this task will carry.
        run: Generation,
        /// What to run.
        function: crate::function::FunctionService,
        /// Spawned, or why not.
        reply: RpcReplyPort<Result<(), PortError>>,
    },
    /// Internal, sent by the PortManager's own function watcher: the task of `run` ended
    /// and the lines it wrote are appended. Other actors must not send it.
    FunctionEnded {
        /// Which run.
        run: Generation,
        /// How it ended.
        end: crate::runtime::service::decide::FunctionEnd,
    },
}

/// Arguments of a PortManager.
#[derive(Debug, Clone)]
pub struct PortManagerArgs {
    /// The service id (for logs and events).
    pub service: String,
    /// Where exits are reported.
    pub server: ActorRef<ServerMsg>,
    /// Where pipe lines go.
    pub log_buffer: ActorRef<LogBufferMsg>,
    /// The runtime's process tracking: in cgroup mode each process joins the service's
    /// cgroup. `None` (or process-group mode) signals the process group only.
    pub tracking: Option<Arc<ProcessTracking>>,
    /// The service's `max_memory`: each run's process tree is sampled and the Server told
    /// when it passes it (see `memory.rs`).
    pub max_memory: Option<u64>,
    /// The service's `limits`, written to its cgroup before each spawn where the
    /// controllers are available (see `cgroup.rs`).
    pub limits: Limits,
}

/// State of a PortManager.
#[derive(Debug)]
pub struct PortManagerState {
    service: String,
    server: ActorRef<ServerMsg>,
    log_buffer: ActorRef<LogBufferMsg>,
    /// The process of the current run, from spawn until its exit is reported.
    current: Option<RunningProcess>,
    /// A function service's task of the current run, from spawn until its end is reported.
    function: Option<function::RunningFunction>,
    /// The runtime's process tracking (see [`PortManagerArgs::tracking`]).
    tracking: Option<Arc<ProcessTracking>>,
    /// See [`PortManagerArgs::max_memory`].
    max_memory: Option<u64>,
    /// See [`PortManagerArgs::limits`].
    limits: Limits,
}

/// One spawned process, as the actor sees it.
#[derive(Debug)]
struct RunningProcess {
    run: Generation,
    pid: u32,
    /// SIGKILLs the group if this is dropped while the process runs (actor stopped or
    /// panicked). Disarmed when the exit is reported: the watcher has killed the group.
    group: ProcessGroupGuard,
    /// Set by the watcher as soon as the leader is reaped. From then on the group is being
    /// killed and its number may be reused, so nothing more is sent to it. (Not a second
    /// notion of the run: the watcher's `Exited` message may still be queued behind a
    /// signal request, and this flag is what closes that window.)
    reaped: Arc<AtomicBool>,
    /// The child's stdin; dropping it closes the pipe.
    stdin: StdinPort,
    /// Pending stop timers, aborted at exit. The earliest one that fires wins.
    stop_timers: Vec<JoinHandle<Result<(), MessagingErr<PortManagerMsg>>>>,
    /// Set when a stop timer had to SIGKILL the group (reported with the exit).
    forced_kill: bool,
    /// The service's cgroup in cgroup mode; kills it if dropped while the process runs.
    leaf: Option<cgroup::LeafGuard>,
    /// The `max_memory` sampling of this run, aborted at its exit.
    memory_watch: Option<tokio::task::JoinHandle<()>>,
    /// The `oom_kill` count of the leaf's `memory.events` at the spawn (with the memory
    /// controller): a higher one at a SIGKILL exit means the kernel's OOM killer did it.
    oom_kills: Option<u64>,
}

impl RunningProcess {
    fn is_reaped(&self) -> bool {
        self.reaped.load(Ordering::Acquire)
    }
}

/// The PortManager actor.
#[derive(Debug, Default)]
pub struct PortManager;

impl Actor for PortManager {
    type Msg = PortManagerMsg;
    type State = PortManagerState;
    type Arguments = PortManagerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: PortManagerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(PortManagerState {
            service: args.service,
            server: args.server,
            log_buffer: args.log_buffer,
            current: None,
            function: None,
            tracking: args.tracking,
            max_memory: args.max_memory,
            limits: args.limits,
        })
    }

    fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        // Nothing here waits: handled before the future exists, so the future ractor
        // keeps inlined in the actor's resident loop is an empty one.
        let Some(msg) = function::handle(&myself, state, msg) else {
            return std::future::ready(Ok(()));
        };
        match msg {
            PortManagerMsg::Spawn { run, plan, reply } => {
                let _ = reply.send(on_spawn(&myself, state, run, &plan));
            }
            PortManagerMsg::Stop {
                run,
                signal,
                timeout,
            } => on_stop(&myself, state, run, signal, timeout),
            PortManagerMsg::Kill { run } => on_kill(state, run),
            PortManagerMsg::Signal { run, signal, reply } => {
                on_signal_request(state, run, signal, reply)
            }
            PortManagerMsg::Input { data, reply } => on_input(state, data, reply),
            PortManagerMsg::Panic(why) => panic!("{why}"),
            PortManagerMsg::Exited { run, exit } => on_exited(state, run, exit),
            PortManagerMsg::StopTimeout { run } => on_stop_timeout(state, run),
            PortManagerMsg::SpawnFunction { .. } | PortManagerMsg::FunctionEnded { .. } => {}
        }
        std::future::ready(Ok(()))
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(mut current) = state.current.take() {
            warn!(
                service = %state.service,
                run = current.run.0,
                pid = current.pid,
                "port manager stopping with its process running: killing the process group"
            );
            if let Err(error) = current.group.kill() {
                warn!(service = %state.service, pid = current.pid, %error, "could not kill process group");
            }
            cgroup::after_exit(state.tracking.as_ref(), &state.service);
        }
        cgroup::remove_leaf(state).await;
        Ok(())
    }
}

/// The current process if it belongs to `run`.
fn current_of(state: &mut PortManagerState, run: Generation) -> Option<&mut RunningProcess> {
    state.current.as_mut().filter(|c| c.run.is_current(run))
}

fn on_spawn(
    myself: &ActorRef<PortManagerMsg>,
    state: &mut PortManagerState,
    run: Generation,
    plan: &SpawnPlan,
) -> Result<u32, PortError> {
    if let Some(current) = &state.current {
        return Err(PortError::Busy {
            run: current.run,
            pid: current.pid,
        });
    }
    let leaf = cgroup::leaf_for(state.tracking.as_ref(), &state.service, plan)?;
    let oom_kills = cgroup::apply_limits(state.tracking.as_ref(), leaf.as_ref(), &state.limits)?;
    let mut child = spawn_placed(plan, Pipes::ALL, leaf.as_ref())?;
    let pid = child.id();
    let group = ProcessGroupGuard::new(pid);

    let output = Output {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        log_buffer: state.log_buffer.clone(),
    };
    let stdin = StdinPort::Idle(child.stdin.take());
    let reaped = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_exit(
        Watch {
            service: state.service.clone(),
            run,
            pid,
            child,
            reaped: reaped.clone(),
            detached: plan.detached,
            leaf: leaf.clone(),
            tracking: state.tracking.clone(),
            log_buffer: state.log_buffer.clone(),
            port_manager: myself.clone(),
        },
        output,
    ));

    info!(service = %state.service, run = run.0, pid, program = %plan.argv.first().map(String::as_str).unwrap_or(""), "spawned");
    state.current = Some(RunningProcess {
        run,
        pid,
        group,
        reaped,
        stdin,
        stop_timers: Vec::new(),
        forced_kill: false,
        leaf: cgroup::guard(leaf),
        memory_watch: state.max_memory.filter(|_| !plan.detached).map(|limit| {
            memory::watch(
                state.tracking.clone(),
                state.service.clone(),
                run,
                pid,
                limit,
                state.server.clone(),
            )
        }),
        oom_kills,
    });
    Ok(pid)
}

fn on_stop(
    myself: &ActorRef<PortManagerMsg>,
    state: &mut PortManagerState,
    run: Generation,
    signal: Signal,
    timeout: Duration,
) {
    cgroup::trace(state);
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        debug!(service = %service, run = run.0, "stop for a run that is not running: ignored");
        return;
    };
    if current.is_reaped() {
        return;
    }
    info!(
        service = %service,
        run = run.0,
        pid = current.pid,
        signal = signal_name(signal),
        timeout_ms = timeout.as_millis() as u64,
        "stopping"
    );
    for sig in [signal, Signal::SIGCONT] {
        if let Err(error) = current.group.signal(sig) {
            warn!(service = %service, pid = current.pid, signal = signal_name(sig), %error, "could not signal process group");
        }
    }
    cgroup::stop_escaped(&service, current, signal);
    let timer = myself.send_after(timeout, move || PortManagerMsg::StopTimeout { run });
    current.stop_timers.push(timer);
}

fn on_stop_timeout(state: &mut PortManagerState, run: Generation) {
    cgroup::trace(state);
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        return;
    };
    if current.is_reaped() {
        return;
    }
    warn!(service = %service, run = run.0, pid = current.pid, "stop_timeout expired: SIGKILL to the process group");
    current.forced_kill = true;
    if let Err(error) = current.group.signal(Signal::SIGKILL) {
        warn!(service = %service, pid = current.pid, %error, "could not SIGKILL process group");
    }
    cgroup::kill(&service, current);
}

fn on_kill(state: &mut PortManagerState, run: Generation) {
    cgroup::trace(state);
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        debug!(service = %service, run = run.0, "kill for a run that is not running: ignored");
        return;
    };
    if current.is_reaped() {
        return;
    }
    info!(service = %service, run = run.0, pid = current.pid, "SIGKILL to the process group");
    if let Err(error) = current.group.signal(Signal::SIGKILL) {
        warn!(service = %service, pid = current.pid, %error, "could not SIGKILL process group");
    }
    cgroup::kill(&service, current);
}

/// A signal request. The group gets the signal (pause is SIGSTOP, DESIGN §4); in cgroup
/// mode pause also freezes the cgroup, answered by a task once `frozen 1`, so processes
/// that left the group stop too, and resume thaws it before the SIGCONT.
fn on_signal_request(
    state: &mut PortManagerState,
    run: Generation,
    signal: Signal,
    reply: RpcReplyPort<Result<(), PortError>>,
) {
    let service = state.service.clone();
    if signal == Signal::SIGCONT
        && let Some(current) = current_of(state, run)
    {
        cgroup::thaw(&service, current);
    }
    let signalled = on_signal(state, run, signal);
    match (signalled, current_of(state, run)) {
        (Ok(()), Some(current)) if signal == Signal::SIGSTOP => {
            cgroup::freeze(&service, current, reply)
        }
        (result, _) => {
            let _ = reply.send(result);
        }
    }
}

fn on_signal(
    state: &mut PortManagerState,
    run: Generation,
    signal: Signal,
) -> Result<(), PortError> {
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        return Err(PortError::NotCurrent { run, service });
    };
    if current.is_reaped() {
        return Err(PortError::Exited {
            service,
            pid: current.pid,
        });
    }
    debug!(service = %service, run = run.0, pid = current.pid, signal = signal_name(signal), "signalling process group");
    current
        .group
        .signal(signal)
        .map_err(|source| PortError::Signal {
            signal: signal_name(signal),
            pid: current.pid,
            source,
        })
}

fn on_input(
    state: &mut PortManagerState,
    data: Vec<u8>,
    reply: RpcReplyPort<Result<(), PortError>>,
) {
    let service = state.service.clone();
    let Some(current) = state.current.as_mut().filter(|c| !c.is_reaped()) else {
        let _ = reply.send(Err(PortError::NoProcess { service }));
        return;
    };
    let _ = reply.send(current.stdin.write(&service, data));
}

/// The watcher reports the exit: lets go of the process, then reports the exit to the
/// Server (the one report of it), so that the Server's next `Spawn` finds this actor free.
fn on_exited(state: &mut PortManagerState, run: Generation, exit: ExitInfo) {
    let Some(mut current) = state.current.take_if(|c| c.run.is_current(run)) else {
        warn!(service = %state.service, run = run.0, "exit of a run that is not current: ignored");
        return;
    };
    // The watcher SIGKILLed the group after reaping the leader; the number is no longer ours.
    current.group.disarm();
    if let Some(leaf) = &mut current.leaf {
        leaf.disarm();
    }
    if let Some(watch) = &current.memory_watch {
        watch.abort();
    }
    for timer in &current.stop_timers {
        timer.abort();
    }
    // The Server logs the exit (once, at info, with what it means); this is the detail.
    debug!(
        service = %state.service,
        run = run.0,
        pid = current.pid,
        code = exit.code,
        signal = exit.signal.as_deref(),
        forced_kill = current.forced_kill,
        "process group released"
    );
    if let Some(limit) = cgroup::out_of_memory(&current, &exit, &state.limits) {
        // Before the exit, in the same mailbox: the exit is then reported with its cause.
        let _ = state.server.cast(ServerMsg::OutOfMemory { run, limit });
    }
    let report = ServerMsg::ProcessExited {
        run,
        exit,
        forced_kill: current.forced_kill,
    };
    if state.server.cast(report).is_err() {
        warn!(service = %state.service, run = run.0, "server is gone: exit not reported");
    }
}
