//! `steward start|stop|restart|kill|pause|resume ID...`: send the verb, then wait until
//! the service reaches the state the verb promises, with a spinner on a terminal and a
//! deadline (`--timeout`, 30s by default).
//!
//! What "reached" means is [`judge`], a pure function of the verb and the service's state:
//! `start` and `restart` wait for `running` and ready (a one-shot job that finished with
//! exit 0 also counts), `stop` and `kill` for a status without a process, `pause` for
//! `paused`, `resume` for `running`. A state that can no longer lead there (`failed`, an
//! exit with an error) ends the wait at once with the service's reason.

use std::process::ExitCode;
use std::time::Duration;

use steward::{ServiceState, ServiceStatus};

use crate::cli::client::{Client, ClientError};
use crate::cli::spinner::Spinner;
use crate::cli::status::get_state;
use crate::cli::style::Paint;
use crate::cli::{ControlArgs, out, out_json};

/// How often the state is read while waiting.
const POLL: Duration = Duration::from_millis(100);

/// A control verb of the API (`POST /api/v1/services/{id}/{verb}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Start the process.
    Start,
    /// Stop it gracefully.
    Stop,
    /// Stop, then start.
    Restart,
    /// SIGKILL the group.
    Kill,
    /// SIGSTOP the group.
    Pause,
    /// SIGCONT the group.
    Resume,
}

impl Verb {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Start => "start",
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Kill => "kill",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
        }
    }

    /// The state the verb waits for, in words.
    pub fn goal(self) -> &'static str {
        match self {
            Verb::Start | Verb::Restart => "running and ready",
            Verb::Stop | Verb::Kill => "stopped",
            Verb::Pause => "paused",
            Verb::Resume => "running",
        }
    }

    /// What is going on while waiting.
    fn doing(self) -> &'static str {
        match self {
            Verb::Start => "starting",
            Verb::Stop => "stopping",
            Verb::Restart => "restarting",
            Verb::Kill => "killing",
            Verb::Pause => "pausing",
            Verb::Resume => "resuming",
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
pub fn judge(verb: Verb, state: &ServiceState) -> Progress {
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
        Verb::Start | Verb::Restart => match state.status {
            ServiceStatus::Running if state.ready => Progress::Done,
            ServiceStatus::Exited if exit_ok => Progress::Done,
            ServiceStatus::Failed | ServiceStatus::Exited | ServiceStatus::Stopped => {
                Progress::Failed(why())
            }
            _ => Progress::Waiting,
        },
        Verb::Stop | Verb::Kill if !state.status.is_active() => Progress::Done,
        Verb::Stop | Verb::Kill => Progress::Waiting,
        Verb::Pause => match state.status {
            ServiceStatus::Paused => Progress::Done,
            s if !s.is_active() => Progress::Failed(why()),
            _ => Progress::Waiting,
        },
        Verb::Resume => match state.status {
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
    verb: Verb,
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

/// Sends the verb and waits (within the deadline) for its state.
async fn drive(
    client: &Client,
    verb: Verb,
    id: &str,
    args: &ControlArgs,
) -> Result<Outcome, ClientError> {
    let spinner = Spinner::start(format!("{id}: {}…", verb.doing()));
    let mut last: Option<ServiceState> = None;
    let wait = async {
        let mut state: ServiceState = client
            .post(&["api", "v1", "services", id, verb.as_str()], &[], None)
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
    if state.status == ServiceStatus::Exited {
        if let Some(exit) = &state.last_exit {
            details.push(exit.describe());
        }
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
        assert_eq!(judge(Verb::Start, &s), Progress::Waiting);
        s.ready = true;
        assert_eq!(judge(Verb::Start, &s), Progress::Done);
    }

    #[test]
    fn a_finished_one_shot_job_counts_as_started_only_with_exit_zero() {
        let mut s = state(ServiceStatus::Exited);
        s.last_exit = Some(ExitInfo {
            code: Some(0),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert_eq!(judge(Verb::Start, &s), Progress::Done);
        s.last_exit = Some(ExitInfo {
            code: Some(2),
            signal: None,
            at: chrono::Utc::now(),
        });
        assert_eq!(
            judge(Verb::Restart, &s),
            Progress::Failed("exited: exit code 2".to_string())
        );
    }

    #[test]
    fn a_failed_start_ends_the_wait_with_the_reason() {
        let mut s = state(ServiceStatus::Failed);
        s.reason = Some("missing env API_KEY".to_string());
        assert_eq!(
            judge(Verb::Start, &s),
            Progress::Failed("failed: missing env API_KEY".to_string())
        );
    }

    #[test]
    fn stop_and_kill_are_done_when_no_process_is_left() {
        for verb in [Verb::Stop, Verb::Kill] {
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
            judge(Verb::Pause, &state(ServiceStatus::Paused)),
            Progress::Done
        );
        assert_eq!(
            judge(Verb::Pause, &state(ServiceStatus::Running)),
            Progress::Waiting
        );
        assert_eq!(
            judge(Verb::Resume, &state(ServiceStatus::Running)),
            Progress::Done
        );
        assert!(matches!(
            judge(Verb::Resume, &state(ServiceStatus::Stopped)),
            Progress::Failed(_)
        ));
    }
}
