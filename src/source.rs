//! Where a service's code comes from (`source: {git, ref}`) and where it runs.
//!
//! The rule (DESIGN §10 "Install, source, detached"):
//!
//! * the service's **effective cwd** is its `cwd` when one is given, else (only possible
//!   with `source`) `state_dir/src/<id>`. A definition read from YAML or JSON without a
//!   `cwd` key but with `source` carries an empty `cwd` to say "not given"; a definition
//!   built in code says so with `cwd: PathBuf::new()`;
//! * the repository is cloned into the effective cwd when that directory does not exist
//!   (an existing directory is used as it is, never touched);
//! * `ref` (a branch, tag or commit) is checked out after the clone.
//!
//! The effective cwd is what the process, its probes and `write_env_file` use: the
//! ServiceSupervisor hands its children [`effective_definition`], while the runtime's
//! table of definitions keeps the one given (so save, reload diffs and the API show what
//! the user wrote).
//!
//! A clone goes into a staging directory beside the target and is renamed into place
//! only once it (and the checkout) succeeded, so a clone interrupted by a stop or a
//! killed steward never leaves a half-filled directory that a later start would take
//! for the source.
//!
//! The git commands run through the PortManager like any process of the service (their
//! output goes to its log); this module only says what to run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{ServiceDefinition, SourceSpec};

/// `state_dir/src/<id>`: where a `source` without `cwd` is cloned.
pub fn default_checkout(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("src").join(id)
}

/// True when the definition leaves its cwd to its `source` (no `cwd` given).
pub fn cwd_from_source(def: &ServiceDefinition) -> bool {
    def.source.is_some() && def.cwd.as_os_str().is_empty()
}

/// The definition the service's actors run with: the same, except that a `cwd` left to
/// the `source` becomes `state_dir/src/<id>` (and a relative `pid_file` is joined to it).
/// Without a state directory it stays empty and the start fails with a reason that says so.
pub fn effective_definition(
    def: &Arc<ServiceDefinition>,
    state_dir: Option<&Path>,
) -> Arc<ServiceDefinition> {
    match state_dir {
        Some(dir) if cwd_from_source(def) => {
            let mut effective = ServiceDefinition::clone(def);
            effective.cwd = default_checkout(dir, &def.id);
            if let Some(pid_file) = effective.pid_file.as_mut()
                && pid_file.is_relative()
            {
                *pid_file = effective.cwd.join(&*pid_file);
            }
            Arc::new(effective)
        }
        _ => def.clone(),
    }
}

/// The staging directory a clone into `target` goes to first: a hidden sibling.
pub fn staging_dir(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "source".to_string());
    target.with_file_name(format!(".{name}.steward-clone"))
}

/// `git clone --quiet -- URL DIR` (`--` keeps a URL that starts with `-` an argument).
pub fn clone_argv(source: &SourceSpec, into: &Path) -> Vec<String> {
    vec![
        "git".to_string(),
        "clone".to_string(),
        "--quiet".to_string(),
        "--".to_string(),
        source.git.clone(),
        into.display().to_string(),
    ]
}

/// `git -C DIR checkout --quiet REF` (`--end-of-options` guards a ref that starts with
/// `-`, and keeps git from reading it as a path).
pub fn checkout_argv(dir: &Path, reference: &str) -> Vec<String> {
    vec![
        "git".to_string(),
        "-C".to_string(),
        dir.display().to_string(),
        "checkout".to_string(),
        "--quiet".to_string(),
        "--end-of-options".to_string(),
        reference.to_string(),
    ]
}

/// Variables added to the environment of the git commands: never ask for credentials on
/// a terminal (steward has none to answer; the clone fails with git's message instead).
pub fn git_env() -> [(String, String); 1] {
    [("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CommandSpec;

    fn def(cwd: &str, source: bool) -> Arc<ServiceDefinition> {
        let mut def = ServiceDefinition::new("web", CommandSpec::Line("true".into()));
        def.cwd = PathBuf::from(cwd);
        if source {
            def.source = Some(SourceSpec {
                git: "/repo".into(),
                reference: None,
            });
        }
        Arc::new(def)
    }

    #[test]
    fn a_source_without_cwd_runs_in_the_state_dir_checkout() {
        let state = Path::new("/var/lib/steward");
        let effective = effective_definition(&def("", true), Some(state));
        assert_eq!(effective.cwd, PathBuf::from("/var/lib/steward/src/web"));
    }

    #[test]
    fn a_given_cwd_is_kept_and_no_state_dir_leaves_it_empty() {
        let state = Path::new("/var/lib/steward");
        assert_eq!(
            effective_definition(&def("/srv/web", true), Some(state)).cwd,
            PathBuf::from("/srv/web")
        );
        assert_eq!(
            effective_definition(&def("/srv/web", false), Some(state)).cwd,
            PathBuf::from("/srv/web")
        );
        assert!(
            effective_definition(&def("", true), None)
                .cwd
                .as_os_str()
                .is_empty()
        );
    }

    #[test]
    fn the_clone_is_staged_beside_its_target() {
        assert_eq!(
            staging_dir(Path::new("/s/src/web")),
            PathBuf::from("/s/src/.web.steward-clone")
        );
        let source = SourceSpec {
            git: "file:///r".into(),
            reference: Some("v1".into()),
        };
        assert_eq!(
            clone_argv(&source, Path::new("/s/x")),
            ["git", "clone", "--quiet", "--", "file:///r", "/s/x"]
        );
        assert_eq!(
            checkout_argv(Path::new("/s/x"), "v1"),
            [
                "git",
                "-C",
                "/s/x",
                "checkout",
                "--quiet",
                "--end-of-options",
                "v1"
            ]
        );
    }
}
