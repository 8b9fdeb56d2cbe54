//! The fuzz corpora replayed on stable Rust (issue 14, item 4): every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same check
//! as the fuzz target (`steward::fuzzing`, src/fuzzing/), so CI catches a regression of
//! any input the fuzzer ever kept or crashed on, without nightly or libFuzzer.

use std::path::Path;

/// Replays one target's inputs; fails naming every input whose check broke, and when the
/// target has no corpus at all (a replay of nothing would prove nothing).
fn replay(target: &str) {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let (ran, failures) = match steward::fuzzing::replay(&fuzz_dir, target) {
        Ok(outcome) => outcome,
        Err(e) => panic!(
            "cannot read the inputs of `{target}` under {}: {e}",
            fuzz_dir.display()
        ),
    };
    assert!(
        ran > 0,
        "no corpus for `{target}` under {}",
        fuzz_dir.display()
    );
    let report: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.file.display(), f.message))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {ran} inputs of `{target}` break their check:\n{}",
        failures.len(),
        report.join("\n")
    );
}

#[test]
fn config_roundtrip_corpus_replays_clean() {
    replay("config_roundtrip");
}

#[test]
fn definition_json_corpus_replays_clean() {
    replay("definition_json");
}

#[test]
fn env_file_corpus_replays_clean() {
    replay("env_file");
}

#[test]
fn line_decoder_corpus_replays_clean() {
    replay("line_decoder");
}

/// The four tests above cover every target the library knows.
#[test]
fn every_fuzz_target_is_replayed() {
    assert_eq!(
        steward::fuzzing::TARGETS,
        [
            "config_roundtrip",
            "definition_json",
            "env_file",
            "line_decoder"
        ]
    );
}
