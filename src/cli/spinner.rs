//! A one-line progress spinner on stderr, for the waits of the control commands.
//!
//! It draws only when stderr is a terminal, so piped output and tests stay clean; it is
//! erased when dropped, before the result line is printed.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const TICK: Duration = Duration::from_millis(80);

/// A running spinner; erased on drop.
#[derive(Debug)]
pub struct Spinner {
    /// What the drawing task shows, and the task (None when not drawing).
    drawing: Option<(Arc<Shared>, JoinHandle<()>)>,
}

#[derive(Debug)]
struct Shared {
    message: Mutex<String>,
    /// Set (under the stderr lock) when the spinner is erased, so a frame drawn by a task
    /// that is still running on another thread never lands after the erase.
    stopped: AtomicBool,
}

impl Spinner {
    /// Starts a spinner showing `message` (draws nothing unless stderr is a terminal).
    pub fn start(message: impl Into<String>) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner { drawing: None };
        }
        let shared = Arc::new(Shared {
            message: Mutex::new(message.into()),
            stopped: AtomicBool::new(false),
        });
        let shown = shared.clone();
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(TICK);
            for frame in FRAMES.iter().cycle() {
                ticker.tick().await;
                let message = shown.message.lock().map(|m| m.clone()).unwrap_or_default();
                let mut err = std::io::stderr().lock();
                if shown.stopped.load(Ordering::Acquire) {
                    return;
                }
                let _ = write!(err, "\r\x1b[2K{frame} {message}");
                let _ = err.flush();
            }
        });
        Spinner {
            drawing: Some((shared, task)),
        }
    }

    /// Replaces the message.
    pub fn set(&self, message: impl Into<String>) {
        if let Some((shared, _)) = &self.drawing
            && let Ok(mut text) = shared.message.lock()
        {
            *text = message.into();
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some((shared, task)) = self.drawing.take() {
            task.abort();
            let mut err = std::io::stderr().lock();
            shared.stopped.store(true, Ordering::Release);
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
