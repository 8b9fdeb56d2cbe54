//! From a `command` / `argv` to the argv that is exec'd (DESIGN §10).
use crate::config::CommandSpec;

/// The argv to exec for a command: plain words are split on whitespace and exec'd directly;
/// anything with shell syntax runs as `/bin/sh -c LINE`.
pub fn argv_for(spec: &CommandSpec) -> Vec<String> {
    match spec {
        CommandSpec::Argv(argv) => argv.clone(),
        CommandSpec::Line(line) => vec!["/bin/sh".into(), "-c".into(), line.clone()],
    }
}
