//! `steward status [ID...]`: the services as a table (or `--json`, the states as the API
//! returns them).

use std::process::ExitCode;

use serde::Deserialize;
use steward::ServiceState;

use crate::cli::client::{Client, ClientError};
use crate::cli::style::Paint;
use crate::cli::{StatusArgs, out, out_json, table};

/// `GET /api/v1/services/{id}`: a service's state and its definition, either nested
/// (`{"state": …, "definition": …}`) or with the state's fields at the top level next to
/// `definition`. Both are read, so the client does not hang on one layout.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DetailBody {
    /// `{"state": ServiceState, "definition": …}`.
    Nested {
        /// The state.
        state: ServiceState,
    },
    /// `{…ServiceState, "definition": …}`.
    Flat(ServiceState),
}

/// `GET /api/v1/services`: a JSON array of states, or `{"services": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListBody {
    /// `[ServiceState, …]`.
    Bare(Vec<ServiceState>),
    /// `{"services": [ServiceState, …]}`.
    Wrapped {
        /// The states.
        services: Vec<ServiceState>,
    },
}

/// One service's state.
pub async fn get_state(client: &Client, id: &str) -> Result<ServiceState, ClientError> {
    let body: DetailBody = client.get(&["api", "v1", "services", id], &[]).await?;
    Ok(match body {
        DetailBody::Nested { state } | DetailBody::Flat(state) => state,
    })
}

/// Every service's state, in definition order.
pub async fn list(client: &Client) -> Result<Vec<ServiceState>, ClientError> {
    let body: ListBody = client.get(&["api", "v1", "services"], &[]).await?;
    Ok(match body {
        ListBody::Bare(services) | ListBody::Wrapped { services } => services,
    })
}

/// Runs `steward status`.
pub async fn run(client: &Client, args: &StatusArgs, json: bool) -> anyhow::Result<ExitCode> {
    let states = if args.ids.is_empty() {
        list(client).await?
    } else {
        let mut states = Vec::with_capacity(args.ids.len());
        for id in &args.ids {
            states.push(get_state(client, id).await?);
        }
        states
    };
    if json {
        out_json(&states)?;
    } else if states.is_empty() {
        out("no services defined\n")?;
    } else {
        out(&table::render(&states, chrono::Utc::now(), Paint::stdout()))?;
        out(&notify_notes(&states))?;
        out(&limits_notes(&states))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Under the table, what services said about themselves over the notify protocol
/// (`STATUS=`), one `id: text` line each after a blank line; nothing when none did.
pub fn notify_notes(states: &[ServiceState]) -> String {
    let notes: Vec<String> = states
        .iter()
        .filter_map(|s| {
            let text = s.notify_status.as_deref()?.trim();
            (!text.is_empty()).then(|| format!("{}: {}\n", s.id, one_line(text)))
        })
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!("\n{}", notes.concat())
    }
}

/// Under the table, the services whose `limits` are not enforced, one
/// `id: limits not enforced: <why>` line each after a blank line; nothing when none.
pub fn limits_notes(states: &[ServiceState]) -> String {
    let notes: Vec<String> = states
        .iter()
        .filter_map(|s| {
            let why = s.limits_not_enforced.as_deref()?;
            Some(format!(
                "{}: limits not enforced: {}\n",
                s.id,
                one_line(why)
            ))
        })
        .collect();
    if notes.is_empty() {
        String::new()
    } else {
        format!("\n{}", notes.concat())
    }
}

/// A service's text on one terminal line: control characters shown as spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_statuses_follow_the_table_one_line_each() {
        let mut app = ServiceState::pending("app", "app", &[]);
        let quiet = ServiceState::pending("quiet", "quiet", &[]);
        assert_eq!(notify_notes(&[app.clone(), quiet.clone()]), "");
        app.notify_status = Some("serving\t3 clients\n".to_string());
        assert_eq!(notify_notes(&[app, quiet]), "\napp: serving 3 clients\n");
    }

    #[test]
    fn unenforced_limits_are_named_under_the_table() {
        let mut api = ServiceState::pending("api", "api", &[]);
        let plain = ServiceState::pending("plain", "plain", &[]);
        assert_eq!(limits_notes(&[api.clone(), plain.clone()]), "");
        api.limits_not_enforced = Some("cgroups are off (settings.cgroups: false)".into());
        assert_eq!(
            limits_notes(&[plain, api]),
            "\napi: limits not enforced: cgroups are off (settings.cgroups: false)\n"
        );
    }
}
