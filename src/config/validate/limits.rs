//! The `limits:` block (DESIGN §2, §11): `memory` (a size), `cpu` (cores, `1.5`, or a
//! percentage of one core, `150%`) and `pids` (a whole number), for files and for
//! definitions built in code or sent over the API.
//!
//! The values are what the kernel's cgroup v2 files take: `memory.max` in bytes (at least
//! 1 MiB: a plain `512` is bytes, almost always a forgotten unit), `cpu.max` as a quota per
//! 100 ms period (so 0.01 core, a 1 ms quota, is the smallest the kernel accepts), and
//! `pids.max` up to the kernel's pid limit. A detached service's daemon runs outside its
//! cgroup, so limits are refused for it rather than silently not applied.

use super::checker::Checker;
use crate::config::Limits;
use crate::config::model::{Pos, RawLimits, Sp};
use crate::config::units::{UnitError, parse_size};

/// The smallest `memory` accepted.
const MIN_MEMORY: u64 = 1 << 20;

/// The smallest `cpu` accepted, in thousandths of a core (a 1 ms quota per 100 ms).
const MIN_CPU_MILLICORES: u32 = 10;

/// The largest `cpu` accepted, in thousandths of a core.
const MAX_CPU_MILLICORES: u32 = 1024 * 1000;

/// The largest `pids` accepted (the kernel's `PID_MAX_LIMIT` on 64-bit).
const MAX_PIDS: i64 = 4 * 1024 * 1024;

const CPU_HINT: &str =
    "write cores, e.g. `cpu: 1.5` or `cpu: 0.25`, or a percentage of one core, e.g. `cpu: 150%`";

/// Reads `cpu:` as written: cores (`2`, `1.5`, `0.25`, at most three decimals) or a
/// percentage of one core (`150%`, `12.5%`), in thousandths of a core.
pub(crate) fn parse_cpu(text: &str) -> Result<u32, UnitError> {
    let trimmed = text.trim();
    let bad = |message: String| UnitError {
        message,
        hint: CPU_HINT.to_string(),
    };
    let (number, scale) = match trimmed.strip_suffix('%') {
        // A percent is a hundredth of a core: ten thousandths.
        Some(number) => (number.trim_end(), 10u64),
        None => (trimmed, 1000u64),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(bad(format!("`{trimmed}` is not a number of cores")));
    }
    // The fraction's digits, scaled to the unit: `1.5` cores is 1500, `12.5%` is 125.
    let places = match scale {
        1000 => 3,
        _ => 1,
    };
    if fraction.len() > places {
        return Err(bad(format!(
            "`{trimmed}` is finer than a thousandth of a core"
        )));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| bad(format!("`{trimmed}` is too large")))?
    };
    let padded = format!("{fraction:0<places$}");
    let fraction: u64 = padded.parse().unwrap_or(0);
    let millicores = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction))
        .filter(|m| *m <= u64::from(MAX_CPU_MILLICORES))
        .ok_or_else(|| {
            bad(format!(
                "`{trimmed}` is more than {} cores",
                MAX_CPU_MILLICORES / 1000
            ))
        })?;
    let millicores = millicores as u32;
    if millicores < MIN_CPU_MILLICORES {
        return Err(bad(format!(
            "`{trimmed}` is less than 0.01 core, the smallest quota the kernel takes"
        )));
    }
    Ok(millicores)
}

