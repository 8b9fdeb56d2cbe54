//! Reload plans (DESIGN §4 "reload", §10 "Persisting"): what applying a freshly loaded
//! [`Config`] to the running definitions would do, service by service, with why.
//!
//! The plan is pure: the runtime applies it (and `reload --dry-run` only shows it).
//!
//! * a service in the files and not running → `start` (the runtime honours `autostart`:
//!   with `autostart: false` it is defined, not started);
//! * a running file-defined service gone from the files → `stop` (and removed);
//! * a service whose definition changed → `restart`, naming the changed keys, compared
//!   field by field; so is one whose `env_file` *contents* changed since it started,
//!   which its [`fingerprint`] at start reveals (the definition itself is the same);
//! * anything else → `keep` (same process, same pid).
//!
//! Services defined at run time (`source_file: None`) and absent from the files are
//! kept: a reload only diffs what the files define. When a file now defines the same id
//! (after a `save`, typically) the file's definition takes over: kept when equal,
//! restarted when not. Which file defines a service is not itself a change.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, ServiceDefinition};

/// What a reload does to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanAction {
    /// Define it (and start it when `autostart`).
    Start,
    /// Stop it and remove it.
    Stop,
    /// Its definition changed: replace it, restarting the process if it was running.
    Restart,
    /// Leave it alone.
    Keep,
}

/// One service in a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    /// The service id.
    pub id: String,
    /// What happens to it.
    pub action: PlanAction,
    /// Why, in words a person can act on (`"env, stop_timeout changed"`).
    pub why: String,
}

/// Every service a reload touches or keeps: the files' services in file order, then the
/// running ones the files no longer define.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ReloadPlan {
    /// One entry per service.
    pub entries: Vec<PlanEntry>,
}

impl ReloadPlan {
    /// True when applying the plan changes nothing.
    pub fn is_noop(&self) -> bool {
        self.entries.iter().all(|e| e.action == PlanAction::Keep)
    }
}

/// A hash of everything that shapes the service's process: every field of the definition
/// except `source_file`, and the current bytes of its `env_file` (an unreadable one hashes
/// as such). The runtime keeps the fingerprint taken when it started the service and
/// passes it to [`plan_reload`]. Stable within one build of steward, not across builds.
pub fn fingerprint(def: &ServiceDefinition) -> u64 {
    let mut hasher = DefaultHasher::new();
    definition_hash(def).hash(&mut hasher);
    env_file_hash(def).hash(&mut hasher);
    hasher.finish()
}

fn definition_hash(def: &ServiceDefinition) -> u64 {
    let mut without_file = def.clone();
    without_file.source_file = None;
    let mut hasher = DefaultHasher::new();
    // Debug covers every field (a function probe by its name), and nothing in a definition
    // prints differently for equal values.
    format!("{without_file:?}").hash(&mut hasher);
    hasher.finish()
}

fn env_file_hash(def: &ServiceDefinition) -> Option<u64> {
    let bytes = crate::process::regular_file::read_regular(
        def.env_file.as_ref()?,
        crate::process::environment::ENV_FILE_MAX_BYTES,
    )
    .ok()?;
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// The keys whose values differ between two definitions of a service, in the order of
/// the file schema (`command` covers `argv`; `source_file` is not compared).
pub fn changed_keys(old: &ServiceDefinition, new: &ServiceDefinition) -> Vec<&'static str> {
    // Destructured in full so that a new field cannot be forgotten here.
    let ServiceDefinition {
        id: _,
        name,
        command,
        cwd,
        env,
        env_file,
        required_env,
        tags,
        autostart,
        restart,
        backoff,
        max_restarts,
        restart_window,
        stop_signal,
        stop_timeout,
        readiness,
        liveness,
        startup,
        log_lines,
        log_file,
        log_max_size,
        log_max_files,
        source_file: _,
        depends_on,
        install,
        source,
        detached,
        stop_command,
        pid_file,
        write_env_file,
        user,
        group,
        watchdog,
        function,
        max_memory,
        limits,
    } = old;
    let mut keys = Vec::new();
    let mut note = |key: &'static str, differs: bool| {
        if differs {
            keys.push(key);
        }
    };
    note("name", *name != new.name);
    note("command", *command != new.command);
    note("cwd", *cwd != new.cwd);
    note("env", *env != new.env);
    note("env_file", *env_file != new.env_file);
    note("required_env", *required_env != new.required_env);
    note("tags", *tags != new.tags);
    note("autostart", *autostart != new.autostart);
    note("restart", *restart != new.restart);
    note("backoff", *backoff != new.backoff);
    note("max_restarts", *max_restarts != new.max_restarts);
    note("restart_window", *restart_window != new.restart_window);
    note("stop_signal", *stop_signal != new.stop_signal);
    note("stop_timeout", *stop_timeout != new.stop_timeout);
    note("readiness", *readiness != new.readiness);
    note("liveness", *liveness != new.liveness);
    note("startup", *startup != new.startup);
    note("log_lines", *log_lines != new.log_lines);
    note("log_file", *log_file != new.log_file);
    note("log_max_size", *log_max_size != new.log_max_size);
    note("log_max_files", *log_max_files != new.log_max_files);
    note("depends_on", *depends_on != new.depends_on);
    note("install", *install != new.install);
    note("source", *source != new.source);
    note("detached", *detached != new.detached);
    note("stop_command", *stop_command != new.stop_command);
    note("pid_file", *pid_file != new.pid_file);
    note("write_env_file", *write_env_file != new.write_env_file);
    note("user", *user != new.user);
    note("group", *group != new.group);
    note("watchdog", *watchdog != new.watchdog);
    note("function", *function != new.function);
    note("max_memory", *max_memory != new.max_memory);
    note("limits", *limits != new.limits);
    keys
}

