//! Agent tools (DESIGN §7): one registry of typed tools over the [`Steward`] handle.
//!
//! Each tool has a name, a description written for a model (what it does, when to use
//! it, what it returns), an input JSON Schema generated from a Rust type (schemars),
//! MCP annotations (read-only, destructive, idempotent), and an execution that returns
//! JSON. The same definitions serve the library ([`all_tools`], [`Tools::call`]), the
//! HTTP API (`GET /api/v1/tools`, `POST /api/v1/tools/{name}`), `/mcp` inside the daemon
//! and `steward mcp` (stdio, a client of the daemon).
//!
//! An embedding app's actor calls a tool with a [`ToolCall`] message value: every tool is
//! itself a sequence of [`crate::RootMsg`]s to the root supervisor.
//!
//! Secrets are masked in every result: definitions are shown through
//! [`DefinitionView`](crate::api::view::DefinitionView), and the values of secret-looking
//! variables of any defined service are replaced by `***` wherever they appear (a log
//! line that prints a token, an event cause). See `mask`.
//!
//! * `inputs` — the input types (their schemas are the tools' schemas);
//! * `catalog` — names, descriptions and annotations;
//! * `service` — the per-service tools; `runtime` — events, search, status, reload, graph;
//! * `search` — the log search over a ring's lines; `json_path` — where in a JSON body a
//!   definition problem is; `mask` — secret values out of results.

mod catalog;
mod inputs;
mod json_path;
mod mask;
mod runtime;
mod search;
mod service;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Steward;
use crate::error::{ConfigErrors, ControlError};

pub use catalog::all_tools;
pub use inputs::*;
pub use search::{SearchMatch, search_lines};

/// MCP tool annotations: hints a client uses to decide whether to ask before a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    /// The tool changes nothing.
    pub read_only: bool,
    /// The tool may end work in progress (stop, kill, remove, apply a reload).
    pub destructive: bool,
    /// Calling it twice with the same input has no further effect.
    pub idempotent: bool,
}

/// One tool as listed by `GET /api/v1/tools` and MCP's `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The tool's name (`service_start`).
    pub name: String,
    /// A short human title.
    pub title: String,
    /// What it does, when to use it, what it returns.
    pub description: String,
    /// The JSON Schema (2020-12) of its input object.
    pub input_schema: Value,
    /// Read-only / destructive / idempotent hints.
    pub annotations: Annotations,
}

/// A tool call as a message value: the tool's name and its input object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// Its input object (`{}` when it takes none).
    #[serde(default = "empty_object")]
    pub input: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// One problem with a tool's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputProblem {
    /// The JSON path of the offending value (`$.definition.restart`), `$` for the whole
    /// input.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Why a tool call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// No tool has this name.
    #[error("no tool named `{0}`; GET /api/v1/tools lists them")]
    UnknownTool(String),
    /// The input does not match the tool's schema (or a definition is invalid).
    #[error("{message}")]
    InvalidInput {
        /// Summary.
        message: String,
        /// Each problem, with its JSON path.
        problems: Vec<InputProblem>,
    },
    /// The tool changes the runtime and these tools are read-only ([`Tools::read_only`]).
    #[error("`{0}` changes the runtime; only read-only tools are offered here")]
    ReadOnly(String),
    /// The runtime refused or failed the request.
    #[error("{0}")]
    Control(#[from] ControlError),
}

impl ToolError {
    /// The machine-readable code: `unknown_tool`, `invalid_input`, `forbidden`, or the
    /// library's code.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::ReadOnly(_) => "forbidden",
            ToolError::InvalidInput { .. } => "invalid_input",
            ToolError::Control(e) => e.code(),
        }
    }

    /// The error as JSON: `{"error": {"code", "message", "details"?}}`, the API's shape.
    pub fn to_json(&self) -> Value {
        let mut error = serde_json::json!({"code": self.code(), "message": self.to_string()});
        if let ToolError::InvalidInput { problems, .. } = self {
            error["details"] = serde_json::to_value(problems).unwrap_or(Value::Null);
        }
        if let ToolError::Control(ControlError::DependentsRunning { dependents, .. }) = self {
            error["dependents"] = serde_json::json!(dependents);
        }
        serde_json::json!({ "error": error })
    }

    fn input(tool: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        let message = message.into();
        ToolError::InvalidInput {
            message: format!("invalid input for {tool}: {message}"),
            problems: vec![InputProblem {
                path: "$".into(),
                message,
                hint,
            }],
        }
    }

    fn definition(errors: &ConfigErrors, paths: &json_path::LinePaths) -> Self {
        let problems: Vec<InputProblem> = errors
            .0
            .iter()
            .map(|e| InputProblem {
                path: paths.path_for(e.line, &e.message),
                message: e.message.clone(),
                hint: e.hint.clone(),
            })
            .collect();
        let message = match problems.as_slice() {
            [one] => format!("invalid definition at {}: {}", one.path, one.message),
            many => format!("invalid definition: {} problems", many.len()),
        };
        ToolError::InvalidInput { message, problems }
    }
}

