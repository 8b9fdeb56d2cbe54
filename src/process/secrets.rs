//! Which environment values are secrets, and the masked view of an environment that
//! steward shows anywhere outside the service itself (events, its own logs, the API's
//! definition view, metrics).
//!
//! A value is masked when its name looks like a secret (`*KEY*`, `*TOKEN*`, `*SECRET*`,
//! `*PASSWORD*`, `*PASSWD*`, `*CREDENTIAL*`, in any case) and whenever it came from an
//! `env_file`: people keep secrets in such files under any name.

use std::collections::{BTreeMap, BTreeSet};

/// What a masked value is shown as.
pub const MASK: &str = "***";

/// Parts of a variable name that mark its value as a secret (compared in upper case).
const SECRET_MARKS: [&str; 6] = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// True when the name of a variable says its value is a secret: it contains KEY, TOKEN,
/// SECRET, PASSWORD, PASSWD or CREDENTIAL, in any case (`api_key`, `GithubToken`).
pub fn is_secret_key(key: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    SECRET_MARKS.iter().any(|mark| upper.contains(mark))
}

/// `env` with the value of every secret-looking variable, and of every variable named in
/// `from_env_file`, replaced by [`MASK`]. Names are kept, so a reader still sees what is set.
pub fn mask_env(
    env: &BTreeMap<String, String>,
    from_env_file: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    env.iter()
        .map(|(key, value)| {
            let shown = if is_secret_key(key) || from_env_file.contains(key) {
                MASK.to_string()
            } else {
                value.clone()
            };
            (key.clone(), shown)
        })
        .collect()
}

/// Debug-prints a resolved environment as `{"KEY": "***", …}`: every value masked, since
/// a resolved environment mixes steward's own, `env_file` and `env` values and no longer
/// says which is which. For `Debug` impls of types that carry one (a spawn plan), so no
/// `?plan` in a log line can show a secret.
pub struct MaskedEnv<'a>(pub &'a [(String, String)]);

impl std::fmt::Debug for MaskedEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, _)| (key, MASK)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_env_shows_names_only() {
        let env = vec![("PORT".to_string(), "8080".to_string())];
        assert_eq!(format!("{:?}", MaskedEnv(&env)), r#"{"PORT": "***"}"#);
    }

    #[test]
    fn secret_names_are_recognised_in_any_case() {
        for key in [
            "API_KEY",
            "api_key",
            "GithubToken",
            "AWS_SECRET_ACCESS_KEY",
            "PGPASSWORD",
            "db_passwd",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "KEYRING",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["PORT", "DATABASE_HOST", "PATH", "HOME", "RUST_LOG"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn secrets_and_env_file_values_are_masked_names_kept() {
        let env: BTreeMap<String, String> = [
            ("PORT", "8080"),
            ("STRIPE_KEY", "sk_live_1"),
            ("DATABASE_URL", "postgres://u:p@h/db"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let from_file: BTreeSet<String> = ["DATABASE_URL".to_string()].into();
        let masked = mask_env(&env, &from_file);
        assert_eq!(masked["PORT"], "8080");
        assert_eq!(masked["STRIPE_KEY"], MASK);
        assert_eq!(masked["DATABASE_URL"], MASK);
        assert_eq!(masked.len(), 3);
    }
}