/// The plan for applying `next` to the `current` definitions, each with the
/// [`fingerprint`] it had when its service was started.
pub fn plan_reload(current: &[(Arc<ServiceDefinition>, u64)], next: &Config) -> ReloadPlan {
    let running: HashMap<&str, &(Arc<ServiceDefinition>, u64)> = current
        .iter()
        .map(|entry| (entry.0.id.as_str(), entry))
        .collect();
    let mut entries = Vec::new();
    for new in &next.services {
        let file = shown(new.source_file.as_deref(), &next.dir);
        let entry = match running.get(new.id.as_str()) {
            // A function service is the app's, not the files': a reload never replaces it.
            Some((old, _)) if old.function.is_some() => (
                PlanAction::Keep,
                format!(
                    "a function service defined in code; the definition of `{}` in {file} is ignored",
                    new.id
                ),
            ),
            None => {
                let why = if new.autostart {
                    format!("new in {file}")
                } else {
                    format!("new in {file} (autostart: false: defined, not started)")
                };
                (PlanAction::Start, why)
            }
            Some((old, started_with)) => {
                let keys = changed_keys(old, new);
                // Same definition, different fingerprint: the env_file's bytes moved on.
                let env_file_changed = fingerprint(old) != *started_with;
                let mut reasons = Vec::new();
                if !keys.is_empty() {
                    reasons.push(format!("{} changed", keys.join(", ")));
                }
                if env_file_changed {
                    reasons.push("env_file contents changed".to_string());
                }
                if reasons.is_empty() {
                    (PlanAction::Keep, "unchanged".to_string())
                } else {
                    let mut why = reasons.join("; ");
                    if old.source_file.is_none() {
                        why.push_str(&format!(
                            " (now defined in {file}, was defined at run time)"
                        ));
                    }
                    (PlanAction::Restart, why)
                }
            }
        };
        entries.push(PlanEntry {
            id: new.id.clone(),
            action: entry.0,
            why: entry.1,
        });
    }
    let in_files: HashSet<&str> = next.services.iter().map(|s| s.id.as_str()).collect();
    for (old, _) in current {
        if in_files.contains(old.id.as_str()) {
            continue;
        }
        let (action, why) = match &old.source_file {
            Some(file) => (
                PlanAction::Stop,
                format!("removed from {}", shown(Some(file), &next.dir)),
            ),
            None if old.function.is_some() => (
                PlanAction::Keep,
                "a function service defined in code".to_string(),
            ),
            None => (PlanAction::Keep, "defined at run time".to_string()),
        };
        entries.push(PlanEntry {
            id: old.id.clone(),
            action,
            why,
        });
    }
    ReloadPlan { entries }
}

