//! Colors for terminal output: on when stdout is a terminal and `NO_COLOR` is unset, off
//! when piped, so scripts and tests read plain text.
//!
//! Colors say one thing each: green is fine, yellow is on its way (or held), red needs a
//! person, dim is at rest.

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use steward::{Health, ServiceStatus};

/// Paints text when color is on; passes it through otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Paint {
    enabled: bool,
}

/// Fine.
pub const GOOD: Style = AnsiColor::Green.on_default();
/// On its way, or held.
pub const BUSY: Style = AnsiColor::Yellow.on_default();
/// Needs a person.
pub const BAD: Style = AnsiColor::Red.on_default();
/// At rest, or secondary.
pub const DIM: Style = Style::new().dimmed();
/// Headers.
pub const BOLD: Style = Style::new().bold();

impl Paint {
    /// Color on when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout() -> Paint {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Paint {
            enabled: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// Never color (for tests).
    #[cfg(test)]
    pub fn plain() -> Paint {
        Paint { enabled: false }
    }

    /// `text` in `style`.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.enabled {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// The style of a status.
    pub fn status_style(status: ServiceStatus, exit_ok: bool) -> Style {
        match status {
            ServiceStatus::Running => GOOD,
            ServiceStatus::Installing
            | ServiceStatus::Starting
            | ServiceStatus::Paused
            | ServiceStatus::Stopping
            | ServiceStatus::Backoff => BUSY,
            ServiceStatus::Failed => BAD,
            ServiceStatus::Exited if !exit_ok => BAD,
            ServiceStatus::Exited | ServiceStatus::Pending | ServiceStatus::Stopped => DIM,
        }
    }

    /// The style of a health verdict.
    pub fn health_style(health: Health) -> Style {
        match health {
            Health::Healthy => GOOD,
            Health::Unhealthy => BAD,
            Health::Unknown => DIM,
        }
    }
}
