//! Reading a config directory: `services.yml`, then every `services.d/*.yml` in name
//! order, parsed with serde-saphyr and turned into definitions by `validate`.
//!
//! This is the one module that knows the YAML crate (DESIGN §9: serde_yaml is archived;
//! serde-saphyr is pure Rust, fuzzed, reports line and column, and enforces budgets against
//! hostile input). Everything it returns is in steward's own terms ([`ConfigError`]).
//!
//! **Every error at once.** A derived serde struct stops at its first error, and a
//! streaming parser cannot resume inside a broken node. So a file is parsed in passes: the
//! visitor of the top-level map notes which section (`version`, `settings`, one service)
//! it is in; when a pass fails inside a section, the error is recorded and the next pass
//! skips that section. Each pass skips one more section or ends, so a file with three
//! broken services reports three errors, and the services that parsed still get their
//! semantic checks. An error outside any section (a YAML syntax error between services,
//! say) ends the file. Inputs are capped in size and in YAML budget, so the passes stay
//! cheap and no input can make the loader panic or run away.
//!
//! * this file — the folder: which files, in which order, read how; duplicate ids;
//! * `parse` — one file's text into the raw schema, in passes;
//! * `messages` — the parser's errors in words, with the nearest valid key and a hint;
//! * `read` — one file's bytes: regular files only, never blocking, within the size cap.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::config::model::Pos;
use crate::config::problem::Problem;
use crate::config::validate::{self, DependencyEdge, DependencyNode, FileContext};
use crate::config::{Config, ServiceDefinition, Settings};
use crate::error::{ConfigError, ConfigErrors};

mod messages;
mod parse;
mod read;

pub(crate) use parse::{parse_file, parse_service_text};

/// A service file larger than this is refused before parsing: definitions are small, and
/// the cap bounds the cost of the error-collecting passes.
pub(crate) const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Loads `dir/services.yml` and `dir/services.d/*.yml` (name order), returning every
/// error of every file at once.
///
/// Error paths are shown as `dir` was given (`config/services.d/api.yml:12:5: …`); the
/// paths inside the returned definitions are absolute.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigErrors> {
    let abs_dir = match std::path::absolute(dir) {
        Ok(abs) => abs,
        Err(e) => {
            return Err(ConfigErrors(vec![ConfigError::detached(format!(
                "cannot resolve the config folder `{}`: {e}",
                dir.display()
            ))]));
        }
    };
    let mut errors = Vec::new();
    if !abs_dir.is_dir() {
        errors.push(
            ConfigError::detached(format!("config folder `{}` does not exist", dir.display()))
                .with_hint("create it with a `services.yml`, or point `--config` at the folder that holds one"),
        );
        return Err(ConfigErrors(errors));
    }

    let mut files = vec![FileToLoad {
        shown: dir.join("services.yml"),
        absolute: abs_dir.join("services.yml"),
        is_main: true,
    }];
    files.extend(list_services_d(dir, &abs_dir, &mut errors));

    let mut settings = Settings::defaults_in(&abs_dir);
    let mut services: Vec<ServiceDefinition> = Vec::new();
    // id → where it was first defined, for the duplicate check across files.
    let mut first_definition: HashMap<String, (PathBuf, Pos)> = HashMap::new();
    // Every id in definition order, and the `depends_on` entries, for the check across files.
    let mut known_ids: Vec<String> = Vec::new();
    let mut dependency_nodes: Vec<DependencyNode> = Vec::new();
    // `settings.exit_with` and where it is written, checked once every file is read.
    let mut exit_with: Option<(String, Pos)> = None;

    // Each file's errors, kept apart so that the checks across files can join them in
    // line order.
    let mut per_file: Vec<Vec<ConfigError>> = files.iter().map(|_| Vec::new()).collect();

    for (file, file_errors) in files.iter().zip(per_file.iter_mut()) {
        let text = match read_text(file) {
            Ok(text) => text,
            Err(e) => {
                file_errors.push(e);
                continue;
            }
        };
        let (raw, mut problems) = parse_file(&text);
        if let Some(raw) = raw {
            let ctx = FileContext {
                base_dir: file
                    .absolute
                    .parent()
                    .map_or_else(|| abs_dir.clone(), Path::to_path_buf),
                source_file: Some(file.absolute.clone()),
                is_main: file.is_main,
            };
            let outcome = validate::convert_file(raw, &ctx);
            problems.extend(outcome.problems);
            if file.is_main {
                exit_with = outcome.exit_with;
            }
            for (id, entries) in outcome.dependencies {
                // A duplicate id's entries would be reported against the wrong service.
                if first_definition.contains_key(&id) {
                    continue;
                }
                dependency_nodes.push(DependencyNode {
                    id,
                    edges: entries
                        .into_iter()
                        .map(|(target, pos)| DependencyEdge {
                            target,
                            file: Some(file.shown.clone()),
                            pos,
                        })
                        .collect(),
                });
            }
            if let Some(file_settings) = outcome.settings {
                settings = file_settings;
            }
            for (id, pos, definition) in outcome.services {
                match first_definition.get(&id) {
                    Some((first_file, first_pos)) => problems.push(
                        Problem::new(
                            pos,
                            format!(
                                "service `{id}` is defined twice: first in {}:{}:{}",
                                first_file.display(),
                                first_pos.line,
                                first_pos.column
                            ),
                        )
                        .hint("ids are unique across services.yml and services.d; rename one or remove it"),
                    ),
                    None => {
                        known_ids.push(id.clone());
                        first_definition.insert(id, (file.shown.clone(), pos));
                        if let Some(definition) = definition {
                            services.push(definition);
                        }
                    }
                }
            }
        }
        file_errors.extend(
            problems
                .into_iter()
                .map(|p| p.into_error(Some(&file.shown))),
        );
    }

    if let Some((id, pos)) = exit_with
        && !known_ids.contains(&id)
    {
        // services.yml is always the first file.
        per_file[0].push(
            Problem::new(
                pos,
                format!("invalid `exit_with` in `settings`: no service `{id}` is defined"),
            )
            .hint("name a service of services.yml or services.d")
            .into_error(Some(&files[0].shown)),
        );
    }
    for error in validate::graph_errors(&dependency_nodes, &known_ids) {
        match files
            .iter()
            .position(|f| error.file.as_deref() == Some(f.shown.as_path()))
        {
            Some(i) => per_file[i].push(error),
            None => errors.push(error),
        }
    }
    for mut file_errors in per_file {
        file_errors.sort_by_key(|e| (e.line, e.column));
        errors.extend(file_errors);
    }

    if errors.is_empty() {
        Ok(Config {
            dir: abs_dir,
            settings,
            services,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

/// One file to read: the path shown in errors, the absolute one, and whether it is the
/// main file (the only one allowed a `settings:` block).
struct FileToLoad {
    shown: PathBuf,
    absolute: PathBuf,
    is_main: bool,
}

/// The `*.yml` files of `services.d`, sorted by name. A missing folder is fine.
fn list_services_d(dir: &Path, abs_dir: &Path, errors: &mut Vec<ConfigError>) -> Vec<FileToLoad> {
    let shown_d = dir.join("services.d");
    let abs_d = abs_dir.join("services.d");
    let entries = match std::fs::read_dir(&abs_d) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(ConfigError::detached(format!(
                "cannot list `{}`: {e}",
                shown_d.display()
            )));
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(ConfigError::detached(format!(
                    "cannot list `{}`: {e}",
                    shown_d.display()
                )));
                continue;
            }
        };
        let name = entry.file_name();
        let name_text = name.to_string_lossy();
        // Editor swap and lock files (`.web.yml.swp`, `.#web.yml`) are not definitions.
        if name_text.starts_with('.') {
            continue;
        }
        // Whatever is named `*.yml` is meant as a definition: a FIFO, a device, a folder or
        // a dangling link with that name is reported when it is read, never skipped.
        if name_text.ends_with(".yml") {
            names.push(name);
        } else if let Some(stem) = name_text
            .strip_suffix(".yaml")
            .filter(|_| entry.path().is_file())
        {
            errors.push(
                ConfigError::detached(format!(
                    "`{}` is not read: steward reads only `*.yml` files in services.d",
                    shown_d.join(&name).display()
                ))
                .with_hint(format!("rename it to `{stem}.yml`")),
            );
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| FileToLoad {
            shown: shown_d.join(&name),
            absolute: abs_d.join(&name),
            is_main: false,
        })
        .collect()
}

/// The file's text, or why it cannot be used.
fn read_text(file: &FileToLoad) -> Result<String, ConfigError> {
    let bytes = read::read_bounded(&file.shown, &file.absolute, file.is_main)?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]);
        let (line, column) = position_after(&valid);
        ConfigError {
            file: Some(file.shown.clone()),
            line,
            column,
            message: "the file is not valid UTF-8".to_string(),
            hint: Some("save it as UTF-8 text".to_string()),
        }
    })
}

