//! A server the bench starts for itself: `caravan agent --server` from this very binary, its
//! state in a temporary directory, controllers on, killed when dropped. Its log keeps only
//! warnings and the plan applier's rejections (debug lines), which the bench counts.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The plan applier's line for each node part it rejects (`store/state/plan.rs`).
const NODE_REJECTED: &str = "plan applier rejected a node's part";
/// A scheduler worker's line for each partly rejected plan (`worker/planner.rs`).
const PLAN_REJECTED: &str = "plan partly rejected";
/// Log filter: warnings, plus the two debug lines above.
const LOG_FILTER: &str = "warn,openraft=warn,caravan_apiserver::store::state::plan=debug,\
                          caravan_controllers::worker::planner=debug";

/// A running `caravan agent --server`.
pub struct LocalServer {
    child: Child,
    address: String,
    log: PathBuf,
    /// The data directory and the log; removed when dropped.
    _dir: tempfile::TempDir,
}

/// Plan rejections counted in a server log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    pub node_parts: u64,
    pub plans: u64,
}

/// Counts the rejection lines of a log.
pub fn count_rejections(log: &str) -> Rejections {
    let mut r = Rejections::default();
    for line in log.lines() {
        if line.contains(NODE_REJECTED) {
            r.node_parts += 1;
        } else if line.contains(PLAN_REJECTED) {
            r.plans += 1;
        }
    }
    r
}

/// A loopback port free for TCP, whose port + 2 (the gossip default) is free for UDP.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        let Some(gossip) = port.checked_add(2) else {
            continue;
        };
        if UdpSocket::bind(("127.0.0.1", gossip)).is_ok()
            && TcpListener::bind(("127.0.0.1", gossip)).is_ok()
        {
            return Ok(port);
        }
    }
    bail!("no free loopback port pair found")
}

impl LocalServer {
    /// Starts the server and waits until it has a leader (`/readyz`).
    pub async fn start(extra_args: &[String]) -> anyhow::Result<LocalServer> {
        let dir = tempfile::Builder::new()
            .prefix("caravan-c1m-")
            .tempdir()
            .context("creating the server's temporary directory")?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let log = dir.path().join("server.log");
        let exe = std::env::current_exe().context("locating the caravan binary")?;
        let child = Command::new(exe)
            .args(["agent", "--server", "--log-level", "warn", "--http-addr"])
            .arg(&address)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra_args)
            .env("RUST_LOG", LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).context("creating the server log")?)
            .spawn()
            .context("starting caravan agent --server")?;
        let mut server = LocalServer {
            child,
            address: format!("http://{address}"),
            log,
            _dir: dir,
        };
        server.wait_ready(Duration::from_secs(30)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.address);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited with {status}: {}", self.log_tail());
            }
            if let Ok(resp) = http.get(&url).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready after {timeout:?}: {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Plan rejections in the server's log so far.
    pub fn rejections(&self) -> Rejections {
        count_rejections(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(NODE_REJECTED) && !l.contains(PLAN_REJECTED))
            .collect();
        let start = lines.len().saturating_sub(20);
        format!(
            "server log ({}):\n{}",
            self.log.display(),
            lines[start..].join("\n")
        )
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_counted_by_kind() {
        let log = "\u{1b}[2m2025\u{1b}[0m DEBUG caravan_apiserver::store::state::plan: plan \
                   applier rejected a node's part eval=e1 node=n1\n\
                   DEBUG caravan_controllers::worker::planner: plan partly rejected; \
                   refreshing snapshot eval=e1\n\
                   DEBUG caravan_apiserver::store::state::plan: plan applier rejected a node's \
                   part eval=e1 node=n2\n WARN something else\n";
        assert_eq!(
            count_rejections(log),
            Rejections {
                node_parts: 2,
                plans: 1
            }
        );
    }

    #[test]
    fn free_ports_leave_room_for_gossip() {
        let port = free_port().unwrap();
        assert!(port > 0 && port < u16::MAX - 1);
    }
}
