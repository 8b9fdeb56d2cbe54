//! The file schema of DESIGN §2 as serde types: what a `services.yml` says, before any
//! meaning is given to it.
//!
//! Every struct denies unknown keys, so a typo is an error rather than a silently ignored
//! setting. Leaf values are kept as written (wrapped in [`Sp`], which records the line and
//! column they came from) and interpreted by `validate`: a duration stays the text `"5m"`
//! here, so that a bad one is reported next to the others of the same file instead of
//! aborting the parse at the first one.
//!
//! Scalars are all read as text, exactly as written (`PORT: 8080` is the string `"8080"`),
//! and numbers and booleans are parsed by `validate`. That is what people expect from
//! `env`, `argv` and sizes such as `log_max_size: 1048576`, and it means a bad number is
//! one more collected error rather than the end of the service's parse. Only the shape
//! (map, list, scalar) and the keys are checked while parsing.
//!
//! `depends_on` takes two shapes, as in docker compose: a map of ids to
//! `{condition: …}` blocks, or a plain list of ids (condition `started`); see
//! [`DependsOnValue`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A value with the place in the file it came from.
pub(crate) type Sp<T> = serde_saphyr::Spanned<T>;

/// A 1-based line and column; `0:0` when unknown (values that did not come from a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Pos {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

/// A value that did not come from a file (no position).
pub(crate) fn unspanned<T>(value: T) -> Sp<T> {
    serde_saphyr::Spanned::new(
        value,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

impl Pos {
    /// Where a spanned value was written.
    pub fn of<T>(value: &Sp<T>) -> Pos {
        Pos {
            line: value.referenced.line(),
            column: value.referenced.column(),
        }
    }
}

/// The `settings:` block (only allowed in `services.yml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    /// HTTP API and dashboard address, `host:port`.
    #[serde(default)]
    pub listen: Option<Sp<String>>,
    /// Name of the env var that holds the bearer token.
    #[serde(default)]
    pub token_env: Option<Sp<String>>,
    /// Relative to `services.yml`.
    #[serde(default)]
    pub state_dir: Option<Sp<String>>,
    /// A duration.
    #[serde(default)]
    pub shutdown_timeout: Option<Sp<String>>,
    /// A service id: when it ends for good, steward stops and exits with its code.
    #[serde(default)]
    pub exit_with: Option<Sp<String>>,
    /// The most services defined at once, a whole number.
    #[serde(default)]
    pub max_services: Option<Sp<String>>,
    /// `true` / `false`: a cgroup per service where possible (default true).
    #[serde(default)]
    pub cgroups: Option<Sp<String>>,
}

/// One service, as written under `services.<id>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    /// Display name.
    #[serde(default)]
    pub name: Option<Sp<String>>,
    /// A command line; a list here is an error that points to `argv`.
    #[serde(default)]
    pub command: Option<Sp<CommandValue>>,
    /// An argv list.
    #[serde(default)]
    pub argv: Option<Sp<Vec<Sp<String>>>>,
    /// Working directory, relative to the defining file.
    #[serde(default)]
    pub cwd: Option<Sp<String>>,
    /// Environment variables; values may be strings, numbers or booleans.
    #[serde(default)]
    pub env: Option<Sp<EnvMap>>,
    /// `KEY=VALUE` file, relative to the defining file.
    #[serde(default)]
    pub env_file: Option<Sp<String>>,
    /// Variables that must be set.
    #[serde(default)]
    pub required_env: Option<Sp<Vec<Sp<String>>>>,
    /// Labels.
    #[serde(default)]
    pub tags: Option<Sp<Vec<Sp<String>>>>,
    /// Start at boot: `true` or `false`.
    #[serde(default)]
    pub autostart: Option<Sp<String>>,
    /// `permanent` | `transient` | `temporary` or an alias.
    #[serde(default)]
    pub restart: Option<Sp<String>>,
    /// Durations.
    #[serde(default)]
    pub backoff: Option<Sp<Vec<Sp<String>>>>,
    /// Restart intensity, a whole number.
    #[serde(default)]
    pub max_restarts: Option<Sp<String>>,
    /// A duration.
    #[serde(default)]
    pub restart_window: Option<Sp<String>>,
    /// A signal name (`SIGTERM`, `TERM`, `sigint`, …).
    #[serde(default)]
    pub stop_signal: Option<Sp<String>>,
    /// A duration.
    #[serde(default)]
    pub stop_timeout: Option<Sp<String>>,
    /// Gates `ready`.
    #[serde(default)]
    pub readiness: Option<Sp<RawProbe>>,
    /// Restarts the process on failure.
    #[serde(default)]
    pub liveness: Option<Sp<RawProbe>>,
    /// Gates the other probes.
    #[serde(default)]
    pub startup: Option<Sp<RawProbe>>,
    /// Ring size in lines.
    #[serde(default)]
    pub log_lines: Option<Sp<String>>,
    /// File sink, relative to the defining file.
    #[serde(default)]
    pub log_file: Option<Sp<String>>,
    /// A size: `10MiB`, `512KiB`, `1GiB` or plain bytes.
    #[serde(default)]
    pub log_max_size: Option<Sp<String>>,
    /// Old sink files kept.
    #[serde(default)]
    pub log_max_files: Option<Sp<String>>,
    /// Services this one waits for: a map of ids to conditions, or a list of ids.
    #[serde(default)]
    pub depends_on: Option<Sp<DependsOnValue>>,
    /// Run once before the first start: a command line or an argv list.
    #[serde(default)]
    pub install: Option<Sp<CommandValue>>,
    /// `{git: URL, ref: REF}`.
    #[serde(default)]
    pub source: Option<Sp<RawSource>>,
    /// `true` or `false`.
    #[serde(default)]
    pub detached: Option<Sp<String>>,
    /// How a detached service is stopped: a command line or an argv list.
    #[serde(default)]
    pub stop_command: Option<Sp<CommandValue>>,
    /// Relative to the defining file.
    #[serde(default)]
    pub pid_file: Option<Sp<String>>,
    /// `true` or `false`.
    #[serde(default)]
    pub write_env_file: Option<Sp<String>>,
    /// A user name (or uid).
    #[serde(default)]
    pub user: Option<Sp<String>>,
    /// A group name (or gid).
    #[serde(default)]
    pub group: Option<Sp<String>>,
    /// A duration: the longest time between two `WATCHDOG=1` notifications.
    #[serde(default)]
    pub watchdog: Option<Sp<String>>,
    /// A size: restart when the service's process tree uses more memory.
    #[serde(default)]
    pub max_memory: Option<Sp<String>>,
    /// `{memory, cpu, pids}`: cgroup v2 limits.
    #[serde(default)]
    pub limits: Option<Sp<RawLimits>>,
}

