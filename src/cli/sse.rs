//! A Server-Sent Events parser for the client side of `logs -f` and `events -f`.
//!
//! It follows the WHATWG event-stream rules that matter here: lines end with `\n`, `\r\n`
//! or `\r`; `data:` lines of one event are joined with `\n`; a blank line dispatches the
//! event; comment lines (`:` keep-alives) and the `event`, `id` and `retry` fields are
//! ignored, because every event steward sends is a JSON object in its `data`. Chunks may
//! split a line (or a UTF-8 character) anywhere: bytes are buffered until a line ends.

/// Incremental parser: feed it chunks, get back the data of each complete event.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet ended.
    partial: Vec<u8>,
    /// The data lines of the event being read.
    data: Option<String>,
    /// The last byte fed was `\r`, so a following `\n` belongs to the same line end.
    after_cr: bool,
}

impl SseParser {
    /// Feeds one chunk; returns the data of every event it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &byte in chunk {
            let skip = self.after_cr && byte == b'\n';
            self.after_cr = byte == b'\r';
            if skip {
                continue;
            }
            if byte == b'\n' || byte == b'\r' {
                let line = std::mem::take(&mut self.partial);
                self.line(&String::from_utf8_lossy(&line), &mut out);
            } else {
                self.partial.push(byte);
            }
        }
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<String>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"data: {\"seq\"").is_empty());
        assert!(parser.feed(b": 1}\n").is_empty());
        assert_eq!(parser.feed(b"\ndata: two\n\n"), vec!["{\"seq\": 1}", "two"]);
    }

    #[test]
    fn comments_other_fields_and_crlf_are_handled() {
        let mut parser = SseParser::default();
        let out =
            parser.feed(b": keep-alive\r\n\r\nevent: log\r\nid: 7\r\ndata:a\r\ndata: b\r\n\r\n");
        assert_eq!(out, vec!["a\nb"]);
    }

    #[test]
    fn a_blank_line_without_data_dispatches_nothing() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"\n\nretry: 1000\n\n").is_empty());
    }

    #[test]
    fn a_cr_split_from_its_lf_ends_one_line_only() {
        let mut parser = SseParser::default();
        assert!(parser.feed(b"data: x\r").is_empty());
        assert_eq!(parser.feed(b"\n\r\n"), vec!["x"]);
    }
}
