//! `steward start|stop|restart|kill|pause|resume ID...`: send the verb, then wait until
//! the service reaches the state the verb promises, with a spinner on a terminal and a
//! deadline (`--timeout`, 30s by default).
//!
//! What "reached" means is [`judge`], a pure function of the verb and the service's state:
//! `start` and `restart` wait for `running` and ready (a one-shot job that finished with
//! exit 0 also counts), `stop` and `kill` for a status without a process, `pause` for
//! `paused`, `resume` for `running`. A state that can no longer lead there (`failed`, an
//! exit with an error) ends the wait at once with the service's reason.
//!
//! With `--no-wait` the request asks the daemon not to wait either (`?wait=false`): it
//! answers `202 Accepted` as soon as the service's Server acted (a stop: `stopping`), and
//! the command prints that state. `stop --cascade` asks the daemon to stop the running
//! dependents first (`?cascade=true`) and prints each service it stopped, in order.

use std::process::ExitCode;
use std::time::Duration;

use steward::{ControlAction, ServiceState, ServiceStatus};

use crate::cli::client::{Client, ClientError};
use crate::cli::spinner::Spinner;
use crate::cli::status::get_state;
use crate::cli::style::Paint;
use crate::cli::{ControlArgs, out, out_json};

/// How often the state is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// What the CLI says about a verb while it waits: words for people, not part of the
/// library's vocabulary.
pub trait Promise {
    /// The state the verb waits for, in words.
    fn goal(self) -> &'static str;
    /// What is going on while waiting.
    fn doing(self) -> &'static str;
}

impl Promise for ControlAction {
    fn goal(self) -> &'static str {
        match self {
            ControlAction::Start | ControlAction::Restart => "running and ready",
            ControlAction::Stop | ControlAction::Kill => "stopped",
            ControlAction::Pause => "paused",
            ControlAction::Resume => "running",
        }
    }

    fn doing(self) -> &'static str {
        match self {
            ControlAction::Start => "starting",
            ControlAction::Stop => "stopping",
            ControlAction::Restart => "restarting",
            ControlAction::Kill => "killing",
            ControlAction::Pause => "pausing",
            ControlAction::Resume => "resuming",
        }
    }
}

/// Where a wait stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The verb's state is reached.
    Done,
    /// Not yet.
    Waiting,
    /// It will not be reached; why.
    Failed(String),
}

/// Has `state` reached what `verb` promises?
pub fn judge(verb: ControlAction, state: &ServiceState) -> Progress {
    let why = || {
        let exit = state.last_exit.as_ref().map(|e| e.describe());
        let reason = state.reason.clone().or(exit);
        match reason {
            Some(reason) => format!("{}: {reason}", state.status),
            None => state.status.to_string(),
        }
    };
    let exit_ok = state.last_exit.as_ref().is_some_and(|e| e.success());
    match verb {
        ControlAction::Start | ControlAction::Restart => match state.status {
            ServiceStatus::Running if state.ready => Progress::Done,
            ServiceStatus::Exited if exit_ok => Progress::Done,
            ServiceStatus::Failed | ServiceStatus::Exited | ServiceStatus::Stopped => {
                Progress::Failed(why())
            }
            _ => Progress::Waiting,
        },
        ControlAction::Stop | ControlAction::Kill if !state.status.is_active() => Progress::Done,
        ControlAction::Stop | ControlAction::Kill => Progress::Waiting,
        ControlAction::Pause => match state.status {
            ServiceStatus::Paused => Progress::Done,
            s if !s.is_active() => Progress::Failed(why()),
            _ => Progress::Waiting,
        },
        ControlAction::Resume => match state.status {
            ServiceStatus::Running => Progress::Done,
            s if !s.is_active() => Progress::Failed(why()),
            _ => Progress::Waiting,
        },
    }
}

/// How one service's wait ended.
enum Outcome {
    /// Reached (or accepted, with `--no-wait`).
    Reached(ServiceState),
    /// Cannot be reached.
    Failed(String),
    /// The deadline passed; the last state seen.
    TimedOut(Option<ServiceState>),
}

