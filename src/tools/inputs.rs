//! The input object of each tool, as Rust types: serde reads them (unknown fields are
//! errors) and schemars turns them into the JSON Schemas the tools are listed with, so a
//! schema cannot drift from what is accepted.

use schemars::JsonSchema;
use serde::Deserialize;

/// `service_list`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    /// Only the services that carry this tag.
    #[serde(default)]
    pub tag: Option<String>,
}

/// Tools that act on one service: `service_status`, `service_start`, `service_restart`,
/// `service_kill`, `service_pause`, `service_resume`, `service_explain`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    /// The service id (the key under `services:` in services.yml), e.g. `web`.
    pub id: String,
}

/// `service_stop`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopInput {
    /// The service id.
    pub id: String,
    /// Also stop the running services that depend on it, dependents first. Without it a
    /// stop that would leave dependents running without their dependency is refused.
    #[serde(default)]
    pub cascade: bool,
}

/// `service_logs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsInput {
    /// The service id.
    pub id: String,
    /// How many of the last lines to return (default 100, at most 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub tail: Option<usize>,
    /// Only lines with a sequence number greater than this (from an earlier result's
    /// `last_seq`), to read on without duplicates.
    #[serde(default)]
    pub since: Option<u64>,
}

/// `service_define`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineInput {
    /// The new service's id: lowercase letters, digits, `_` and `-`, starting with a
    /// letter or digit.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub id: String,
    /// The service in the schema of services.yml, as JSON: `command` (or `argv`) is
    /// required; `cwd`, `env`, `env_file`, `autostart`, `restart`
    /// (permanent|transient|temporary), `backoff`, `depends_on`, `readiness`, `liveness`,
    /// `tags`, `stop_signal`, `stop_timeout`, … as documented in docs/CONFIGURATION.md.
    /// Durations are text (`"10s"`). Relative paths resolve against the daemon's config
    /// directory.
    pub definition: serde_json::Map<String, serde_json::Value>,
    /// Also write it to `services.d/<id>.yml`, so it survives a restart of steward.
    #[serde(default)]
    pub persist: bool,
}

/// `service_remove`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveInput {
    /// The service id.
    pub id: String,
    /// Stop it first when it runs (otherwise removing a running service is refused).
    #[serde(default)]
    pub stop: bool,
}

/// `service_events`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsInput {
    /// Only events with a sequence number greater than this (from an earlier result's
    /// `last_seq`); without it, the most recent events.
    #[serde(default)]
    pub since: Option<u64>,
    /// Only events of this service.
    #[serde(default)]
    pub service: Option<String>,
    /// At most this many events (default 100, at most 1000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// `logs_search`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsSearchInput {
    /// What to look for: a substring, or a regular expression with `regex: true`.
    #[schemars(length(min = 1))]
    pub pattern: String,
    /// Search only this service's log (default: every service).
    #[serde(default)]
    pub id: Option<String>,
    /// Treat `pattern` as a regular expression (Rust `regex` syntax).
    #[serde(default)]
    pub regex: bool,
    /// Match case exactly (default: ignore case).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Lines of context before and after each match (default 0, at most 20).
    #[serde(default)]
    #[schemars(range(max = 20))]
    pub context: Option<usize>,
    /// At most this many matches (default 50, at most 500); `truncated` says when more
    /// matched.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub max_matches: Option<usize>,
}

/// Tools without parameters: `runtime_status`, `dependency_graph`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `reload`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadInput {
    /// Apply the plan. Without it (the default) the reload is a dry run: the plan is
    /// returned and nothing changes.
    #[serde(default)]
    pub apply: bool,
}
