//! The optional file sink of a service's log (`log_file`, DESIGN §2), with size-based
//! rotation like logrotate's `size` + `rotate N`, done in-process.
//!
//! Every line becomes one text line, `2026-11-21T22:43:08.123Z stdout <text>\n` (RFC 3339
//! UTC with milliseconds, the stream, the text). Writes go through a large buffer; the
//! owner (the LogBuffer actor) calls [`LogFileSink::flush`] on a timer, at exit, and the
//! sink flushes itself when dropped, so a panicking owner still leaves its lines on disk.
//!
//! Rotation happens between lines, never inside one: when the next line would take the
//! file past `max_size`, `path.{N-1}` → `path.N`, …, `path` → `path.1` (the oldest falls
//! off the end), and writing goes on in a fresh `path`. The size of a file found at open
//! counts, so a restarted service keeps appending to the same file and rotates on time.
//!
//! Errors are `std::io::Error`s that name the file. After a failed write the buffered
//! bytes are kept and retried (so a disk that fills up and empties again loses only the
//! lines that arrived while it was full); after a failed rotation or open the sink reopens
//! on the next write.
//!
//! Length: about 220 lines of code; the rest are the rotation and failure tests.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::logs::LogLine;

/// Bytes buffered before the sink writes to the file on its own.
const BUFFER_BYTES: usize = 256 * 1024;

/// Appends a service's log lines to a file and rotates it by size.
#[derive(Debug)]
pub struct LogFileSink {
    path: PathBuf,
    max_size: u64,
    max_files: u32,
    /// `None` after a failed rotation or reopen: the next write opens `path` again.
    writer: Option<BufWriter<File>>,
    /// Bytes in the current file, counting those still in the buffer.
    size: u64,
    /// The formatted timestamp of the last second seen, up to and including the `.`:
    /// lines of the same second share it, so a line costs three digits, not a format call.
    ts_prefix: (i64, String),
    /// The line being formatted (kept between lines so a line costs no allocation).
    text: Vec<u8>,
}

/// A batch that went only partly into the log file.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PartialWrite {
    /// Lines of the batch that went in (into the buffer or the file) before the error.
    pub written: usize,
    /// What failed.
    #[source]
    pub error: io::Error,
}

