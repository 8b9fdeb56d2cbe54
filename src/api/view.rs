//! JSON views of library types that are not serializable themselves.
//!
//! [`DefinitionView`] shows a [`ServiceDefinition`] in the shape of the YAML schema (DESIGN
//! §2): durations as humantime text (`"10s"`), signals by name, probes as
//! `{"http": {…}, "interval": "2s", …}`. Values of environment variables whose name looks
//! like a secret are shown as `"***"`, through [`process::mask_env`](crate::process::mask_env)
//! (the one place that decides): a definition is readable by anyone with API access,
//! including the dashboard, and a credential has no business there. Values from an
//! `env_file` are never part of a definition (only its path is).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::config::{CommandSpec, ProbeCheck, ProbeSpec, ServiceDefinition};
use crate::process::mask_env;
use crate::process::secrets::MASK;

/// A duration as humantime text (`"10s"`, `"1m 30s"`).
fn human(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// A service definition as JSON, in the YAML schema's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefinitionView {
    /// Service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The command line, when given as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The argv list, when given as one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Working directory.
    pub cwd: String,
    /// Variables set by the definition (secrets redacted).
    pub env: BTreeMap<String, String>,
    /// The `KEY=VALUE` file read at each start.
    pub env_file: Option<String>,
    /// Variables that must be set.
    pub required_env: Vec<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Started at boot and when defined.
    pub autostart: bool,
    /// `permanent`, `transient` or `temporary`.
    pub restart: &'static str,
    /// Delays before each restart.
    pub backoff: Vec<String>,
    /// Restart intensity: restarts allowed ...
    pub max_restarts: u32,
    /// ... within this window.
    pub restart_window: String,
    /// Signal sent on stop.
    pub stop_signal: &'static str,
    /// Grace before SIGKILL.
    pub stop_timeout: String,
    /// Readiness probe.
    pub readiness: Option<ProbeView>,
    /// Liveness probe.
    pub liveness: Option<ProbeView>,
    /// Startup probe.
    pub startup: Option<ProbeView>,
    /// Ring size in lines.
    pub log_lines: usize,
    /// File sink.
    pub log_file: Option<String>,
    /// Rotation size of the sink, in bytes.
    pub log_max_size: u64,
    /// Old sink files kept.
    pub log_max_files: u32,
    /// The file that defines the service (null when defined over the API or in code).
    pub source_file: Option<String>,
    /// The services this one waits for, each with its condition (`started`, `healthy`,
    /// `completed`): what the dashboard's dependency graph draws.
    pub depends_on: BTreeMap<String, &'static str>,
    /// `watchdog:` (`30s`): the longest time between two `WATCHDOG=1` of the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchdog: Option<String>,
    /// `process`, or `function` for a function service (defined in code; no YAML form).
    pub kind: &'static str,
    /// The function's name, for a function service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// `limits:` as the YAML writes them (absent when none is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitsView>,
}

/// A definition's `limits:` in the YAML schema's shape (`{"memory": "512MiB", "cpu":
/// "1.5", "pids": 256}`), so the view can be sent back as a definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitsView {
    /// `memory.max` as a size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `cpu.max` in cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// `pids.max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

impl LimitsView {
    /// The view of `limits`, `None` when none is set.
    pub fn of(limits: &crate::config::Limits) -> Option<Self> {
        (!limits.is_empty()).then(|| LimitsView {
            memory: limits.memory.map(crate::config::size_text),
            cpu: limits.cpu_millicores.map(crate::config::cpu_text),
            pids: limits.pids,
        })
    }
}

impl DefinitionView {
    /// The view of `def`, secrets redacted.
    pub fn of(def: &ServiceDefinition) -> Self {
        let (command, argv) = match (&def.command, &def.function) {
            (_, Some(_)) => (None, None),
            (CommandSpec::Line(line), None) => (Some(line.clone()), None),
            (CommandSpec::Argv(argv), None) => (None, Some(argv.clone())),
        };
        DefinitionView {
            id: def.id.clone(),
            name: def.name.clone(),
            command,
            argv,
            cwd: path_text(&def.cwd),
            env: mask_env(&def.env, &BTreeSet::new()),
            env_file: def.env_file.as_deref().map(path_text),
            required_env: def.required_env.clone(),
            tags: def.tags.clone(),
            autostart: def.autostart,
            restart: def.restart.as_str(),
            backoff: def.backoff.iter().copied().map(human).collect(),
            max_restarts: def.max_restarts,
            restart_window: human(def.restart_window),
            stop_signal: def.stop_signal.as_str(),
            stop_timeout: human(def.stop_timeout),
            readiness: def.readiness.as_ref().map(ProbeView::of),
            liveness: def.liveness.as_ref().map(ProbeView::of),
            startup: def.startup.as_ref().map(ProbeView::of),
            log_lines: def.log_lines,
            log_file: def.log_file.as_deref().map(path_text),
            log_max_size: def.log_max_size,
            log_max_files: def.log_max_files,
            source_file: def.source_file.as_deref().map(path_text),
            depends_on: def
                .depends_on
                .iter()
                .map(|d| (d.service.clone(), d.condition.as_str()))
                .collect(),
            watchdog: def.watchdog.map(human),
            kind: def.kind().as_str(),
            function: def.function.as_ref().map(|f| f.name.clone()),
            limits: LimitsView::of(&def.limits),
        }
    }
}

