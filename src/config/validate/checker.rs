//! Field checks shared by the file path and the code path: each reads one value as
//! written (a duration, a number, a path, a signal, …), or notes a problem that names the
//! key and says how to fix it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::config::model::{CommandValue, Pos, RawService, Sp};
use crate::config::problem::{Problem, nearest};
use crate::config::units::{UnitError, parse_duration};
use crate::config::{CommandSpec, RestartPolicy};

/// Notes problems for one service (or `settings`), each naming the key.
pub(super) struct Checker<'p> {
    /// ` in service `web`` or ` in `settings``.
    pub place: String,
    /// Where problems go.
    pub problems: &'p mut Vec<Problem>,
}

impl Checker<'_> {
    /// `invalid `key` in service `web`: detail (hint: …)`.
    pub(super) fn field(&mut self, pos: Pos, key: &str, detail: &str, hint: &str) {
        self.problems
            .push(Problem::new(pos, format!("invalid `{key}`{}: {detail}", self.place)).hint(hint));
    }

    pub(super) fn duration(&mut self, key: &str, value: &Sp<String>) -> Option<Duration> {
        match parse_duration(&value.value) {
            Ok(duration) => Some(duration),
            Err(UnitError { message, hint }) => {
                self.field(Pos::of(value), key, &message, &hint);
                None
            }
        }
    }

    pub(super) fn positive_duration(&mut self, key: &str, value: &Sp<String>) -> Option<Duration> {
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

    pub(super) fn number(
        &mut self,
        value: &Sp<String>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
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

    pub(super) fn boolean(&mut self, value: &Sp<String>, key: &str) -> Option<bool> {
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
    pub(super) fn path(&mut self, base: &Path, key: &str, value: &Sp<String>) -> Option<PathBuf> {
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

    pub(super) fn env_name(&mut self, pos: Pos, key: &str, name: &str) {
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

    pub(super) fn env_map(
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

    pub(super) fn restart_policy(&mut self, value: &Sp<String>) -> Option<RestartPolicy> {
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

    pub(super) fn signal(&mut self, value: &Sp<String>) -> Option<Signal> {
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

    pub(super) fn command_line(&mut self, pos: Pos, key: &str, line: &str) {
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

    pub(super) fn argv(&mut self, pos: Pos, key: &str, items: &[(Pos, &str)]) {
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
    pub(super) fn service_command(
        &mut self,
        id_pos: Pos,
        id: &str,
        raw: &RawService,
    ) -> Option<CommandSpec> {
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

    pub(super) fn argv_spec(
        &mut self,
        pos: Pos,
        key: &str,
        items: &[Sp<String>],
    ) -> Option<CommandSpec> {
        let before = self.problems.len();
        let refs: Vec<(Pos, &str)> = items
            .iter()
            .map(|i| (Pos::of(i), i.value.as_str()))
            .collect();
        self.argv(pos, key, &refs);
        (self.problems.len() == before)
            .then(|| CommandSpec::Argv(items.iter().map(|i| i.value.clone()).collect()))
    }
}
