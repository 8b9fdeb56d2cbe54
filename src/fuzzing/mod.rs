//! The checks of steward's coverage-guided fuzz targets (issue 14, item 4), in the library
//! so that two callers run the very same code:
//!
//! * `fuzz/` — a cargo-fuzz crate (libFuzzer, nightly only) with one target per check,
//!   each a one-line call of [`check`];
//! * `tests/it/fuzz_corpus.rs` — a stable `cargo test` that replays every file of
//!   `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through [`check`], so CI
//!   catches a regression without a fuzzer.
//!
//! A check panics when a promise breaks (libFuzzer records a panic as a crash); any input
//! that does not panic is fine. What each target feeds and asserts:
//!
//! * [`config_roundtrip`] — bytes as `services.yml` (and, after a NUL byte, a second file
//!   in `services.d`) through [`load_dir`](crate::config::load_dir), the loader of
//!   `steward validate` and `steward up`;
//! * [`definition_json`] — bytes as the JSON body of `POST /api/v1/services`, through
//!   [`definition_from_json`](crate::config::definition_from_json);
//! * [`env_file`] — bytes as an `env_file`, through
//!   [`parse_env_file`](crate::process::environment::parse_env_file);
//! * [`line_decoder`] — bytes as a child's output, cut into reads, through
//!   [`LineDecoder`](crate::process::LineDecoder).
//!
//! Not part of steward's API: hidden from the docs, and free to change with the targets.

mod config_roundtrip;
mod definition_json;
mod env_file;
mod line_decoder;

use std::path::{Path, PathBuf};

pub use config_roundtrip::config_roundtrip;
pub use definition_json::definition_json;
pub use env_file::env_file;
pub use line_decoder::line_decoder;

/// The fuzz targets, by the name of their folder under `fuzz/corpus` and their binary.
pub const TARGETS: [&str; 4] = [
    "config_roundtrip",
    "definition_json",
    "env_file",
    "line_decoder",
];

/// Runs the check of `target` on `data`; panics when a promise breaks.
///
/// # Panics
/// On a broken promise (the point of it), and for a `target` not in [`TARGETS`].
pub fn check(target: &str, data: &[u8]) {
    match target {
        "config_roundtrip" => config_roundtrip(data),
        "definition_json" => definition_json(data),
        "env_file" => env_file(data),
        "line_decoder" => line_decoder(data),
        other => panic!("no fuzz target `{other}`; the targets are {TARGETS:?}"),
    }
}

/// One input that broke its check during a replay.
#[derive(Debug)]
pub struct Failure {
    /// The input file.
    pub file: PathBuf,
    /// The panic message.
    pub message: String,
}

/// Runs every file of `fuzz_dir/corpus/<target>/` and `fuzz_dir/regressions/<target>/`
/// through [`check`] and returns how many inputs ran and which failed. A folder that is
/// missing counts as empty.
pub fn replay(fuzz_dir: &Path, target: &str) -> std::io::Result<(usize, Vec<Failure>)> {
    let mut ran = 0;
    let mut failures = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir.join(kind).join(target);
        let mut files = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|entry| entry.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        files.retain(|path| path.is_file());
        files.sort();
        for file in files {
            let data = std::fs::read(&file)?;
            ran += 1;
            if let Err(panic) = std::panic::catch_unwind(|| check(target, &data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".to_string());
                failures.push(Failure { file, message });
            }
        }
    }
    Ok((ran, failures))
}
