//! Memory: `memory.totalbytes`.

use super::{Fingerprint, read_text};

/// Parses `MemTotal` of `/proc/meminfo` into bytes.
pub fn parse_meminfo_total(text: &str) -> Option<u64> {
    let rest = text
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?;
    let mut words = rest.split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    let factor = match words.next() {
        Some("kB") | Some("KB") | Some("kb") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(factor)
}

pub(super) fn collect(fp: &mut Fingerprint) {
    let Some(bytes) = read_text("/proc/meminfo").and_then(|t| parse_meminfo_total(&t)) else {
        tracing::debug!("fingerprint: no MemTotal in /proc/meminfo");
        return;
    };
    fp.set("memory.totalbytes", bytes);
    fp.resources.memory_mb = bytes / (1024 * 1024);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_meminfo() {
        let text = "MemTotal:       16314456 kB\nMemFree:         1234567 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(16_314_456 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }
}
