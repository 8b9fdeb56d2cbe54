//! Secret values out of tool results.
//!
//! Definitions in results are already masked by their view (secret-looking variable
//! names shown as `***`, through [`crate::process::mask_env`]). A secret can still reach a
//! result another way: a service that prints its token, a cause that quotes a command
//! line. So the value of every secret-looking variable of every defined service is
//! replaced by `***` in every string of a result. Values shorter than
//! [`MIN_SECRET_LEN`] are left alone: masking `1` or `on` everywhere would hide more than
//! it protects.

use serde_json::Value;

use crate::Steward;
use crate::process::is_secret_key;
use crate::process::secrets::MASK;

/// Shorter values are not searched for.
pub const MIN_SECRET_LEN: usize = 4;

/// `value` with every secret value of the runtime's definitions replaced by `***`.
pub fn mask_secrets(value: Value, steward: &Steward) -> Value {
    let mut secrets: Vec<String> = steward
        .tables()
        .definitions()
        .iter()
        .flat_map(|d| {
            d.env
                .iter()
                .filter(|(k, v)| is_secret_key(k) && v.len() >= MIN_SECRET_LEN)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    mask_values(value, &secrets)
}

/// `value` with each of `secrets` replaced by `***` in every string.
pub fn mask_values(value: Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return value;
    }
    match value {
        Value::String(s) => Value::String(mask_text(s, secrets)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| mask_values(v, secrets)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, mask_values(v, secrets)))
                .collect(),
        ),
        other => other,
    }
}

fn mask_text(mut text: String, secrets: &[String]) -> String {
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), MASK);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_nested_strings_and_the_rest_kept() {
        let value = serde_json::json!({
            "lines": [{"line": "token=s3cr3t-value ok", "seq": 1}],
            "reason": "no secret here",
        });
        let masked = mask_values(value, &["s3cr3t-value".to_string()]);
        assert_eq!(masked["lines"][0]["line"], "token=*** ok");
        assert_eq!(masked["lines"][0]["seq"], 1);
        assert_eq!(masked["reason"], "no secret here");
    }
}
