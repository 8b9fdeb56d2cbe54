//! Durations (`250ms`, `10s`, `5m`, `1h`) and sizes (`10MiB`, `512KiB`, `1GiB`, plain
//! bytes) as people write them in service files, with messages that say how to fix a bad
//! one. Pure functions, so both the file loader and the JSON API path share them.

use std::time::Duration;

/// Why a value could not be read: what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnitError {
    /// What is wrong with the text.
    pub message: String,
    /// How to write it instead.
    pub hint: String,
}

const DURATION_HINT: &str = "write a number with a unit, e.g. `250ms`, `10s`, `5m` or `1h`";

/// Reads a duration: `250ms`, `10s`, `5m`, `1h`, `1.5s`, combinations such as `1m 30s`,
/// or `0`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(UnitError {
            message: "empty duration".to_string(),
            hint: DURATION_HINT.to_string(),
        });
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // A bare number is ambiguous (seconds? milliseconds?) unless it is zero.
        if trimmed.bytes().all(|b| b == b'0') {
            return Ok(Duration::ZERO);
        }
        return Err(UnitError {
            message: format!("`{trimmed}` has no unit"),
            hint: format!("write `{trimmed}s` for seconds or `{trimmed}ms` for milliseconds"),
        });
    }
    if trimmed.starts_with('-') {
        return Err(UnitError {
            message: format!("`{trimmed}` is negative"),
            hint: "durations are zero or more, e.g. `0s` or `10s`".to_string(),
        });
    }
    let duration = humantime::parse_duration(trimmed).map_err(|e| {
        let detail = match e {
            humantime::DurationError::UnknownUnit { unit, .. } => {
                format!("`{unit}` is not a time unit")
            }
            humantime::DurationError::NumberOverflow => "the number is too large".to_string(),
            _ => "it is not a number followed by a unit".to_string(),
        };
        UnitError {
            message: format!("`{trimmed}` is not a duration: {detail}"),
            hint: format!("{DURATION_HINT} (units: ms, s, m, h, d)"),
        }
    })?;
    // Every duration must be writable back (the saver writes whole units, read again with
    // nanoseconds in a u64): about 584 years at most.
    if duration.as_nanos() > u128::from(u64::MAX) {
        return Err(UnitError {
            message: format!("`{trimmed}` is too large: a duration is at most about 584 years"),
            hint: DURATION_HINT.to_string(),
        });
    }
    Ok(duration)
}

const SIZE_HINT: &str =
    "write a whole number of bytes or a number with a unit, e.g. `512KiB`, `10MiB` or `1GiB`";

/// Reads a size in bytes: plain bytes (`1048576`), or a whole number with a unit: `B`,
/// `KiB`/`MiB`/`GiB` (powers of 1024) or `KB`/`MB`/`GB` (powers of 1000). Units are
/// case-insensitive; a space before the unit is allowed.
pub(crate) fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let bad = |message: String| UnitError {
        message,
        hint: SIZE_HINT.to_string(),
    };
    if number.is_empty() {
        return Err(bad(format!("`{trimmed}` is not a size")));
    }
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other if other.starts_with('.') => {
            return Err(bad(format!(
                "`{trimmed}` is not a size: fractions are not allowed"
            )));
        }
        _ => {
            return Err(bad(format!(
                "`{trimmed}` is not a size: `{}` is not a size unit",
                unit.trim()
            )));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| bad(format!("`{trimmed}` is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_durations_say_how_to_fix_them() {
        let e = parse_duration("5").expect_err("no unit");
        assert_eq!(e.message, "`5` has no unit");
        assert!(e.hint.contains("`5s`"), "{e:?}");
        let e = parse_duration("5x").expect_err("bad unit");
        assert!(e.message.contains("`x` is not a time unit"), "{e:?}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
    }

    #[test]
    fn sizes_with_binary_and_decimal_units() {
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("10 mib"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("7B"), Ok(7));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for bad in ["", "MiB", "10XB", "1.5MiB", "-1", "99999999999999999999GiB"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.hint.contains("10MiB"), "{bad}: {e:?}");
        }
    }

    /// Found by the `definition_json` fuzzer: humantime read this as about 176,000 years,
    /// which the saver then wrote as milliseconds that could not be read back.
    #[test]
    fn a_duration_too_large_to_write_back_is_refused() {
        let error =
            parse_duration("00000000000000 5555555555555.5   29s54m").expect_err("too large");
        assert!(error.message.contains("too large"), "{}", error.message);
        assert!(parse_duration("600y").is_err());
        assert_eq!(
            parse_duration("100000h").expect("fits"),
            Duration::from_secs(360_000_000)
        );
    }
}
