//! Memory and CPU time of a local process, from `/proc/<pid>/status` and `/proc/<pid>/stat`:
//! for the server's own `process_*` metrics and for the benchmarks that watch a server.

use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// Resident set size now (`VmRSS`).
    pub rss_bytes: u64,
    /// Peak resident set size (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// Virtual memory size (`VmSize`).
    pub virtual_bytes: u64,
    /// User plus system CPU time so far.
    pub cpu: Duration,
}

/// `VmRSS`, `VmHWM` and `VmSize` of a `/proc/<pid>/status` text, in bytes.
pub fn parse_status(text: &str) -> (u64, u64, u64) {
    let kib = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |n| n * 1024)
    };
    (kib("VmRSS:"), kib("VmHWM:"), kib("VmSize:"))
}

/// `utime + stime` of a `/proc/<pid>/stat` line.
pub fn parse_stat_cpu(text: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces and parentheses: fields start after the
    // last `)`, at field 3 (state); utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Reads process `pid` (`None`: this process); `None` once it is gone.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = pid.map_or_else(|| "/proc/self".to_string(), |p| format!("/proc/{p}"));
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    let (rss_bytes, peak_rss_bytes, virtual_bytes) = parse_status(&status);
    Some(Sample {
        rss_bytes,
        peak_rss_bytes,
        virtual_bytes,
        cpu: parse_stat_cpu(&stat)?,
    })
}

/// `1.23 GiB`.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_rss_and_peak() {
        let text = "Name:\tcaravan\nVmSize:\t 1048576 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t4\n";
        assert_eq!(parse_status(text), (100 << 20, 200 << 20, 1 << 30));
        assert_eq!(parse_status("Name: x\n"), (0, 0, 0));
        assert_eq!(gib(3 << 29), "1.50 GiB");
    }

    #[test]
    fn stat_gives_user_plus_system_time() {
        let line = "4242 (caravan (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 \
                    12 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu(line), Some(Duration::from_secs(4)));
        assert_eq!(parse_stat_cpu("garbage"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = sample(None).expect("/proc/self");
        assert!(me.rss_bytes > 0 && me.peak_rss_bytes >= me.rss_bytes);
    }
}
