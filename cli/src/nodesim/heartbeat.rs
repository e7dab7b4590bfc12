//! Registration and heartbeats of one simulated node, as `caravan agent --client` does them
//! (`nodeagent/src/agent/mod.rs`): create the Node (or merge-patch its labels and spec when it
//! exists), PATCH the status subresource with the fingerprint, then heartbeat at the TTL the
//! servers return, registering again when they no longer know the node.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;

use caravan_nodeagent::agent::register_node;

use super::client::SimClient;
use super::node::Registration;
use super::stats::SimStats;

/// The next retry delay: doubling up to 10 s.
pub fn backoff_after(current: Duration) -> Duration {
    (current * 2).min(Duration::from_secs(10))
}

/// Registers, signals `registered` once, then heartbeats forever.
pub async fn heartbeat_loop(
    client: SimClient,
    name: String,
    reg: Registration,
    registered: oneshot::Sender<()>,
) {
    let mut registered = Some(registered);
    let mut backoff = Duration::from_millis(250);
    let mut need_register = true;
    loop {
        if need_register {
            match register_node(&client, &name, &reg.node, &reg.status).await {
                Ok(()) => {
                    need_register = false;
                    if let Some(tx) = registered.take() {
                        SimStats::inc(&client.stats().registered);
                        let _ = tx.send(());
                    }
                }
                Err(e) => {
                    SimStats::inc(&client.stats().register_errors);
                    tracing::warn!(node = %name, error = %e, "registration failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff_after(backoff);
                    continue;
                }
            }
        }
        match client.http().heartbeat(&name).await {
            Ok(ttl) => {
                SimStats::inc(&client.stats().heartbeats);
                backoff = Duration::from_millis(250);
                tokio::time::sleep(ttl).await;
            }
            Err(e) if e.is_not_found() => {
                tracing::warn!(node = %name, "the servers do not know this node; registering again");
                need_register = true;
            }
            Err(_) if client.stats().stopping.load(Ordering::Relaxed) => return,
            Err(e) => {
                SimStats::inc(&client.stats().heartbeat_errors);
                tracing::warn!(node = %name, error = %e, "heartbeat failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = backoff_after(backoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_ten_seconds() {
        assert_eq!(
            backoff_after(Duration::from_millis(250)),
            Duration::from_millis(500)
        );
        assert_eq!(
            backoff_after(Duration::from_secs(8)),
            Duration::from_secs(10)
        );
    }
}
