//! Validation: turning the raw file schema into [`ServiceDefinition`]s with every semantic
//! check (ids, exactly one of `command`/`argv`, durations, sizes, restart policy and its
//! aliases, signals, probes, paths), and checking definitions built in code or sent over
//! the API against the same rules.
//!
//! Checks never stop at the first problem: a service with a bad duration and a bad signal
//! gets both reported, each at its own line and column. Values are interpreted here, not
//! during parsing, for exactly that reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::load;
use crate::config::model::{
    CommandValue, Pos, RawBody, RawEntry, RawFile, RawHttp, RawProbe, RawService, RawSettings, Sp,
    unspanned,
};
use crate::config::problem::{Problem, nearest};
use crate::config::units::{UnitError, parse_duration, parse_size};
use crate::config::{
    CommandSpec, ProbeCheck, ProbeKind, ProbeSpec, RestartPolicy, ServiceDefinition, Settings,
};
use crate::error::ConfigErrors;

/// The largest `log_lines` accepted: the ring is memory, `log_file` is for long history.
const MAX_LOG_LINES: i64 = 1_000_000;

/// True when `id` matches `[a-z0-9][a-z0-9_-]*`.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Checks a definition made in code (or over the API) against the rules the file loader
/// applies: id pattern, non-empty command, absolute paths, thresholds ≥ 1, intervals and
/// timeouts > 0, a non-empty backoff list, `log_lines` ≥ 1, … Every problem is returned,
/// each naming the service and the field.
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
    match &def.command {
        CommandSpec::Line(line) => c.command_line(none, "command", line),
        CommandSpec::Argv(argv) => {
            let items: Vec<(Pos, &str)> = argv.iter().map(|a| (none, a.as_str())).collect();
            c.argv(none, "argv", &items);
        }
    }
    for (key, path) in [
        ("cwd", Some(&def.cwd)),
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
    if let Some(given) = object.remove("id") {
        if given.as_str() != Some(id) {
            return Err(fail(vec![
                Problem::new(
                    Pos::default(),
                    format!("the body's `id` ({given}) differs from the service id `{id}`"),
                )
                .hint("leave `id` out of the body, or make it equal"),
            ]));
        }
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
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
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
                }
                RawBody::Empty => settings = Some(Settings::defaults_in(&ctx.base_dir)),
                RawBody::Failed => {}
            }
        }
    }

    let mut services = Vec::new();
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
            RawBody::Parsed(service) => convert_service(id, service, ctx, &mut problems),
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
        problems,
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

fn convert_settings(
    raw: &RawSettings,
    base_dir: &Path,
    problems: &mut Vec<Problem>,
) -> Option<Settings> {
    let before = problems.len();
    let mut c = Checker {
        place: " in `settings`".to_string(),
        problems,
    };
    let mut settings = Settings::defaults_in(base_dir);
    if let Some(listen) = &raw.listen {
        match host_port(&listen.value) {
            Ok(()) => settings.listen = listen.value.trim().to_string(),
            Err(detail) => c.field(
                Pos::of(listen),
                "listen",
                &detail,
                "write an address and port, e.g. `127.0.0.1:7070`",
            ),
        }
    }
    if let Some(token_env) = &raw.token_env {
        c.env_name(Pos::of(token_env), "token_env", &token_env.value);
        settings.token_env = Some(token_env.value.clone());
    }
    if let Some(state_dir) = &raw.state_dir
        && let Some(path) = c.path(base_dir, "state_dir", state_dir)
    {
        settings.state_dir = path;
    }
    if let Some(timeout) = &raw.shutdown_timeout
        && let Some(duration) = c.duration("shutdown_timeout", timeout)
    {
        settings.shutdown_timeout = duration;
    }
    (c.problems.len() == before).then_some(settings)
}

/// The definition of one service, or `None` when anything is wrong (all of it noted).
fn convert_service(
    id: &Sp<String>,
    raw: &RawService,
    ctx: &FileContext,
    problems: &mut Vec<Problem>,
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
    def.cwd = base.clone();
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

    (problems.len() == before).then_some(def)
}

/// Notes problems for one service (or `settings`), each naming the key.
struct Checker<'p> {
    /// ` in service `web`` or ` in `settings``.
    place: String,
    problems: &'p mut Vec<Problem>,
}