/// The `limits:` block of a service (values as written; read by `validate::limits`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    /// A size: `memory.max`.
    #[serde(default)]
    pub memory: Option<Sp<String>>,
    /// Cores (`1.5`) or a percentage of one core (`150%`): `cpu.max`.
    #[serde(default)]
    pub cpu: Option<Sp<String>>,
    /// A whole number: `pids.max`.
    #[serde(default)]
    pub pids: Option<Sp<String>>,
}

/// The `source:` block of a service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    /// A git URL, or a local path relative to the defining file.
    #[serde(default)]
    pub git: Option<Sp<String>>,
    /// Branch, tag or commit.
    #[serde(default, rename = "ref")]
    pub reference: Option<Sp<String>>,
}

/// One dependency in the map form: `db: { condition: healthy }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDependency {
    /// `started` (default), `healthy` or `completed`.
    #[serde(default)]
    pub condition: Option<Sp<String>>,
}

/// `depends_on` as written.
#[derive(Debug)]
pub(crate) enum DependsOnValue {
    /// `depends_on: { db: { condition: healthy }, cache: {} }`; a value left empty
    /// (`cache:`) means the default condition.
    Map(Vec<(Sp<String>, Option<Sp<RawDependency>>)>),
    /// `depends_on: [db, cache]`: each with condition `started`.
    List(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for DependsOnValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsOnVisitor;

        impl<'de> Visitor<'de> for DependsOnVisitor {
            type Value = DependsOnValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of service ids to conditions, or a list of service ids")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOnValue, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    let value = map.next_value::<Option<Sp<RawDependency>>>()?;
                    out.push((key, value));
                }
                Ok(DependsOnValue::Map(out))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOnValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Sp<String>>()? {
                    items.push(item);
                }
                Ok(DependsOnValue::List(items))
            }

            fn visit_unit<E: de::Error>(self) -> Result<DependsOnValue, E> {
                Ok(DependsOnValue::List(Vec::new()))
            }
        }

        deserializer.deserialize_any(DependsOnVisitor)
    }
}

/// A probe block (`readiness`, `liveness`, `startup`): exactly one check plus schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    /// `http: {url, expect_status}`.
    #[serde(default)]
    pub http: Option<Sp<RawHttp>>,
    /// `tcp: host:port`.
    #[serde(default)]
    pub tcp: Option<Sp<String>>,
    /// `command: "…"` or an argv list.
    #[serde(default)]
    pub command: Option<Sp<CommandValue>>,
    /// A duration.
    #[serde(default)]
    pub interval: Option<Sp<String>>,
    /// A duration.
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// A duration.
    #[serde(default)]
    pub initial_delay: Option<Sp<String>>,
    /// ≥ 1.
    #[serde(default)]
    pub failure_threshold: Option<Sp<String>>,
    /// ≥ 1.
    #[serde(default)]
    pub success_threshold: Option<Sp<String>>,
    /// `true`: readiness comes from the service's own `READY=1` (readiness only).
    #[serde(default)]
    pub notify: Option<Sp<String>>,
}

