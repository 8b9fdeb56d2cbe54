//! The YAML parser's errors in steward's words: what is wrong, where (the service and the
//! key), and how to fix it: the nearest valid key for a typo, the expected shape with an
//! example for a type error.

use serde_saphyr::{DefaultMessageFormatter, Error as YamlError, MessageFormatter};

use super::parse::Section;
use crate::config::model::LIMITS_KEYS;
use crate::config::model::{
    DEPENDENCY_KEYS, FILE_KEYS, HTTP_KEYS, PROBE_KEYS, Pos, SERVICE_KEYS, SETTINGS_KEYS,
    SOURCE_KEYS,
};
use crate::config::problem::{Problem, key_list, nearest};
use crate::process::is_secret_key;

/// The error the parser reported, under any alias or snippet wrapper.
pub(super) fn innermost(mut error: &YamlError) -> &YamlError {
    loop {
        match error {
            YamlError::WithSnippet { error: inner, .. }
            | YamlError::AliasError { error: inner, .. } => {
                error = inner;
            }
            other => return other,
        }
    }
}

/// The error's position, `0:0` when it has none (only used to recognise a repeated error).
pub(super) fn error_pos(error: &YamlError) -> Pos {
    error.location().map_or_else(Pos::default, |location| Pos {
        line: location.line(),
        column: location.column(),
    })
}

/// Where an error happened, in words: ` in service `web``.
fn place(section: Option<&Section>) -> String {
    match section {
        Some(Section::Service(id)) => format!(" in service `{id}`"),
        Some(Section::Settings) => " in `settings`".to_string(),
        Some(Section::Version) => " in `version`".to_string(),
        Some(Section::Services) => " in `services`".to_string(),
        None => String::new(),
    }
}

/// What `describe` knows about where an error happened.
pub(super) struct Context<'a> {
    /// The section being read.
    pub section: Option<&'a Section>,
    /// The position of that section's key.
    pub key: Option<Pos>,
    /// The source, to quote the offending value.
    pub text: &'a str,
}

/// Turns a parser error into a problem that says what is wrong and how to fix it.
pub(super) fn describe(error: &YamlError, context: &Context) -> Problem {
    let section = context.section;
    // Errors raised by a visitor carry no position; the section's key is the best guess.
    let pos = error
        .location()
        .map(|location| Pos {
            line: location.line(),
            column: location.column(),
        })
        .filter(|pos| pos.line > 0)
        .or(context.key)
        .unwrap_or(Pos { line: 1, column: 1 });
    let inner = innermost(error);
    let at = place(section);
    let found = |default: &str| match value_at(context.text, pos) {
        Some(value) => format!("`{value}`"),
        None => default.to_string(),
    };
    let mismatch = |expected: &str, found: String| {
        // A whole service (or settings block) written as a scalar on its key's line.
        let on_key_line = context.key.is_some_and(|key| key.line == pos.line);
        match (section, expected) {
            (Some(Section::Service(id)), "struct RawService" | "mapping start") if on_key_line => {
                let example = value_at(context.text, pos).unwrap_or_else(|| "./run.sh".to_string());
                Problem::new(pos, format!("service `{id}` must be a map of keys, found {found}"))
                    .hint(format!("a service is a map with `command` or `argv`, e.g. `{id}: {{ command: {example} }}`"))
            }
            (Some(Section::Settings), "struct RawSettings" | "mapping start") if on_key_line => {
                Problem::new(pos, format!("`settings` must be a map, found {found}")).hint(format!(
                    "`settings` is a map with {}",
                    key_list(SETTINGS_KEYS)
                ))
            }
            _ => {
                let key = key_before(context.text, pos);
                // What an `env` map or a secret-looking variable holds is never quoted back:
                // errors reach logs and the API (DESIGN: secrets never appear in output).
                let found = match key.as_deref() {
                    Some(key) if key == "env" || is_secret_key(key) => {
                        "a value not shown here (it may hold a secret)".to_string()
                    }
                    _ => found,
                };
                let (what, hint) = expected_in_words(expected, key.as_deref());
                let for_key = key.map_or_else(String::new, |key| format!(" for `{key}`"));
                Problem::new(pos, format!("expected {what}{for_key}{at}, found {found}")).hint(hint)
            }
        }
    };
    match inner {
        YamlError::SerdeUnknownField { field, expected, .. } => {
            unknown_key(pos, field, expected, section)
        }
        YamlError::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | YamlError::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => mismatch(expected, unexpected.clone()),
        YamlError::InvalidScalar { ty, .. } => mismatch(ty, found("something else")),
        YamlError::InvalidBooleanStrict { .. } => mismatch("boolean", found("something else")),
        YamlError::Unexpected { expected, .. }
            if matches!(*expected, "mapping start" | "sequence start" | "string scalar") =>
        {
            mismatch(expected, found("something else"))
        }
        YamlError::NullIntoString { .. } => Problem::new(pos, format!("empty value{at}"))
            .hint("write a value, or `\"\"` for an empty string"),
        YamlError::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("a key");
            Problem::new(pos, format!("`{key}` is given twice{at}")).hint("keep only one of them")
        }
        YamlError::Message { msg, .. } if msg.starts_with("duplicate field") => {
            let field = msg.split('`').nth(1).unwrap_or("a key");
            Problem::new(pos, format!("`{field}` is given twice{at}")).hint("keep only one of them")
        }
        YamlError::MultipleDocuments { .. } => {
            Problem::new(pos, "more than one YAML document in this file").hint(
                "keep one document per file: remove the `---` line, or move the rest to its own file in services.d",
            )
        }
        YamlError::Budget { .. } => Problem::new(
            pos,
            format!("the file is over the size limits of a service file{at} ({})", message_of(inner)),
        )
        .hint(
            "a service file should be small and shallow: simplify it or split it into several files",
        ),
        YamlError::UnsupportedTag { .. } => Problem::new(pos, format!("{}{at}", message_of(inner)))
            .hint("remove the `!tag`: service files use plain YAML values"),
        YamlError::ExternalMessage { .. }
        | YamlError::Eof { .. }
        | YamlError::Unexpected { .. }
        | YamlError::UnexpectedSequenceEnd { .. }
        | YamlError::UnexpectedMappingEnd { .. }
        | YamlError::ContainerEndMismatch { .. }
        | YamlError::UnexpectedContainerEndWhileReadingKeyNode { .. }
        | YamlError::UnexpectedContainerEndWhileSkippingNode { .. }
        | YamlError::IndentationError { .. }
        | YamlError::UnknownAnchor { .. } => {
            let message = message_of(inner);
            if message.contains("limit") {
                return Problem::new(pos, format!("{message}{at}")).hint(
                    "a service file should be small and shallow: simplify it or split it into several files",
                );
            }
            Problem::new(pos, format!("YAML syntax error: {message}"))
                .hint("check the indentation, the `:` after each key and the quotes on this line and the one before")
        }
        _ => Problem::new(pos, format!("{}{at}", message_of(inner)))
            .hint("see docs/CONFIGURATION.md for what each key accepts"),
    }
}