impl Checker<'_> {
    /// `invalid `key` in service `web`: detail (hint: …)`.
    fn field(&mut self, pos: Pos, key: &str, detail: &str, hint: &str) {
        self.problems
            .push(Problem::new(pos, format!("invalid `{key}`{}: {detail}", self.place)).hint(hint));
    }

    fn duration(&mut self, key: &str, value: &Sp<String>) -> Option<Duration> {
        match parse_duration(&value.value) {
            Ok(duration) => Some(duration),
            Err(UnitError { message, hint }) => {
                self.field(Pos::of(value), key, &message, &hint);
                None
            }
        }
    }

    fn positive_duration(&mut self, key: &str, value: &Sp<String>) -> Option<Duration> {
        let duration = self.duration(key, value)?;
        if duration.is_zero() {
            self.field(
                Pos::of(value),
                key,
                "it must be more than zero",
                "give a duration such as `1s`",
            );
            return None;
        }
        Some(duration)
    }

    fn number(&mut self, value: &Sp<String>, key: &str, min: i64, max: i64) -> Option<i64> {
        let text = value.value.trim();
        let hint = if max >= i64::from(u32::MAX) {
            format!("give a whole number, {min} or more")
        } else {
            format!("give a whole number from {min} to {max}")
        };
        let detail = match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => return Some(n),
            Ok(n) => format!("{n} is out of range"),
            Err(_) => format!("`{text}` is not a whole number"),
        };
        self.field(Pos::of(value), key, &detail, &hint);
        None
    }

    fn boolean(&mut self, value: &Sp<String>, key: &str) -> Option<bool> {
        match value.value.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.field(
                    Pos::of(value),
                    key,
                    &format!("`{}` is not `true` or `false`", value.value.trim()),
                    "write `true` or `false`",
                );
                None
            }
        }
    }

    /// A path relative to `base` (the defining file's folder), made absolute.
    fn path(&mut self, base: &Path, key: &str, value: &Sp<String>) -> Option<PathBuf> {
        let text = value.value.as_str();
        let pos = Pos::of(value);
        if text.trim().is_empty() {
            self.field(
                pos,
                key,
                "the path is empty",
                &format!("give a path, or remove `{key}`"),
            );
            return None;
        }
        if text.contains('\0') {
            self.field(pos, key, "the path contains a NUL byte", "remove it");
            return None;
        }
        if text.starts_with('~') {
            self.field(
                pos,
                key,
                &format!("`{text}`: `~` is not expanded"),
                "write the full path, or a path relative to this file's folder",
            );
            return None;
        }
        let joined = base.join(text);
        Some(std::path::absolute(&joined).unwrap_or(joined))
    }

    fn env_name(&mut self, pos: Pos, key: &str, name: &str) {
        let valid = !name.is_empty()
            && !name.contains(['=', '\0'])
            && !name.chars().any(char::is_whitespace);
        if !valid {
            self.field(
                pos,
                key,
                &format!("`{name}` is not a variable name"),
                "variable names are non-empty, without `=` or spaces, e.g. `API_KEY`",
            );
        }
    }

    fn env_map(
        &mut self,
        entries: &[(Sp<String>, Option<Sp<String>>)],
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut first_pos: BTreeMap<&str, Pos> = BTreeMap::new();
        for (name, value) in entries {
            let pos = Pos::of(name);
            let key = format!("env.{}", name.value);
            self.env_name(pos, &key, &name.value);
            if let Some(first) = first_pos.get(name.value.as_str()) {
                self.field(
                    pos,
                    &key,
                    &format!(
                        "`{}` is set twice (first at line {})",
                        name.value, first.line
                    ),
                    "keep one of them",
                );
            } else {
                first_pos.insert(&name.value, pos);
            }
            match value {
                None => self.field(
                    pos,
                    &key,
                    "it has no value",
                    &format!(
                        "write `{}: \"\"` for an empty value, or remove it",
                        name.value
                    ),
                ),
                Some(value) if value.value.contains('\0') => {
                    self.field(
                        Pos::of(value),
                        &key,
                        "the value contains a NUL byte",
                        "remove it",
                    );
                }
                Some(value) => {
                    env.insert(name.value.clone(), value.value.clone());
                }
            }
        }
        env
    }

    fn restart_policy(&mut self, value: &Sp<String>) -> Option<RestartPolicy> {
        let text = value.value.trim().to_ascii_lowercase();
        let policy = match text.as_str() {
            "permanent" | "always" => RestartPolicy::Permanent,
            "transient" | "on-failure" => RestartPolicy::Transient,
            "temporary" | "never" => RestartPolicy::Temporary,
            _ => {
                let names = [
                    "permanent",
                    "always",
                    "transient",
                    "on-failure",
                    "temporary",
                    "never",
                ];
                let near = match text.as_str() {
                    "no" | "false" | "none" | "off" => Some("never"),
                    "unless-stopped" | "true" | "yes" | "on" => Some("always"),
                    "on_failure" | "onfailure" | "on-error" | "failure" => Some("on-failure"),
                    other => nearest(other, &names),
                };
                let choices = "use `permanent` (or `always`), `transient` (or `on-failure`) or `temporary` (or `never`)";
                let hint = match near {
                    Some(near) => format!("did you mean `{near}`? {choices}"),
                    None => choices.to_string(),
                };
                self.field(
                    Pos::of(value),
                    "restart",
                    &format!("unknown restart policy `{}`", value.value),
                    &hint,
                );
                return None;
            }
        };
        Some(policy)
    }

    fn signal(&mut self, value: &Sp<String>) -> Option<Signal> {
        let upper = value.value.trim().to_ascii_uppercase();
        let name = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        match Signal::from_str(&name) {
            Ok(signal) => Some(signal),
            Err(_) => {
                let names: Vec<&str> = Signal::iterator().map(Signal::as_str).collect();
                let by_number = value
                    .value
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok());
                let hint = match (by_number, nearest(&name, &names)) {
                    (Some(signal), _) => format!("write the signal's name: `{}`", signal.as_str()),
                    (None, Some(near)) => format!("did you mean `{near}`?"),
                    (None, None) => {
                        "use a signal name such as `SIGTERM`, `SIGINT`, `SIGQUIT` or `SIGHUP`"
                            .to_string()
                    }
                };
                self.field(
                    Pos::of(value),
                    "stop_signal",
                    &format!("unknown signal `{}`", value.value),
                    &hint,
                );
                None
            }
        }
    }

    fn command_line(&mut self, pos: Pos, key: &str, line: &str) {
        if line.trim().is_empty() {
            self.field(
                pos,
                key,
                "the command is empty",
                "write the command line to run",
            );
        } else if line.contains('\0') {
            self.field(pos, key, "the command contains a NUL byte", "remove it");
        }
    }

    fn argv(&mut self, pos: Pos, key: &str, items: &[(Pos, &str)]) {
        match items.first() {
            None => self.field(
                pos,
                key,
                "the list is empty",
                "give the program and its arguments, e.g. `[python3, app.py]`",
            ),
            Some((first_pos, program)) if program.trim().is_empty() => {
                self.field(
                    *first_pos,
                    key,
                    "the program (the first item) is empty",
                    "start the list with the program to run",
                );
            }
            Some(_) => {}
        }
        for (item_pos, item) in items {
            if item.contains('\0') {
                self.field(
                    *item_pos,
                    key,
                    "an argument contains a NUL byte",
                    "remove it",
                );
            }
        }
    }

    /// Exactly one of `command` (a line) and `argv` (a list).
    fn service_command(&mut self, id_pos: Pos, id: &str, raw: &RawService) -> Option<CommandSpec> {
        match (&raw.command, &raw.argv) {
            (Some(_), Some(argv)) => {
                self.problems.push(
                    Problem::new(
                        Pos::of(argv),
                        format!("service `{id}` has both `command` and `argv`"),
                    )
                    .hint("keep one: `command` for a command line, `argv` for a list of arguments"),
                );
                None
            }
            (None, None) => {
                self.problems.push(
                    Problem::new(id_pos, format!("service `{id}` has no `command` or `argv`"))
                        .hint("add `command: ...` (a command line) or `argv: [program, arg, ...]`"),
                );
                None
            }
            (Some(command), None) => match &command.value {
                CommandValue::Line(line) => {
                    let before = self.problems.len();
                    self.command_line(Pos::of(command), "command", line);
                    (self.problems.len() == before).then(|| CommandSpec::Line(line.clone()))
                }
                CommandValue::List(_) => {
                    self.field(
                        Pos::of(command),
                        "command",
                        "it is a list; `command` takes a command line",
                        "write the list under `argv:` instead, or write `command` as one line",
                    );
                    None
                }
            },
            (None, Some(argv)) => self.argv_spec(Pos::of(argv), "argv", &argv.value),
        }
    }

    fn argv_spec(&mut self, pos: Pos, key: &str, items: &[Sp<String>]) -> Option<CommandSpec> {
        let before = self.problems.len();
        let refs: Vec<(Pos, &str)> = items
            .iter()
            .map(|i| (Pos::of(i), i.value.as_str()))
            .collect();
        self.argv(pos, key, &refs);
        (self.problems.len() == before)
            .then(|| CommandSpec::Argv(items.iter().map(|i| i.value.clone()).collect()))
    }

    fn probe(&mut self, kind: &str, probe: &Sp<RawProbe>) -> Option<ProbeSpec> {
        let before = self.problems.len();
        let raw = &probe.value;
        let mut checks: Vec<(Pos, &str)> = Vec::new();
        if let Some(http) = &raw.http {
            checks.push((Pos::of(http), "http"));
        }
        if let Some(tcp) = &raw.tcp {
            checks.push((Pos::of(tcp), "tcp"));
        }
        if let Some(command) = &raw.command {
            checks.push((Pos::of(command), "command"));
        }
        let check = match checks.as_slice() {
            [] => {
                self.problems.push(
                    Problem::new(
                        Pos::of(probe),
                        format!("`{kind}`{} has no check", self.place),
                    )
                    .hint("add one of `http: { url: ... }`, `tcp: host:port` or `command: ...`"),
                );
                None
            }
            [_] => self.probe_check(kind, raw),
            [(_, first), (second_pos, second), ..] => {
                self.problems.push(
                    Problem::new(
                        *second_pos,
                        format!(
                            "`{kind}`{} has more than one check (`{first}` and `{second}`)",
                            self.place
                        ),
                    )
                    .hint("keep exactly one of `http`, `tcp` and `command` per probe"),
                );
                None
            }
        };
        let mut spec = ProbeSpec::new(check.unwrap_or(ProbeCheck::Tcp {
            address: String::new(),
        }));
        if let Some(interval) = &raw.interval
            && let Some(interval) = self.positive_duration(&format!("{kind}.interval"), interval)
        {
            spec.interval = interval;
        }
        if let Some(timeout) = &raw.timeout
            && let Some(timeout) = self.positive_duration(&format!("{kind}.timeout"), timeout)
        {
            spec.timeout = timeout;
        }
        if let Some(delay) = &raw.initial_delay
            && let Some(delay) = self.duration(&format!("{kind}.initial_delay"), delay)
        {
            spec.initial_delay = delay;
        }
        for (value, key, slot) in [
            (
                &raw.failure_threshold,
                "failure_threshold",
                &mut spec.failure_threshold,
            ),
            (
                &raw.success_threshold,
                "success_threshold",
                &mut spec.success_threshold,
            ),
        ] {
            if let Some(value) = value
                && let Some(n) =
                    self.number(value, &format!("{kind}.{key}"), 1, i64::from(u32::MAX))
            {
                *slot = n as u32;
            }
        }
        (self.problems.len() == before).then_some(spec)
    }

    fn probe_check(&mut self, kind: &str, raw: &RawProbe) -> Option<ProbeCheck> {
        if let Some(http) = &raw.http {
            return self.http_check(kind, Pos::of(http), &http.value);
        }
        if let Some(tcp) = &raw.tcp {
            return match host_port(&tcp.value) {
                Ok(()) => Some(ProbeCheck::Tcp {
                    address: tcp.value.trim().to_string(),
                }),
                Err(detail) => {
                    self.field(
                        Pos::of(tcp),
                        &format!("{kind}.tcp"),
                        &detail,
                        "write `host:port`, e.g. `127.0.0.1:8080`",
                    );
                    None
                }
            };
        }
        let command = raw.command.as_ref()?;
        let key = format!("{kind}.command");
        match &command.value {
            CommandValue::Line(line) => {
                let before = self.problems.len();
                self.command_line(Pos::of(command), &key, line);
                (self.problems.len() == before).then(|| ProbeCheck::Command {
                    command: CommandSpec::Line(line.clone()),
                })
            }
            CommandValue::List(items) => self
                .argv_spec(Pos::of(command), &key, items)
                .map(|command| ProbeCheck::Command { command }),
        }
    }

    fn http_check(&mut self, kind: &str, pos: Pos, raw: &RawHttp) -> Option<ProbeCheck> {
        let key = format!("{kind}.http");
        let url = match &raw.url {
            None => {
                self.field(
                    pos,
                    &key,
                    "`url` is missing",
                    "write `http: { url: \"http://127.0.0.1:8080/health\" }`",
                );
                return None;
            }
            Some(url) => url,
        };
        if let Err(detail) = http_url(&url.value) {
            self.field(
                Pos::of(url),
                &format!("{key}.url"),
                &detail,
                "write a full URL, e.g. `http://127.0.0.1:8080/health`",
            );
            return None;
        }
        let status = match &raw.expect_status {
            None => 200,
            Some(status) => self.number(status, &format!("{key}.expect_status"), 100, 599)? as u16,
        };
        Some(ProbeCheck::Http {
            url: url.value.trim().to_string(),
            expect_status: status,
        })
    }

    /// The same probe rules for a definition built in code.
    fn probe_spec(&mut self, kind: &str, probe: &ProbeSpec) {
        let none = Pos::default();
        match &probe.check {
            ProbeCheck::Http { url, expect_status } => {
                if let Err(detail) = http_url(url) {
                    self.field(
                        none,
                        &format!("{kind}.http.url"),
                        &detail,
                        "give a full URL, e.g. `http://127.0.0.1:8080/health`",
                    );
                }
                if !(100..=599).contains(expect_status) {
                    self.field(
                        none,
                        &format!("{kind}.http.expect_status"),
                        &format!("{expect_status} is not an HTTP status"),
                        "give a status from 100 to 599",
                    );
                }
            }
            ProbeCheck::Tcp { address } => {
                if let Err(detail) = host_port(address) {
                    self.field(
                        none,
                        &format!("{kind}.tcp"),
                        &detail,
                        "give `host:port`, e.g. `127.0.0.1:8080`",
                    );
                }
            }
            ProbeCheck::Command { command } => match command {
                CommandSpec::Line(line) => {
                    self.command_line(none, &format!("{kind}.command"), line)
                }
                CommandSpec::Argv(argv) => {
                    let items: Vec<(Pos, &str)> = argv.iter().map(|a| (none, a.as_str())).collect();
                    self.argv(none, &format!("{kind}.command"), &items);
                }
            },
            ProbeCheck::Function(_) => {}
        }
        for (key, value) in [("interval", probe.interval), ("timeout", probe.timeout)] {
            if value.is_zero() {
                self.field(
                    none,
                    &format!("{kind}.{key}"),
                    "it is zero",
                    "give a duration such as `1s`",
                );
            }
        }
        for (key, value) in [
            ("failure_threshold", probe.failure_threshold),
            ("success_threshold", probe.success_threshold),
        ] {
            if value == 0 {
                self.field(
                    none,
                    &format!("{kind}.{key}"),
                    "it is zero",
                    "give a count of at least 1",
                );
            }
        }
    }
}

