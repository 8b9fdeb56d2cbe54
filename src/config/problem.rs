//! A problem found in one definition source, before it is tied to a file: the common
//! currency of `load` (syntax and schema errors from the YAML parser) and `validate`
//! (semantic checks), turned into [`ConfigError`]s once the file is known.

use std::path::{Path, PathBuf};

use crate::config::model::Pos;
use crate::error::ConfigError;

/// What is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Where in the source; `0:0` when unknown.
    pub pos: Pos,
    /// What is wrong, naming the key and the service.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Problem {
            pos,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds how to fix it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Ties the problem to a file (or to none, for definitions sent over the API, whose
    /// positions would only point into text the user never saw).
    pub fn into_error(self, file: Option<&Path>) -> ConfigError {
        match file {
            Some(file) => ConfigError {
                file: Some(PathBuf::from(file)),
                line: self.pos.line,
                column: self.pos.column,
                message: self.message,
                hint: self.hint,
            },
            None => ConfigError {
                file: None,
                line: 0,
                column: 0,
                message: self.message,
                hint: self.hint,
            },
        }
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_lower = word.to_ascii_lowercase();
    let mut best: Option<(&'a str, usize)> = None;
    for &candidate in candidates {
        let distance = strsim::damerau_levenshtein(&word_lower, &candidate.to_ascii_lowercase());
        if best.is_none_or(|(_, d)| distance < d) {
            best = Some((candidate, distance));
        }
    }
    let (candidate, distance) = best?;
    // One edit for short words, about a third of the letters for longer ones: close enough
    // to be a typo, far enough not to suggest `tags` for `args`.
    let allowed = (word.chars().count() / 3).max(1);
    (distance <= allowed).then_some(candidate)
}

/// Quotes a list of keys for a hint: `` `a`, `b` or `c` ``.
pub(crate) fn key_list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_ignores_unrelated_words() {
        let keys = ["command", "argv", "tags", "cwd"];
        assert_eq!(nearest("comand", &keys), Some("command"));
        assert_eq!(nearest("Command", &keys), Some("command"));
        assert_eq!(nearest("cdw", &keys), Some("cwd"));
        assert_eq!(nearest("xyzzy", &keys), None);
        assert_eq!(nearest("SIGTREM", &["SIGTERM", "SIGINT"]), Some("SIGTERM"));
    }

    #[test]
    fn key_list_reads_like_english() {
        assert_eq!(key_list(&["a"]), "`a`");
        assert_eq!(key_list(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
