//! Probe blocks (`readiness`, `liveness`, `startup`): exactly one check (`http`, `tcp`,
//! `command`) and a schedule, from a file or from a definition built in code.

use super::checker::Checker;
use crate::config::model::{CommandValue, Pos, RawHttp, RawProbe, Sp};
use crate::config::problem::Problem;
use crate::config::{CommandSpec, ProbeCheck, ProbeSpec};

impl Checker<'_> {
    /// A probe block, or `None` when anything in it is wrong (all of it noted).
    pub(super) fn probe(&mut self, kind: &str, probe: &Sp<RawProbe>) -> Option<ProbeSpec> {
        let raw = &probe.value;
        if let Some(notify) = &raw.notify {
            match self.boolean(notify, &format!("{kind}.notify")) {
                Some(true) => return self.notify_probe(kind, notify, raw),
                Some(false) => {}
                None => return None,
            }
        }
        let before = self.problems.len();
        let mut checks: Vec<(Pos, &str)> = Vec::new();
        if let Some(http) = &raw.http {
            checks.push((Pos::of(http), "http"));
        }
        if let Some(tcp) = &raw.tcp {
            checks.push((Pos::of(tcp), "tcp"));
        }
        if let Some(command) = &raw.command {
            checks.push((Pos::of(command), "command"));
        }
        let check = match checks.as_slice() {
            [] => {
                self.problems.push(
                    Problem::new(
                        Pos::of(probe),
                        format!("`{kind}`{} has no check", self.place),
                    )
                    .hint(if kind == "readiness" {
                        "add one of `http: { url: ... }`, `tcp: host:port`, `command: ...` or `notify: true`"
                    } else {
                        "add one of `http: { url: ... }`, `tcp: host:port` or `command: ...`"
                    }),
                );
                None
            }
            [_] => self.probe_check(kind, raw),
            [(_, first), (second_pos, second), ..] => {
                self.problems.push(
                    Problem::new(
                        *second_pos,
                        format!(
                            "`{kind}`{} has more than one check (`{first}` and `{second}`)",
                            self.place
                        ),
                    )
                    .hint("keep exactly one of `http`, `tcp` and `command` per probe"),
                );
                None
            }
        };
        let mut spec = ProbeSpec::new(check.unwrap_or(ProbeCheck::Tcp {
            address: String::new(),
        }));
        if let Some(interval) = &raw.interval
            && let Some(interval) = self.positive_duration(&format!("{kind}.interval"), interval)
        {
            spec.interval = interval;
        }
        if let Some(timeout) = &raw.timeout
            && let Some(timeout) = self.positive_duration(&format!("{kind}.timeout"), timeout)
        {
            spec.timeout = timeout;
        }
        if let Some(delay) = &raw.initial_delay
            && let Some(delay) = self.duration(&format!("{kind}.initial_delay"), delay)
        {
            spec.initial_delay = delay;
        }
        for (value, key, slot) in [
            (
                &raw.failure_threshold,
                "failure_threshold",
                &mut spec.failure_threshold,
            ),
            (
                &raw.success_threshold,
                "success_threshold",
                &mut spec.success_threshold,
            ),
        ] {
            if let Some(value) = value
                && let Some(n) =
                    self.number(value, &format!("{kind}.{key}"), 1, i64::from(u32::MAX))
            {
                *slot = n as u32;
            }
        }
        (self.problems.len() == before).then_some(spec)
    }

    /// `notify: true`: a readiness of its own, the service's `READY=1`. It is readiness
    /// only (liveness has `watchdog`), and it is the one source: a probe check or a
    /// schedule beside it would have no meaning, so each is an error at its own place.
    fn notify_probe(
        &mut self,
        kind: &str,
        notify: &Sp<String>,
        raw: &RawProbe,
    ) -> Option<ProbeSpec> {
        let before = self.problems.len();
        if kind != "readiness" {
            self.problems.push(
                Problem::new(
                    Pos::of(notify),
                    format!("`{kind}.notify`{} is not allowed", self.place),
                )
                .hint(if kind == "liveness" {
                    "`notify` is a readiness source: for a liveness fed by the service, write `watchdog: 30s` next to `readiness`"
                } else {
                    "`notify` is a readiness source: write `readiness: { notify: true }`"
                }),
            );
        }
        let checks = [
            (raw.http.as_ref().map(Pos::of), "http"),
            (raw.tcp.as_ref().map(Pos::of), "tcp"),
            (raw.command.as_ref().map(Pos::of), "command"),
        ];
        for (pos, check) in checks {
            if let Some(pos) = pos {
                self.problems.push(
                    Problem::new(
                        pos,
                        format!(
                            "`{kind}`{} has both `notify: true` and a `{check}` check",
                            self.place
                        ),
                    )
                    .hint("readiness comes from one source: keep `notify: true` (the service sends READY=1) or the probe, not both"),
                );
            }
        }
        let schedule = [
            (raw.interval.as_ref(), "interval"),
            (raw.timeout.as_ref(), "timeout"),
            (raw.initial_delay.as_ref(), "initial_delay"),
            (raw.failure_threshold.as_ref(), "failure_threshold"),
            (raw.success_threshold.as_ref(), "success_threshold"),
        ];
        for (value, key) in schedule {
            if let Some(value) = value {
                self.field(
                    Pos::of(value),
                    &format!("{kind}.{key}"),
                    "it does not apply to `notify: true` (nothing is polled)",
                    "remove it: the service is ready when it sends READY=1",
                );
            }
        }
        (self.problems.len() == before).then(|| ProbeSpec::new(ProbeCheck::Notify))
    }

    fn probe_check(&mut self, kind: &str, raw: &RawProbe) -> Option<ProbeCheck> {
        if let Some(http) = &raw.http {
            return self.http_check(kind, Pos::of(http), &http.value);
        }
        if let Some(tcp) = &raw.tcp {
            return match host_port(&tcp.value) {
                Ok(()) => Some(ProbeCheck::Tcp {
                    address: tcp.value.trim().to_string(),
                }),
                Err(detail) => {
                    self.field(
                        Pos::of(tcp),
                        &format!("{kind}.tcp"),
                        &detail,
                        "write `host:port`, e.g. `127.0.0.1:8080`",
                    );
                    None
                }
            };
        }
        let command = raw.command.as_ref()?;
        let key = format!("{kind}.command");
        match &command.value {
            CommandValue::Line(line) => {
                let before = self.problems.len();
                self.command_line(Pos::of(command), &key, line);
                (self.problems.len() == before).then(|| ProbeCheck::Command {
                    command: CommandSpec::Line(line.clone()),
                })
            }
            CommandValue::List(items) => self
                .argv_spec(Pos::of(command), &key, items)
                .map(|command| ProbeCheck::Command { command }),
        }
    }

    fn http_check(&mut self, kind: &str, pos: Pos, raw: &RawHttp) -> Option<ProbeCheck> {
        let key = format!("{kind}.http");
        let url = match &raw.url {
            None => {
                self.field(
                    pos,
                    &key,
                    "`url` is missing",
                    "write `http: { url: \"http://127.0.0.1:8080/health\" }`",
                );
                return None;
            }
            Some(url) => url,
        };
        if let Err(detail) = http_url(&url.value) {
            self.field(
                Pos::of(url),
                &format!("{key}.url"),
                &detail,
                "write a full URL, e.g. `http://127.0.0.1:8080/health`",
            );
            return None;
        }
        let status = match &raw.expect_status {
            None => 200,
            Some(status) => self.number(status, &format!("{key}.expect_status"), 100, 599)? as u16,
        };
        Some(ProbeCheck::Http {
            url: url.value.trim().to_string(),
            expect_status: status,
        })
    }

    /// The same probe rules for a definition built in code.
    pub(super) fn probe_spec(&mut self, kind: &str, probe: &ProbeSpec) {
        let none = Pos::default();
        match &probe.check {
            ProbeCheck::Http { url, expect_status } => {
                if let Err(detail) = http_url(url) {
                    self.field(
                        none,
                        &format!("{kind}.http.url"),
                        &detail,
                        "give a full URL, e.g. `http://127.0.0.1:8080/health`",
                    );
                }
                if !(100..=599).contains(expect_status) {
                    self.field(
                        none,
                        &format!("{kind}.http.expect_status"),
                        &format!("{expect_status} is not an HTTP status"),
                        "give a status from 100 to 599",
                    );
                }
            }
            ProbeCheck::Tcp { address } => {
                if let Err(detail) = host_port(address) {
                    self.field(
                        none,
                        &format!("{kind}.tcp"),
                        &detail,
                        "give `host:port`, e.g. `127.0.0.1:8080`",
                    );
                }
            }
            ProbeCheck::Command { command } => match command {
                CommandSpec::Line(line) => {
                    self.command_line(none, &format!("{kind}.command"), line)
                }
                CommandSpec::Argv(argv) => {
                    let items: Vec<(Pos, &str)> = argv.iter().map(|a| (none, a.as_str())).collect();
                    self.argv(none, &format!("{kind}.command"), &items);
                }
            },
            ProbeCheck::Function(_) => {}
            ProbeCheck::Notify => {
                if kind != "readiness" {
                    self.field(
                        none,
                        &format!("{kind}.notify"),
                        "`notify` is a readiness source only",
                        "put it in `readiness`; for a liveness fed by the service, set `watchdog`",
                    );
                }
                return;
            }
        }
        for (key, value) in [("interval", probe.interval), ("timeout", probe.timeout)] {
            if value.is_zero() {
                self.field(
                    none,
                    &format!("{kind}.{key}"),
                    "it is zero",
                    "give a duration such as `1s`",
                );
            }
        }
        for (key, value) in [
            ("failure_threshold", probe.failure_threshold),
            ("success_threshold", probe.success_threshold),
        ] {
            if value == 0 {
                self.field(
                    none,
                    &format!("{kind}.{key}"),
                    "it is zero",
                    "give a count of at least 1",
                );
            }
        }
    }
}

