//! Durations in Go's `time.ParseDuration` form ("10s", "5m", "1h30m", "1.5h"), as Nomad writes them.

use std::time::Duration;

use crate::limits::MAX_DURATION;

/// Why a duration string did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("duration is empty")]
    Empty,
    /// A number is missing before a unit, or a unit after a number.
    #[error(
        "invalid duration {0:?}: expected numbers with units such as \"10s\", \"5m\" or \"1h30m\""
    )]
    Malformed(String),
    /// The unit is not one of ns, us, µs, ms, s, m, h.
    #[error("unknown unit {unit:?} in duration {input:?}: use ns, us, ms, s, m or h")]
    UnknownUnit { input: String, unit: String },
    /// The value does not fit.
    #[error("duration {0:?} is too large")]
    Overflow(String),
    /// The value is longer than any field accepts ([`MAX_DURATION`]).
    #[error("duration {input:?} is longer than the longest allowed, {max}")]
    TooLong { input: String, max: String },
}

/// [`parse_duration`] of a duration a client writes: also refused when longer than
/// [`MAX_DURATION`], so that no deadline or timeout computed from it can overflow.
pub fn parse_admitted_duration(input: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(input)?;
    if duration > MAX_DURATION {
        return Err(DurationError::TooLong {
            input: input.to_string(),
            max: format!("{}h", MAX_DURATION.as_secs() / 3600),
        });
    }
    Ok(duration)
}

/// Parses a Go-style duration: a sequence of decimal numbers, each with an optional fraction and
/// a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). A bare `0` is allowed. Negative durations are not.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let malformed = || DurationError::Malformed(input.to_string());
    let overflow = || DurationError::Overflow(input.to_string());
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(malformed)?;
        let (number, tail) = rest.split_at(digits);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(malformed());
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(DurationError::UnknownUnit {
                    input: input.to_string(),
                    unit: unit.to_string(),
                });
            }
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| overflow())?
        };
        let mut value = whole.checked_mul(nanos_per_unit).ok_or_else(overflow)?;
        let mut scale = nanos_per_unit;
        for digit in fraction.bytes().map(|b| u128::from(b - b'0')) {
            scale /= 10;
            value = value.checked_add(digit * scale).ok_or_else(overflow)?;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    // The remainder is below 10^9 and fits in a u32.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn rejects_malformed_durations() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        for bad in ["10", "s", "1..5s", "-5s", "5 s", "1h30", "."] {
            assert!(parse_duration(bad).is_err(), "{bad} parsed");
        }
        assert!(matches!(
            parse_duration("3d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn admitted_durations_are_at_most_the_limit() {
        assert_eq!(
            parse_admitted_duration("87600h"),
            Ok(MAX_DURATION),
            "the limit itself is allowed"
        );
        assert_eq!(parse_admitted_duration("5s"), Ok(Duration::from_secs(5)));
        for long in ["87600h1ns", "5000000000000000h", "100000h"] {
            assert!(parse_duration(long).is_ok(), "{long} parses");
            assert!(
                matches!(
                    parse_admitted_duration(long),
                    Err(DurationError::TooLong { .. })
                ),
                "{long} admitted"
            );
        }
        assert!(matches!(
            parse_admitted_duration("10"),
            Err(DurationError::Malformed(_))
        ));
    }
}
