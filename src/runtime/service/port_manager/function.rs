//! The PortManager's function path: a function service's run is a tokio task, not a
//! process (see [`crate::function`]).
//!
//! The same messages take it up and down as a process — `Stop`, `Kill` and the
//! `StopTimeout` timer, each carrying its run's [`Generation`] — with a task's means:
//!
//! * **spawn**: the factory is called *inside* a new task, so a panic in the factory or in
//!   the future it returns is caught as the task's `JoinError`, never unwinding into this
//!   actor; a second task (the *watcher*) awaits it;
//! * **stop**: the run's stop signal is raised ([`ServiceContext::cancelled`] resolves) and
//!   the task is aborted after `stop_timeout`, the exit then `forced_kill: true`, as a
//!   SIGKILL after the grace is for a process;
//! * **kill**: the task is aborted at once;
//! * **end**: the watcher maps the task's result onto a [`FunctionEnd`] (and so an exit
//!   code: 0 for `Ok`, 1 for `Err`, none for a panic or an abort), waits for the LogBuffer
//!   to have appended every line the function wrote (the same barrier as a process's
//!   drained pipes), and tells this actor, which lets go of the run and reports it to the
//!   Server ([`ServerMsg::FunctionExited`]);
//! * pause and resume (SIGSTOP / SIGCONT from the Server) raise and lower the run's pause
//!   signal for a function that honours them ([`ServiceContext::is_paused`]); other
//!   signals and stdin are refused: there is no process.
//!
//! Cleanup never depends on a message arriving: the state holds the task's abort handle
//! in a [`RunningFunction`] whose `Drop` aborts it, so when this actor stops or panics (a
//! one-for-all restart, the service removed), the task goes with it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ractor::concurrency::JoinHandle;
use ractor::{ActorRef, MessagingErr};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use super::{PortError, PortManagerMsg, PortManagerState};
use crate::function::{FunctionService, ServiceContext, panic_message};
use crate::runtime::service::decide::FunctionEnd;
use crate::runtime::service::generation::Generation;
use crate::runtime::service::log_buffer::LogBufferMsg;
use crate::runtime::service::server::ServerMsg;
use crate::state::ExitInfo;

/// How long the watcher waits for the LogBuffer to confirm it appended the last lines.
const LOG_BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// The task of the current run of a function service, as the actor sees it. Dropping it
/// aborts the task.
#[derive(Debug)]
pub(super) struct RunningFunction {
    run: Generation,
    /// Raised on stop: what [`ServiceContext::cancelled`] waits for.
    stop: watch::Sender<bool>,
    /// Raised while paused, for a function that honours pause ([`ServiceContext::is_paused`]).
    pause: watch::Sender<bool>,
    /// The function honours pause: SIGSTOP and SIGCONT become pause and resume.
    pausable: bool,
    task: AbortHandle,
    /// Pending stop timers, aborted at the end. The earliest one that fires wins.
    stop_timers: Vec<JoinHandle<Result<(), MessagingErr<PortManagerMsg>>>>,
    /// Set when a stop timer had to abort the task (reported with the end).
    forced_kill: bool,
}

impl Drop for RunningFunction {
    fn drop(&mut self) {
        // A no-op for a task that has ended (the normal way here).
        self.task.abort();
    }
}

/// Takes the messages that belong to the function path: the function's own, and every
/// run-level message while a function runs. Gives back the others (a process's).
pub(super) fn handle(
    myself: &ActorRef<PortManagerMsg>,
    state: &mut PortManagerState,
    msg: PortManagerMsg,
) -> Option<PortManagerMsg> {
    match msg {
        PortManagerMsg::SpawnFunction {
            run,
            function,
            reply,
        } => {
            let _ = reply.send(on_spawn(myself, state, run, &function));
        }
        PortManagerMsg::FunctionEnded { run, end } => on_ended(state, run, end),
        other if state.function.is_none() => return Some(other),
        PortManagerMsg::Stop { run, timeout, .. } => on_stop(myself, state, run, timeout),
        PortManagerMsg::Kill { run } => on_kill(state, run),
        PortManagerMsg::StopTimeout { run } => on_stop_timeout(state, run),
        PortManagerMsg::Signal { run, signal, reply } => {
            let _ = reply.send(on_signal(state, run, signal));
        }
        PortManagerMsg::Input { reply, .. } => {
            let _ = reply.send(Err(PortError::NotAProcess {
                service: state.service.clone(),
            }));
        }
        PortManagerMsg::Spawn { reply, .. } => {
            let run = state.function.as_ref().map(|f| f.run).unwrap_or_default();
            let _ = reply.send(Err(PortError::FunctionRunning { run }));
        }
        other @ (PortManagerMsg::Panic(_) | PortManagerMsg::Exited { .. }) => return Some(other),
    }
    None
}

/// The current function task if it belongs to `run`.
fn current_of(state: &mut PortManagerState, run: Generation) -> Option<&mut RunningFunction> {
    state.function.as_mut().filter(|f| f.run.is_current(run))
}

