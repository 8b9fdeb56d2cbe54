//! Fuzz target `env_file`: the check is steward::fuzzing::env_file (src/fuzzing/env_file.rs), shared
//! with the stable replay of the corpus in tests/it/fuzz_corpus.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward::fuzzing::env_file(data));
