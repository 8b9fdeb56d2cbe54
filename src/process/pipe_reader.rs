//! Cutting a child's stdout or stderr into lines (DESIGN §3, §9); the pipes themselves
//! are read by [`read_pipes`](super::read_pipes).
//!
//! A supervisor must survive any output, so the pipe is read as bytes and cut into lines
//! here rather than by a line codec that can panic or grow without bound:
//!
//! * bytes that are not UTF-8 become U+FFFD (lossy decoding, never a panic);
//! * a line longer than [`MAX_LINE_BYTES`] keeps its first 16 KiB (cut at a character
//!   boundary), gets `…[cut N bytes]` appended (N = input bytes dropped) and
//!   `truncated: true`; the rest of it is counted, not stored;
//! * `\r\n` ends a line like `\n`; a lone `\r` inside a line is kept;
//! * a last line without a trailing newline is delivered at end of file.
//!
//! Lines are delivered in batches: every complete line found after one read becomes one
//! `Vec<RawLine>` (one message to the LogBuffer, never one per line), all stamped with
//! the time of that read. The only allocation per line is its [`LogText`], decoded
//! straight from the read buffer and then shared, never copied.

use chrono::Utc;

use crate::logs::{LogStream, LogText, MAX_LINE_BYTES, RawLine};

/// Cuts a byte stream into [`RawLine`]s. Pure and synchronous, so it is tested without
/// pipes.
#[derive(Debug)]
pub struct LineDecoder {
    stream: LogStream,
    /// The start of a line that did not end in the previous chunk, capped at
    /// `MAX_LINE_BYTES + 1` bytes (one more than is kept, so a line of exactly the cap
    /// followed by `\r` is not mistaken for an overlong one).
    pending: Vec<u8>,
    /// Bytes of the pending line beyond what `pending` stores.
    overflow: usize,
    /// The last byte of the pending line (to strip the `\r` of `\r\n` when it fell into
    /// the overflow).
    last_byte: Option<u8>,
}

impl LineDecoder {
    /// A decoder whose lines are tagged with `stream`.
    pub fn new(stream: LogStream) -> Self {
        LineDecoder {
            stream,
            pending: Vec::new(),
            overflow: 0,
            last_byte: None,
        }
    }

    /// Appends every line completed by `bytes` to `out`; keeps the unfinished rest.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<RawLine>) {
        let ts = Utc::now();
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let part = &rest[..pos];
            rest = &rest[pos + 1..];
            let (line, truncated) = if self.pending.is_empty() && self.overflow == 0 {
                // The common case: the whole line is in this chunk; no copy into `pending`.
                let content = part.strip_suffix(b"\r").unwrap_or(part);
                finish_line(content, 0)
            } else {
                self.push_partial(part);
                let done = self.take_pending();
                self.pending.clear();
                done
            };
            out.push(RawLine {
                ts,
                stream: self.stream,
                line,
                truncated,
            });
        }
        self.push_partial(rest);
    }

    /// Appends the last line, if the stream ended without a newline.
    pub fn finish(&mut self, out: &mut Vec<RawLine>) {
        if self.pending.is_empty() && self.overflow == 0 {
            return;
        }
        let (line, truncated) = self.take_pending();
        self.pending = Vec::new();
        out.push(RawLine {
            ts: Utc::now(),
            stream: self.stream,
            line,
            truncated,
        });
    }

    /// Frees the buffer of an unfinished line when there is none, so a decoder that waits
    /// for a quiet pipe holds no memory.
    pub fn release(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    fn push_partial(&mut self, part: &[u8]) {
        let Some(&last) = part.last() else { return };
        self.last_byte = Some(last);
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.pending.len());
        let stored = room.min(part.len());
        self.pending.extend_from_slice(&part[..stored]);
        self.overflow += part.len() - stored;
    }

    /// Turns the pending line into text and resets the overflow count (the caller clears
    /// or replaces `pending`).
    fn take_pending(&mut self) -> (LogText, bool) {
        let ends_with_cr = self.last_byte == Some(b'\r');
        let (content, extra) = if self.overflow > 0 {
            (&self.pending[..], self.overflow - usize::from(ends_with_cr))
        } else if ends_with_cr {
            (&self.pending[..self.pending.len() - 1], 0)
        } else {
            (&self.pending[..], 0)
        };
        let done = finish_line(content, extra);
        self.overflow = 0;
        self.last_byte = None;
        done
    }
}

/// Decodes one line's `content` (without its line ending), of which `extra` further input
/// bytes were already dropped; cuts it to [`MAX_LINE_BYTES`] and marks it when needed.
fn finish_line(content: &[u8], extra: usize) -> (LogText, bool) {
    if extra == 0 && content.len() <= MAX_LINE_BYTES {
        // The common case first: `from_utf8` checks ASCII a word at a time, several times
        // faster than the lossy decoder (15 % of steward's CPU under a log flood).
        if let Ok(text) = std::str::from_utf8(content) {
            return (LogText::from(text), false);
        }
        // Valid UTF-8 is borrowed from the read buffer: the shared text is the only copy.
        let text = String::from_utf8_lossy(content);
        // Replacement characters take 3 bytes for each invalid byte, so a short line of
        // garbage can still decode to more than the cap.
        if text.len() <= MAX_LINE_BYTES {
            return (LogText::from(&*text), false);
        }
    }
    let (text, truncated) = cut_line(content, extra);
    (LogText::from(text), truncated)
}

