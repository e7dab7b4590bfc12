//! Ages as kubectl prints them (`45s`, `5m30s`, `3h`, `2d4h`), from RFC 3339 timestamps.

use std::time::{Duration, SystemTime};

/// The age of an RFC 3339 timestamp at `now`; `None` if it does not parse.
pub fn age_of(timestamp: &str, now: SystemTime) -> Option<String> {
    let then = humantime::parse_rfc3339_weak(timestamp).ok()?;
    Some(match now.duration_since(then) {
        Ok(d) => human_duration(d),
        // Clock skew of up to a second is shown as 0s, beyond as invalid.
        Err(e) if e.duration() <= Duration::from_secs(1) => "0s".into(),
        Err(_) => "<invalid>".into(),
    })
}

/// Kubernetes `duration.HumanDuration`: two significant units at most, coarser as it grows.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let years = days / 365;
    if seconds < 60 * 2 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 60 * 3 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        }
    } else {
        format!("{years}y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_like_kubectl() {
        let cases = [
            (45, "45s"),
            (119, "119s"),
            (330, "5m30s"),
            (600, "10m"),
            (3 * 3600 + 120, "3h2m"),
            (20 * 3600, "20h"),
            (2 * 86400 + 4 * 3600, "2d4h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn age_is_measured_from_the_timestamp() {
        let now = humantime::parse_rfc3339("2025-01-01T00:05:30Z").unwrap();
        assert_eq!(
            age_of("2025-01-01T00:00:00Z", now).as_deref(),
            Some("5m30s")
        );
        assert_eq!(age_of("5m", now), None);
    }
}
