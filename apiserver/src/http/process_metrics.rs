//! The standard `process_*` metrics of the server's own process (resident memory, CPU time,
//! open files), read from `/proc/self` at every scrape, under the names Prometheus' client
//! libraries use, so a dashboard (or `caravan bench watch`) reads Caravan and etcd alike.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads `/proc/self` on every scrape; reports nothing it cannot read.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What one scrape reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub cpu_seconds: f64,
}

/// `utime + stime` of a `/proc/<pid>/stat` line in clock ticks. The fields are counted after
/// the command name, which may hold spaces and parentheses.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after_comm.split_whitespace().skip(11); // from field 3 (state) to 14 (utime)
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS: 2560 kB`), in bytes.
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn sample() -> Option<ProcessSample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    Some(ProcessSample {
        resident_bytes: status_bytes(&status, "VmRSS")?,
        virtual_bytes: status_bytes(&status, "VmSize")?,
        // Linux reports CPU time in USER_HZ, 100 on every architecture Caravan runs on.
        cpu_seconds: cpu_ticks(&stat)? as f64 / 100.0,
    })
}

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(s) = sample() {
            let rss = ConstGauge::new(s.resident_bytes as i64);
            rss.encode(encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                None,
                rss.metric_type(),
            )?)?;
            let virt = ConstGauge::new(s.virtual_bytes as i64);
            virt.encode(encoder.encode_descriptor(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                None,
                virt.metric_type(),
            )?)?;
            let cpu = ConstCounter::new(s.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
        }
        if let Some(fds) = open_fds() {
            let fds = ConstGauge::new(fds as i64);
            fds.encode(encoder.encode_descriptor(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                fds.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    250 50 0 0 20 0 8 0 12345 1073741824 2560 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("1 (x) S 1 2 3"), None);
    }

    #[test]
    fn status_sizes_are_in_bytes() {
        let status = "Name:\tcaravan\nVmSize:\t  1048576 kB\nVmRSS:\t    2560 kB\n";
        assert_eq!(status_bytes(status, "VmRSS"), Some(2560 * 1024));
        assert_eq!(status_bytes(status, "VmSize"), Some(1024 * 1024 * 1024));
        assert_eq!(status_bytes(status, "VmSwap"), None);
    }

    #[test]
    fn this_process_has_memory_and_open_files() {
        let s = sample().expect("/proc/self/stat");
        assert!(s.resident_bytes > 0);
        assert!(open_fds().unwrap() > 0);
    }
}