fn on_spawn(
    myself: &ActorRef<PortManagerMsg>,
    state: &mut PortManagerState,
    run: Generation,
    function: &FunctionService,
) -> Result<(), PortError> {
    if let Some(current) = &state.function {
        return Err(PortError::FunctionRunning { run: current.run });
    }
    if let Some(current) = &state.current {
        return Err(PortError::Busy {
            run: current.run,
            pid: current.pid,
        });
    }
    let (stop, stopped) = watch::channel(false);
    let (pause, paused) = watch::channel(false);
    let ctx = ServiceContext::new(
        Arc::from(state.service.as_str()),
        run,
        stopped,
        paused,
        state.log_buffer.clone(),
        state.server.clone(),
    );
    let factory = function.factory.clone();
    // The factory is called inside the task: a panic while it builds the future is caught
    // like one while the future runs.
    let task = tokio::spawn(async move { factory(ctx).await });
    let abort = task.abort_handle();
    tokio::spawn(watch_task(
        state.service.clone(),
        run,
        task,
        state.log_buffer.clone(),
        myself.clone(),
    ));
    info!(service = %state.service, run = run.0, function = %function.name, "function started");
    state.function = Some(RunningFunction {
        run,
        stop,
        pause,
        pausable: function.pausable,
        task: abort,
        stop_timers: Vec::new(),
        forced_kill: false,
    });
    Ok(())
}

/// Awaits the task of `run`; reports how it ended once its log lines are appended.
async fn watch_task(
    service: String,
    run: Generation,
    task: tokio::task::JoinHandle<Result<(), String>>,
    log_buffer: ActorRef<LogBufferMsg>,
    port_manager: ActorRef<PortManagerMsg>,
) {
    let end = match task.await {
        Ok(Ok(())) => FunctionEnd::Returned,
        Ok(Err(error)) => FunctionEnd::Failed(error),
        Err(error) if error.is_panic() => {
            FunctionEnd::Panicked(panic_message(error.into_panic().as_ref()))
        }
        Err(_) => FunctionEnd::Aborted,
    };
    // Every line the function wrote was cast before this call: its answer means they are
    // all appended, so the Server hears of the end only after the output is in the ring.
    let _ = log_buffer.cast(LogBufferMsg::Flush);
    let barrier = log_buffer
        .call(
            |reply| LogBufferMsg::Tail { n: 0, reply },
            Some(LOG_BARRIER_TIMEOUT),
        )
        .await;
    if barrier.is_err() {
        debug!(service = %service, "log buffer did not confirm the last lines");
    }
    if port_manager
        .cast(PortManagerMsg::FunctionEnded { run, end })
        .is_err()
    {
        // Gone with its siblings (a one-for-all restart): the Server must not take that
        // for an end of the service.
        debug!(service = %service, run = run.0, "port manager gone: end not reported");
    }
}

fn on_stop(
    myself: &ActorRef<PortManagerMsg>,
    state: &mut PortManagerState,
    run: Generation,
    timeout: Duration,
) {
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        debug!(service = %service, run = run.0, "stop for a run that is not running: ignored");
        return;
    };
    info!(
        service = %service,
        run = run.0,
        timeout_ms = timeout.as_millis() as u64,
        "cancelling the function"
    );
    // As a stopped process gets SIGCONT after its stop signal: resumed, so it can act.
    current.pause.send_replace(false);
    current.stop.send_replace(true);
    let timer = myself.send_after(timeout, move || PortManagerMsg::StopTimeout { run });
    current.stop_timers.push(timer);
}

/// Pause and resume of a function that honours them (SIGSTOP / SIGCONT from the Server);
/// any other signal, or a function that does not, is refused: there is no process.
fn on_signal(
    state: &mut PortManagerState,
    run: Generation,
    signal: nix::sys::signal::Signal,
) -> Result<(), PortError> {
    use nix::sys::signal::Signal;
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        return Err(PortError::NotCurrent { run, service });
    };
    match signal {
        Signal::SIGSTOP if current.pausable => current.pause.send_replace(true),
        Signal::SIGCONT if current.pausable => current.pause.send_replace(false),
        _ => return Err(PortError::NotAProcess { service }),
    };
    debug!(service = %service, run = run.0, paused = *current.pause.borrow(), "function paused or resumed");
    Ok(())
}

fn on_stop_timeout(state: &mut PortManagerState, run: Generation) {
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        return;
    };
    if current.task.is_finished() {
        return;
    }
    warn!(service = %service, run = run.0, "stop_timeout expired: aborting the function's task");
    current.forced_kill = true;
    current.task.abort();
}

fn on_kill(state: &mut PortManagerState, run: Generation) {
    let service = state.service.clone();
    let Some(current) = current_of(state, run) else {
        debug!(service = %service, run = run.0, "kill for a run that is not running: ignored");
        return;
    };
    info!(service = %service, run = run.0, "aborting the function's task");
    current.stop.send_replace(true);
    current.task.abort();
}

/// The watcher reports the end: lets go of the run, then reports it to the Server.
fn on_ended(state: &mut PortManagerState, run: Generation, end: FunctionEnd) {
    let Some(current) = state.function.take_if(|f| f.run.is_current(run)) else {
        warn!(service = %state.service, run = run.0, "end of a run that is not current: ignored");
        return;
    };
    for timer in &current.stop_timers {
        timer.abort();
    }
    debug!(
        service = %state.service,
        run = run.0,
        end = %end,
        forced_kill = current.forced_kill,
        "function task released"
    );
    let exit = ExitInfo {
        code: end.code(),
        signal: None,
        at: Utc::now(),
    };
    let report = ServerMsg::FunctionExited {
        run,
        exit,
        end,
        forced_kill: current.forced_kill,
    };
    if state.server.cast(report).is_err() {
        warn!(service = %state.service, run = run.0, "server is gone: end not reported");
    }
}
