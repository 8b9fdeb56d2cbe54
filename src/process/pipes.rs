//! Reading both output pipes of one process in one future (DESIGN §3, §9).
//!
//! Reading each pipe into a buffer of its own made a running service hold two tasks and
//! two buffers of at least 4 KiB each, even when it never wrote a byte. [`read_pipes`]
//! waits for readiness on both pipes at once and reads a ready one into a scratch buffer
//! shared by every reader on the same thread ([`SCRATCH_BYTES`], allocated once per
//! thread), cutting lines with the [`LineDecoder`]. So a quiet pipe holds only the bytes
//! of a line it has not finished, and a service's whole output costs one small future.
//!
//! Per stream: every read's complete lines are one batch stamped with one time; a read
//! shorter than the buffer *drained* the pipe; a read that finds the pipe empty after
//! lines went out with "more waiting" delivers an empty drained batch, so that signal is
//! never lost; end of file delivers a last line without a newline; a read error ends that
//! stream like end of file. The two streams are read in turn (one read from each ready
//! pipe per round), so a flooding stdout does not starve stderr.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::unix::pipe;

use super::pipe_reader::LineDecoder;
use crate::logs::{Backlog, LogStream, RawLine};

/// Bytes of one read, at most: the size of a Linux pipe's buffer, so a full pipe empties
/// in one read.
pub const SCRATCH_BYTES: usize = 64 * 1024;

