//! `steward status [ID...]`: the services as a table (or `--json`, the states as the API
//! returns them).

use std::process::ExitCode;

use serde::Deserialize;
use steward::ServiceState;

use crate::cli::client::{Client, ClientError};
use crate::cli::style::Paint;
use crate::cli::{StatusArgs, out, out_json, table};

/// `GET /api/v1/services/{id}`: a service's state (its `definition` is not needed here).
#[derive(Debug, Deserialize)]
pub struct ServiceDetail {
    /// The state.
    pub state: ServiceState,
}

/// One service's state.
pub async fn get_state(client: &Client, id: &str) -> Result<ServiceState, ClientError> {
    let detail: ServiceDetail = client.get(&["api", "v1", "services", id], &[]).await?;
    Ok(detail.state)
}

/// Every service's state, in definition order.
pub async fn list(client: &Client) -> Result<Vec<ServiceState>, ClientError> {
    client.get(&["api", "v1", "services"], &[]).await
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
