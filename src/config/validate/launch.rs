//! The keys that shape how a service is launched and stopped beyond its `command`:
//! `install`, `source`, `detached` with `stop_command` and `pid_file`, `user` and `group`
//! (DESIGN §10 "Install, source, detached"), for files and for definitions built in code.

use std::path::Path;

use super::checker::Checker;
use crate::config::model::{CommandValue, Pos, RawSource, Sp};
use crate::config::{CommandSpec, ServiceDefinition, SourceSpec};

/// True when `text` names a remote git repository (`https://…`, `ssh://…`, `file://…`,
/// or the scp form `git@host:org/repo.git`) rather than a local path. Git's own rule for
/// the scp form: a `:` before the first `/`.
pub(crate) fn is_git_url(text: &str) -> bool {
    if text.contains("://") {
        return true;
    }
    match (text.find(':'), text.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

impl Checker<'_> {
    /// A command given as a line or an argv list (`install`, `stop_command`).
    pub(super) fn command_value(
        &mut self,
        key: &str,
        value: &Sp<CommandValue>,
    ) -> Option<CommandSpec> {
        match &value.value {
            CommandValue::Line(line) => {
                let before = self.problems.len();
                self.command_line(Pos::of(value), key, line);
                (self.problems.len() == before).then(|| CommandSpec::Line(line.clone()))
            }
            CommandValue::List(items) => self.argv_spec(Pos::of(value), key, items),
        }
    }

    /// `source: {git, ref}`; a relative local path is joined to `base`.
    pub(super) fn source(&mut self, base: &Path, value: &Sp<RawSource>) -> Option<SourceSpec> {
        let before = self.problems.len();
        let git = match &value.value.git {
            None => {
                self.field(
                    Pos::of(value),
                    "source",
                    "`git` is missing",
                    "write `source: { git: \"https://example.org/org/repo.git\", ref: main }`",
                );
                None
            }
            Some(git) => {
                let text = git.value.trim();
                if text.is_empty() || text.contains('\0') {
                    self.field(
                        Pos::of(git),
                        "source.git",
                        "it is empty or contains a NUL byte",
                        "give a git URL or the path of a local repository",
                    );
                    None
                } else if is_git_url(text) || Path::new(text).is_absolute() {
                    Some(text.to_string())
                } else {
                    // Trimmed like the URL and absolute forms: a path kept with its
                    // trailing space was accepted here and refused by `check_definition`
                    // (found by fuzzing, fuzz/regressions/definition_json/).
                    let mut trimmed = git.clone();
                    trimmed.value = text.to_string();
                    self.path(base, "source.git", &trimmed)
                        .map(|p| p.to_string_lossy().into_owned())
                }
            }
        };
        let reference = value.value.reference.as_ref().and_then(|r| {
            let text = r.value.trim();
            if text.is_empty() || text.contains(char::is_whitespace) || text.contains('\0') {
                self.field(
                    Pos::of(r),
                    "source.ref",
                    &format!("`{}` is not a branch, tag or commit", r.value),
                    "give a branch, tag or commit without spaces, or remove `ref` for the remote's default branch",
                );
                None
            } else {
                Some(text.to_string())
            }
        });
        let git = git?;
        (self.problems.len() == before).then_some(SourceSpec { git, reference })
    }

    /// A user or group name: non-empty, one word.
    pub(super) fn account(&mut self, key: &str, value: &Sp<String>) -> Option<String> {
        match account_problem(&value.value) {
            None => Some(value.value.clone()),
            Some(detail) => {
                self.field(
                    Pos::of(value),
                    key,
                    &detail,
                    &format!("give a {key} name such as `www-data`, or a numeric id"),
                );
                None
            }
        }
    }

    /// `detached` needs `stop_command`; `stop_command` and `pid_file` need `detached`.
    /// `positions` are those of `detached`, `stop_command` and `pid_file` (or the id's).
    pub(super) fn detached_rules(&mut self, def: &ServiceDefinition, positions: [Pos; 3]) {
        let [detached_pos, stop_pos, pid_pos] = positions;
        if def.detached && def.stop_command.is_none() {
            self.field(
                detached_pos,
                "detached",
                "a detached service needs a `stop_command`",
                "add `stop_command: ...` (e.g. `docker compose down`): steward cannot signal a process it does not keep",
            );
        }
        if !def.detached {
            let hint = "add `detached: true` if `command` launches something and exits (e.g. `docker compose up -d`); otherwise remove it: steward stops its own process with `stop_signal`";
            if def.stop_command.is_some() {
                self.field(
                    stop_pos,
                    "stop_command",
                    "it only applies to a detached service",
                    hint,
                );
            }
            if def.pid_file.is_some() {
                self.field(
                    pid_pos,
                    "pid_file",
                    "it only applies to a detached service",
                    hint,
                );
            }
        }
    }

    /// The rules of this module for a definition built in code.
    pub(super) fn launch_definition(&mut self, def: &ServiceDefinition) {
        let none = Pos::default();
        for (key, command) in [
            ("install", def.install.as_ref()),
            ("stop_command", def.stop_command.as_ref()),
        ] {
            match command {
                Some(CommandSpec::Line(line)) => self.command_line(none, key, line),
                Some(CommandSpec::Argv(argv)) => {
                    let items: Vec<(Pos, &str)> = argv.iter().map(|a| (none, a.as_str())).collect();
                    self.argv(none, key, &items);
                }
                None => {}
            }
        }
        if let Some(source) = &def.source {
            if source.git.trim().is_empty()
                || source.git.trim() != source.git
                || source.git.contains('\0')
            {
                self.field(
                    none,
                    "source.git",
                    "it is empty, has spaces around it or contains a NUL byte",
                    "give a git URL or the absolute path of a local repository",
                );
            }
            if source.reference.as_deref().is_some_and(|r| {
                r.trim().is_empty() || r.contains(char::is_whitespace) || r.contains('\0')
            }) {
                self.field(
                    none,
                    "source.ref",
                    "it is not a branch, tag or commit",
                    "give a branch, tag or commit without spaces, or `None`",
                );
            }
        }
        // Relative only under a `source` checkout without `cwd` (joined to it at run time).
        if let Some(pid_file) = &def.pid_file
            && !pid_file.is_absolute()
            && !def.cwd.as_os_str().is_empty()
        {
            self.field(
                none,
                "pid_file",
                &format!("`{}` is not an absolute path", pid_file.display()),
                "definitions built in code carry absolute paths; join it with a base folder",
            );
        }
        for (key, account) in [("user", &def.user), ("group", &def.group)] {
            if let Some(detail) = account.as_deref().and_then(account_problem) {
                self.field(
                    none,
                    key,
                    &detail,
                    "give a name such as `www-data`, or a numeric id",
                );
            }
        }
        self.detached_rules(def, [none; 3]);
    }
}

/// What is wrong with a user or group name, if anything.
fn account_problem(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        Some("it is empty".to_string())
    } else if text.contains(char::is_whitespace) || text.contains(['\0', ':']) {
        Some(format!("`{text}` is not a name"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// fuzz/regressions/definition_json/source-git-with-a-trailing-space:
    /// `{"source": {"git": "httpso "}, …}` was accepted by the JSON parser as the path
    /// `<base>/httpso ` (with the space), which `check_definition` then refused.
    #[test]
    fn a_relative_source_git_is_trimmed_like_the_other_forms() {
        let body = serde_json::json!({
            "source": {"git": "httpso ", "ref": "v1.4.0"},
            "install": ["npm", "ci"],
            "command": "npm start",
        });
        let def = crate::config::definition_from_json("fuzz", &body, Path::new("/srv/app"))
            .expect("accepted");
        let source = def.source.as_ref().expect("a source");
        assert_eq!(source.git, "/srv/app/httpso");
        crate::config::check_definition(&def).expect("what the parser accepts passes the checks");
    }

    #[test]
    fn git_urls_and_local_paths() {
        for url in [
            "https://example.org/org/repo.git",
            "file:///srv/repo",
            "git@github.com:org/repo.git",
            "ssh://git@host/repo",
        ] {
            assert!(is_git_url(url), "{url}");
        }
        for path in ["../repo", "repo", "/srv/repo", "./a:b/c"] {
            assert!(!is_git_url(path), "{path}");
        }
    }
}
