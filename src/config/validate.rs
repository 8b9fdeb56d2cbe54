//! Validation: turning the raw file schema into [`ServiceDefinition`]s with every semantic
//! check (ids, exactly one of `command`/`argv`, durations, sizes, restart policy and its
//! aliases, signals, probes, paths, `depends_on`, install/source/detached), and checking
//! definitions built in code or sent over the API against the same rules. Checks that
//! need every service at once (dependency targets and cycles) are in `dependencies`.
//!
//! Checks never stop at the first problem: a service with a bad duration and a bad signal
//! gets both reported, each at its own line and column. Values are interpreted here, not
//! during parsing, for exactly that reason.
//!
//! Length: about 720 lines of checks and 175 of tests, one function per key family in the
//! order of the schema; the family checks that grew (probes, launch, limits, dependencies)
//! live in `validate/` (the `settings` block's too), and what is left shares one `Checker`
//! walk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::load;
use crate::config::model::{Pos, RawBody, RawEntry, RawFile, RawService, Sp, unspanned};
use crate::config::problem::Problem;
use crate::config::units::{UnitError, parse_size};
use crate::config::{CommandSpec, ProbeKind, ServiceDefinition, Settings};
use crate::error::ConfigErrors;

mod checker;
mod dependencies;
mod launch;
mod limits;
mod probes;
mod settings;

use checker::Checker;
pub use dependencies::check_dependencies;
pub(crate) use dependencies::{
    DependencyEdge, DependencyNode, HeldGraph, check_added, graph_errors,
};
pub(crate) use limits::cpu_text;
use settings::convert_settings;

/// Why `notify`/`watchdog` and `detached` do not go together, and what to do instead.
const NOTIFY_DETACHED_HINT: &str = "its daemon leaves the launcher's process tree, so steward cannot tell its notifications from a stranger's; use `readiness` probes, or run the daemon in the foreground without `detached`";

/// The largest `log_lines` accepted: the ring is memory, `log_file` is for long history.
const MAX_LOG_LINES: i64 = 1_000_000;

/// How a service id is made, for hints.
pub(crate) const ID_RULE: &str = "a service id is lowercase letters, digits, `-` and `_`, starting with a letter or a digit, at most 128 characters";

/// The longest service id: an id names files (`<id>.json`, the cgroup `<id>`, log files),
/// which may not exceed 255 bytes, and is a YAML key, which may not exceed 1024
/// characters (found by fuzzing: a longer `depends_on` key was saved but could not be
/// read back).
pub const MAX_ID_LEN: usize = 128;

