//! Persisting a definition as YAML (DESIGN §4 "save", §10 "Persisting"): the document
//! `version: 1 / services: {id: {...}}` that loads back to an identical definition.
//!
//! The YAML is written here by hand rather than through a serializer, because what
//! matters is how each value *reads back* in the loader's own schema: every text value
//! is double-quoted with YAML escapes (so `"8080"`, `"true"`, `"null"`, `a: b`, `# x`,
//! leading spaces and control characters stay text, exactly), numbers and booleans are
//! plain, durations are written in the largest unit that is exact (`90s`, `1500ms`), and
//! sizes in `GiB`/`MiB`/`KiB` when exact, else bytes. Only keys whose value differs from
//! the default are written, so a saved file reads like a hand-written one.
//!
//! **Paths.** [`service_to_yaml`] writes every path absolute: the document means the same
//! wherever it is put. [`save_service`] writes a path relative to the saved file's folder
//! (`services.d`) when it lies under that folder, else absolute, and leaves `cwd` out when
//! it is that folder (the default). Relative paths that would need `..` are written
//! absolute, because the loader does not fold `..` (a symlinked folder would change
//! its meaning).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    CommandSpec, DEFAULT_BACKOFF, ProbeCheck, ProbeKind, ProbeSpec, ServiceDefinition,
    check_definition, is_valid_id,
};

/// The YAML document of one service, with every non-default key and every path absolute.
///
/// A function probe has no YAML form: it is left out, with a comment saying so (and
/// [`save_service`] refuses such a definition).
pub fn service_to_yaml(def: &ServiceDefinition) -> String {
    render(def, None)
}

