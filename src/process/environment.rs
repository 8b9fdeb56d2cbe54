//! The environment and working directory a service runs with (DESIGN §10).
//!
//! A service inherits steward's environment (less `NOTIFY_SOCKET` and the watchdog
//! variables, which are steward's own), then the variables of its `env_file`, then
//! its `env` map; a later source wins. `required_env` is checked against the result, so a
//! service that would start without its `API_KEY` fails with a reason instead.
//!
//! The `env_file` format is the one docker compose and most dotenv readers share:
//! `KEY=VALUE` lines, `#` comments and blank lines, an optional `export ` in front,
//! values in single quotes (literal) or double quotes (with `\n`, `\t`, `\r`, `\"`, `\\`,
//! `\$` escapes, possibly over several lines), and unquoted values with an optional
//! ` # comment` after them. Values are taken literally: `${OTHER}` is not expanded.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::ServiceDefinition;

/// steward's environment, then `env_file`, then `env` (later wins), sorted by name.
/// `Err` says what to fix (an unreadable or malformed env_file, missing required
/// variables). A required variable that is set but empty counts as missing.
pub fn resolve(def: &ServiceDefinition) -> Result<Vec<(String, String)>, String> {
    let mut vars: BTreeMap<String, String> = std::env::vars_os()
        // steward's own manager's socket and watchdog are steward's (DESIGN §11): a
        // service that inherited them would answer for steward.
        .filter(|(k, _)| !crate::notify::MANAGER_VARS.iter().any(|m| k == m))
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    if let Some(path) = &def.env_file {
        for (key, value) in read_env_file(path)? {
            vars.insert(key, value);
        }
    }
    for (key, value) in &def.env {
        vars.insert(key.clone(), value.clone());
    }
    let mut missing: Vec<&str> = Vec::new();
    for name in &def.required_env {
        let absent = vars.get(name).is_none_or(|v| v.is_empty());
        if absent && !missing.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing required environment variable(s) {}: set them in env, env_file or steward's environment",
            missing.join(", ")
        ));
    }
    Ok(vars.into_iter().collect())
}

/// Gives a service process its own notify socket (DESIGN §11): `NOTIFY_SOCKET` set to
/// `socket` (steward's socket for that service, never steward's own manager's), and with a
/// `watchdog`, `WATCHDOG_USEC` as systemd sets it. `WATCHDOG_PID` is left out: the pid is
/// not known before the spawn, and without it the children of a shell line may ping too.
/// Values the service's `env` gave these names are replaced.
pub fn add_notify_vars(
    env: &mut Vec<(String, String)>,
    socket: &str,
    watchdog: Option<std::time::Duration>,
) {
    env.retain(|(k, _)| !crate::notify::MANAGER_VARS.contains(&k.as_str()));
    env.push(("NOTIFY_SOCKET".to_string(), socket.to_string()));
    if let Some(watchdog) = watchdog {
        let usec = watchdog.as_micros().max(1);
        env.push(("WATCHDOG_USEC".to_string(), usec.to_string()));
    }
    env.sort();
}

/// `Ok` when the service's `cwd` exists and is a directory; else a reason that says what
/// to fix.
pub fn check_cwd(def: &ServiceDefinition) -> Result<(), String> {
    check_dir(&def.cwd)
}

/// `Ok` when `dir` exists and is a directory; else a reason that says what to fix.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "working directory {} is not a directory: point `cwd` at a directory",
            dir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "working directory {} does not exist: create it or fix `cwd`",
            dir.display()
        )),
        Err(e) => Err(format!(
            "working directory {} is not usable ({e}): fix its permissions or `cwd`",
            dir.display()
        )),
    }
}

/// The largest env file read (a FIFO, a device or a larger file is an error, never a hang).
pub const ENV_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// Reads an env file into `(key, value)` pairs in file order.
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let bytes = super::regular_file::read_regular(path, ENV_FILE_MAX_BYTES).map_err(|e| {
        format!(
            "cannot read env_file {}: {e}: create the file or fix `env_file`",
            path.display()
        )
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_env_file(&text)
        .map_err(|(line, why)| format!("env_file {}:{line}: {why}", path.display()))
}

/// Parses env-file text. `Err((line, why))` points at the first bad line (1-based).
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((number, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            // The line is not quoted back: it may hold a secret (DESIGN: env_file values
            // never appear in steward's output).
            return Err((
                number,
                "expected KEY=VALUE (a line with no `=`)".to_string(),
            ));
        };
        let key = key.trim_end();
        if !is_valid_key(key) {
            return Err((
                number,
                format!(
                    "`{key}` is not a variable name (letters, digits and `_`, not starting with a digit)"
                ),
            ));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let mut body = rest[1..].to_string();
                loop {
                    if let Some((value, after)) = take_quoted(&body, quote) {
                        let after = after.trim_start();
                        if !after.is_empty() && !after.starts_with('#') {
                            return Err((
                                number,
                                format!("unexpected text after the closing quote of {key}"),
                            ));
                        }
                        break value;
                    }
                    // The quote spans lines: the newline is part of the value.
                    match lines.next() {
                        Some((_, next)) => {
                            body.push('\n');
                            body.push_str(next);
                        }
                        None => {
                            return Err((
                                number,
                                format!("the value of {key} has no closing {quote}"),
                            ));
                        }
                    }
                }
            }
            _ => unquoted_value(rest),
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The value inside quotes and what follows the closing quote, or `None` when `body` has
/// no closing quote yet.
fn take_quoted(body: &str, quote: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((value, &body[i + c.len_utf8()..]));
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, e @ ('"' | '\\' | '$' | '`'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            }
            continue;
        }
        value.push(c);
    }
    None
}