/// True when `id` matches `[a-z0-9][a-z0-9_-]*` and has at most [`MAX_ID_LEN`] characters.
pub fn is_valid_id(id: &str) -> bool {
    if id.len() > MAX_ID_LEN {
        return false;
    }
    let mut chars = id.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a definition made in code (or over the API) against the rules the file loader
/// applies: id pattern, non-empty command, absolute paths, thresholds ≥ 1, intervals and
/// timeouts > 0, a non-empty backoff list, `log_lines` ≥ 1, a detached service has a
/// `stop_command` (and only a detached one has `stop_command` or `pid_file`), no
/// dependency on itself, … Every problem is returned, each naming the service and the
/// field. Whether the dependencies exist and form no cycle needs the other services: see
/// [`check_dependencies`].
pub fn check_definition(def: &ServiceDefinition) -> Result<(), ConfigErrors> {
    let mut problems = Vec::new();
    let mut c = Checker {
        place: format!(" in service `{}`", def.id),
        problems: &mut problems,
    };
    let none = Pos::default();
    if let Err(problem) = id_problem(none, &def.id) {
        c.problems.push(problem);
    }
    if def.name.trim().is_empty() {
        c.field(
            none,
            "name",
            "it is empty",
            "give a display name, or leave it as the id",
        );
    }
    match (&def.command, &def.function) {
        // A function service runs no command; what only a process has is refused.
        (_, Some(_)) => {
            for key in crate::function::process_only_keys(def) {
                c.field(
                    none,
                    key,
                    "a function service runs no process, so this has no meaning",
                    "remove it, or run the work as a process (`command` / `argv`)",
                );
            }
        }
        (CommandSpec::Line(line), None) => c.command_line(none, "command", line),
        (CommandSpec::Argv(argv), None) => {
            let items: Vec<(Pos, &str)> = argv.iter().map(|a| (none, a.as_str())).collect();
            c.argv(none, "argv", &items);
        }
    }
    // An empty cwd with a `source` means "not given" (crate::source).
    let cwd_given = !crate::source::cwd_from_source(def);
    for (key, path) in [
        ("cwd", cwd_given.then_some(&def.cwd)),
        ("env_file", def.env_file.as_ref()),
        ("log_file", def.log_file.as_ref()),
    ] {
        if let Some(path) = path
            && !path.is_absolute()
        {
            c.field(
                none,
                key,
                &format!("`{}` is not an absolute path", path.display()),
                "definitions built in code carry absolute paths; join it with a base folder",
            );
        }
    }
    for (name, value) in &def.env {
        c.env_name(none, &format!("env.{name}"), name);
        if value.contains('\0') {
            c.field(
                none,
                &format!("env.{name}"),
                "the value contains a NUL byte",
                "remove it",
            );
        }
    }
    for name in &def.required_env {
        c.env_name(none, "required_env", name);
    }
    if def.backoff.is_empty() {
        c.field(
            none,
            "backoff",
            "the list is empty",
            "give at least one delay, e.g. `[1s, 5s]`",
        );
    }
    if def.restart_window.is_zero() {
        c.field(
            none,
            "restart_window",
            "it is zero",
            "give a window such as `5m`",
        );
    }
    for kind in [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ] {
        if let Some(probe) = def.probe(kind) {
            c.probe_spec(kind.as_str(), probe);
        }
    }
    if def.log_lines == 0 || def.log_lines as u64 > MAX_LOG_LINES as u64 {
        c.field(
            none,
            "log_lines",
            &format!("{} is out of range", def.log_lines),
            &format!("give a number from 1 to {MAX_LOG_LINES}"),
        );
    }
    if def.log_max_size == 0 {
        c.field(
            none,
            "log_max_size",
            "it is zero",
            "give a size such as `10MiB`",
        );
    }
    for (i, dep) in def.depends_on.iter().enumerate() {
        if !is_valid_id(&dep.service) {
            c.field(
                none,
                "depends_on",
                &format!("`{}` is not a service id", dep.service),
                ID_RULE,
            );
        } else if dep.service == def.id {
            c.problems.push(
                Problem::new(none, format!("service `{}` depends on itself", def.id))
                    .hint("remove this entry: a service cannot wait for its own start"),
            );
        } else if def.depends_on[..i].iter().any(|d| d.service == dep.service) {
            c.field(
                none,
                "depends_on",
                &format!("`{}` is listed twice", dep.service),
                "keep one entry per service",
            );
        }
    }
    if def.watchdog.is_some_and(|w| w.is_zero()) {
        c.field(
            none,
            "watchdog",
            "it is zero",
            "give a duration such as `30s`",
        );
    }
    if def.detached {
        for (used, key) in [
            (def.notify_readiness(), "readiness.notify"),
            (def.watchdog.is_some(), "watchdog"),
        ] {
            if used {
                c.field(
                    none,
                    key,
                    "a detached service cannot use the notification protocol",
                    NOTIFY_DETACHED_HINT,
                );
            }
        }
    }
    c.launch_definition(def);
    c.limits_of_definition(&def.limits, def.detached);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(
            problems.into_iter().map(|p| p.into_error(None)).collect(),
        ))
    }
}

