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
    }
    Ok(ExitCode::SUCCESS)
}