/// `host:port` with a port from 1 to 65535 (IPv6 hosts in brackets: `[::1]:8080`).
fn host_port(text: &str) -> Result<(), String> {
    let text = text.trim();
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` has no port"));
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{text}`: an IPv6 address needs brackets, e.g. `[::1]:8080`"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("`{port}` is not a port number (1 to 65535)")),
    }
}

/// An `http://` or `https://` URL with a host.
fn http_url(text: &str) -> Result<(), String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    match rest {
        None => Err(format!(
            "`{text}` does not start with `http://` or `https://`"
        )),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Err(format!("`{text}` has no host"))
        }
        Some(rest) if rest.contains(char::is_whitespace) => {
            Err(format!("`{text}` contains a space"))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn host_port_and_urls() {
        assert!(host_port("127.0.0.1:8080").is_ok());
        assert!(host_port("localhost:1").is_ok());
        assert!(host_port("[::1]:8080").is_ok());
        assert!(host_port("::1:8080").is_err());
        assert!(host_port("127.0.0.1").is_err());
        assert!(host_port(":80").is_err());
        assert!(host_port("h:0").is_err());
        assert!(host_port("h:70000").is_err());
        assert!(http_url("http://127.0.0.1:8080/health").is_ok());
        assert!(http_url("https://example.org").is_ok());
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("http://").is_err());
        assert!(http_url("http:///x").is_err());
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
}