/// Runs one verb over every id in order; exits 1 when any service did not get there.
pub async fn run(
    client: &Client,
    verb: ControlAction,
    args: &ControlArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let paint = Paint::stdout();
    let mut reached = Vec::new();
    let mut failures = 0;
    for id in &args.ids {
        let outcome = match drive(client, verb, id, args).await {
            Ok(outcome) => outcome,
            // Every other id would fail the same way: say it once.
            Err(e @ ClientError::NoDaemon { .. }) => return Err(e.into()),
            Err(e) => Outcome::Failed(e.to_string()),
        };
        match outcome {
            Outcome::Reached(state) => {
                if !json {
                    out(&format!("{}: {}\n", state.id, describe(&state, paint)))?;
                }
                reached.push(state);
            }
            Outcome::Failed(why) => {
                failures += 1;
                eprintln!("steward: {id}: {} failed: {why}", verb.as_str());
            }
            Outcome::TimedOut(last) => {
                failures += 1;
                let seen = last
                    .map(|s| match judge(verb, &s) {
                        Progress::Failed(why) => why,
                        _ => match &s.reason {
                            Some(reason) => format!("{}: {reason}", s.status),
                            None => s.status.to_string(),
                        },
                    })
                    .unwrap_or_else(|| "the daemon has not answered yet".to_string());
                eprintln!(
                    "steward: {id}: not {} after {} (status {seen})",
                    verb.goal(),
                    humantime::format_duration(args.timeout)
                );
            }
        }
    }
    if json {
        out_json(&reached)?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The answer of `POST /api/v1/services/{id}/stop?cascade=true`.
#[derive(Debug, serde::Deserialize)]
struct CascadeStopped {
    #[serde(flatten)]
    state: ServiceState,
    also_stopped: Vec<ServiceState>,
}

/// Runs `steward stop --cascade ID...`: for each id in order, the daemon stops its running
/// dependents, then it, and answers once all are stopped; each is printed, in the order
/// they stopped. Exits 1 when any id could not be stopped.
pub async fn run_cascade(
    client: &Client,
    args: &ControlArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let paint = Paint::stdout();
    let mut stopped = Vec::new();
    let mut failures = 0;
    for id in &args.ids {
        let spinner = Spinner::start(format!("{id}: stopping it and its dependents…"));
        let path = ["api", "v1", "services", id, "stop"];
        let query = [("cascade", "true".to_string())];
        let asked = client.post::<CascadeStopped>(&path, &query, None);
        let answer = tokio::time::timeout(args.timeout, asked).await;
        drop(spinner);
        match answer {
            Ok(Ok(answer)) => {
                for state in answer.also_stopped.into_iter().chain([answer.state]) {
                    if !json {
                        out(&format!("{}: {}\n", state.id, describe(&state, paint)))?;
                    }
                    stopped.push(state);
                }
            }
            Ok(Err(e @ ClientError::NoDaemon { .. })) => return Err(e.into()),
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("steward: {id}: stop --cascade failed: {e}");
            }
            Err(_) => {
                failures += 1;
                eprintln!(
                    "steward: {id}: not stopped with its dependents after {}",
                    humantime::format_duration(args.timeout)
                );
            }
        }
    }
    if json {
        out_json(&stopped)?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Sends the verb and waits (within the deadline) for its state.
async fn drive(
    client: &Client,
    verb: ControlAction,
    id: &str,
    args: &ControlArgs,
) -> Result<Outcome, ClientError> {
    let spinner = Spinner::start(format!("{id}: {}…", verb.doing()));
    let mut last: Option<ServiceState> = None;
    let wait = async {
        let query: &[(&str, String)] = if args.no_wait {
            &[("wait", "false".to_string())]
        } else {
            &[]
        };
        let mut state: ServiceState = client
            .post(&["api", "v1", "services", id, verb.as_str()], query, None)
            .await?;
        loop {
            if args.no_wait {
                return Ok(Outcome::Reached(state));
            }
            match judge(verb, &state) {
                Progress::Done => return Ok(Outcome::Reached(state)),
                Progress::Failed(why) => return Ok(Outcome::Failed(why)),
                Progress::Waiting => {}
            }
            spinner.set(format!(
                "{id}: {} — waiting for {}",
                state.status,
                verb.goal()
            ));
            last = Some(state);
            tokio::time::sleep(POLL).await;
            state = get_state(client, id).await?;
        }
    };
    // Bound to a name so the future (which borrows `last`) is gone before `last` is read.
    let waited = tokio::time::timeout(args.timeout, wait).await;
    match waited {
        Ok(result) => result,
        Err(_) => Ok(Outcome::TimedOut(last)),
    }
}

/// `running (pid 4242, healthy)`, `stopped`, `exited (exit code 0)`, …
pub fn describe(state: &ServiceState, paint: Paint) -> String {
    let exit_ok = state.last_exit.as_ref().is_none_or(|e| e.success());
    let status = paint.paint(
        Paint::status_style(state.status, exit_ok),
        state.status.as_str(),
    );
    let mut details = Vec::new();
    if let Some(pid) = state.pid {
        details.push(format!("pid {pid}"));
    }
    if state.status == ServiceStatus::Running && state.health != steward::Health::Unknown {
        details.push(state.health.to_string());
    }
    if state.status == ServiceStatus::Exited
        && let Some(exit) = &state.last_exit
    {
        details.push(exit.describe());
    }
    if details.is_empty() {
        status
    } else {
        format!("{status} ({})", details.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use steward::state::ExitInfo;

    use super::*;

    fn state(status: ServiceStatus) -> ServiceState {
        let mut s = ServiceState::pending("web", "web", &[]);
        s.status = status;
        s
    }

    #[test]
    fn start_waits_for_ready_not_just_running() {
        let mut s = state(ServiceStatus::Running);
        assert_eq!(judge(ControlAction::Start, &s), Progress::Waiting);
        s.ready = true;
        assert_eq!(judge(ControlAction::Start, &s), Progress::Done);
    }

    #[test]
    fn a_finished_one_shot_job_counts_as_started_only_with_exit_zero() {
        let mut s = state(ServiceStatus::Exited);
        s.last_exit = Some(ExitInfo {
            code: Some(0),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert_eq!(judge(ControlAction::Start, &s), Progress::Done);
        s.last_exit = Some(ExitInfo {
            code: Some(2),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert_eq!(
            judge(ControlAction::Restart, &s),
            Progress::Failed("exited: exit code 2".to_string())
        );
    }

    #[test]
    fn a_failed_start_ends_the_wait_with_the_reason() {
        let mut s = state(ServiceStatus::Failed);
        s.reason = Some("missing env API_KEY".to_string());
        assert_eq!(
            judge(ControlAction::Start, &s),
            Progress::Failed("failed: missing env API_KEY".to_string())
        );
    }

    #[test]
    fn stop_and_kill_are_done_when_no_process_is_left() {
        for verb in [ControlAction::Stop, ControlAction::Kill] {
            assert_eq!(
                judge(verb, &state(ServiceStatus::Stopping)),
                Progress::Waiting
            );
            assert_eq!(judge(verb, &state(ServiceStatus::Stopped)), Progress::Done);
            assert_eq!(judge(verb, &state(ServiceStatus::Exited)), Progress::Done);
        }
    }

    #[test]
    fn pause_and_resume_wait_for_their_status() {
        assert_eq!(
            judge(ControlAction::Pause, &state(ServiceStatus::Paused)),
            Progress::Done
        );
        assert_eq!(
            judge(ControlAction::Pause, &state(ServiceStatus::Running)),
            Progress::Waiting
        );
        assert_eq!(
            judge(ControlAction::Resume, &state(ServiceStatus::Running)),
            Progress::Done
        );
        assert!(matches!(
            judge(ControlAction::Resume, &state(ServiceStatus::Stopped)),
            Progress::Failed(_)
        ));
    }
}
