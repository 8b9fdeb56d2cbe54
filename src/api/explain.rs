//! `GET /api/v1/services/{id}/explain`: why a service is in its state.
//!
//! Gathers what a person would otherwise dig out of three commands: the state (with the
//! cause of its last transition), the service's recent events with their causes (probe
//! verdicts among them), its last exit, its probes, its last log lines, and one sentence
//! that sums it up.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use super::extract::ApiPath;
use super::view::ProbeView;
use crate::Steward;
use crate::config::ServiceDefinition;
use crate::error::ControlError;
use crate::events::Event;
use crate::logs::LogLine;
use crate::state::{ExitInfo, Health, ServiceState, ServiceStatus};

/// Recent events of the service shown.
const RECENT_EVENTS: usize = 30;
/// Last log lines shown.
const LAST_LINES: usize = 20;

/// The service's probes.
#[derive(Debug, Serialize)]
pub struct Probes {
    startup: Option<ProbeView>,
    readiness: Option<ProbeView>,
    liveness: Option<ProbeView>,
}

/// The body of the explain route.
#[derive(Debug, Serialize)]
pub struct Explanation {
    service: String,
    /// One sentence: what the service is doing and why.
    summary: String,
    state: ServiceState,
    last_exit: Option<ExitInfo>,
    probes: Probes,
    /// The service's most recent events, oldest first.
    events: Vec<Event>,
    /// The service's last log lines, oldest first.
    logs: Vec<LogLine>,
}

/// `GET /api/v1/services/{id}/explain`.
pub async fn explain(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Explanation>, ApiError> {
    Ok(Json(explanation(&app.steward, &id).await?))
}

/// Why the service `id` is in its state (the explain route's body; also the
/// `service_explain` tool's result).
pub async fn explanation(steward: &Steward, id: &str) -> Result<Explanation, ControlError> {
    let info = steward.get(id).await?;
    let logs = steward.logs(id, LAST_LINES).await?;
    let mut events: Vec<Event> = steward
        .tables()
        .events
        .history(None)
        .into_iter()
        .filter(|e| e.service == id)
        .collect();
    let keep_from = events.len().saturating_sub(RECENT_EVENTS);
    events.drain(..keep_from);
    let def = &info.definition;
    Ok(Explanation {
        service: id.to_string(),
        summary: summary(&info.state, def),
        last_exit: info.state.last_exit.clone(),
        probes: Probes {
            startup: def.startup.as_ref().map(ProbeView::of),
            readiness: def.readiness.as_ref().map(ProbeView::of),
            liveness: def.liveness.as_ref().map(ProbeView::of),
        },
        state: info.state,
        events,
        logs,
    })
}

/// One sentence on why the service is in its state, built from its status and the cause of
/// its last transition (`reason`).
pub fn summary(state: &ServiceState, def: &ServiceDefinition) -> String {
    let id = &state.id;
    let because = |fallback: &str| match &state.reason {
        Some(reason) => format!(": {reason}"),
        None if fallback.is_empty() => String::new(),
        None => format!(": {fallback}"),
    };
    let exit = state
        .last_exit
        .as_ref()
        .map(ExitInfo::describe)
        .unwrap_or_else(|| "exited".to_string());
    let pid = state.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let text = match state.status {
        ServiceStatus::Pending if !def.autostart => {
            format!("{id} is defined but not started: autostart is false, so it waits for a start")
        }
        ServiceStatus::Pending => format!("{id} is defined and not started yet"),
        ServiceStatus::Installing => format!("{id} is running its install step{}", because("")),
        ServiceStatus::Starting => format!("{id} is starting{}", because("")),
        ServiceStatus::Running if state.ready => format!("{id} is running{pid} and ready"),
        ServiceStatus::Running if state.health == Health::Unhealthy => format!(
            "{id} is running{pid} but not ready: its probes fail{}",
            because("")
        ),
        ServiceStatus::Running => {
            format!("{id} is running{pid} but not ready yet: its readiness probe has not passed")
        }
        ServiceStatus::Paused => format!(
            "{id} is paused{pid}: its processes are frozen (SIGSTOP) and its probes suspended until it is resumed"
        ),
        ServiceStatus::Stopping => format!("{id} is stopping{}", because("")),
        ServiceStatus::Stopped => format!("{id} is stopped{}", because("stopped on request")),
        ServiceStatus::Exited => format!(
            "{id} finished ({exit}) and is not restarted under its restart policy `{}`",
            def.restart.as_str()
        ),
        ServiceStatus::Backoff => format!(
            "{id} ended ({exit}) and is waiting to be restarted{} (automatic restarts so far: {})",
            because(""),
            state.restart_count
        ),
        ServiceStatus::Failed => format!("{id} failed{}", because("it gave up")),
    };
    let text = match &state.log_file_error {
        Some(error) => format!(
            "{text}. Its log file cannot be written ({error}): lines are kept in the ring only, until the file takes writes again."
        ),
        None => format!("{text}."),
    };
    match &state.limits_not_enforced {
        Some(why) => format!("{text} Its limits are not enforced ({why}): it runs without them."),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommandSpec;

    #[test]
    fn summary_names_the_reason() {
        let def = ServiceDefinition::new("db", CommandSpec::Line("x".into()));
        let mut state = ServiceState::pending("db", "db", &[]);
        state.status = ServiceStatus::Failed;
        state.reason = Some("5 restarts in 1m > max_restarts 4".into());
        assert_eq!(
            summary(&state, &def),
            "db failed: 5 restarts in 1m > max_restarts 4."
        );
        state.status = ServiceStatus::Running;
        state.ready = true;
        state.pid = Some(42);
        assert_eq!(summary(&state, &def), "db is running (pid 42) and ready.");
    }

    #[test]
    fn summary_says_when_the_log_file_fails() {
        let def = ServiceDefinition::new("db", CommandSpec::Line("x".into()));
        let mut state = ServiceState::pending("db", "db", &[]);
        state.status = ServiceStatus::Running;
        state.ready = true;
        state.pid = Some(42);
        state.log_file_error =
            Some("writing log file /var/log/db.log: No space left on device (os error 28)".into());
        assert_eq!(
            summary(&state, &def),
            "db is running (pid 42) and ready. Its log file cannot be written (writing log file \
             /var/log/db.log: No space left on device (os error 28)): lines are kept in the ring \
             only, until the file takes writes again."
        );
    }
}
