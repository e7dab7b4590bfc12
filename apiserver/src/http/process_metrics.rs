//! The standard `process_*` metrics of the server's own process (resident memory, CPU time,
//! open files), read from `/proc/self` at every scrape, under the names Prometheus' client
//! libraries use, so a dashboard (or `caravan bench watch`) reads Caravan and etcd alike.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::procfs;

/// Reads `/proc/self` on every scrape; reports nothing it cannot read.
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(s) = procfs::sample(None) {
            let rss = ConstGauge::new(s.rss_bytes as i64);
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
            let cpu = ConstCounter::new(s.cpu.as_secs_f64());
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
    fn this_process_has_open_files() {
        assert!(open_fds().unwrap() > 0);
    }
}
