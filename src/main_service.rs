//! `settings.exit_with`: a container's main service.
//!
//! In a container the exit code of PID 1 is the container's verdict, and orchestrators
//! act on it (a Job's success, a restart policy, `docker run`'s status). When steward is
//! PID 1 for one main program and its helpers, the container should end when that
//! program ends, with its code, as it would have without steward in between: `exit_with`
//! names that service. [`ended`] resolves once the service has ended *for good* (exited
//! and not to be restarted, failed, or stopped), and [`exit_code`] turns how it ended into
//! the code the `steward` binary exits with, after stopping the rest gracefully: its own
//! exit code, 128 + the signal number when a signal ended it (a shell's convention), 1
//! when it never ran (it failed before a process existed).

use crate::error::ControlError;
use crate::events::EventItem;
use crate::handle::Steward;
use crate::state::{ServiceState, ServiceStatus};

/// True for the statuses a service stays in until someone starts it again.
pub fn has_ended(status: ServiceStatus) -> bool {
    matches!(
        status,
        ServiceStatus::Exited | ServiceStatus::Failed | ServiceStatus::Stopped
    )
}

/// The code a process would give its parent for the service's last exit (see the module
/// docs).
pub fn exit_code(state: &ServiceState) -> u8 {
    let Some(exit) = &state.last_exit else {
        return 1;
    };
    if let Some(code) = exit.code {
        return u8::try_from(code & 0xff).unwrap_or(1);
    }
    exit.signal
        .as_deref()
        .and_then(|name| crate::process::parse_signal(name).ok())
        .map_or(1, |signal| 128u8.saturating_add(signal as i32 as u8))
}

/// Waits until service `id` has ended for good, then gives its state. A service that has
/// ended already resolves at once. Events are what wake it (a status change always
/// emits one, after the state table holds the new status).
pub async fn ended(steward: &Steward, id: &str) -> Result<ServiceState, ControlError> {
    let mut events = steward.subscribe_events(None).await?;
    loop {
        if let Some(state) = steward.tables().state(id)
            && has_ended(state.status)
        {
            return Ok(state);
        }
        loop {
            match events.recv().await {
                Some(EventItem::Event(event)) if event.service == id => break,
                // A gap may have hidden the event that matters: look at the table again.
                Some(EventItem::Gap { .. }) => break,
                Some(EventItem::Event(_)) => {}
                None => {
                    return Err(ControlError::Unavailable {
                        id: id.to_string(),
                        reason: "the runtime's event stream ended".to_string(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ExitInfo;

    fn ended_with(code: Option<i32>, signal: Option<&str>) -> ServiceState {
        let mut state = ServiceState::pending("app", "app", &[]);
        state.status = ServiceStatus::Exited;
        state.last_exit = Some(ExitInfo {
            code,
            signal: signal.map(str::to_string),
            at: chrono::Utc::now(),
        });
        state
    }

    #[test]
    fn an_exit_code_is_passed_on_as_it_is() {
        assert_eq!(exit_code(&ended_with(Some(3), None)), 3);
        assert_eq!(exit_code(&ended_with(Some(0), None)), 0);
    }

    #[test]
    fn a_signal_becomes_128_plus_its_number() {
        assert_eq!(exit_code(&ended_with(None, Some("SIGKILL"))), 137);
        assert_eq!(exit_code(&ended_with(None, Some("SIGTERM"))), 143);
    }

    #[test]
    fn a_service_that_never_ran_gives_1() {
        let state = ServiceState::pending("app", "app", &[]);
        assert_eq!(exit_code(&state), 1);
    }

    #[test]
    fn only_exited_failed_and_stopped_are_ends() {
        assert!(has_ended(ServiceStatus::Exited));
        assert!(has_ended(ServiceStatus::Failed));
        assert!(has_ended(ServiceStatus::Stopped));
        assert!(!has_ended(ServiceStatus::Backoff));
        assert!(!has_ended(ServiceStatus::Running));
        assert!(!has_ended(ServiceStatus::Pending));
    }
}
