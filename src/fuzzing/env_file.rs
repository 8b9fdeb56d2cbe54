//! The `env_file` target: bytes as an `env_file`, read as [`read_env_file`] reads one
//! (lossy UTF-8), through [`parse_env_file`]:
//!
//! * an error names a line that exists (1 ≤ line ≤ the number of lines);
//! * a file that parses, written back by the `write_env_file` renderer ([`render`]: the
//!   variables, the last of each name winning, as `KEY="escaped"` lines) parses to the
//!   same variables — the renderer's own promise, as docker compose reads the file too.
//!
//! [`read_env_file`]: crate::process::environment::read_env_file

use std::collections::BTreeMap;

use crate::process::env_file_writer::render;
use crate::process::environment::parse_env_file;

/// Checks the env-file parser and renderer on `data`.
///
/// # Panics
/// When an error names no line of the text, or parse → render → parse changes a value.
pub fn env_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let vars = match parse_env_file(&text) {
        Ok(vars) => vars,
        Err((line, why)) => {
            let lines = text.lines().count();
            assert!(
                (1..=lines).contains(&line),
                "error at line {line} of a text of {lines} lines: {why}"
            );
            return;
        }
    };
    let map: BTreeMap<String, String> = vars.into_iter().collect();
    let rendered = match render(&map) {
        Ok(rendered) => rendered,
        Err(why) => panic!("the parser accepted a name the renderer refuses: {why}"),
    };
    let again = match parse_env_file(&rendered) {
        Ok(again) => again,
        Err((line, why)) => panic!("the rendered file does not parse, line {line}: {why}"),
    };
    let again: BTreeMap<String, String> = again.into_iter().collect();
    assert_eq!(again, map, "parse → render → parse changed the variables");
}