/// `1.5`, `2`, `0.25`: thousandths of a core as `cpu:` is written (loads back the same).
pub(crate) fn cpu_text(millicores: u32) -> String {
    let whole = millicores / 1000;
    let fraction = millicores % 1000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Checker<'_> {
    /// `limits:` of a file or JSON definition; `detached` is the service's.
    pub(super) fn limits(&mut self, value: &Sp<RawLimits>, detached: bool) -> Option<Limits> {
        let before = self.problems.len();
        let raw = &value.value;
        let mut limits = Limits::default();
        if let Some(memory) = &raw.memory {
            match parse_size(&memory.value) {
                Ok(bytes) if bytes < MIN_MEMORY => self.field(
                    Pos::of(memory),
                    "limits.memory",
                    &format!("{bytes} bytes is less than 1MiB"),
                    "give a size with a unit, e.g. `512MiB` (a plain number is bytes)",
                ),
                Ok(bytes) => limits.memory = Some(bytes),
                Err(UnitError { message, hint }) => {
                    self.field(Pos::of(memory), "limits.memory", &message, &hint)
                }
            }
        }
        if let Some(cpu) = &raw.cpu {
            match parse_cpu(&cpu.value) {
                Ok(millicores) => limits.cpu_millicores = Some(millicores),
                Err(UnitError { message, hint }) => {
                    self.field(Pos::of(cpu), "limits.cpu", &message, &hint)
                }
            }
        }
        if let Some(pids) = &raw.pids
            && let Some(pids) = self.number(pids, "limits.pids", 1, MAX_PIDS)
        {
            limits.pids = Some(pids as u64);
        }
        if detached && !limits.is_empty() {
            self.detached_limits(Pos::of(value));
        }
        (self.problems.len() == before).then_some(limits)
    }

    /// The same rules for a definition built in code (no positions).
    pub(super) fn limits_of_definition(&mut self, limits: &Limits, detached: bool) {
        let none = Pos::default();
        if limits.memory.is_some_and(|bytes| bytes < MIN_MEMORY) {
            self.field(
                none,
                "limits.memory",
                "it is less than 1MiB",
                "give the limit in bytes, at least 1048576",
            );
        }
        if limits
            .cpu_millicores
            .is_some_and(|m| !(MIN_CPU_MILLICORES..=MAX_CPU_MILLICORES).contains(&m))
        {
            self.field(
                none,
                "limits.cpu_millicores",
                "it is out of range",
                "give thousandths of a core, from 10 (0.01 core) to 1024000",
            );
        }
        if limits.pids.is_some_and(|p| p == 0 || p > MAX_PIDS as u64) {
            self.field(
                none,
                "limits.pids",
                "it is out of range",
                &format!("give a whole number from 1 to {MAX_PIDS}"),
            );
        }
        if detached && !limits.is_empty() {
            self.detached_limits(none);
        }
    }

    fn detached_limits(&mut self, pos: Pos) {
        self.field(
            pos,
            "limits",
            "a detached service's daemon runs outside steward's cgroups, so its limits could not be applied",
            "remove `limits`, or run the daemon in the foreground without `detached`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_cores_or_a_percentage_of_one() {
        for (text, millicores) in [
            ("1.5", 1500),
            ("2", 2000),
            ("0.25", 250),
            (".5", 500),
            ("0.01", 10),
            ("150%", 1500),
            ("12.5%", 125),
            ("1 %", 10),
            (" 3 ", 3000),
            ("1024", 1_024_000),
        ] {
            assert_eq!(parse_cpu(text).ok(), Some(millicores), "{text}");
        }
    }

    #[test]
    fn bad_cpu_values_say_why() {
        for (text, words) in [
            ("", "not a number of cores"),
            ("two", "not a number of cores"),
            ("-1", "not a number of cores"),
            ("1.5cores", "not a number of cores"),
            ("0.0001", "finer than a thousandth"),
            ("12.25%", "finer than a thousandth"),
            ("0", "less than 0.01 core"),
            ("0.5%", "less than 0.01 core"),
            ("2000", "more than 1024 cores"),
            ("99999999999999999999999", "too large"),
        ] {
            let error = parse_cpu(text).expect_err(text);
            assert!(error.message.contains(words), "{text}: {}", error.message);
            assert!(error.hint.contains("150%"), "{}", error.hint);
        }
    }

    #[test]
    fn cpu_text_reads_back_the_same() {
        for millicores in [10, 125, 250, 500, 1000, 1500, 2050, 1_024_000] {
            let text = cpu_text(millicores);
            assert_eq!(parse_cpu(&text).ok(), Some(millicores), "{text}");
        }
        assert_eq!(cpu_text(1500), "1.5");
        assert_eq!(cpu_text(2000), "2");
        assert_eq!(cpu_text(10), "0.01");
    }
}
