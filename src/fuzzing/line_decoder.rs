//! The `line_decoder` target: a child's output, cut into reads at fuzzed boundaries,
//! through [`LineDecoder`], checked against what its module promises
//! (src/process/pipe_reader.rs):
//!
//! * **order and count kept** — one line per `\n`, plus one for a last line without a
//!   newline, in input order;
//! * **no byte lost** — a line within the cap is its input bytes decoded lossily (a `\r`
//!   before the end removed); a cut line is the lossy decoding of its first K input bytes
//!   followed by `…[cut N bytes]` with K + N = the line's length, so every byte is either
//!   kept or counted;
//! * **no line over the cap** — the kept text is at most [`MAX_LINE_BYTES`] and, when cut,
//!   at least `MAX_LINE_BYTES - 3` (only the last character may fall off);
//! * **reads do not matter** — the lines are the same whatever the read boundaries.
//!
//! The input format, so that short inputs reach the 16 KiB cap: byte 0 is a header whose
//! low 4 bits give how many read-size bytes follow and whose high 4 bits `e` repeat the
//! rest (the body) `2^e` times (up to [`MAX_STREAM_BYTES`]); read size `b` means
//! `(b + 1)²` bytes, used in turn until the stream is fed. No read sizes: one read.
//! (Written by hand rather than with the `arbitrary` crate, so steward gains no
//! dependency and the stable replay decodes corpus files exactly as the fuzzer did.)

use crate::logs::{LogStream, MAX_LINE_BYTES};
use crate::process::LineDecoder;

/// The longest stream a repeated body makes (enough for lines several times the cap).
pub const MAX_STREAM_BYTES: usize = 64 * 1024;

/// Checks the decoder on `data` (see the module's header for the format).
///
/// # Panics
/// When the decoder breaks one of its promises.
pub fn line_decoder(data: &[u8]) {
    let (stream, reads) = decode_input(data);
    let chunked = decode(&stream, &reads);
    let whole = decode(&stream, &[]);
    assert_eq!(
        chunked, whole,
        "the lines depend on the read boundaries {reads:?}"
    );
    check_against_input(&stream, &chunked);
}

/// The stream and the read sizes an input describes.
fn decode_input(data: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let Some((&header, rest)) = data.split_first() else {
        return (Vec::new(), Vec::new());
    };
    let n_reads = usize::from(header & 0x0f).min(rest.len());
    let (sizes, body) = rest.split_at(n_reads);
    let reads = sizes.iter().map(|&b| (usize::from(b) + 1).pow(2)).collect();
    let mut times = 1usize << (header >> 4);
    if !body.is_empty() {
        times = times.min(MAX_STREAM_BYTES / body.len()).max(1);
    }
    (body.repeat(times), reads)
}

/// The decoder's lines for `stream` fed in reads of `reads` sizes (in turn), then ended.
fn decode(stream: &[u8], reads: &[usize]) -> Vec<(String, bool)> {
    let mut decoder = LineDecoder::new(LogStream::Stdout);
    let mut out = Vec::new();
    if reads.is_empty() {
        decoder.feed(stream, &mut out);
    } else {
        let mut rest = stream;
        for &size in reads.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (read, after) = rest.split_at(size.min(rest.len()));
            decoder.feed(read, &mut out);
            // As the pipe reader does when a pipe goes quiet.
            decoder.release();
            rest = after;
        }
    }
    decoder.finish(&mut out);
    out.into_iter()
        .map(|line| {
            assert_eq!(line.stream, LogStream::Stdout, "a line changed its stream");
            (line.line.as_str().to_string(), line.truncated)
        })
        .collect()
}

/// Every promise about the lines of `stream`, line by line.
fn check_against_input(stream: &[u8], lines: &[(String, bool)]) {
    let mut inputs: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    // After a final `\n` (or in an empty stream) there is no further line.
    if inputs.last().is_some_and(|last| last.is_empty()) {
        inputs.pop();
    }
    assert_eq!(
        lines.len(),
        inputs.len(),
        "{} lines decoded from {} in the input",
        lines.len(),
        inputs.len()
    );
    for (i, ((text, truncated), input)) in lines.iter().zip(&inputs).enumerate() {
        let input = input.strip_suffix(b"\r").unwrap_or(input);
        let lossy = String::from_utf8_lossy(input);
        if lossy.len() <= MAX_LINE_BYTES {
            assert!(!truncated, "line {i}: within the cap but marked truncated");
            assert_eq!(*text, lossy, "line {i}: not its input");
            continue;
        }
        assert!(truncated, "line {i}: over the cap but not marked truncated");
        let (kept, dropped) = split_marker(text)
            .unwrap_or_else(|| panic!("line {i}: cut without a `…[cut N bytes]` marker"));
        assert!(
            kept.len() <= MAX_LINE_BYTES && kept.len() + 3 >= MAX_LINE_BYTES,
            "line {i}: {} bytes kept of a line over the cap of {MAX_LINE_BYTES}",
            kept.len()
        );
        assert!(
            (1..=input.len()).contains(&dropped),
            "line {i}: {dropped} bytes said cut of {}",
            input.len()
        );
        let consumed = input.len() - dropped;
        assert_eq!(
            kept,
            String::from_utf8_lossy(&input[..consumed]),
            "line {i}: the kept text is not the first {consumed} bytes of the input"
        );
    }
}

/// The kept text and N of a line ending in `…[cut N bytes]`.
fn split_marker(text: &str) -> Option<(&str, usize)> {
    let (kept, marker) = text.rsplit_once("…[cut ")?;
    let count = marker.strip_suffix(" bytes]")?;
    Some((kept, count.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_repeats_the_body_and_sets_read_sizes() {
        let (stream, reads) = decode_input(&[0x32, 0, 3, b'a', b'\n']);
        assert_eq!(stream, b"a\na\na\na\na\na\na\na\n");
        assert_eq!(reads, vec![1, 16]);
        assert_eq!(decode_input(&[]), (Vec::new(), Vec::new()));
        let (stream, _) = decode_input(&[0xf0, b'x']);
        assert_eq!(stream.len(), 32768);
        let (stream, _) = decode_input(&[0xf0, b'x', b'y', b'z']);
        assert_eq!(stream.len(), MAX_STREAM_BYTES / 3 * 3);
    }

    #[test]
    fn a_broken_promise_is_caught() {
        let line = vec![b'x'; MAX_LINE_BYTES + 10];
        // The honest lines pass ...
        let honest = decode(&line, &[]);
        check_against_input(&line, &honest);
        // ... one byte fewer kept but not counted does not.
        let (kept, dropped) = split_marker(&honest[0].0).expect("marked");
        let lying = vec![(format!("{}…[cut {dropped} bytes]", &kept[1..]), true)];
        let caught = std::panic::catch_unwind(|| check_against_input(&line, &lying));
        assert!(caught.is_err());
    }
}