/// The `http:` check of a probe.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    /// `http://…` or `https://…`.
    #[serde(default)]
    pub url: Option<Sp<String>>,
    /// Default 200.
    #[serde(default)]
    pub expect_status: Option<Sp<String>>,
}

/// A command written either as one line or as an argv list.
#[derive(Debug)]
pub(crate) enum CommandValue {
    /// `command: pg_isready -h 127.0.0.1`
    Line(String),
    /// `command: [pg_isready, -h, 127.0.0.1]`
    List(Vec<Sp<String>>),
}

impl<'de> Deserialize<'de> for CommandValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;

        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = CommandValue;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command line or a list of arguments")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }

            // `command: true` runs the `true` program.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<CommandValue, E> {
                Ok(CommandValue::Line(v.to_string()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Sp<String>>()? {
                    items.push(item);
                }
                Ok(CommandValue::List(items))
            }
        }

        deserializer.deserialize_any(CommandVisitor)
    }
}

/// The `env:` map, in file order. A value is `None` when it was left empty (`KEY:`), which
/// `validate` reports with the key's position.
#[derive(Debug, Default)]
pub(crate) struct EnvMap(pub Vec<(Sp<String>, Option<Sp<String>>)>);

impl<'de> Deserialize<'de> for EnvMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;

        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = EnvMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of variable names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EnvMap, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    let value = map.next_value::<Option<Sp<String>>>()?;
                    out.push((key, value));
                }
                Ok(EnvMap(out))
            }

            fn visit_unit<E: de::Error>(self) -> Result<EnvMap, E> {
                Ok(EnvMap::default())
            }
        }

        deserializer.deserialize_map(EnvVisitor)
    }
}

/// The keys a service accepts, for suggestions and docs.
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "name",
    "command",
    "argv",
    "cwd",
    "env",
    "env_file",
    "required_env",
    "tags",
    "autostart",
    "restart",
    "backoff",
    "max_restarts",
    "restart_window",
    "stop_signal",
    "stop_timeout",
    "readiness",
    "liveness",
    "startup",
    "log_lines",
    "log_file",
    "log_max_size",
    "log_max_files",
    "depends_on",
    "install",
    "source",
    "detached",
    "stop_command",
    "pid_file",
    "write_env_file",
    "user",
    "group",
    "watchdog",
    "max_memory",
    "limits",
];

/// The keys of a `limits:` block.
pub(crate) const LIMITS_KEYS: &[&str] = &["memory", "cpu", "pids"];

/// The keys of a `source:` block.
pub(crate) const SOURCE_KEYS: &[&str] = &["git", "ref"];

/// The keys of one dependency in the map form of `depends_on`.
pub(crate) const DEPENDENCY_KEYS: &[&str] = &["condition"];

/// The keys of a probe block.
pub(crate) const PROBE_KEYS: &[&str] = &[
    "http",
    "tcp",
    "command",
    "interval",
    "timeout",
    "initial_delay",
    "failure_threshold",
    "success_threshold",
    "notify",
];

/// The keys of a probe's `http:` check.
pub(crate) const HTTP_KEYS: &[&str] = &["url", "expect_status"];

/// The keys of `settings:`.
pub(crate) const SETTINGS_KEYS: &[&str] = &[
    "listen",
    "token_env",
    "state_dir",
    "shutdown_timeout",
    "exit_with",
    "max_services",
    "cgroups",
];

/// The top-level keys of a file.
pub(crate) const FILE_KEYS: &[&str] = &["version", "settings", "services"];

/// What one top-level entry held after parsing.
#[derive(Debug)]
pub(crate) enum RawBody<T> {
    /// Parsed into the schema.
    Parsed(T),
    /// Written but left empty (`web:` with nothing under it).
    Empty,
    /// Could not be parsed; the problem is already reported.
    Failed,
}

/// A service entry: its id (the map key, with its position) and its body.
#[derive(Debug)]
pub(crate) struct RawEntry {
    /// The map key under `services:`.
    pub id: Sp<String>,
    /// The service.
    pub body: RawBody<Box<RawService>>,
}

/// A whole file, as far as it could be parsed.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    /// Position of the `version` key and its value.
    pub version: Option<(Pos, RawBody<Sp<String>>)>,
    /// Position of the `settings` key and its block.
    pub settings: Option<(Pos, RawBody<RawSettings>)>,
    /// Services in file order.
    pub services: Vec<RawEntry>,
}
