//! Server-mode wiring: gossip settings from the flags, the leader's duties started and stopped
//! with Raft leadership, and a graceful leave of the voter set.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use caravan_apiserver::cluster::GossipConfig;
use caravan_apiserver::http::{ApiContext, LocalClient};
use caravan_apiserver::server::{ClusterSettings, ensure_default_namespace};
use caravan_controllers::broker::EvalBroker;
use caravan_controllers::leader::LeaderConfig;
use tokio::task::JoinHandle;

use super::Settings;
use super::args::AgentArgs;

/// Gossip interval of the servers' LAN pool.
const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a leaving server waits to be out of the voter set.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(15);

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
        },
        // A lone server runs without gossip when its default port is taken.
        required: args.gossip_addr.is_some()
            || !args.join.is_empty()
            || !args.join_wan.is_empty()
            || expect > 1,
    })
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// What runs on this server for scheduling.
enum Duties {
    None,
    /// The leader's controllers, with the broker served to followers.
    Leading(JoinHandle<()>),
    /// Scheduler workers taking evaluations from the leader's broker.
    Following(JoinHandle<()>),
}

/// Runs the leader's controllers (evaluator, broker, workers, drainer, GC) while this server
/// leads, and scheduler workers fed by the leader's broker while it follows, switching as
/// leadership moves.
pub fn spawn_leader_duties(ctx: Arc<ApiContext>, config: LeaderConfig) -> JoinHandle<()> {
    ctx.set_gc_trigger(config.gc.trigger.clone());
    tokio::spawn(async move {
        let mut metrics = ctx.store.raft().metrics();
        let mut duties = Duties::None;
        loop {
            let leading = ctx.store.is_leader();
            let following = !leading && ctx.store.leader_addr().is_some();
            duties = match duties {
                Duties::Leading(task) if !leading => {
                    tracing::info!(
                        "this server no longer leads: stopping the leader's controllers"
                    );
                    ctx.set_broker(None);
                    task.abort();
                    Duties::None
                }
                Duties::Following(task) if leading => {
                    task.abort();
                    Duties::None
                }
                other => other,
            };
            duties = match duties {
                Duties::None if leading => {
                    tracing::info!("this server leads: starting the leader's controllers");
                    if let Err(e) = ensure_default_namespace(&ctx.store).await {
                        tracing::warn!(error = %format!("{e:#}"), "could not create the default namespace");
                    }
                    let broker = EvalBroker::new(config.broker.clone());
                    ctx.set_broker(Some(broker.clone()));
                    Duties::Leading(tokio::spawn(caravan_controllers::leader::run_with_broker(
                        LocalClient::new(ctx.clone()),
                        config.clone(),
                        broker,
                    )))
                }
                Duties::None if following => match follower_client(&ctx) {
                    Some(remote) => {
                        tracing::info!(
                            "this server follows: scheduling evaluations of the leader's broker"
                        );
                        Duties::Following(tokio::spawn(
                            caravan_controllers::leader::run_follower_workers(
                                LocalClient::new(ctx.clone()),
                                remote.clone(),
                                remote,
                                config.clone(),
                            ),
                        ))
                    }
                    None => Duties::None,
                },
                other => other,
            };
            if metrics.changed().await.is_err() {
                break;
            }
        }
        if let Duties::Leading(task) | Duties::Following(task) = duties {
            task.abort();
        }
    })
}

/// A client of this server's own API, which forwards to the leader what needs it: the
/// followers' workers take evaluations and submit plans through it.
fn follower_client(ctx: &ApiContext) -> Option<caravan_client::Client> {
    let addr = ctx.cluster()?.identity().http_addr.clone();
    match caravan_client::Client::new(&addr) {
        Ok(client) => Some(client.with_cluster_secret(ctx.store.secret().expose())),
        Err(e) => {
            tracing::warn!(error = %e, "no client for the follower's workers");
            None
        }
    }
}

/// Graceful leave of a server: announce it by gossip, wait until the leader removed it from
/// the voters (or a timeout), so the remaining servers keep their quorum.
pub async fn leave_voters(ctx: &ApiContext) {
    let Some(cluster) = ctx.cluster() else {
        return;
    };
    let id = ctx.store.node_id();
    let voters = || -> usize {
        ctx.store
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .count()
    };
    if voters() <= 1 {
        return;
    }
    tracing::info!("leaving: asking the leader to remove this server from the voters");
    cluster.announce_leave().await;
    let deadline = tokio::time::Instant::now() + LEAVE_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if !still_a_member(ctx, id).await {
            tracing::info!("left the voter set");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tracing::warn!("leaving: still a voter after {LEAVE_TIMEOUT:?}; stopping anyway");
}

/// Whether the Raft configuration still holds `id`: as this server sees it, and as the
/// leader reports it (a removed follower may never receive the entry that removed it).
async fn still_a_member(ctx: &ApiContext, id: u64) -> bool {
    let local = ctx
        .store
        .raft()
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&id)
        .is_some();
    if !local {
        return false;
    }
    let Some(leader) = ctx.store.leader_addr().filter(|_| !ctx.store.is_leader()) else {
        return true;
    };
    let Ok(client) = caravan_client::Client::new(&leader) else {
        return true;
    };
    match client.raft_configuration().await {
        Ok(config) => config["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["raftId"].as_u64() == Some(id)),
        Err(_) => true,
    }
}
