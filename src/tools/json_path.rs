//! Where in a JSON definition a problem is.
//!
//! `service_define` hands its definition to
//! [`config::definition_from_json`](crate::config::definition_from_json), the parser of
//! `POST /api/v1/services`, which reads the object as pretty-printed JSON text (JSON is
//! YAML) and reports problems by line in that text. serde_json's pretty printer puts every
//! object member and array element on a line of its own, in order, so walking the same
//! value the same way numbers those lines: a problem's line becomes a JSON path
//! (`$.definition.readiness.http.url`) the caller can act on.

use std::collections::BTreeMap;

use serde_json::Value;

/// Line number (1-based, in the pretty-printed text) → JSON path of what starts there.
#[derive(Debug, Clone, Default)]
pub struct LinePaths {
    root: String,
    lines: BTreeMap<u64, String>,
    /// The top-level keys, for problems found after parsing (no line), which name
    /// their key in backquotes.
    keys: Vec<String>,
}

impl LinePaths {
    /// The paths of `value` pretty-printed by serde_json, under `root` (`$.definition`).
    pub fn of(value: &Value, root: &str) -> Self {
        let mut paths = LinePaths {
            root: root.to_string(),
            lines: BTreeMap::new(),
            keys: value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let mut line = 1;
        paths.lines.insert(line, root.to_string());
        walk(value, root, &mut line, &mut paths.lines);
        paths
    }

    /// The path of a problem on `line` with `message`: by its line; without one (a
    /// problem found after parsing), the top-level key the message names in backquotes
    /// (`` invalid `restart` ``); else the root.
    pub fn path_for(&self, line: u64, message: &str) -> String {
        if line > 0 {
            return self.path_of(line);
        }
        message
            .split('`')
            .skip(1)
            .step_by(2)
            .find(|word| self.keys.iter().any(|k| k == word))
            .map(|key| format!("{}.{key}", self.root))
            .unwrap_or_else(|| self.root.clone())
    }

    /// The path of what is on `line`; the root for line 0 (no position) or a line past
    /// the end.
    pub fn path_of(&self, line: u64) -> String {
        if line == 0 {
            return self.root.clone();
        }
        self.lines
            .range(..=line)
            .next_back()
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| self.root.clone())
    }
}

fn walk(value: &Value, path: &str, line: &mut u64, lines: &mut BTreeMap<u64, String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                *line += 1;
                let child_path = if is_plain_key(key) {
                    format!("{path}.{key}")
                } else {
                    format!("{path}[{}]", Value::String(key.clone()))
                };
                lines.insert(*line, child_path.clone());
                walk(child, &child_path, line, lines);
            }
            *line += 1;
            lines.insert(*line, path.to_string());
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                *line += 1;
                let child_path = format!("{path}[{i}]");
                lines.insert(*line, child_path.clone());
                walk(child, &child_path, line, lines);
            }
            *line += 1;
            lines.insert(*line, path.to_string());
        }
        _ => {}
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_pretty_json_map_to_their_paths() {
        let value = serde_json::json!({
            "command": "run",
            "env": {"A": "1", "weird key": "2"},
            "backoff": ["1s", "x"],
            "tags": [],
            "zz": 1
        });
        let text = serde_json::to_string_pretty(&value).expect("json");
        let paths = LinePaths::of(&value, "$.definition");
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let path = paths.path_of(n);
            if line.contains("\"x\"") {
                assert_eq!(path, "$.definition.backoff[1]");
            }
            if line.contains("weird key") {
                assert_eq!(path, r#"$.definition.env["weird key"]"#);
            }
            if line.contains("\"zz\"") {
                assert_eq!(path, "$.definition.zz");
            }
            if line.contains("\"tags\"") {
                assert_eq!(path, "$.definition.tags");
            }
        }
        assert_eq!(paths.path_of(0), "$.definition");
        assert_eq!(
            paths.path_for(0, "invalid `backoff` in service `web`"),
            "$.definition.backoff"
        );
        assert_eq!(paths.path_for(0, "service `web` is odd"), "$.definition");
    }
}