impl LogFileSink {
    /// Opens (creating it and its parent folders if needed) `path` for appending, rotating
    /// it at `max_size` bytes and keeping `max_files` old files.
    pub fn open(path: impl Into<PathBuf>, max_size: u64, max_files: u32) -> io::Result<Self> {
        let mut sink = LogFileSink {
            path: path.into(),
            max_size,
            max_files,
            writer: None,
            size: 0,
            ts_prefix: (i64::MIN, String::new()),
            text: Vec::with_capacity(256),
        };
        sink.ensure_open()?;
        Ok(sink)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when some written lines are still in the buffer, not yet in the file.
    pub fn has_unflushed(&self) -> bool {
        self.writer.as_ref().is_some_and(|w| !w.buffer().is_empty())
    }

    /// Appends one text line per log line, rotating between lines when needed. On an
    /// error, the lines before the failing one are kept (in the buffer or the file) and
    /// the rest of the batch is not written: the error says how many went in.
    pub fn write_batch(&mut self, lines: &[LogLine]) -> Result<(), PartialWrite> {
        for (written, line) in lines.iter().enumerate() {
            self.write_line(line)
                .map_err(|error| PartialWrite { written, error })?;
        }
        Ok(())
    }

    fn write_line(&mut self, line: &LogLine) -> io::Result<()> {
        // The sink's own buffer, reused for every line (taken out while it is written).
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        self.format_line(line, &mut text);
        let result = self.write_text(&text);
        self.text = text;
        result
    }

    fn write_text(&mut self, text: &[u8]) -> io::Result<()> {
        let len = text.len() as u64;
        // A line longer than max_size on its own still goes into a file of its own.
        if self.size > 0 && self.size + len > self.max_size {
            self.rotate()?;
        }
        let writer = self.ensure_open()?;
        writer
            .write_all(text)
            .map_err(|e| with_path("writing log file", &self.path, e))?;
        self.size += len;
        Ok(())
    }

    /// Writes the buffered lines to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(writer) => writer
                .flush()
                .map_err(|e| with_path("flushing log file", &self.path, e)),
            None => Ok(()),
        }
    }

    /// The open writer, opening `path` (and measuring it) if there is none.
    fn ensure_open(&mut self) -> io::Result<&mut BufWriter<File>> {
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(|e| with_path("creating log folder", dir, e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|e| with_path("opening log file", &self.path, e))?;
            let size = file
                .metadata()
                .map_err(|e| with_path("reading log file size", &self.path, e))?
                .len();
            self.size = size;
            self.writer = Some(BufWriter::with_capacity(BUFFER_BYTES, file));
        }
        match &mut self.writer {
            Some(writer) => Ok(writer),
            None => Err(io::Error::other("log file writer missing after open")),
        }
    }

    /// Flushes and closes the file, shifts the old files by one, and opens a fresh one.
    fn rotate(&mut self) -> io::Result<()> {
        // Nothing buffered may land in the file after it has been renamed away.
        self.flush()?;
        self.writer = None;
        if self.max_files == 0 {
            remove_if_present(&self.path)?;
        } else {
            for n in (1..self.max_files).rev() {
                rename_if_present(&numbered(&self.path, n), &numbered(&self.path, n + 1))?;
            }
            rename_if_present(&self.path, &numbered(&self.path, 1))?;
        }
        self.ensure_open().map(|_| ())
    }

    fn format_line(&mut self, line: &LogLine, out: &mut Vec<u8>) {
        self.format_ts(line.ts, out);
        out.push(b' ');
        out.extend_from_slice(line.stream.as_str().as_bytes());
        out.push(b' ');
        // Pipe lines never hold a newline; lines from elsewhere must not break the
        // one-line-per-line format either.
        if line.line.contains('\n') {
            out.extend_from_slice(line.line.replace('\n', "\\n").as_bytes());
        } else {
            out.extend_from_slice(line.line.as_bytes());
        }
        out.push(b'\n');
    }

    /// Writes `ts` as `2026-11-21T22:43:08.123Z`.
    fn format_ts(&mut self, ts: DateTime<Utc>, out: &mut Vec<u8>) {
        let secs = ts.timestamp();
        if self.ts_prefix.0 != secs {
            self.ts_prefix = (secs, ts.format("%Y-%m-%dT%H:%M:%S.").to_string());
        }
        out.extend_from_slice(self.ts_prefix.1.as_bytes());
        // A leap second shows as 59.999 rather than 60.xxx.
        let millis = ts.timestamp_subsec_millis().min(999);
        out.extend_from_slice(&[
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
            b'Z',
        ]);
    }
}

impl Drop for LogFileSink {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "log lines lost at close");
        }
    }
}

/// `path.n`
fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io::Error::new(
            e.kind(),
            format!(
                "rotating log file {} to {}: {e}",
                from.display(),
                to.display()
            ),
        )),
        _ => Ok(()),
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(with_path("removing rotated log file", path, e))
        }
        _ => Ok(()),
    }
}

