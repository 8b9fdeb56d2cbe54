//! Fuzz target `line_decoder`: the check is steward::fuzzing::line_decoder (src/fuzzing/line_decoder.rs), shared
//! with the stable replay of the corpus in tests/it/fuzz_corpus.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| steward::fuzzing::line_decoder(data));