thread_local! {
    /// The bytes of the read being cut into lines; nothing stays in it between reads.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads the `stdout` and `stderr` pipes of one process (either may be absent) until both
/// reach end of file, handing each read's complete lines to `deliver` as one batch (each
/// [`RawLine`] carries its stream); a last unterminated line of a stream is delivered when
/// that stream ends. Returns the number of lines.
///
/// `deliver`'s second argument says the read *drained* that pipe (it was shorter than
/// the buffer, or found the pipe empty: the writer has paused), so whoever buffers the
/// lines can write them out now. A read that drains a pipe after lines of that pipe went
/// out with "more waiting" is delivered even without a complete line (an empty batch),
/// so that signal is never lost.
///
/// `deliver` must not block: the child blocks on a full pipe while this future waits. A
/// read error ends its stream like end of file (the partial line is still delivered);
/// the other stream is read on, and the first error is returned once both have ended.
///
/// Nothing is read while `backlog` is at its limit: whoever handles the batches gives
/// their bytes back (see [`Backlog`]), and until then the pipe fills and the writer
/// blocks. That is the back-pressure that keeps a flooding service's lines bounded in
/// memory without losing any.
pub async fn read_pipes<F>(
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    backlog: &Backlog,
    mut deliver: F,
) -> std::io::Result<u64>
where
    F: FnMut(Vec<RawLine>, bool),
{
    let mut pipes = [
        stdout.map(|rx| OpenPipe::new(rx, LogStream::Stdout)),
        stderr.map(|rx| OpenPipe::new(rx, LogStream::Stderr)),
    ];
    let mut count = 0u64;
    let mut first_error = None;
    poll_fn(|cx| {
        loop {
            if backlog.poll_room(cx).is_pending() {
                return Poll::Pending;
            }
            let mut progressed = false;
            for slot in pipes.iter_mut() {
                let Some(pipe) = slot else { continue };
                let step = pipe.poll_step(cx);
                progressed |= step.is_ready();
                match step {
                    Poll::Pending => {}
                    Poll::Ready(Step::Lines { batch, drained }) => {
                        count += batch.len() as u64;
                        deliver(batch, drained);
                    }
                    Poll::Ready(Step::Nothing) => {}
                    Poll::Ready(Step::End(error)) => {
                        let mut last = Vec::new();
                        pipe.decoder.finish(&mut last);
                        if !last.is_empty() {
                            count += last.len() as u64;
                            deliver(last, true);
                        }
                        if first_error.is_none() {
                            first_error = error;
                        }
                        *slot = None;
                    }
                }
            }
            if pipes.iter().all(Option::is_none) {
                return Poll::Ready(());
            }
            // Every pipe said Pending (its waker is registered) or was read; read the
            // ready ones again. tokio's cooperative budget bounds this loop: a pipe that
            // never empties eventually answers Pending and wakes the task again.
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    match first_error {
        Some(error) => Err(error),
        None => Ok(count),
    }
}

/// One pipe that has not reached end of file.
#[derive(Debug)]
struct OpenPipe {
    rx: pipe::Receiver,
    decoder: LineDecoder,
    /// Lines went out since the last read that drained this pipe.
    undrained: bool,
}

/// What one read of a pipe came to.
enum Step {
    /// Lines to deliver (possibly none: an empty drained batch).
    Lines { batch: Vec<RawLine>, drained: bool },
    /// Nothing to deliver (bytes without a line end, or an interrupted read).
    Nothing,
    /// End of file, or a read error that ends the stream like one.
    End(Option<std::io::Error>),
}

impl OpenPipe {
    fn new(rx: pipe::Receiver, stream: LogStream) -> Self {
        OpenPipe {
            rx,
            decoder: LineDecoder::new(stream),
            undrained: false,
        }
    }

    /// One read into the thread's scratch buffer, cut into lines.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < SCRATCH_BYTES {
                scratch.resize(SCRATCH_BYTES, 0);
            }
            let mut buf = ReadBuf::new(&mut scratch[..]);
            // tokio clears the pipe's readiness after a short read, so a drained pipe is
            // not read again (to find it empty) until the kernel says it has bytes.
            match Pin::new(&mut self.rx).poll_read(cx, &mut buf) {
                Poll::Pending if self.undrained => {
                    // The last read filled the buffer and the pipe turned out empty: it
                    // was drained after all.
                    self.undrained = false;
                    Poll::Ready(Step::Lines {
                        batch: Vec::new(),
                        drained: true,
                    })
                }
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => {
                    Poll::Ready(Step::Nothing)
                }
                Poll::Ready(Err(e)) => Poll::Ready(Step::End(Some(e))),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Step::End(None)),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    let drained = n < SCRATCH_BYTES;
                    let mut batch = Vec::new();
                    self.decoder.feed(buf.filled(), &mut batch);
                    if drained {
                        // The writer paused: a quiet pipe keeps no buffer of its own.
                        self.decoder.release();
                    }
                    if batch.is_empty() && !(drained && self.undrained) {
                        return Poll::Ready(Step::Nothing);
                    }
                    self.undrained = !drained;
                    Poll::Ready(Step::Lines { batch, drained })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::process::Stdio;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt as _;

    use super::*;
    use crate::logs::LINE_OVERHEAD;

    /// How long a test waits for a reader before it fails (a deadline, not a timing).
    const DEADLINE: Duration = Duration::from_secs(20);

    /// Every delivery, in order: (stream, line texts, drained).
    type Log = Vec<(Vec<(LogStream, String)>, bool)>;

    async fn read_all(
        stdout: Option<pipe::Receiver>,
        stderr: Option<pipe::Receiver>,
    ) -> (std::io::Result<u64>, Log) {
        let mut log = Log::new();
        let result = tokio::time::timeout(
            DEADLINE,
            read_pipes(stdout, stderr, &Backlog::default(), |batch, drained| {
                let lines = batch
                    .into_iter()
                    .map(|l| (l.stream, l.line.to_string()))
                    .collect();
                log.push((lines, drained));
            }),
        )
        .await
        .expect("the reader ends within the deadline");
        (result, log)
    }

    fn lines_of(log: &Log, stream: LogStream) -> Vec<String> {
        log.iter()
            .flat_map(|(lines, _)| lines)
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The read end of a child's pipe, as the PortManager will hand it over.
    fn receiver(fd: impl Into<OwnedFd>) -> pipe::Receiver {
        pipe::Receiver::from_owned_fd(fd.into()).expect("a pipe's read end")
    }

    #[tokio::test]
    async fn reads_both_streams_of_a_real_process() {
        // Both streams, interleaved, ending with a partial line on each.
        let mut child = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done; \
                 printf out-last; printf err-last >&2",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let stdout = child.stdout.take().map(receiver);
        let stderr = child.stderr.take().map(receiver);
        let (result, log) = read_all(stdout, stderr).await;
        let _ = child.wait();
        assert_eq!(result.expect("no read error"), 12);
        assert_eq!(
            lines_of(&log, LogStream::Stdout),
            ["out1", "out2", "out3", "out4", "out5", "out-last"]
        );
        assert_eq!(
            lines_of(&log, LogStream::Stderr),
            ["err1", "err2", "err3", "err4", "err5", "err-last"]
        );
        // Each batch holds the lines of one read of one pipe.
        for (lines, _) in &log {
            assert!(lines.windows(2).all(|w| w[0].0 == w[1].0), "{lines:?}");
        }
    }

    #[tokio::test]
    async fn one_pipe_closing_before_the_other() {
        let (mut out_tx, out_rx) = pipe::pipe().expect("pipe");
        let (mut err_tx, err_rx) = pipe::pipe().expect("pipe");
        let mut log = Log::new();
        let backlog = Backlog::default();
        let reader = read_pipes(Some(out_rx), Some(err_rx), &backlog, |batch, drained| {
            let lines = batch
                .into_iter()
                .map(|l| (l.stream, l.line.to_string()))
                .collect();
            log.push((lines, drained));
        });
        let writer = async move {
            out_tx.write_all(b"a\nunfinished").await.expect("write");
            drop(out_tx);
            err_tx.write_all(b"b\n").await.expect("write");
            // stderr still open after stdout's end of file.
            tokio::task::yield_now().await;
            err_tx.write_all(b"c\n").await.expect("write");
        };
        let (result, ()) = tokio::time::timeout(DEADLINE, futures::future::join(reader, writer))
            .await
            .expect("the reader ends within the deadline");
        assert_eq!(result.expect("no read error"), 4);
        assert_eq!(lines_of(&log, LogStream::Stdout), ["a", "unfinished"]);
        assert_eq!(lines_of(&log, LogStream::Stderr), ["b", "c"]);
        // The partial line came when stdout ended, as a drained batch of its own.
        assert!(log.contains(&(vec![(LogStream::Stdout, "unfinished".to_string())], true)));
    }

    #[tokio::test]
    async fn a_partial_last_line_and_no_pipes_at_all() {
        let (mut tx, rx) = pipe::pipe().expect("pipe");
        tx.write_all(b"one\ntwo").await.expect("write");
        drop(tx);
        let (result, log) = read_all(None, Some(rx)).await;
        assert_eq!(result.expect("no read error"), 2);
        assert_eq!(
            log,
            [
                (vec![(LogStream::Stderr, "one".to_string())], true),
                (vec![(LogStream::Stderr, "two".to_string())], true),
            ]
        );

        let (result, log) = read_all(None, None).await;
        assert_eq!(result.expect("nothing to read"), 0);
        assert!(log.is_empty());
    }

    /// A pipe whose buffer holds more than one read, so "more waiting" can be tested
    /// without racing a writer.
    fn wide_pipe() -> (pipe::Sender, pipe::Receiver) {
        let (tx, rx) = pipe::pipe().expect("pipe");
        nix::fcntl::fcntl(
            &tx,
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(4 * SCRATCH_BYTES as i32),
        )
        .expect("a pipe of 256 KiB (within the unprivileged limit of 1 MiB)");
        (tx, rx)
    }

    #[tokio::test]
    async fn says_which_read_drained_the_pipe() {
        // 100 KiB waiting: the first read fills the scratch buffer (more waiting), the
        // second takes the rest (drained).
        let (mut tx, rx) = wide_pipe();
        let line = "123456789\n";
        let lines = 10 * 1024;
        tx.write_all(line.repeat(lines).as_bytes())
            .await
            .expect("write");
        drop(tx);
        let (result, log) = read_all(Some(rx), None).await;
        assert_eq!(result.expect("no read error"), lines as u64);
        let shape: Vec<(usize, bool)> = log.iter().map(|(l, d)| (l.len(), *d)).collect();
        let first = SCRATCH_BYTES / line.len();
        assert_eq!(shape, [(first, false), (lines - first, true)]);

        // A drained read that completes no line still says so, after "more waiting".
        let (mut tx, rx) = wide_pipe();
        let input = format!("{}\nend", "x".repeat(SCRATCH_BYTES - 1));
        tx.write_all(input.as_bytes()).await.expect("write");
        drop(tx);
        let (result, log) = read_all(Some(rx), None).await;
        assert_eq!(result.expect("no read error"), 2);
        let shape: Vec<(usize, bool)> = log.iter().map(|(l, d)| (l.len(), *d)).collect();
        assert_eq!(shape, [(1, false), (0, true), (1, true)]);
    }

    #[tokio::test]
    async fn a_full_read_then_an_empty_pipe_is_drained() {
        // Exactly one scratch buffer of lines, and the writer stays: the read that finds
        // the pipe empty reports the drain (an empty batch), without waiting for more.
        let (mut tx, rx) = wide_pipe();
        let line = "x".repeat(1023) + "\n";
        tx.write_all(line.repeat(SCRATCH_BYTES / 1024).as_bytes())
            .await
            .expect("write");
        let shape = RefCell::new(Vec::new());
        let backlog = Backlog::default();
        let reader = read_pipes(Some(rx), None, &backlog, |batch, drained| {
            shape.borrow_mut().push((batch.len(), drained))
        });
        tokio::pin!(reader);
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while shape.borrow().len() < 2 {
            assert!(tokio::time::Instant::now() < deadline, "no drain reported");
            tokio::select! {
                _ = &mut reader => panic!("the writer is still open"),
                () = tokio::task::yield_now() => {}
            }
        }
        drop(tx);
        reader.await.expect("no read error");
        assert_eq!(*shape.borrow(), [(SCRATCH_BYTES / 1024, false), (0, true)]);
    }

    #[tokio::test]
    async fn a_burst_larger_than_the_scratch_buffer() {
        // 1 MiB through a 64 KiB pipe, written while it is read: every line arrives, in
        // order, in batches of at most one scratch buffer.
        let (mut tx, rx) = pipe::pipe().expect("pipe");
        let count = 100_000;
        let writer = tokio::spawn(async move {
            let text: String = (0..count).map(|i| format!("line {i:06}\n")).collect();
            tx.write_all(text.as_bytes()).await.expect("write");
        });
        let (result, log) = read_all(Some(rx), None).await;
        writer.await.expect("writer task");
        assert_eq!(result.expect("no read error"), count);
        let lines = lines_of(&log, LogStream::Stdout);
        assert_eq!(lines.len(), count as usize);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, l)| *l == format!("line {i:06}"))
        );
        assert!(log.len() > 1, "more than one read");
        // 12 bytes a line; a read may also finish the line the previous one began.
        assert!(log.iter().all(|(l, _)| l.len() <= SCRATCH_BYTES / 12 + 1));
    }

    #[tokio::test]
    async fn a_full_backlog_stops_the_reading_and_blocks_the_writer_without_losing_a_line() {
        // A real process writes 4 MiB of numbered lines. The batches' credits are held, so
        // the reader must stop at the backlog's limit: the writer then blocks in write(2)
        // on its full pipe, not exited and not losing a line. Once the credits are given
        // back, everything arrives, in order.
        let limit = 256 * 1024;
        let count = 200_000u64;
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", &format!("seq 1 {count}; echo done >&2")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let pid = child.id();
        let stdout = child.stdout.take().map(receiver);
        let stderr = child.stderr.take().map(receiver);
        let backlog = Backlog::new(limit);
        let held = RefCell::new(Vec::new());
        let texts = RefCell::new(Vec::new());
        let reader = read_pipes(stdout, stderr, &backlog, |batch, _| {
            held.borrow_mut().push(backlog.charge(&batch));
            texts
                .borrow_mut()
                .extend(batch.into_iter().map(|l| l.line.to_string()));
        });
        tokio::pin!(reader);

        // Wait (with a deadline) until the writer is asleep in a pipe write.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let blocked_writer = || {
            // `seq` is the shell's child (or the shell itself after an exec).
            let mut pids = vec![pid];
            if let Ok(children) =
                std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            {
                pids.extend(
                    children
                        .split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
            pids.iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/wchan"))
                    .is_ok_and(|w| w.contains("pipe_write") || w.contains("pipe_wait"))
            })
        };
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the writer never blocked: the reader did not stop at the backlog's limit"
            );
            tokio::select! {
                _ = &mut reader => panic!("the reader ended although the backlog was full"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if backlog.in_flight() >= limit && blocked_writer() {
                break;
            }
        }
        // At most one read of each pipe beyond the limit was taken in (a read holds at
        // most SCRATCH_BYTES / 2 lines, each charged its text and LINE_OVERHEAD).
        let in_flight = backlog.in_flight();
        let one_read = SCRATCH_BYTES / 2 * (1 + LINE_OVERHEAD);
        assert!(
            in_flight <= limit + 2 * one_read,
            "{in_flight} bytes in flight with a limit of {limit}"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the writer did not finish"
        );

        // Give the credits back as batches keep arriving: the rest comes through.
        let rest = async {
            loop {
                held.borrow_mut().clear();
                tokio::select! {
                    result = &mut reader => break result,
                    () = tokio::task::yield_now() => {}
                }
            }
        };
        let result = tokio::time::timeout(DEADLINE, rest)
            .await
            .expect("the reader ends once the backlog empties");
        assert_eq!(result.expect("no read error"), count + 1);
        let _ = child.wait();
        let texts = texts.borrow();
        assert_eq!(texts.len() as u64, count + 1);
        let numbers: Vec<&String> = texts.iter().filter(|t| *t != "done").collect();
        assert!(
            numbers
                .iter()
                .enumerate()
                .all(|(i, n)| **n == (i + 1).to_string()),
            "every line, in order"
        );
        held.borrow_mut().clear();
        assert_eq!(backlog.in_flight(), 0);
    }
}
