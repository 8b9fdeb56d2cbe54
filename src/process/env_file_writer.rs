//! `write_env_file: true`: the service's own variables written to `<cwd>/.env` before it
//! starts, for tools such as docker compose that read that file (DESIGN §10).
//!
//! Only the variables of `env_file` and `env` are written, never steward's inherited
//! environment, which may hold its API token. Each line is `KEY="value"`, keys sorted, with
//! `\`, `"`, `$`, newlines and carriage returns escaped the way docker compose (and
//! [`parse_env_file`](crate::process::environment::parse_env_file)) read a double-quoted
//! value back. The file has mode 0600 and replaces the old one atomically (a temporary file
//! in the same directory, then a rename), so a reader never sees half of it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::config::ServiceDefinition;
use crate::process::environment::read_env_file;
use crate::process::user::lookup_user;

/// Writes the variables of the service's `env_file` and `env` (`env` wins) to
/// `<cwd>/.env` and returns that path.
///
/// When the service has a `user`, the file belongs to that user, so the service can read
/// it. `Err` says what to fix: an unreadable `env_file`, a variable name the format cannot
/// hold, an `env_file` that is the very file to write, or a write that failed.
pub fn write_env_file(def: &ServiceDefinition) -> Result<PathBuf, String> {
    let target = def.cwd.join(".env");
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    if let Some(source) = &def.env_file {
        if same_file(source, &target) {
            return Err(format!(
                "env_file {} is the file write_env_file would overwrite: move the variables to another file and point `env_file` at it, or turn `write_env_file` off",
                source.display()
            ));
        }
        vars.extend(read_env_file(source)?);
    }
    vars.extend(def.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let owner = match &def.user {
        Some(user) => {
            let found = lookup_user(user, def.group.as_deref())?;
            Some((found.uid, found.gid))
        }
        None => None,
    };
    let text = render(&vars)?;
    write_atomically(&target, text.as_bytes(), owner).map_err(|e| {
        format!(
            "cannot write {}: {e}: check that `cwd` is writable",
            target.display()
        )
    })?;
    Ok(target)
}

/// The file's text: one `KEY="value"` line per variable, in key order.
pub fn render(vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut text = String::new();
    for (key, value) in vars {
        if !is_portable_key(key) {
            return Err(format!(
                "variable name `{key}` cannot be written to a .env file: use letters, digits, `_` and `.` (not starting with a digit)"
            ));
        }
        text.push_str(key);
        text.push_str("=\"");
        text.push_str(&escape(value));
        text.push_str("\"\n");
    }
    Ok(text)
}

/// Escapes a value for the inside of double quotes.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            // docker compose would otherwise interpolate `$NAME`.
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

fn is_portable_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Writes `bytes` to `target` through a mode-0600 temporary file in the same directory,
/// `fsync` and a rename (milliseconds on a real disk: for files a person relies on),
/// optionally owned by `owner` (uid, gid).
pub(crate) fn write_atomically(
    target: &Path,
    bytes: &[u8],
    owner: Option<(u32, u32)>,
) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.steward-{}.tmp", std::process::id()));
    // A temporary file left by a crash is ours to replace.
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        if let Some((uid, gid)) = owner {
            nix::unistd::fchown(
                &file,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use proptest::prelude::*;

    use super::*;
    use crate::config::CommandSpec;
    use crate::process::environment::parse_env_file;

    fn def_in(dir: &Path) -> ServiceDefinition {
        let mut def = ServiceDefinition::new("compose", CommandSpec::Line("true".into()));
        def.cwd = dir.to_path_buf();
        def
    }

    #[test]
    fn writes_only_the_service_variables_sorted_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("secrets.env");
        std::fs::write(&source, "DB_PASSWORD='p$ss\"w\\rd'\nBOTH=file\n").expect("write");
        let mut def = def_in(dir.path());
        def.env_file = Some(source);
        def.env.insert("BOTH".into(), "env".into());
        def.env.insert("MULTI".into(), "a\nb".into());

        let path = write_env_file(&def).expect("written");
        assert_eq!(path, dir.path().join(".env"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "BOTH=\"env\"\nDB_PASSWORD=\"p\\$ss\\\"w\\\\rd\"\nMULTI=\"a\\nb\"\n"
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Nothing inherited from steward's own environment.
        assert!(!text.contains("PATH="), "{text}");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn rewriting_replaces_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".env"), "OLD=1\n").expect("write");
        let mut def = def_in(dir.path());
        def.env.insert("NEW".into(), "2".into());
        let path = write_env_file(&def).expect("written");
        assert_eq!(std::fs::read_to_string(path).expect("read"), "NEW=\"2\"\n");
    }

    #[test]
    fn refuses_to_overwrite_its_own_env_file_and_odd_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".env"), "A=1\n").expect("write");
        let mut def = def_in(dir.path());
        def.env_file = Some(dir.path().join(".env"));
        let err = write_env_file(&def).expect_err("same file");
        assert!(
            err.contains("is the file write_env_file would overwrite"),
            "{err}"
        );

        let mut def = def_in(dir.path());
        def.env.insert("NOT A NAME".into(), "x".into());
        let err = write_env_file(&def).expect_err("bad name");
        assert!(err.contains("`NOT A NAME`"), "{err}");
    }

    #[test]
    fn unwritable_cwd_is_named() {
        let def = def_in(Path::new("/nonexistent/steward-env-dir"));
        let err = write_env_file(&def).expect_err("must fail");
        assert!(err.contains("/nonexistent/steward-env-dir/.env"), "{err}");
    }

    /// A reader of exactly the written format, independent of `parse_env_file`: each
    /// line is `KEY="…"` and `\x` stands for `x`, except `\n` and `\r`.
    fn read_back(text: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let (key, quoted) = line.split_once('=').expect("KEY=");
            let inner = quoted
                .strip_prefix('"')
                .and_then(|q| q.strip_suffix('"'))
                .expect("quoted");
            let mut value = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    assert_ne!(c, '"', "an unescaped quote in {line}");
                    value.push(c);
                    continue;
                }
                match chars.next().expect("escape has a character") {
                    'n' => value.push('\n'),
                    'r' => value.push('\r'),
                    other => value.push(other),
                }
            }
            out.insert(key.to_string(), value);
        }
        out
    }

    proptest! {
        #[test]
        fn values_round_trip(
            vars in proptest::collection::btree_map(
                "[A-Za-z_][A-Za-z0-9_]{0,8}",
                "(\\PC|[\\\\\"$\n\r' #=])*",
                0..6,
            )
        ) {
            let text = render(&vars).expect("valid names");
            // One line per variable: newlines inside values are escaped.
            prop_assert_eq!(text.lines().count(), vars.len());
            prop_assert_eq!(&read_back(&text), &vars);
            // steward's own env_file reader reads it back too.
            let parsed: BTreeMap<String, String> =
                parse_env_file(&text).expect("parses").into_iter().collect();
            prop_assert_eq!(&parsed, &vars);
        }
    }
}