/// The key written just before `pos` on its line (`tags` for `    tags: frontend` at the
/// `f`), when the value sits on its key's line.
fn key_before(text: &str, pos: Pos) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let end = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let before: String = line.chars().take(end).collect();
    let before = before.trim_end().strip_suffix(':')?;
    let key = before
        .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',')
        .next()?
        .trim_matches(|c| c == '"' || c == '\'');
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then(|| key.to_string())
}

/// The plain value written at `pos`, to quote it in a message: up to the end of the line,
/// a comment, or the end of a flow item. `None` when there is nothing sensible to quote.
fn value_at(text: &str, pos: Pos) -> Option<String> {
    let line = text
        .lines()
        .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let start = usize::try_from(pos.column).ok()?.checked_sub(1)?;
    let rest: String = line.chars().skip(start).collect();
    let end = rest
        .find(" #")
        .into_iter()
        .chain(rest.find([',', ']', '}']))
        .min()
        .unwrap_or(rest.len());
    let value = rest[..end].trim();
    if value.is_empty() || value.chars().count() > 60 || value.contains('`') {
        None
    } else {
        Some(value.to_string())
    }
}

/// The parser's own message, without location or snippet, on one line.
fn message_of(error: &YamlError) -> String {
    let text = DefaultMessageFormatter.format_message(error);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `unknown key `comand` in service `api`` with the nearest valid key.
fn unknown_key(pos: Pos, field: &str, expected: &[&str], section: Option<&Section>) -> Problem {
    let service = match section {
        Some(Section::Service(id)) => Some(id.as_str()),
        _ => None,
    };
    let service_words = service.map_or_else(String::new, |id| format!("service `{id}`"));
    let place = if expected == PROBE_KEYS {
        format!("a probe of {service_words}")
    } else if expected == HTTP_KEYS {
        format!("the `http` check of {service_words}")
    } else if expected == SETTINGS_KEYS {
        "`settings`".to_string()
    } else if expected == SOURCE_KEYS {
        format!("the `source` of {service_words}")
    } else if expected == LIMITS_KEYS {
        format!("the `limits` of {service_words}")
    } else if expected == DEPENDENCY_KEYS {
        format!("a dependency of {service_words}")
    } else {
        service_words
    };
    let problem = Problem::new(pos, format!("unknown key `{field}` in {place}"));
    let synonym = match field {
        "cmd" => Some("command"),
        "args" | "arguments" => Some("argv"),
        "workdir" | "working_dir" | "dir" | "directory" => Some("cwd"),
        "environment" => Some("env"),
        "labels" => Some("tags"),
        "restart_policy" => Some("restart"),
        "depends" | "dependencies" | "requires" | "after" => Some("depends_on"),
        "branch" | "tag" | "rev" | "revision" => Some("ref"),
        "url" | "repo" | "repository" => Some("git"),
        _ => None,
    }
    .filter(|s| expected.contains(s));
    match synonym.or_else(|| nearest(field, expected)) {
        Some(near) => problem.hint(format!("did you mean `{near}`?")),
        None => problem.hint(format!("valid keys here are {}", key_list(expected))),
    }
}

/// serde's name of an expected type, in words, with how to write one.
fn expected_in_words(expected: &str, key: Option<&str>) -> (String, String) {
    // A map or list is better named by the key it belongs to.
    let expected = match (expected, key) {
        ("mapping start", Some("readiness" | "liveness" | "startup")) => "struct RawProbe",
        ("mapping start", Some("http")) => "struct RawHttp",
        ("mapping start", Some("env")) => "a map of variable names to values",
        ("mapping start", Some("source")) => "struct RawSource",
        ("mapping start", Some("limits")) => "struct RawLimits",
        (other, _) => other,
    };
    let (what, hint): (&str, String) = match expected {
        "a boolean" | "boolean" => ("a boolean", "write `true` or `false`".to_string()),
        "mapping start" => (
            "a map",
            "write `key: value` pairs, indented under the key, or `{ key: value }`".to_string(),
        ),
        "sequence start" => ("a list", "write a list: `[a, b]`, or one `- item` per line".to_string()),
        "string scalar" => ("text", "write the value as text; quote it if it contains `:` or `#`".to_string()),
        "floating point" => ("a number", "write a number such as `1.5`".to_string()),
        "i64" | "u64" | "u32" | "i32" | "u16" | "u8" | "usize" => ("a whole number", "write a number such as `10`, without quotes".to_string()),
        "a string" => ("text", "write the value as text; quote it if it contains `:` or `#`".to_string()),
        "a sequence" => ("a list", "write a list: `[a, b]`, or one `- item` per line".to_string()),
        "struct RawService" => (
            "a service definition (a map)",
            "a service is a map with `command` or `argv`, e.g. `web: { command: python3 app.py }`".to_string(),
        ),
        "struct RawProbe" => (
            "a probe (a map)",
            "a probe is a map with one of `http`, `tcp` or `command`, e.g. `readiness: { tcp: 127.0.0.1:8080 }`".to_string(),
        ),
        "struct RawHttp" => (
            "an http check (a map)",
            "write `http: { url: \"http://127.0.0.1:8080/health\" }`".to_string(),
        ),
        "struct RawSource" => (
            "a source (a map)",
            "write `source: { git: \"https://example.org/org/repo.git\", ref: main }`".to_string(),
        ),
        "struct RawLimits" => (
            "limits (a map)",
            "write `limits: { memory: 512MiB, cpu: 1.5, pids: 256 }`".to_string(),
        ),
        "struct RawDependency" => (
            "a dependency (a map)",
            "write `db: { condition: healthy }` (started, healthy or completed), or list the ids: `depends_on: [db]`".to_string(),
        ),
        "a map of service ids to conditions, or a list of service ids" => (
            "a map of service ids to conditions, or a list of service ids",
            "write `depends_on: { db: { condition: healthy } }` or `depends_on: [db, cache]`".to_string(),
        ),
        "struct RawSettings" => (
            "a map of settings",
            format!("`settings` is a map with {}", key_list(SETTINGS_KEYS)),
        ),
        "a map of variable names to values" => (
            "a map of variable names to values",
            "write `env: { PORT: \"8080\" }`, or one `NAME: value` per line".to_string(),
        ),
        "a command line or a list of arguments" => (
            "a command line or a list of arguments",
            "write `command: \"pg_isready -h 127.0.0.1\"` or `command: [pg_isready, -h, 127.0.0.1]`".to_string(),
        ),
        "a map of service ids to service definitions" => (
            "a map of service ids to service definitions",
            "write `services:` followed by one indented `id:` per service".to_string(),
        ),
        "a map with `version`, `settings` and `services`" => (
            "a map with `version`, `settings` and `services`",
            "start the file with `version: 1` and put services under `services:`".to_string(),
        ),
        other => (other, "see docs/CONFIGURATION.md for what each key accepts".to_string()),
    };
    (what.to_string(), hint)
}

/// The problem for a top-level key that is not `version`, `settings` or `services`.
pub(super) fn unknown_top_level_key(pos: Pos, key: &str) -> Problem {
    let problem = Problem::new(pos, format!("unknown top-level key `{key}`"));
    if let Some(near) = nearest(key, FILE_KEYS) {
        problem.hint(format!("did you mean `{near}`?"))
    } else if SERVICE_KEYS.contains(&key) {
        problem.hint(format!(
            "`{key}` belongs to a service: put it under `services:` and the service's id"
        ))
    } else {
        problem.hint(format!(
            "a file holds only {}; if `{key}` is a service, put it under `services:`",
            key_list(FILE_KEYS)
        ))
    }
}