/// `host:port` with a port from 1 to 65535 (IPv6 hosts in brackets: `[::1]:8080`).
pub(super) fn host_port(text: &str) -> Result<(), String> {
    let text = text.trim();
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("`{text}` has no port"));
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "`{text}`: an IPv6 address needs brackets, e.g. `[::1]:8080`"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("`{port}` is not a port number (1 to 65535)")),
    }
}

/// An `http://` or `https://` URL with a host.
fn http_url(text: &str) -> Result<(), String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"));
    match rest {
        None => Err(format!(
            "`{text}` does not start with `http://` or `https://`"
        )),
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Err(format!("`{text}` has no host"))
        }
        Some(rest) if rest.contains(char::is_whitespace) => {
            Err(format!("`{text}` contains a space"))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_urls() {
        assert!(host_port("127.0.0.1:8080").is_ok());
        assert!(host_port("localhost:1").is_ok());
        assert!(host_port("[::1]:8080").is_ok());
        assert!(host_port("::1:8080").is_err());
        assert!(host_port("127.0.0.1").is_err());
        assert!(host_port(":80").is_err());
        assert!(host_port("h:0").is_err());
        assert!(host_port("h:70000").is_err());
        assert!(http_url("http://127.0.0.1:8080/health").is_ok());
        assert!(http_url("https://example.org").is_ok());
        assert!(http_url("ftp://x").is_err());
        assert!(http_url("http://").is_err());
        assert!(http_url("http:///x").is_err());
    }
}
