//! `logs_search` over the lines of a log ring: a substring (case-insensitive unless
//! asked) or a regular expression, with context lines and a cap on matches. Pure: the
//! tool reads the ring through the handle and calls [`search_lines`].

use regex::{Regex, RegexBuilder};
use serde::Serialize;

use crate::logs::LogLine;

/// One matching line with its context.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchMatch {
    /// The service whose log it is.
    pub service: String,
    /// The matching line.
    pub line: LogLine,
    /// Up to `context` lines before it, oldest first.
    pub before: Vec<LogLine>,
    /// Up to `context` lines after it.
    pub after: Vec<LogLine>,
}

/// How to match a line.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A substring; lowercased on both sides when case-insensitive.
    Substring {
        /// The needle (lowercased when not case-sensitive).
        needle: String,
        /// Match case exactly.
        case_sensitive: bool,
    },
    /// A regular expression.
    Regex(Regex),
}

impl Matcher {
    /// A matcher for `pattern`; an invalid regular expression is an error in words.
    pub fn new(pattern: &str, regex: bool, case_sensitive: bool) -> Result<Matcher, String> {
        if regex {
            RegexBuilder::new(pattern)
                .case_insensitive(!case_sensitive)
                .size_limit(1 << 20)
                .build()
                .map(Matcher::Regex)
                .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))
        } else {
            Ok(Matcher::Substring {
                needle: if case_sensitive {
                    pattern.to_string()
                } else {
                    pattern.to_lowercase()
                },
                case_sensitive,
            })
        }
    }

    /// True when `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Matcher::Substring {
                needle,
                case_sensitive: true,
            } => text.contains(needle.as_str()),
            Matcher::Substring { needle, .. } => text.to_lowercase().contains(needle.as_str()),
            Matcher::Regex(re) => re.is_match(text),
        }
    }
}

/// The matches in `lines` (oldest first), each with up to `context` lines around it,
/// appended to `found` until it holds `cap` matches. Returns true when a match was left
/// out because of the cap.
pub fn search_lines(
    service: &str,
    lines: &[LogLine],
    matcher: &Matcher,
    context: usize,
    cap: usize,
    found: &mut Vec<SearchMatch>,
) -> bool {
    for (i, line) in lines.iter().enumerate() {
        if !matcher.is_match(line.line.as_str()) {
            continue;
        }
        if found.len() >= cap {
            return true;
        }
        let from = i.saturating_sub(context);
        let to = (i + 1 + context).min(lines.len());
        found.push(SearchMatch {
            service: service.to_string(),
            line: line.clone(),
            before: lines[from..i].to_vec(),
            after: lines[i + 1..to].to_vec(),
        });
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogStream;

    fn lines(texts: &[&str]) -> Vec<LogLine> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| LogLine {
                seq: i as u64 + 1,
                ts: chrono::Utc::now(),
                stream: LogStream::Stdout,
                line: (*t).into(),
                truncated: false,
            })
            .collect()
    }

    #[test]
    fn substring_ignores_case_and_context_stays_inside_the_ring() {
        let ring = lines(&["boot", "ERROR one", "ok", "ok", "error two"]);
        let matcher = Matcher::new("error", false, false).expect("matcher");
        let mut found = Vec::new();
        let more = search_lines("web", &ring, &matcher, 1, 10, &mut found);
        assert!(!more);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].line.seq, 2);
        assert_eq!(found[0].before.len(), 1);
        assert_eq!(found[0].after.len(), 1);
        assert_eq!(found[1].line.seq, 5);
        assert!(found[1].after.is_empty());
    }

    #[test]
    fn the_cap_is_kept_and_reported() {
        let ring = lines(&["a1", "a2", "a3"]);
        let matcher = Matcher::new(r"a\d", true, true).expect("matcher");
        let mut found = Vec::new();
        assert!(search_lines("web", &ring, &matcher, 0, 2, &mut found));
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn a_bad_regex_is_an_error_in_words() {
        let err = Matcher::new("(", true, false).expect_err("invalid");
        assert!(err.contains("not a valid regular expression"), "{err}");
    }
}
