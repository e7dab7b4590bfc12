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
            encode(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                &rss,
            )?;
            let virt = ConstGauge::new(s.virtual_bytes as i64);
            encode(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                &virt,
            )?;
            // A counter: the exposition adds the `_total` suffix.
            let cpu = ConstCounter::new(s.cpu.as_secs_f64());
            encode(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                &cpu,
            )?;
        }
        if let Some(fds) = open_fds() {
            let fds = ConstGauge::new(fds as i64);
            encode(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                &fds,
            )?;
        }
        Ok(())
    }
}

/// Writes one unlabelled metric with its descriptor.
fn encode(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_open_files() {
        assert!(open_fds().unwrap() > 0);
    }
}
