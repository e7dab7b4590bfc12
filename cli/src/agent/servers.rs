//! Server-mode settings from the flags: gossip, and the controllers that follow leadership.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use caravan_apiserver::Controllers;
use caravan_apiserver::cluster::GossipConfig;
use caravan_apiserver::cluster::keyring::{Encryption, GossipKey};
use caravan_apiserver::server::ClusterSettings;
use caravan_client::HttpClient;
use caravan_controllers::leader::LeaderConfig;

use super::Settings;
use super::args::AgentArgs;

/// Gossip interval of the servers' LAN pool.
const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);

/// `--bootstrap-expect`, defaulting to 1 (bootstrap alone) without `--join`, else 0 (join an
/// existing cluster).
pub fn bootstrap_expect(args: &AgentArgs) -> usize {
    args.bootstrap_expect
        .unwrap_or(if args.join.is_empty() { 1 } else { 0 })
}

/// The gossip address: `--gossip-addr`, else the HTTP address's host with port + 2 (4648 for
/// 4646, as Nomad's serf port).
pub fn gossip_addr(args: &AgentArgs, http: SocketAddr) -> anyhow::Result<SocketAddr> {
    match &args.gossip_addr {
        Some(addr) => super::parse_addr("--gossip-addr", addr),
        None => Ok(SocketAddr::new(http.ip(), http.port().wrapping_add(2))),
    }
}

/// Who this server is among servers and how it gossips.
pub fn cluster_settings(
    args: &AgentArgs,
    settings: &Settings,
    http: SocketAddr,
) -> anyhow::Result<ClusterSettings> {
    let bind = gossip_addr(args, http)?;
    let name = args.name.clone().unwrap_or_else(|| {
        hostname()
            .map(|h| format!("{h}.{}", settings.region))
            .unwrap_or_else(|| format!("server-{}", http.port()))
    });
    let expect = bootstrap_expect(args);
    Ok(ClusterSettings {
        name,
        region: settings.region.clone(),
        datacenter: settings.datacenter.clone(),
        bootstrap_expect: expect,
        gossip: GossipConfig {
            bind,
            advertise: match &args.advertise_addr {
                Some(host) => {
                    super::parse_addr("--advertise-addr", &format!("{host}:{}", bind.port()))?
                }
                None => bind,
            },
            seeds: args.join.iter().chain(&args.join_wan).cloned().collect(),
            interval: GOSSIP_INTERVAL,
            failure_timeout: Duration::from_secs(4),
            encryption: gossip_encryption(args)?,
        },
        // A lone server runs without gossip when its default port is taken.
        required: args.gossip_addr.is_some()
            || !args.join.is_empty()
            || !args.join_wan.is_empty()
            || expect > 1,
    })
}

/// Gossip encryption: the `--encrypt` key seeds the keyring kept in the data dir (in memory
/// for a dev agent without one).
fn gossip_encryption(args: &AgentArgs) -> anyhow::Result<Encryption> {
    let key = args
        .encrypt
        .as_deref()
        .map(GossipKey::parse)
        .transpose()
        .context("invalid --encrypt (config file: server.encrypt)")?;
    Ok(Encryption {
        keyring_dir: args.data_dir.clone(),
        key,
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The scheduling duties of a server, which follow leadership in the apiserver
/// (`caravan_apiserver::leadership`): the leader's controllers with `config`, and on a follower
/// scheduler workers that reach the leader through a client of this server's own API (which
/// forwards to the leader what needs it).
pub fn controllers(
    config: LeaderConfig,
    tls: Option<std::sync::Arc<caravan_tls::Tls>>,
    region: &str,
) -> Controllers {
    let region = region.to_string();
    Controllers::new(config, move |address, secret| {
        let client = HttpClient::new(address)?.with_cluster_secret(secret.expose());
        match &tls {
            Some(tls) => Ok(client.with_tls(
                tls,
                caravan_tls::Peer::Server {
                    region: region.clone(),
                },
            )?),
            None => Ok(client),
        }
    })
}