/// Turns one service sent as JSON (the YAML schema, as over the HTTP API) into a
/// definition. Relative paths are resolved against `base_dir`, which is also the default
/// `cwd`; `source_file` is `None`. An `id` key in `value` is allowed when it equals `id`.
pub fn definition_from_json(
    id: &str,
    value: &serde_json::Value,
    base_dir: &Path,
) -> Result<ServiceDefinition, ConfigErrors> {
    let fail = |problems: Vec<Problem>| {
        ConfigErrors(problems.into_iter().map(|p| p.into_error(None)).collect())
    };
    let mut object = match value {
        serde_json::Value::Object(object) => object.clone(),
        other => {
            return Err(fail(vec![
                Problem::new(
                    Pos::default(),
                    format!(
                        "service `{id}` must be a JSON object, not {}",
                        json_kind(other)
                    ),
                )
                .hint("send `{\"command\": \"…\"}` with the keys of a service in services.yml"),
            ]));
        }
    };
    if let Some(given) = object.remove("id")
        && given.as_str() != Some(id)
    {
        return Err(fail(vec![
            Problem::new(
                Pos::default(),
                format!("the body's `id` ({given}) differs from the service id `{id}`"),
            )
            .hint("leave `id` out of the body, or make it equal"),
        ]));
    }
    let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
    // JSON is YAML: one parser gives the API the same messages as files, and numbers
    // in `env` become text exactly as written.
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(object)).map_err(|e| {
        fail(vec![Problem::new(
            Pos::default(),
            format!("service `{id}`: {e}"),
        )])
    })?;
    let raw = load::parse_service_text(id, &text).map_err(|p| fail(vec![p]))?;
    let mut problems = Vec::new();
    if let Err(problem) = id_problem(Pos::default(), id) {
        problems.push(problem);
    }
    let ctx = FileContext {
        base_dir,
        source_file: None,
        is_main: false,
    };
    let id_spanned = unspanned(id.to_string());
    let definition = convert_service(&id_spanned, &raw, &ctx, &mut problems);
    match definition {
        Some(definition) if problems.is_empty() => Ok(definition),
        _ => Err(fail(problems)),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Where a file's definitions come from.
pub(crate) struct FileContext {
    /// The folder of the defining file: relative paths are joined to it; the default cwd.
    pub base_dir: PathBuf,
    /// The defining file, absolute (`None` for JSON).
    pub source_file: Option<PathBuf>,
    /// `services.yml`, the only file that may hold `settings`.
    pub is_main: bool,
}

/// What one file contributed.
pub(crate) struct FileOutcome {
    /// Its `settings`, when it is the main file and has a usable block.
    pub settings: Option<Settings>,
    /// Every service id with the position of its key, and the definition when it is valid.
    pub services: Vec<(String, Pos, Option<ServiceDefinition>)>,
    /// The `depends_on` entries of every service that has readable ones (even when
    /// something else in the service is wrong), for the check across files.
    pub dependencies: Vec<(String, Vec<(String, Pos)>)>,
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
    /// `settings.exit_with` as written (a valid id) and where, for the check across files
    /// that some file defines that service.
    pub exit_with: Option<(String, Pos)>,
}

/// Gives a parsed file its meaning: version, settings and services, every problem noted.
pub(crate) fn convert_file(raw: RawFile, ctx: &FileContext) -> FileOutcome {
    let mut problems = Vec::new();
    match &raw.version {
        None => problems.push(
            Problem::new(Pos { line: 1, column: 1 }, "`version` is missing")
                .hint("add `version: 1` as the first line of the file"),
        ),
        Some((pos, RawBody::Empty)) => {
            problems.push(Problem::new(*pos, "`version` is empty").hint("write `version: 1`"))
        }
        Some((_, RawBody::Parsed(version))) if version.value.trim() != "1" => problems.push(
            Problem::new(
                Pos::of(version),
                format!("unsupported version `{}`", version.value),
            )
            .hint("this steward reads `version: 1` files; write `version: 1`"),
        ),
        Some(_) => {}
    }

    let mut settings = None;
    let mut exit_with = None;
    if let Some((pos, body)) = &raw.settings {
        if !ctx.is_main {
            problems.push(
                Problem::new(*pos, "`settings` is only allowed in services.yml")
                    .hint("move this block to services.yml; files in services.d hold only `version` and `services`"),
            );
        } else {
            match body {
                RawBody::Parsed(block) => {
                    settings = convert_settings(block, &ctx.base_dir, &mut problems);
                    exit_with = block
                        .exit_with
                        .as_ref()
                        .map(|id| (id.value.trim().to_string(), Pos::of(id)))
                        .filter(|(id, _)| is_valid_id(id));
                }
                RawBody::Empty => settings = Some(Settings::defaults_in(&ctx.base_dir)),
                RawBody::Failed => {}
            }
        }
    }

    let mut services = Vec::new();
    let mut dependencies = Vec::new();
    for RawEntry { id, body } in &raw.services {
        let pos = Pos::of(id);
        let id_ok = match id_problem(pos, &id.value) {
            Ok(()) => true,
            Err(problem) => {
                problems.push(problem);
                false
            }
        };
        let definition = match body {
            RawBody::Parsed(service) => {
                let mut edges = Vec::new();
                let definition =
                    convert_service_with_edges(id, service, ctx, &mut problems, &mut edges);
                dependencies.push((id.value.clone(), edges));
                definition
            }
            RawBody::Empty => {
                problems.push(
                    Problem::new(pos, format!("service `{}` is empty", id.value))
                        .hint("give it a `command` (a command line) or an `argv` list"),
                );
                None
            }
            RawBody::Failed => None,
        };
        services.push((id.value.clone(), pos, definition.filter(|_| id_ok)));
    }
    FileOutcome {
        settings,
        services,
        dependencies,
        problems,
        exit_with,
    }
}

/// The problem with an id, if any, with a suggestion that fits the pattern.
fn id_problem(pos: Pos, id: &str) -> Result<(), Problem> {
    if is_valid_id(id) {
        return Ok(());
    }
    let problem = Problem::new(pos, format!("invalid service id `{id}`"));
    let mut fixed: String = id
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while fixed.starts_with(['-', '_']) {
        fixed.remove(0);
    }
    let rule = "ids are lowercase letters, digits, `_` and `-`, starting with a letter or digit";
    if is_valid_id(&fixed) {
        Err(problem.hint(format!("{rule}: try `{fixed}`")))
    } else {
        Err(problem.hint(rule))
    }
}

/// The definition of one service, or `None` when anything is wrong (all of it noted).
fn convert_service(
    id: &Sp<String>,
    raw: &RawService,
    ctx: &FileContext,
    problems: &mut Vec<Problem>,
) -> Option<ServiceDefinition> {
    convert_service_with_edges(id, raw, ctx, problems, &mut Vec::new())
}

/// [`convert_service`], also giving the readable `depends_on` entries with their
/// positions in `edges`.
fn convert_service_with_edges(
    id: &Sp<String>,
    raw: &RawService,
    ctx: &FileContext,
    problems: &mut Vec<Problem>,
    edges: &mut Vec<(String, Pos)>,
) -> Option<ServiceDefinition> {
    let before = problems.len();
    let id_pos = Pos::of(id);
    let mut c = Checker {
        place: format!(" in service `{}`", id.value),
        problems,
    };
    let base = &ctx.base_dir;

    let command = c.service_command(id_pos, &id.value, raw);
    let mut def = ServiceDefinition::new(
        id.value.clone(),
        command.unwrap_or(CommandSpec::Line(String::new())),
    );
    // Without `cwd`, a `source` decides where the service runs (`state_dir/src/<id>`):
    // an empty cwd says "not given" (crate::source).
    def.cwd = if raw.source.is_some() && raw.cwd.is_none() {
        PathBuf::new()
    } else {
        base.clone()
    };
    def.source_file = ctx.source_file.clone();

    if let Some(name) = &raw.name {
        if name.value.trim().is_empty() {
            c.field(
                Pos::of(name),
                "name",
                "it is empty",
                "give a display name, or remove `name` to use the id",
            );
        }
        def.name = name.value.clone();
    }
    if let Some(cwd) = &raw.cwd
        && let Some(path) = c.path(base, "cwd", cwd)
    {
        def.cwd = path;
    }
    if let Some(env) = &raw.env {
        def.env = c.env_map(&env.value.0);
    }
    if let Some(env_file) = &raw.env_file {
        def.env_file = c.path(base, "env_file", env_file);
    }
    if let Some(required) = &raw.required_env {
        for name in &required.value {
            c.env_name(Pos::of(name), "required_env", &name.value);
        }
        def.required_env = required.value.iter().map(|n| n.value.clone()).collect();
    }
    if let Some(tags) = &raw.tags {
        for tag in &tags.value {
            if tag.value.trim().is_empty() {
                c.field(
                    Pos::of(tag),
                    "tags",
                    "a tag is empty",
                    "remove the empty item",
                );
            }
        }
        def.tags = tags.value.iter().map(|t| t.value.clone()).collect();
    }
    if let Some(autostart) = &raw.autostart
        && let Some(autostart) = c.boolean(autostart, "autostart")
    {
        def.autostart = autostart;
    }
    if let Some(restart) = &raw.restart
        && let Some(policy) = c.restart_policy(restart)
    {
        def.restart = policy;
    }
    if let Some(backoff) = &raw.backoff {
        if backoff.value.is_empty() {
            c.field(
                Pos::of(backoff),
                "backoff",
                "the list is empty",
                "give at least one delay, e.g. `[1s, 5s]`, or remove `backoff` for the default",
            );
        }
        let delays: Vec<Option<Duration>> = backoff
            .value
            .iter()
            .enumerate()
            .map(|(i, d)| c.duration(&format!("backoff[{i}]"), d))
            .collect();
        if let Some(delays) = delays.into_iter().collect::<Option<Vec<_>>>() {
            def.backoff = delays;
        }
    }
    if let Some(max) = &raw.max_restarts
        && let Some(max) = c.number(max, "max_restarts", 0, i64::from(u32::MAX))
    {
        def.max_restarts = max as u32;
    }
    if let Some(window) = &raw.restart_window
        && let Some(window) = c.positive_duration("restart_window", window)
    {
        def.restart_window = window;
    }
    if let Some(signal) = &raw.stop_signal
        && let Some(signal) = c.signal(signal)
    {
        def.stop_signal = signal;
    }
    if let Some(timeout) = &raw.stop_timeout
        && let Some(timeout) = c.duration("stop_timeout", timeout)
    {
        def.stop_timeout = timeout;
    }
    def.readiness = raw.readiness.as_ref().and_then(|p| c.probe("readiness", p));
    def.liveness = raw.liveness.as_ref().and_then(|p| c.probe("liveness", p));
    def.startup = raw.startup.as_ref().and_then(|p| c.probe("startup", p));
    if let Some(lines) = &raw.log_lines
        && let Some(lines) = c.number(lines, "log_lines", 1, MAX_LOG_LINES)
    {
        def.log_lines = lines as usize;
    }
    if let Some(log_file) = &raw.log_file {
        def.log_file = c.path(base, "log_file", log_file);
    }
    if let Some(size) = &raw.log_max_size {
        match parse_size(&size.value) {
            Ok(0) => c.field(
                Pos::of(size),
                "log_max_size",
                "it is zero",
                "give a size such as `10MiB`",
            ),
            Ok(bytes) => def.log_max_size = bytes,
            Err(UnitError { message, hint }) => {
                c.field(Pos::of(size), "log_max_size", &message, &hint)
            }
        }
    }
    if let Some(files) = &raw.log_max_files
        && let Some(files) = c.number(files, "log_max_files", 0, 1000)
    {
        def.log_max_files = files as u32;
    }
    if let Some(size) = &raw.max_memory {
        match parse_size(&size.value) {
            Ok(0) => c.field(
                Pos::of(size),
                "max_memory",
                "it is zero",
                "give a size such as `400MiB`",
            ),
            Ok(bytes) => def.max_memory = Some(bytes),
            Err(UnitError { message, hint }) => {
                c.field(Pos::of(size), "max_memory", &message, &hint)
            }
        }
    }
    if let Some(depends_on) = &raw.depends_on {
        let entries = c.depends_on(&id.value, depends_on);
        edges.extend(entries.iter().map(|(dep, pos)| (dep.service.clone(), *pos)));
        def.depends_on = entries.into_iter().map(|(dep, _)| dep).collect();
    }
    if let Some(install) = &raw.install {
        def.install = c.command_value("install", install);
    }
    if let Some(source) = &raw.source {
        def.source = c.source(base, source);
    }
    let mut detached_readable = true;
    if let Some(detached) = &raw.detached {
        match c.boolean(detached, "detached") {
            Some(detached) => def.detached = detached,
            None => detached_readable = false,
        }
    }
    if let Some(stop_command) = &raw.stop_command {
        def.stop_command = c.command_value("stop_command", stop_command);
    }
    if let Some(pid_file) = &raw.pid_file {
        // Where the daemon writes it: relative to the service's cwd, like its own paths.
        // Without a cwd (a `source` checkout, placed at run time) it stays relative and is
        // joined to the checkout when the service is supervised (`source::effective_definition`).
        let cwd = def.cwd.clone();
        def.pid_file =
            c.path(&cwd, "pid_file", pid_file)
                .map(|path| match cwd.as_os_str().is_empty() {
                    true => PathBuf::from(pid_file.value.as_str()),
                    false => path,
                });
    }
    if let Some(write) = &raw.write_env_file
        && let Some(write) = c.boolean(write, "write_env_file")
    {
        def.write_env_file = write;
    }
    if let Some(user) = &raw.user {
        def.user = c.account("user", user);
    }
    if let Some(group) = &raw.group {
        def.group = c.account("group", group);
    }
    if let Some(watchdog) = &raw.watchdog {
        def.watchdog = c.positive_duration("watchdog", watchdog);
    }
    if def.detached && detached_readable {
        let notify_at = raw
            .readiness
            .as_ref()
            .and_then(|r| r.value.notify.as_ref())
            .filter(|_| def.notify_readiness());
        for (pos, key) in [
            (notify_at.map(Pos::of), "readiness.notify"),
            (raw.watchdog.as_ref().map(Pos::of), "watchdog"),
        ] {
            if let Some(pos) = pos {
                c.field(
                    pos,
                    key,
                    "a detached service cannot use the notification protocol",
                    NOTIFY_DETACHED_HINT,
                );
            }
        }
    }
    // Only when both sides read well: a bad `stop_command` is already reported.
    if detached_readable
        && (raw.stop_command.is_none() || def.stop_command.is_some())
        && (raw.pid_file.is_none() || def.pid_file.is_some())
    {
        let at = |pos: Option<Pos>| pos.unwrap_or(id_pos);
        c.detached_rules(
            &def,
            [
                at(raw.detached.as_ref().map(Pos::of)),
                at(raw.stop_command.as_ref().map(Pos::of)),
                at(raw.pid_file.as_ref().map(Pos::of)),
            ],
        );
    }
    if let Some(limits) = &raw.limits
        && let Some(limits) = c.limits(limits, def.detached)
    {
        def.limits = limits;
    }

    (problems.len() == before).then_some(def)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProbeCheck, ProbeSpec, RestartPolicy};

    fn errors_of(def: &ServiceDefinition) -> Vec<String> {
        match check_definition(def) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn ids_follow_the_pattern() {
        for good in ["web", "a", "0", "db-1", "my_job", "9lives"] {
            assert!(is_valid_id(good), "{good}");
        }
        for bad in [
            "", "Web", "-web", "_web", "web.api", "web api", "wéb", "web/1",
        ] {
            assert!(!is_valid_id(bad), "{bad}");
        }
        assert!(is_valid_id(&"a".repeat(MAX_ID_LEN)));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)), "too long");
    }

    #[test]
    fn a_default_definition_is_valid() {
        let def = ServiceDefinition::new("web", CommandSpec::Line("sleep 1".into()));
        assert_eq!(errors_of(&def), Vec::<String>::new());
    }

    #[test]
    fn check_definition_reports_every_problem() {
        let mut def = ServiceDefinition::new("Bad Id", CommandSpec::Argv(vec![]));
        def.backoff.clear();
        def.log_lines = 0;
        def.cwd = PathBuf::from("relative");
        let mut probe = ProbeSpec::new(ProbeCheck::Tcp {
            address: "localhost".into(),
        });
        probe.interval = Duration::ZERO;
        probe.failure_threshold = 0;
        def.readiness = Some(probe);
        def.liveness = Some(ProbeSpec::new(ProbeCheck::Http {
            url: "localhost:80".into(),
            expect_status: 42,
        }));
        let errors = errors_of(&def);
        for needle in [
            "invalid service id `Bad Id`",
            "invalid `argv`",
            "invalid `cwd`",
            "invalid `backoff`",
            "invalid `log_lines`",
            "invalid `readiness.tcp`",
            "invalid `readiness.interval`",
            "invalid `readiness.failure_threshold`",
            "invalid `liveness.http.url`",
            "invalid `liveness.http.expect_status`",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{needle} not in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), 10, "{errors:#?}");
    }

    #[test]
    fn check_definition_rejects_empty_commands_and_bad_env() {
        let mut def = ServiceDefinition::new("web", CommandSpec::Line("   ".into()));
        def.env.insert("A=B".into(), "x".into());
        def.required_env.push(String::new());
        let errors = errors_of(&def);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].contains("the command is empty"), "{errors:#?}");
    }

    #[test]
    fn json_definitions_use_the_file_schema() {
        let value = serde_json::json!({
            "id": "api",
            "argv": ["python3", "-m", "http.server", 8080],
            "cwd": "web",
            "env": {"PORT": 8080, "DEBUG": true, "RATIO": 1.0},
            "restart": "on-failure",
            "readiness": {"http": {"url": "http://127.0.0.1:8080/"}, "interval": "500ms"}
        });
        let def = definition_from_json("api", &value, Path::new("/srv/app")).expect("valid");
        assert_eq!(
            def.command,
            CommandSpec::Argv(vec![
                "python3".into(),
                "-m".into(),
                "http.server".into(),
                "8080".into()
            ])
        );
        assert_eq!(def.cwd, PathBuf::from("/srv/app/web"));
        assert_eq!(def.env.get("PORT").map(String::as_str), Some("8080"));
        assert_eq!(def.env.get("DEBUG").map(String::as_str), Some("true"));
        assert_eq!(def.env.get("RATIO").map(String::as_str), Some("1.0"));
        assert_eq!(def.restart, RestartPolicy::Transient);
        assert_eq!(def.source_file, None);
        let readiness = def.readiness.expect("readiness");
        assert_eq!(readiness.interval, Duration::from_millis(500));
    }

    #[test]
    fn json_errors_have_no_position_but_name_the_key() {
        let value = serde_json::json!({"comand": "x"});
        let errors = definition_from_json("api", &value, Path::new("/srv")).expect_err("typo");
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].file, None);
        assert_eq!(errors.0[0].line, 0);
        assert_eq!(
            errors.0[0].to_string(),
            "unknown key `comand` in service `api` (hint: did you mean `command`?)"
        );
        let errors = definition_from_json(
            "api",
            &serde_json::json!({"command": "x", "stop_timeout": 5}),
            Path::new("/srv"),
        )
        .expect_err("no unit");
        assert!(
            errors.0[0]
                .to_string()
                .contains("invalid `stop_timeout` in service `api`: `5` has no unit"),
            "{errors}"
        );
        assert!(definition_from_json("api", &serde_json::json!("x"), Path::new("/")).is_err());
        assert!(
            definition_from_json(
                "api",
                &serde_json::json!({"id": "other", "command": "x"}),
                Path::new("/")
            )
            .is_err()
        );
        assert!(
            definition_from_json("Bad", &serde_json::json!({"command": "x"}), Path::new("/"))
                .is_err()
        );
    }

    /// Found by fuzzing (`definition_json`): a `depends_on` entry of 4,800 characters was
    /// accepted, then saved as a YAML key longer than YAML allows, which could not be read
    /// back. Entries must be service ids, in a body and in code.
    #[test]
    fn a_depends_on_entry_that_is_not_a_service_id_is_refused() {
        let long = "a".repeat(MAX_ID_LEN + 1);
        let value = serde_json::json!({"command": "x", "depends_on": ["db", "Web", long]});
        let errors = definition_from_json("api", &value, Path::new("/srv")).expect_err("refused");
        let text = errors.to_string();
        assert!(text.contains("`Web` is not a service id"), "{text}");
        assert!(
            text.contains(&format!("`{long}` is not a service id")),
            "{text}"
        );
        assert!(!text.contains("`db`"), "a valid entry is not named: {text}");
        let mut def = ServiceDefinition::new("api", CommandSpec::Line("x".into()));
        def.depends_on.push(crate::config::Dependency {
            service: "Web".into(),
            condition: Default::default(),
        });
        assert!(
            errors_of(&def)
                .iter()
                .any(|e| e.contains("`Web` is not a service id")),
            "{:?}",
            errors_of(&def)
        );
    }
}
