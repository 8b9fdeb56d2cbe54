//! Plain-text outlines of JSON answers whose shape the client does not fix (`explain`,
//! `reload`): nested maps become indented `key: value` lines, lists become `- ` items,
//! short lists of scalars stay on one line. Readable by a person, stable for a test.

use serde_json::Value;

/// Lists of scalars up to this many characters are written on one line.
const INLINE_WIDTH: usize = 80;

/// The outline of `value`, each line ending in `\n`.
pub fn render(value: &Value) -> String {
    let mut lines = Vec::new();
    walk(value, 0, &mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("-".to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.is_empty() => Some("[]".to_string()),
        Value::Object(map) if map.is_empty() => Some("{}".to_string()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::Array(_) | Value::Object(_) => None,
                    other => scalar(other),
                })
                .collect();
            parts
                .map(|p| p.join(", "))
                .filter(|line| line.len() <= INLINE_WIDTH && !line.contains('\n'))
        }
        Value::Object(_) => None,
    }
}

fn walk(value: &Value, indent: usize, lines: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                match scalar(item) {
                    Some(text) if !text.contains('\n') => lines.push(format!("{pad}{key}: {text}")),
                    Some(text) => {
                        lines.push(format!("{pad}{key}: |"));
                        lines.extend(text.lines().map(|l| format!("{pad}  {l}")));
                    }
                    None => {
                        lines.push(format!("{pad}{key}:"));
                        walk(item, indent + 2, lines);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                let start = lines.len();
                match scalar(item) {
                    Some(text) => lines.push(format!("{pad}  {text}")),
                    None => walk(item, indent + 2, lines),
                }
                // Turn the item's first line into a `- ` line.
                if let Some(first) = lines.get_mut(start) {
                    let body = first.get(indent + 2..).unwrap_or_default().to_string();
                    *first = format!("{pad}- {body}");
                }
            }
        }
        other => lines.push(format!("{pad}{}", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn nested_answers_read_as_an_indented_outline() {
        let value = json!({
            "service": "web",
            "status": "backoff",
            "last_exit": {"code": 3, "signal": null},
            "tags": ["a", "b"],
            "events": [
                {"seq": 4, "kind": "exited", "cause": "exit code 3"},
                {"seq": 5, "kind": "backoff"}
            ],
            "last_lines": ["boom"]
        });
        let expected = "\
events:
  - cause: exit code 3
    kind: exited
    seq: 4
  - kind: backoff
    seq: 5
last_exit:
  code: 3
  signal: -
last_lines: boom
service: web
status: backoff
tags: a, b
";
        assert_eq!(render(&value), expected);
    }
}
