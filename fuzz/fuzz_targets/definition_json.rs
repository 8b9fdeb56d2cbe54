//! Fuzz target `definition_json`: the check is steward::fuzzing::definition_json (src/fuzzing/definition_json.rs), shared
//! with the stable replay of the corpus in tests/it/fuzz_corpus.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward::fuzzing::definition_json(data));
