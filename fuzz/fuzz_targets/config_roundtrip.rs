//! Fuzz target `config_roundtrip`: the check is steward::fuzzing::config_roundtrip (src/fuzzing/config_roundtrip.rs), shared
//! with the stable replay of the corpus in tests/it/fuzz_corpus.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward::fuzzing::config_roundtrip(data));