/// An unquoted value: trimmed, with a ` # comment` after it removed.
fn unquoted_value(rest: &str) -> String {
    let mut end = rest.len();
    let bytes = rest.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && i > 0 && (bytes[i - 1] == b' ' || bytes[i - 1] == b'\t') {
            end = i;
            break;
        }
    }
    rest[..end].trim_end().to_string()
}

fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommandSpec;

    fn def() -> ServiceDefinition {
        ServiceDefinition::new("web", CommandSpec::Line("true".into()))
    }

    fn get<'a>(vars: &'a [(String, String)], key: &str) -> Option<&'a str> {
        vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn parses_the_env_file_format() {
        let text = "# a comment\n\
                    \n\
                    PLAIN=value\n\
                    export EXPORTED=yes\n\
                    SPACED = padded value   # trailing comment\n\
                    HASH=a#b\n\
                    SINGLE='lit $HOME \\n'\n\
                    DOUBLE=\"a\\nb \\\"q\\\" \\$X\"\n\
                    MULTI=\"line1\n\
                    line2\"\n\
                    EMPTY=\n\
                    URL=postgres://u:p@h/db?x=1\n";
        let vars = parse_env_file(text).expect("valid file");
        let expected: Vec<(String, String)> = [
            ("PLAIN", "value"),
            ("EXPORTED", "yes"),
            ("SPACED", "padded value"),
            ("HASH", "a#b"),
            ("SINGLE", "lit $HOME \\n"),
            ("DOUBLE", "a\nb \"q\" $X"),
            ("MULTI", "line1\nline2"),
            ("EMPTY", ""),
            ("URL", "postgres://u:p@h/db?x=1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn bad_lines_are_pointed_at() {
        assert_eq!(parse_env_file("A=1\njust words\n").map_err(|e| e.0), Err(2));
        assert_eq!(parse_env_file("1A=x").map_err(|e| e.0), Err(1));
        assert_eq!(parse_env_file("A=\"open\nB=2\n").map_err(|e| e.0), Err(1));
        assert_eq!(parse_env_file("A='x' y").map_err(|e| e.0), Err(1));
    }

    #[test]
    fn later_sources_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join(".env");
        std::fs::write(&file, "FROM_FILE=file\nBOTH=file\nPATH=/from/file\n").expect("write");
        let mut def = def();
        def.env_file = Some(file);
        def.env.insert("BOTH".into(), "env".into());
        let vars = resolve(&def).expect("resolves");
        assert_eq!(get(&vars, "FROM_FILE"), Some("file"));
        assert_eq!(get(&vars, "BOTH"), Some("env"));
        // env_file wins over steward's own environment.
        assert_eq!(get(&vars, "PATH"), Some("/from/file"));
        // steward's environment is inherited.
        let home = std::env::var("HOME").ok();
        assert_eq!(get(&vars, "HOME").map(str::to_string), home);
    }

    #[test]
    fn missing_required_variables_are_all_named() {
        let mut def = def();
        def.required_env = vec!["STEWARD_TEST_API_KEY".into(), "STEWARD_TEST_DB_URL".into()];
        def.env.insert("STEWARD_TEST_DB_URL".into(), String::new());
        assert_eq!(
            resolve(&def),
            Err("missing required environment variable(s) STEWARD_TEST_API_KEY, STEWARD_TEST_DB_URL: \
                 set them in env, env_file or steward's environment"
                .to_string())
        );
        def.env.insert("STEWARD_TEST_API_KEY".into(), "k".into());
        def.env.insert("STEWARD_TEST_DB_URL".into(), "d".into());
        assert!(resolve(&def).is_ok());
    }

    #[test]
    fn unreadable_env_file_is_named() {
        let mut def = def();
        def.env_file = Some("/nonexistent/steward/.env".into());
        let err = resolve(&def).expect_err("must fail");
        assert!(err.contains("/nonexistent/steward/.env"), "{err}");
        assert!(err.contains("env_file"), "{err}");
    }

    #[test]
    fn cwd_must_be_an_existing_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut def = def();
        def.cwd = dir.path().to_path_buf();
        assert_eq!(check_cwd(&def), Ok(()));

        def.cwd = dir.path().join("missing");
        let err = check_cwd(&def).expect_err("missing");
        assert!(
            err.contains("missing") && err.contains("does not exist"),
            "{err}"
        );

        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        def.cwd = file;
        let err = check_cwd(&def).expect_err("not a dir");
        assert!(err.contains("is not a directory"), "{err}");
    }
}