/// Writes `def` to `config_dir/services.d/<id>.yml`, atomically (a temporary file in the
/// same folder, then a rename), and returns that path. Loading the folder afterwards gives
/// a definition identical to `def`, except that `source_file` is the new file.
///
/// Refused with [`std::io::ErrorKind::InvalidInput`]: a definition that does not pass
/// [`check_definition`], one with a function probe, and one with a path that is not UTF-8.
pub fn save_service(def: &ServiceDefinition, config_dir: &Path) -> std::io::Result<PathBuf> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    if !is_valid_id(&def.id) {
        return Err(invalid(format!("invalid service id `{}`", def.id)));
    }
    if let Some(function) = &def.function {
        return Err(invalid(format!(
            "service `{}` is a function service (`{}`), defined in code: it has no YAML form",
            def.id, function.name
        )));
    }
    check_definition(def).map_err(|e| invalid(e.to_string()))?;
    for kind in [
        ProbeKind::Startup,
        ProbeKind::Readiness,
        ProbeKind::Liveness,
    ] {
        if let Some(ProbeSpec {
            check: ProbeCheck::Function(probe),
            ..
        }) = def.probe(kind)
        {
            return Err(invalid(format!(
                "service `{}`: the {} probe `{}` is a function, which has no YAML form",
                def.id,
                kind.as_str(),
                probe.name
            )));
        }
    }
    let paths = [
        Some(&def.cwd),
        def.env_file.as_ref(),
        def.log_file.as_ref(),
        def.pid_file.as_ref(),
    ];
    if let Some(path) = paths.into_iter().flatten().find(|p| p.to_str().is_none()) {
        return Err(invalid(format!(
            "service `{}`: the path `{}` is not UTF-8 and cannot be written to YAML",
            def.id,
            path.display()
        )));
    }

    let folder = std::path::absolute(config_dir.join("services.d"))?;
    std::fs::create_dir_all(&folder)?;
    let text = render(def, Some(&folder));
    let target = folder.join(format!("{}.yml", def.id));
    // A leading dot: the loader skips the file if a crash leaves it behind.
    let temp = folder.join(format!(".{}.yml.{}.tmp", def.id, std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable once the folder is synced; not every filesystem allows it.
    if let Ok(dir) = std::fs::File::open(&folder) {
        let _ = dir.sync_all();
    }
    Ok(target)
}

/// The document, with paths relative to `folder` where they lie under it.
fn render(def: &ServiceDefinition, folder: Option<&Path>) -> String {
    let defaults = ServiceDefinition::new(def.id.clone(), def.command.clone());
    let mut out = String::from("version: 1\nservices:\n");
    let _ = writeln!(out, "  {}:", quote(&def.id));
    let key = |out: &mut String, name: &str, value: &str| {
        let _ = writeln!(out, "    {name}: {value}");
    };
    if def.name != def.id {
        key(&mut out, "name", &quote(&def.name));
    }
    match (&def.command, &def.function) {
        (_, Some(function)) => {
            let _ = writeln!(
                out,
                "    # a function service (`{}`): it has no YAML form",
                function.name.replace(['\n', '\r'], " ")
            );
        }
        (CommandSpec::Line(line), None) => key(&mut out, "command", &quote(line)),
        (CommandSpec::Argv(argv), None) => key(&mut out, "argv", &list(argv)),
    }
    // An empty cwd is one left to the `source` (crate::source): no key, as it was read.
    // With a `source`, a cwd equal to the folder is written too: leaving it out would
    // read back as "left to the source".
    let given_cwd = !def.cwd.as_os_str().is_empty();
    if given_cwd && (folder != Some(def.cwd.as_path()) || def.source.is_some()) {
        key(&mut out, "cwd", &path_text(&def.cwd, folder));
    }
    if !def.env.is_empty() {
        out.push_str("    env:\n");
        for (name, value) in &def.env {
            let _ = writeln!(out, "      {}: {}", quote(name), quote(value));
        }
    }
    if let Some(env_file) = &def.env_file {
        key(&mut out, "env_file", &path_text(env_file, folder));
    }
    if !def.required_env.is_empty() {
        key(&mut out, "required_env", &list(&def.required_env));
    }
    if !def.tags.is_empty() {
        key(&mut out, "tags", &list(&def.tags));
    }
    if def.autostart != defaults.autostart {
        key(&mut out, "autostart", &def.autostart.to_string());
    }
    if def.restart != defaults.restart {
        key(&mut out, "restart", def.restart.as_str());
    }
    if def.backoff != DEFAULT_BACKOFF {
        let delays: Vec<String> = def.backoff.iter().map(|d| duration_text(*d)).collect();
        key(&mut out, "backoff", &format!("[{}]", delays.join(", ")));
    }
    if def.max_restarts != defaults.max_restarts {
        key(&mut out, "max_restarts", &def.max_restarts.to_string());
    }
    if def.restart_window != defaults.restart_window {
        key(
            &mut out,
            "restart_window",
            &duration_text(def.restart_window),
        );
    }
    if def.stop_signal != defaults.stop_signal {
        key(&mut out, "stop_signal", def.stop_signal.as_str());
    }
    if def.stop_timeout != defaults.stop_timeout {
        key(&mut out, "stop_timeout", &duration_text(def.stop_timeout));
    }
    for kind in [
        ProbeKind::Readiness,
        ProbeKind::Liveness,
        ProbeKind::Startup,
    ] {
        if let Some(probe) = def.probe(kind) {
            probe_text(&mut out, kind, probe);
        }
    }
    if !def.depends_on.is_empty() {
        out.push_str("    depends_on:\n");
        for dep in &def.depends_on {
            let _ = writeln!(
                out,
                "      {}: {{ condition: {} }}",
                quote(&dep.service),
                dep.condition.as_str()
            );
        }
    }
    if let Some(install) = &def.install {
        key(&mut out, "install", &command_text(install));
    }
    if let Some(source) = &def.source {
        let reference = source
            .reference
            .as_deref()
            .map_or_else(String::new, |r| format!(", ref: {}", quote(r)));
        key(
            &mut out,
            "source",
            &format!("{{ git: {}{reference} }}", quote(&source.git)),
        );
    }
    if def.detached {
        key(&mut out, "detached", "true");
    }
    if let Some(stop_command) = &def.stop_command {
        key(&mut out, "stop_command", &command_text(stop_command));
    }
    if let Some(pid_file) = &def.pid_file {
        // Loaded relative to the service's cwd, so written relative to it.
        key(&mut out, "pid_file", &path_text(pid_file, Some(&def.cwd)));
    }
    if def.write_env_file {
        key(&mut out, "write_env_file", "true");
    }
    if let Some(user) = &def.user {
        key(&mut out, "user", &quote(user));
    }
    if let Some(group) = &def.group {
        key(&mut out, "group", &quote(group));
    }
    if let Some(watchdog) = def.watchdog {
        key(&mut out, "watchdog", &duration_text(watchdog));
    }
    if def.log_lines != defaults.log_lines {
        key(&mut out, "log_lines", &def.log_lines.to_string());
    }
    if let Some(log_file) = &def.log_file {
        key(&mut out, "log_file", &path_text(log_file, folder));
    }
    if def.log_max_size != defaults.log_max_size {
        key(&mut out, "log_max_size", &size_text(def.log_max_size));
    }
    if def.log_max_files != defaults.log_max_files {
        key(&mut out, "log_max_files", &def.log_max_files.to_string());
    }
    if let Some(bytes) = def.max_memory {
        key(&mut out, "max_memory", &size_text(bytes));
    }
    if !def.limits.is_empty() {
        let limits = &def.limits;
        let items: Vec<String> = [
            limits.memory.map(|b| format!("memory: {}", size_text(b))),
            limits
                .cpu_millicores
                .map(|m| format!("cpu: {}", crate::config::cpu_text(m))),
            limits.pids.map(|p| format!("pids: {p}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        key(&mut out, "limits", &format!("{{ {} }}", items.join(", ")));
    }
    out
}

fn probe_text(out: &mut String, kind: ProbeKind, probe: &ProbeSpec) {
    let name = kind.as_str();
    let check = match &probe.check {
        ProbeCheck::Http { url, expect_status } => {
            let status = if *expect_status == 200 {
                String::new()
            } else {
                format!(", expect_status: {expect_status}")
            };
            format!("http: {{ url: {}{status} }}", quote(url))
        }
        ProbeCheck::Tcp { address } => format!("tcp: {}", quote(address)),
        ProbeCheck::Command { command } => format!("command: {}", command_text(command)),
        ProbeCheck::Notify => {
            // Nothing is polled: the schedule fields have no meaning (and are refused).
            let _ = writeln!(out, "    {name}: {{ notify: true }}");
            return;
        }
        ProbeCheck::Function(function) => {
            let _ = writeln!(
                out,
                "    # {name}: the function probe `{}` has no YAML form",
                function.name.replace(['\n', '\r'], " ")
            );
            return;
        }
    };
    let _ = writeln!(out, "    {name}:\n      {check}");
    let defaults = ProbeSpec::new(probe.check.clone());
    for (key, value, default) in [
        ("interval", probe.interval, defaults.interval),
        ("timeout", probe.timeout, defaults.timeout),
        ("initial_delay", probe.initial_delay, defaults.initial_delay),
    ] {
        if value != default {
            let _ = writeln!(out, "      {key}: {}", duration_text(value));
        }
    }
    for (key, value, default) in [
        (
            "failure_threshold",
            probe.failure_threshold,
            defaults.failure_threshold,
        ),
        (
            "success_threshold",
            probe.success_threshold,
            defaults.success_threshold,
        ),
    ] {
        if value != default {
            let _ = writeln!(out, "      {key}: {value}");
        }
    }
}

fn command_text(command: &CommandSpec) -> String {
    match command {
        CommandSpec::Line(line) => quote(line),
        CommandSpec::Argv(argv) => list(argv),
    }
}

/// `["a", "b"]`.
fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `path` relative to `folder` when it lies under it, else absolute.
fn path_text(path: &Path, folder: Option<&Path>) -> String {
    if let Some(relative) = folder.and_then(|f| path.strip_prefix(f).ok()) {
        let text = relative.to_string_lossy();
        // `~…` would be refused by the loader as an unexpanded home folder, and a blank
        // path as missing.
        if text.is_empty() {
            return quote(".");
        }
        if !text.starts_with('~') && !text.trim().is_empty() {
            return quote(&text);
        }
    }
    quote(&path.to_string_lossy())
}

/// The largest unit in which `duration` is a whole number: `2h`, `90s`, `1500ms`, `7ns`.
pub(crate) fn duration_text(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    const UNITS: [(u128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    for (size, unit) in UNITS {
        if nanos.is_multiple_of(size) {
            return format!("{}{unit}", nanos / size);
        }
    }
    format!("{nanos}ns")
}

/// `10MiB` when exact in a binary unit, else plain bytes.
pub(crate) fn size_text(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// A YAML double-quoted scalar that reads back as exactly `text`: `"` and `\` escaped,
/// and every character YAML does not allow as is (controls, DEL, C1, the BOM, non
/// characters) written as a `\u` or `\U` escape.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if printable(c) => out.push(c),
            c if u32::from(c) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08X}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

/// YAML's printable set (c-printable), less the BOM.
fn printable(c: char) -> bool {
    matches!(u32::from(c), 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
        && c != '\u{FEFF}'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{parse_duration, parse_size};

    #[test]
    fn durations_are_written_in_their_largest_exact_unit() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_nanos(1_000_000_001), "1000000001ns"),
        ] {
            assert_eq!(duration_text(duration), text);
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn sizes_use_binary_units_when_exact() {
        for (bytes, text) in [
            (10 << 20, "10MiB"),
            (1 << 30, "1GiB"),
            (2048, "2KiB"),
            (1536, "1536"),
            (1000, "1000"),
            (0, "0"),
        ] {
            assert_eq!(size_text(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn quoting_escapes_what_yaml_would_read_differently() {
        assert_eq!(quote("8080"), "\"8080\"");
        assert_eq!(quote("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
        assert_eq!(quote("x\ny\u{7f}\u{feff}"), "\"x\\ny\\u007F\\uFEFF\"");
        assert_eq!(quote("é 🙂"), "\"é 🙂\"");
    }
}
