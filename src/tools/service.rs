//! The tools that act on one service: list, status, the control verbs, logs, define,
//! remove and explain. Each is the library call the matching HTTP route makes, with the
//! same views (definitions through [`DefinitionView`], explain through the explain route's
//! own function).

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::inputs::*;
use super::json_path::LinePaths;
use super::{ToolError, json};
use crate::Steward;
use crate::api::view::DefinitionView;
use crate::config;
use crate::control::ControlAction;
use crate::error::ControlError;
use crate::logs::LogLine;
use crate::state::ServiceState;

/// Default and largest `tail` of `service_logs`.
const DEFAULT_TAIL: usize = 100;
const MAX_TAIL: usize = 1000;

/// `service_list`.
pub async fn list(steward: &Steward, input: ListInput) -> Result<Value, ToolError> {
    let services = match input.tag {
        Some(tag) => steward.list_by_tag(&tag).await?,
        None => steward.list().await?,
    };
    Ok(serde_json::json!({ "services": services }))
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    state: ServiceState,
    definition: DefinitionView,
}

/// `service_status`.
pub async fn status(steward: &Steward, input: ServiceInput) -> Result<Value, ToolError> {
    let info = steward.get(&input.id).await?;
    json(Detail {
        state: info.state,
        definition: DefinitionView::of(&info.definition),
    })
}

/// `service_start`, `service_restart`, `service_kill`, `service_pause`, `service_resume`.
pub async fn control(
    steward: &Steward,
    input: ServiceInput,
    action: ControlAction,
) -> Result<Value, ToolError> {
    tracing::info!(service = %input.id, %action, "control requested by a tool");
    json(steward.control(&input.id, action).await?)
}

/// `service_stop`, with `cascade`: the running dependents first.
pub async fn stop(steward: &Steward, input: StopInput) -> Result<Value, ToolError> {
    tracing::info!(service = %input.id, cascade = input.cascade, "stop requested by a tool");
    if !input.cascade {
        return json(steward.stop(&input.id).await?);
    }
    let mut also_stopped = Vec::new();
    let mut own = None;
    for (service, result) in steward.stop_cascade(&input.id).await? {
        let state = result?;
        if service == input.id {
            own = Some(state);
        } else {
            also_stopped.push(state);
        }
    }
    let state = match own {
        Some(state) => state,
        None => steward.get(&input.id).await?.state,
    };
    let mut value = json(state)?;
    value["also_stopped"] = json(also_stopped)?;
    Ok(value)
}

#[derive(Serialize)]
struct Logs {
    service: String,
    lines: Vec<LogLine>,
    /// The newest line's seq (pass it as `since` to read on); 0 when the log is empty.
    last_seq: u64,
}

/// `service_logs`.
pub async fn logs(steward: &Steward, input: LogsInput) -> Result<Value, ToolError> {
    let tail = input.tail.unwrap_or(DEFAULT_TAIL).clamp(1, MAX_TAIL);
    let lines = match input.since {
        None => steward.logs(&input.id, tail).await?,
        Some(since) => {
            let mut lines: Vec<LogLine> = steward
                .logs(&input.id, usize::MAX)
                .await?
                .into_iter()
                .filter(|l| l.seq > since)
                .collect();
            lines.truncate(tail);
            lines
        }
    };
    let last_seq = match (lines.last(), input.since) {
        (Some(line), _) => line.seq,
        (None, Some(since)) => since,
        (None, None) => 0,
    };
    json(Logs {
        service: input.id,
        lines,
        last_seq,
    })
}

/// `service_define`: the definition goes through the parser and checks of
/// `POST /api/v1/services`; each problem is answered with its JSON path and hint.
pub async fn define(
    steward: &Steward,
    config_dir: &Path,
    input: DefineInput,
) -> Result<Value, ToolError> {
    let body = Value::Object(input.definition);
    let definition = config::definition_from_json(&input.id, &body, config_dir).map_err(|e| {
        let mut without_id = body.clone();
        if let Some(object) = without_id.as_object_mut() {
            object.remove("id");
        }
        ToolError::definition(&e, &LinePaths::of(&without_id, "$.definition"))
    })?;
    let to_save = input.persist.then(|| definition.clone());
    tracing::info!(service = %input.id, "defining a service by a tool");
    let state = match steward.define(definition).await {
        Ok(state) => state,
        // Defined; its start failed and its state says why.
        Err(ControlError::StartFailed { .. } | ControlError::DependencyFailed { .. }) => {
            steward.get(&input.id).await?.state
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(definition) = to_save {
        config::save_service(&definition, config_dir).map_err(|e| ControlError::SaveFailed {
            id: input.id.clone(),
            reason: format!("it is defined but could not be persisted: {e}"),
        })?;
    }
    json(state)
}

/// `service_remove`, stopping it first with `stop: true`.
pub async fn remove(steward: &Steward, input: RemoveInput) -> Result<Value, ToolError> {
    tracing::info!(service = %input.id, stop = input.stop, "remove requested by a tool");
    if input.stop {
        let state = steward.get(&input.id).await?.state;
        if state.status.is_active() {
            steward.stop(&input.id).await?;
        }
    }
    steward.remove(&input.id).await?;
    Ok(serde_json::json!({ "removed": input.id }))
}

/// `service_explain`.
pub async fn explain(steward: &Steward, input: ServiceInput) -> Result<Value, ToolError> {
    json(crate::api::explain::explanation(steward, &input.id).await?)
}