/// A defining file as people know it: `services.d/api.yml`, relative to the config folder.
fn shown(file: Option<&Path>, dir: &Path) -> String {
    match file {
        Some(file) => file.strip_prefix(dir).unwrap_or(file).display().to_string(),
        None => "the config".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CommandSpec, Settings};
    use std::path::PathBuf;
    use std::time::Duration;

    fn dir() -> PathBuf {
        PathBuf::from("/cfg")
    }

    fn def(id: &str, file: Option<&str>) -> ServiceDefinition {
        let mut def = ServiceDefinition::new(id, CommandSpec::Line(format!("run {id}")));
        def.cwd = dir();
        def.source_file = file.map(|f| dir().join(f));
        def
    }

    fn running(defs: &[ServiceDefinition]) -> Vec<(Arc<ServiceDefinition>, u64)> {
        defs.iter()
            .map(|d| (Arc::new(d.clone()), fingerprint(d)))
            .collect()
    }

    fn config(services: Vec<ServiceDefinition>) -> Config {
        Config {
            dir: dir(),
            settings: Settings::defaults_in(&dir()),
            services,
        }
    }

    fn summary(plan: &ReloadPlan) -> Vec<(&str, PlanAction, &str)> {
        plan.entries
            .iter()
            .map(|e| (e.id.as_str(), e.action, e.why.as_str()))
            .collect()
    }

    #[test]
    fn new_services_start_and_say_where_they_come_from() {
        let mut lazy = def("lazy", Some("services.d/lazy.yml"));
        lazy.autostart = false;
        let plan = plan_reload(
            &[],
            &config(vec![def("api", Some("services.d/api.yml")), lazy]),
        );
        assert_eq!(
            summary(&plan),
            [
                ("api", PlanAction::Start, "new in services.d/api.yml"),
                (
                    "lazy",
                    PlanAction::Start,
                    "new in services.d/lazy.yml (autostart: false: defined, not started)"
                ),
            ]
        );
    }

    #[test]
    fn removed_services_stop() {
        let web = def("web", Some("services.yml"));
        let plan = plan_reload(&running(&[web]), &config(vec![]));
        assert_eq!(
            summary(&plan),
            [("web", PlanAction::Stop, "removed from services.yml")]
        );
    }

    #[test]
    fn changed_services_restart_naming_the_keys() {
        let web = def("web", Some("services.yml"));
        let mut changed = web.clone();
        changed.env.insert("PORT".into(), "9090".into());
        changed.stop_timeout = Duration::from_secs(1);
        let plan = plan_reload(&running(&[web]), &config(vec![changed]));
        assert_eq!(
            summary(&plan),
            [("web", PlanAction::Restart, "env, stop_timeout changed")]
        );
    }

    #[test]
    fn unchanged_services_are_kept_even_when_moved_to_another_file() {
        let web = def("web", Some("services.yml"));
        let mut moved = web.clone();
        moved.source_file = Some(dir().join("services.d/web.yml"));
        let plan = plan_reload(&running(&[web]), &config(vec![moved]));
        assert_eq!(summary(&plan), [("web", PlanAction::Keep, "unchanged")]);
        assert!(plan.is_noop());
    }

    #[test]
    fn run_time_definitions_are_kept_unless_a_file_now_defines_them() {
        let adhoc = def("adhoc", None);
        let saved = def("saved", None);
        let mut saved_changed = saved.clone();
        saved_changed.source_file = Some(dir().join("services.d/saved.yml"));
        saved_changed.tags.push("x".into());
        let plan = plan_reload(&running(&[adhoc, saved]), &config(vec![saved_changed]));
        assert_eq!(
            summary(&plan),
            [
                (
                    "saved",
                    PlanAction::Restart,
                    "tags changed (now defined in services.d/saved.yml, was defined at run time)"
                ),
                ("adhoc", PlanAction::Keep, "defined at run time"),
            ]
        );
    }

    #[test]
    fn env_file_contents_changing_restarts_the_service() {
        let folder = std::env::temp_dir().join(format!("steward-diff-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("mkdir");
        let env_file = folder.join("web.env");
        std::fs::write(&env_file, "A=1\n").expect("write");
        let mut web = def("web", Some("services.yml"));
        web.env_file = Some(env_file.clone());
        let current = running(std::slice::from_ref(&web));
        let next = config(vec![web.clone()]);
        assert_eq!(
            summary(&plan_reload(&current, &next)),
            [("web", PlanAction::Keep, "unchanged")]
        );
        std::fs::write(&env_file, "A=2\n").expect("write");
        let plan = plan_reload(&current, &next);
        let _ = std::fs::remove_dir_all(&folder);
        assert_eq!(
            summary(&plan),
            [("web", PlanAction::Restart, "env_file contents changed")]
        );
    }

    #[test]
    fn plans_serialize_in_snake_case() {
        let plan = plan_reload(&[], &config(vec![def("api", Some("services.yml"))]));
        let json = serde_json::to_value(&plan).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"entries": [{"id": "api", "action": "start", "why": "new in services.yml"}]})
        );
    }

    #[test]
    fn every_key_is_compared() {
        let old = def("web", Some("services.yml"));
        let mut new = old.clone();
        new.user = Some("www-data".into());
        new.detached = true;
        new.depends_on.push(crate::config::Dependency {
            service: "db".into(),
            condition: crate::config::DependencyCondition::Healthy,
        });
        assert_eq!(changed_keys(&old, &new), ["depends_on", "detached", "user"]);
        assert!(changed_keys(&old, &old).is_empty());
    }
}
