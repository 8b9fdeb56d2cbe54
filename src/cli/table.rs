//! The `steward status` table, and the small formatters it needs (uptime, memory).
//!
//! Rendering is a pure function of the states and "now", so it is tested without a daemon.
//! Widths are computed on the plain text before painting, so colors never skew columns.

use anstyle::Style;
use chrono::{DateTime, Utc};
use steward::{ServiceState, ServiceStatus};

use crate::cli::style::{BOLD, DIM, Paint};

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

const COLUMNS: [(&str, Align); 8] = [
    ("ID", Align::Left),
    ("STATUS", Align::Left),
    ("HEALTH", Align::Left),
    ("PID", Align::Right),
    ("UPTIME", Align::Right),
    ("RESTARTS", Align::Right),
    ("CPU", Align::Right),
    ("MEM", Align::Right),
];

/// One cell: its text and how to paint it.
type Cell = (String, Option<Style>);

/// Renders the table, one line per service (plus a header), each line ending in `\n`.
pub fn render(states: &[ServiceState], now: DateTime<Utc>, paint: Paint) -> String {
    let rows: Vec<[Cell; 8]> = states.iter().map(|s| row(s, now)).collect();
    let mut widths = COLUMNS.map(|(title, _)| title.len());
    for row in &rows {
        for (width, (text, _)) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let mut out = String::new();
    let header = COLUMNS.map(|(title, _)| (title.to_string(), Some(BOLD)));
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, ((text, style), (_, align))) in row.iter().zip(COLUMNS).enumerate() {
            let pad = " ".repeat(widths[i] - text.chars().count());
            let painted = match style {
                Some(style) => paint.paint(*style, text),
                None => text.clone(),
            };
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Align::Left => {
                    line.push_str(&painted);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(&painted);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(s: &ServiceState, now: DateTime<Utc>) -> [Cell; 8] {
    let exit_ok = s.last_exit.as_ref().is_none_or(|e| e.success());
    let status = match (&s.status, &s.last_exit) {
        (ServiceStatus::Exited, Some(exit)) => match (exit.code, &exit.signal) {
            (Some(code), _) => format!("exited ({code})"),
            (None, Some(signal)) => format!("exited ({signal})"),
            (None, None) => "exited".to_string(),
        },
        (status, _) => status.to_string(),
    };
    let live = matches!(s.status, ServiceStatus::Running | ServiceStatus::Paused);
    let uptime = match s.started_at {
        Some(started) if live => human_duration((now - started).to_std().unwrap_or_default()),
        _ => "-".to_string(),
    };
    let dash = || ("-".to_string(), Some(DIM));
    [
        (s.id.clone(), None),
        (status, Some(Paint::status_style(s.status, exit_ok))),
        (s.health.to_string(), Some(Paint::health_style(s.health))),
        s.pid.map_or_else(dash, |p| (p.to_string(), None)),
        if uptime == "-" {
            dash()
        } else {
            (uptime, None)
        },
        (s.restart_count.to_string(), None),
        s.cpu_percent
            .filter(|_| live)
            .map_or_else(dash, |c| (format!("{c:.1}%"), None)),
        s.rss_bytes
            .filter(|_| live)
            .map_or_else(dash, |b| (human_bytes(b), None)),
    ]
}

/// `45s`, `3m12s`, `2h05m`, `4d03h`: two units at most, like `ps` and `docker ps`.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

/// `512 B`, `3.4 KiB`, `12.0 MiB`, `1.5 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use steward::Health;
    use steward::state::ExitInfo;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default()
    }

    #[test]
    fn the_table_aligns_columns_and_shows_dashes_for_what_is_unknown() {
        let mut web = ServiceState::pending("web", "Web", &[]);
        web.status = ServiceStatus::Running;
        web.health = Health::Healthy;
        web.pid = Some(4242);
        web.started_at = Some(at(0));
        web.restart_count = 2;
        web.cpu_percent = Some(1.26);
        web.rss_bytes = Some(12 * 1024 * 1024 + 300 * 1024);
        let mut job = ServiceState::pending("migrate", "migrate", &[]);
        job.status = ServiceStatus::Exited;
        job.last_exit = Some(ExitInfo {
            code: Some(3),
            signal: None,
            at: at(0),
        });
        let text = render(&[web, job], at(192), Paint::plain());
        let expected = "\
ID       STATUS      HEALTH    PID  UPTIME  RESTARTS   CPU       MEM
web      running     healthy  4242   3m12s         2  1.3%  12.3 MiB
migrate  exited (3)  unknown     -       -         0     -         -
";
        assert_eq!(text, expected);
    }

    #[test]
    fn durations_keep_two_units() {
        assert_eq!(human_duration(Duration::from_secs(45)), "45s");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 3600 + 5 * 60 + 9)),
            "3h05m"
        );
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86400 + 3600)),
            "2d01h"
        );
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