/// The slow path for overlong lines: keeps whole characters up to [`MAX_LINE_BYTES`] of
/// output and appends the marker.
fn cut_line(content: &[u8], extra: usize) -> (String, bool) {
    const MARKER_ROOM: usize = 32;
    let mut text = String::with_capacity(MAX_LINE_BYTES + MARKER_ROOM);
    let mut consumed = 0usize;
    let mut chunks = content.utf8_chunks().peekable();
    'outer: while let Some(chunk) = chunks.next() {
        let valid = chunk.valid();
        let room = MAX_LINE_BYTES - text.len();
        if valid.len() > room {
            let mut end = room;
            while !valid.is_char_boundary(end) {
                end -= 1;
            }
            text.push_str(&valid[..end]);
            consumed += end;
            break;
        }
        text.push_str(valid);
        consumed += valid.len();
        let invalid = chunk.invalid();
        if invalid.is_empty() {
            continue;
        }
        // A character split by the storage cap is not garbage, only cut: drop it whole.
        let is_last = chunks.peek().is_none();
        let incomplete = std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
        if is_last && incomplete && extra > 0 {
            break 'outer;
        }
        if text.len() + char::REPLACEMENT_CHARACTER.len_utf8() > MAX_LINE_BYTES {
            break;
        }
        text.push(char::REPLACEMENT_CHARACTER);
        consumed += invalid.len();
    }
    let dropped = content.len() - consumed + extra;
    if dropped == 0 {
        return (text, false);
    }
    text.push_str(&format!("…[cut {dropped} bytes]"));
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut decoder = LineDecoder::new(LogStream::Stdout);
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut out);
        }
        decoder.finish(&mut out);
        out.into_iter()
            .map(|l| (l.line.to_string(), l.truncated))
            .collect()
    }

    fn plain(lines: &[&str]) -> Vec<(String, bool)> {
        lines.iter().map(|l| (l.to_string(), false)).collect()
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            decode(&[b"a\nb", b"c\n", b"\nd\n"]),
            plain(&["a", "bc", "", "d"])
        );
    }

    #[test]
    fn keeps_a_last_line_without_newline() {
        assert_eq!(decode(&[b"one\ntwo"]), plain(&["one", "two"]));
        assert_eq!(decode(&[b"one\n"]), plain(&["one"]));
        assert_eq!(decode(&[]), plain(&[]));
    }

    #[test]
    fn strips_the_cr_of_crlf_only() {
        assert_eq!(
            decode(&[b"a\r\nb\r", b"\nc\rd\n"]),
            plain(&["a", "b", "c\rd"])
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            decode(&[b"\xff\xfeok\n", b"caf\xc3\xa9\n"]),
            plain(&["\u{fffd}\u{fffd}ok", "café"])
        );
        // A character split across two reads is reassembled, not replaced.
        assert_eq!(decode(&[b"caf\xc3", b"\xa9\n"]), plain(&["café"]));
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_kept_whole() {
        let line = "x".repeat(MAX_LINE_BYTES);
        let input = format!("{line}\r\n");
        assert_eq!(decode(&[input.as_bytes()]), vec![(line.clone(), false)]);
        // Same when it arrives in pieces.
        let (a, b) = input.as_bytes().split_at(100);
        assert_eq!(decode(&[a, b]), vec![(line, false)]);
    }

    #[test]
    fn overlong_lines_are_cut_and_marked() {
        let total = 1024 * 1024;
        let input = format!("{}\nafter\n", "a".repeat(total));
        let expected = format!(
            "{}…[cut {} bytes]",
            "a".repeat(MAX_LINE_BYTES),
            total - MAX_LINE_BYTES
        );
        // In one chunk and in 64 KiB reads, with and without a trailing \r.
        let want = vec![(expected.clone(), true), ("after".to_string(), false)];
        assert_eq!(decode(&[input.as_bytes()]), want);
        let chunks: Vec<&[u8]> = input
            .as_bytes()
            .chunks(crate::process::pipes::SCRATCH_BYTES)
            .collect();
        assert_eq!(decode(&chunks), want);
        let crlf = input.replace('\n', "\r\n");
        let chunks: Vec<&[u8]> = crlf
            .as_bytes()
            .chunks(crate::process::pipes::SCRATCH_BYTES)
            .collect();
        assert_eq!(decode(&chunks), want);
        // Unterminated at end of file.
        let tail = "b".repeat(MAX_LINE_BYTES + 5);
        assert_eq!(
            decode(&[tail.as_bytes()]),
            vec![(
                format!("{}…[cut 5 bytes]", "b".repeat(MAX_LINE_BYTES)),
                true
            )]
        );
    }

    #[test]
    fn cuts_at_a_character_boundary() {
        // "é" is 2 bytes. With one byte in front the cap falls inside a character; with
        // two, the storage cap of a chunked read ends on a lone lead byte.
        for prefix in ["x", "xx"] {
            let line = format!("{prefix}{}", "é".repeat(MAX_LINE_BYTES));
            let total = line.len();
            let input = format!("{line}\n");
            let out = decode(&[input.as_bytes()]);
            let mut kept = MAX_LINE_BYTES;
            while !line.is_char_boundary(kept) {
                kept -= 1;
            }
            let expected = format!("{}…[cut {} bytes]", &line[..kept], total - kept);
            assert_eq!(out, vec![(expected, true)], "prefix {prefix:?}");
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(1000).collect();
            assert_eq!(decode(&chunks), out, "prefix {prefix:?}, chunked");
        }
    }

    #[test]
    fn garbage_that_decodes_past_the_cap_is_cut() {
        let input = [b'\xff'; MAX_LINE_BYTES];
        let out = decode(&[&input[..], b"\n"]);
        let kept = MAX_LINE_BYTES / 3;
        let expected = format!(
            "{}…[cut {} bytes]",
            "\u{fffd}".repeat(kept),
            MAX_LINE_BYTES - kept
        );
        assert_eq!(out, vec![(expected, true)]);
    }
}