/// The error, with what was being done and to which path.
fn with_path(doing: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogStream;
    use chrono::{SecondsFormat, TimeZone};

    fn line(seq: u64, text: &str) -> LogLine {
        LogLine {
            seq,
            ts: Utc::now(),
            stream: LogStream::Stdout,
            line: text.into(),
            truncated: false,
        }
    }

    fn lines(range: std::ops::Range<u64>) -> Vec<LogLine> {
        range.map(|i| line(i, &format!("line {i:05}"))).collect()
    }

    /// Every line in `path` and its numbered old files, oldest file first.
    fn all_lines(path: &Path, max_files: u32) -> Vec<String> {
        let mut out = Vec::new();
        for n in (1..=max_files).rev() {
            if let Ok(text) = fs::read_to_string(numbered(path, n)) {
                out.extend(text.lines().map(str::to_string));
            }
        }
        if let Ok(text) = fs::read_to_string(path) {
            out.extend(text.lines().map(str::to_string));
        }
        out
    }

    fn texts(file_lines: &[String]) -> Vec<String> {
        file_lines
            .iter()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_line_is_timestamp_stream_and_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/web.log");
        let ts = Utc
            .with_ymd_and_hms(2026, 11, 21, 22, 43, 8)
            .single()
            .expect("valid date")
            + chrono::Duration::milliseconds(123);
        let mut sink = LogFileSink::open(&path, 1 << 20, 2).expect("open");
        sink.write_batch(&[
            LogLine {
                ts,
                ..line(1, "hello world")
            },
            LogLine {
                ts: ts + chrono::Duration::milliseconds(7),
                stream: LogStream::Stderr,
                ..line(2, "oops")
            },
            LogLine {
                ts: ts + chrono::Duration::seconds(61),
                ..line(3, "two\nparts")
            },
        ])
        .expect("write");
        sink.flush().expect("flush");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            "2026-11-21T22:43:08.123Z stdout hello world\n\
             2026-11-21T22:43:08.130Z stderr oops\n\
             2026-11-21T22:44:09.123Z stdout two\\nparts\n"
        );
    }

    #[test]
    fn timestamps_match_rfc3339_millis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.log");
        let mut sink = LogFileSink::open(&path, 1 << 20, 0).expect("open");
        let base = Utc::now();
        let batch: Vec<LogLine> = (0..500)
            .map(|i| LogLine {
                ts: base + chrono::Duration::microseconds(i * 7919),
                ..line(i as u64, "x")
            })
            .collect();
        sink.write_batch(&batch).expect("write");
        sink.flush().expect("flush");
        let text = fs::read_to_string(&path).expect("read");
        for (got, want) in text.lines().zip(&batch) {
            assert_eq!(
                got.split(' ').next(),
                Some(
                    want.ts
                        .to_rfc3339_opts(SecondsFormat::Millis, true)
                        .as_str()
                )
            );
        }
    }

    #[test]
    fn rotation_keeps_exactly_max_files_and_loses_no_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        let mut sink = LogFileSink::open(&path, 1000, 3).expect("open");
        for start in (0..2000).step_by(37) {
            sink.write_batch(&lines(start..(start + 37).min(2000)))
                .expect("write");
        }
        sink.flush().expect("flush");
        for n in 1..=3 {
            assert!(numbered(&path, n).exists(), "{n} old files kept");
        }
        assert!(!numbered(&path, 4).exists());
        let kept = texts(&all_lines(&path, 3));
        // Only whole, consecutive lines, ending with the last one written.
        let first: u64 = kept[0]["line ".len()..].parse().expect("a whole line");
        let want: Vec<String> = (first..2000).map(|i| format!("line {i:05}")).collect();
        assert_eq!(kept, want);
        for n in 1..=3 {
            let size = fs::metadata(numbered(&path, n)).expect("old file").len();
            assert!(size <= 1000, "file .{n} is {size} bytes");
        }
    }

    #[test]
    fn nothing_is_lost_when_max_files_holds_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        let mut sink = LogFileSink::open(&path, 4096, 1000).expect("open");
        sink.write_batch(&lines(0..5000)).expect("write");
        sink.flush().expect("flush");
        let kept = texts(&all_lines(&path, 1000));
        assert_eq!(kept.len(), 5000);
        assert_eq!(
            kept,
            lines(0..5000)
                .into_iter()
                .map(|l| l.line)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn no_line_is_split_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        let mut sink = LogFileSink::open(&path, 100, 50).expect("open");
        // Lines of varied length, one longer than max_size on its own.
        let batch: Vec<LogLine> = (0..60u64)
            .map(|i| {
                line(
                    i,
                    &"x".repeat(((i * 13) % 70) as usize + if i == 30 { 200 } else { 0 }),
                )
            })
            .collect();
        sink.write_batch(&batch).expect("write");
        sink.flush().expect("flush");
        let mut files = vec![path.clone()];
        files.extend((1..=50).map(|n| numbered(&path, n)).filter(|p| p.exists()));
        for file in files {
            let text = fs::read_to_string(&file).expect("read");
            assert!(
                text.ends_with('\n'),
                "{} ends inside a line",
                file.display()
            );
            for l in text.lines() {
                assert!(l.contains(" stdout "), "{l:?} is not a whole line");
            }
        }
        let kept = texts(&all_lines(&path, 50));
        assert_eq!(
            kept,
            batch.iter().map(|l| l.line.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn max_files_zero_keeps_only_the_current_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        let mut sink = LogFileSink::open(&path, 200, 0).expect("open");
        sink.write_batch(&lines(0..100)).expect("write");
        sink.flush().expect("flush");
        assert!(!numbered(&path, 1).exists());
        let kept = texts(&all_lines(&path, 0));
        assert_eq!(kept.last().map(String::as_str), Some("line 00099"));
    }

    #[test]
    fn reopening_appends_and_counts_the_existing_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        {
            let mut sink = LogFileSink::open(&path, 1000, 2).expect("open");
            sink.write_batch(&lines(0..10)).expect("write");
            sink.flush().expect("flush");
        }
        let before = fs::metadata(&path).expect("file").len();
        let mut sink = LogFileSink::open(&path, before + 10, 2).expect("reopen");
        sink.write_batch(&lines(10..11)).expect("write");
        sink.flush().expect("flush");
        // The existing bytes counted: the new line did not fit and went to a fresh file.
        assert_eq!(texts(&all_lines(&numbered(&path, 1), 0)).len(), 10);
        assert_eq!(
            texts(&all_lines(&path, 2)),
            (0..11).map(|i| format!("line {i:05}")).collect::<Vec<_>>()
        );
    }

    #[test]
    fn dropping_the_sink_flushes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.log");
        let mut sink = LogFileSink::open(&path, 1 << 20, 2).expect("open");
        sink.write_batch(&lines(0..3)).expect("write");
        assert!(sink.has_unflushed());
        assert_eq!(fs::read_to_string(&path).expect("read"), "");
        drop(sink);
        assert_eq!(fs::read_to_string(&path).expect("read").lines().count(), 3);
    }

    #[test]
    fn an_unusable_path_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("plain-file");
        fs::write(&file, "x").expect("write");
        let path = file.join("web.log");
        let error = LogFileSink::open(&path, 100, 1).expect_err("a path under a file");
        assert!(error.to_string().contains("plain-file"), "{error}");
    }

    #[test]
    fn a_failed_flush_is_an_error_that_names_the_file_and_keeps_the_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("full.log");
        // Writes to /dev/full fail with ENOSPC, like a full disk.
        std::os::unix::fs::symlink("/dev/full", &path).expect("symlink");
        let mut sink = LogFileSink::open(&path, 1 << 30, 1).expect("open");
        sink.write_batch(&lines(0..3)).expect("buffered");
        let error = sink.flush().expect_err("the disk is full");
        assert_eq!(error.kind(), io::ErrorKind::StorageFull);
        assert!(error.to_string().contains("full.log"), "{error}");
        assert!(
            sink.has_unflushed(),
            "the lines wait for the disk to accept them"
        );
    }

    /// Throughput probe, not a check (no timing threshold): run with
    /// `cargo test --release --lib sink_write_throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "throughput probe; run in release"]
    fn sink_write_throughput() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("probe.log");
        let mut sink = LogFileSink::open(&path, 10 * 1024 * 1024, 5).expect("open");
        let ts = Utc::now();
        let batch: Vec<LogLine> = (0..256)
            .map(|i| LogLine {
                ts: ts + chrono::Duration::microseconds(i * 50),
                ..line(
                    i as u64,
                    &format!("GET /api/v1/items/{i} 200 1.23ms user-agent=curl/8.5"),
                )
            })
            .collect();
        let rounds = 8_000;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            sink.write_batch(&batch).expect("write");
        }
        sink.flush().expect("flush");
        let elapsed = started.elapsed();
        let total = rounds * batch.len();
        println!(
            "{total} lines in {elapsed:?}: {:.2} M lines/s to the file, rotating at 10 MiB",
            total as f64 / elapsed.as_secs_f64() / 1e6
        );
    }
}