/// A probe as JSON: exactly one of `http`, `tcp`, `command`, `function`, then its schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeView {
    /// `{"url": …, "expect_status": 200}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbeView>,
    /// `host:port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    /// The command line (an argv list is joined with spaces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The name of a function probe (no YAML form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// `true` for `readiness: { notify: true }` (the service's `READY=1`; nothing polled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
    /// Time between runs.
    pub interval: String,
    /// Time one run may take.
    pub timeout: String,
    /// Wait before the first run.
    pub initial_delay: String,
    /// Consecutive failures before unhealthy.
    pub failure_threshold: u32,
    /// Consecutive successes before healthy.
    pub success_threshold: u32,
}

/// The target of an HTTP probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpProbeView {
    /// The URL.
    pub url: String,
    /// The status that counts as healthy.
    pub expect_status: u16,
}

impl ProbeView {
    /// The view of `spec`.
    pub fn of(spec: &ProbeSpec) -> Self {
        let mut view = ProbeView {
            http: None,
            tcp: None,
            command: None,
            function: None,
            notify: None,
            interval: human(spec.interval),
            timeout: human(spec.timeout),
            initial_delay: human(spec.initial_delay),
            failure_threshold: spec.failure_threshold,
            success_threshold: spec.success_threshold,
        };
        match &spec.check {
            ProbeCheck::Http { url, expect_status } => {
                view.http = Some(HttpProbeView {
                    url: mask_url_password(url),
                    expect_status: *expect_status,
                })
            }
            ProbeCheck::Tcp { address } => view.tcp = Some(address.clone()),
            ProbeCheck::Command { command } => view.command = Some(command.to_string()),
            ProbeCheck::Function(f) => view.function = Some(f.name.clone()),
            ProbeCheck::Notify => view.notify = Some(true),
        }
        view
    }
}

/// `url` with the password of its userinfo (`http://user:pass@host/`) shown as `***`.
fn mask_url_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = parsed.set_password(Some(MASK));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const REDACTED: &str = MASK;

    #[test]
    fn a_probe_url_password_is_masked() {
        assert_eq!(
            mask_url_password("http://probe:hunter2@127.0.0.1:8080/health"),
            "http://probe:***@127.0.0.1:8080/health"
        );
        assert_eq!(
            mask_url_password("http://127.0.0.1:8080/health"),
            "http://127.0.0.1:8080/health"
        );
    }

    #[test]
    fn secret_looking_variables_are_redacted_and_others_kept() {
        let mut def = ServiceDefinition::new("web", CommandSpec::Line("run".into()));
        for (k, v) in [
            ("API_KEY", "k"),
            ("github_token", "t"),
            ("DbPassword", "p"),
            ("CLIENT_SECRET", "s"),
            ("PORT", "8080"),
        ] {
            def.env.insert(k.into(), v.into());
        }
        let view = DefinitionView::of(&def);
        assert_eq!(view.env["API_KEY"], REDACTED);
        assert_eq!(view.env["github_token"], REDACTED);
        assert_eq!(view.env["DbPassword"], REDACTED);
        assert_eq!(view.env["CLIENT_SECRET"], REDACTED);
        assert_eq!(view.env["PORT"], "8080");
    }

    #[test]
    fn durations_are_humantime_text() {
        let mut def = ServiceDefinition::new("web", CommandSpec::Argv(vec!["a".into()]));
        def.readiness = Some(ProbeSpec::new(ProbeCheck::Tcp {
            address: "127.0.0.1:1".into(),
        }));
        let json = serde_json::to_value(DefinitionView::of(&def)).expect("serializable");
        assert_eq!(json["stop_timeout"], "10s");
        assert_eq!(json["restart_window"], "5m");
        assert_eq!(json["backoff"][0], "1s");
        assert_eq!(json["argv"][0], "a");
        assert!(json.get("command").is_none());
        assert_eq!(json["readiness"]["tcp"], "127.0.0.1:1");
        assert_eq!(json["readiness"]["interval"], "2s");
        assert_eq!(json["stop_signal"], "SIGTERM");
    }
}
