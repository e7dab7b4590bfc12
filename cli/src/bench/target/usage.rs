//! What a server uses while it is measured, read from its `/metrics` (Caravan and etcd both
//! export the Prometheus process metrics).

use anyhow::Context;

use super::Target;

/// The value of an unlabelled metric in a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
}

/// The server's resident memory (bytes) and CPU time (seconds) now, from its `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct ServerUsage {
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

pub async fn server_usage(http: &reqwest::Client, target: &Target) -> anyhow::Result<ServerUsage> {
    let text = http
        .get(target.metrics_url())
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(ServerUsage {
        rss_bytes: metric(&text, "process_resident_memory_bytes")
            .context("the server's /metrics has no process_resident_memory_bytes")?
            as u64,
        cpu_seconds: metric(&text, "process_cpu_seconds_total")
            .context("the server's /metrics has no process_cpu_seconds_total")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_in_either_number_format() {
        let etcd = "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.5726976e+07\n";
        assert_eq!(
            metric(etcd, "process_resident_memory_bytes"),
            Some(25_726_976.0)
        );
        let caravan = "process_resident_memory_bytes_x 1\nprocess_resident_memory_bytes 1048576\n";
        assert_eq!(
            metric(caravan, "process_resident_memory_bytes"),
            Some(1_048_576.0)
        );
        assert_eq!(
            metric("process_open_fds 9\n", "process_cpu_seconds_total"),
            None
        );
    }
}