/// The tools bound to a runtime: what [`Tools::call`] runs against.
#[derive(Debug, Clone)]
pub struct Tools {
    steward: Steward,
    /// Relative paths of a `service_define` definition resolve against it, as for
    /// `POST /api/v1/services`.
    config_dir: Arc<PathBuf>,
    /// Only the read-only tools are listed and callable.
    read_only: bool,
}

impl Tools {
    /// The tools over `steward`; definitions resolve relative paths against the
    /// runtime's config directory, else the current directory.
    pub fn new(steward: Steward) -> Self {
        let config_dir = steward
            .tables()
            .config_dir
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        Tools {
            steward,
            config_dir: Arc::new(config_dir),
            read_only: false,
        }
    }

    /// Resolves relative paths of defined services against `dir`.
    pub fn with_config_dir(mut self, dir: PathBuf) -> Self {
        self.config_dir = Arc::new(dir);
        self
    }

    /// Offers only the read-only tools (an agent that may look but not touch).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The tools offered: [`all_tools`], or only the read-only ones.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        all_tools()
            .into_iter()
            .filter(|t| !self.read_only || t.annotations.read_only)
            .collect()
    }

    /// Runs the tool `name` with `input` (the bare input object); the result is JSON with
    /// every secret masked.
    pub async fn call(&self, name: &str, input: Value) -> Result<Value, ToolError> {
        let Some(annotations) = catalog::annotations_of(name) else {
            return Err(ToolError::UnknownTool(name.to_string()));
        };
        if self.read_only && !annotations.read_only {
            return Err(ToolError::ReadOnly(name.to_string()));
        }
        let input = match input {
            Value::Null => empty_object(),
            other => other,
        };
        let result = self.dispatch(name, input).await?;
        Ok(mask::mask_secrets(result, &self.steward))
    }

    /// Runs a [`ToolCall`].
    pub async fn run(&self, call: ToolCall) -> Result<Value, ToolError> {
        self.call(&call.name, call.input).await
    }

    async fn dispatch(&self, name: &str, input: Value) -> Result<Value, ToolError> {
        use crate::control::ControlAction::*;
        let s = &self.steward;
        match name {
            "service_list" => service::list(s, parse(name, input)?).await,
            "service_status" => service::status(s, parse(name, input)?).await,
            "service_start" => service::control(s, parse(name, input)?, Start).await,
            "service_stop" => service::stop(s, parse(name, input)?).await,
            "service_restart" => service::control(s, parse(name, input)?, Restart).await,
            "service_kill" => service::control(s, parse(name, input)?, Kill).await,
            "service_pause" => service::control(s, parse(name, input)?, Pause).await,
            "service_resume" => service::control(s, parse(name, input)?, Resume).await,
            "service_logs" => service::logs(s, parse(name, input)?).await,
            "service_define" => service::define(s, &self.config_dir, parse(name, input)?).await,
            "service_remove" => service::remove(s, parse(name, input)?).await,
            "service_explain" => service::explain(s, parse(name, input)?).await,
            "service_events" => runtime::events(s, parse(name, input)?).await,
            "logs_search" => runtime::logs_search(s, parse(name, input)?).await,
            "runtime_status" => runtime::status(s, parse(name, input)?).await,
            "reload" => runtime::reload(s, parse(name, input)?).await,
            "dependency_graph" => runtime::graph(s, parse(name, input)?).await,
            other => Err(ToolError::UnknownTool(other.to_string())),
        }
    }
}

/// The input object as the tool's input type; a mismatch is an [`ToolError::InvalidInput`]
/// naming the field.
fn parse<T: serde::de::DeserializeOwned>(tool: &str, input: Value) -> Result<T, ToolError> {
    if !input.is_object() {
        return Err(ToolError::input(
            tool,
            format!("the input must be a JSON object, not {}", kind(&input)),
            Some("send {} for a tool without parameters".into()),
        ));
    }
    serde_json::from_value(input).map_err(|e| {
        ToolError::input(
            tool,
            e.to_string(),
            Some(format!(
                "see the input schema of {tool} in GET /api/v1/tools"
            )),
        )
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Any serializable result as JSON.
fn json<T: Serialize>(value: T) -> Result<Value, ToolError> {
    serde_json::to_value(value)
        .map_err(|e| ToolError::Control(ControlError::Runtime(format!("serializing: {e}"))))
}