/// The 1-based line and column just after `text`, with line breaks counted as YAML counts
/// them (`\r\n`, `\n` and a lone `\r`), so that a position found here agrees with the
/// parser's positions in the same file. (Counting `\n` alone put the UTF-8 error of a file
/// with a lone `\r` on the wrong line: found by fuzzing, fuzz/regressions/config_roundtrip/.)
fn position_after(text: &str) -> (u64, u64) {
    let (mut line, mut column) = (1, 1);
    let mut after_cr = false;
    for c in text.chars() {
        match c {
            // The `\n` of `\r\n`: the line ended at the `\r`.
            '\n' if after_cr => {}
            '\n' | '\r' => (line, column) = (line + 1, 1),
            _ => column += 1,
        }
        after_cr = c == '\r';
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_line_breaks_as_yaml_does() {
        assert_eq!(position_after(""), (1, 1));
        assert_eq!(position_after("ab"), (1, 3));
        assert_eq!(position_after("a\nbé"), (2, 3));
        assert_eq!(position_after("a\r\nb"), (2, 2));
        assert_eq!(position_after("a\rb"), (2, 2));
        assert_eq!(position_after("\r\r\n\n"), (4, 1));
    }

    /// The input of fuzz/regressions/config_roundtrip/utf8-error-after-a-lone-cr: a
    /// `services.d` file `\r` + an invalid byte was reported at 1:2, a column past the end
    /// of a line that YAML ends at the `\r`.
    #[test]
    fn the_utf8_error_after_a_lone_cr_is_on_the_next_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("services.yml"), "version: 1\n").expect("write");
        std::fs::create_dir(dir.path().join("services.d")).expect("mkdir");
        std::fs::write(
            dir.path().join("services.d/x.yml"),
            b"\r\x8c\x96\x90\n# {}\n",
        )
        .expect("write");
        let errors = load_dir(dir.path()).expect_err("not UTF-8");
        let e = &errors.0[0];
        assert_eq!(e.message, "the file is not valid UTF-8");
        assert_eq!((e.line, e.column), (2, 1), "{e}");
    }
}
