//! Leadership in one place: what a server starts when it gains Raft leadership and stops when
//! it loses it (Nomad's `leader.go`, `establishLeadership` / `revokeLeadership`), and what a
//! follower runs meanwhile.
//!
//! ```text
//! Raft metrics change ─▶ leads now, did not ─▶ establish: the `default` namespace,
//!        │                                      node liveness (liveness.rs),
//!        │                                      the leader's controllers over LocalClient,
//!        │                                      their eval broker served to followers
//!        ├─ led, does not now ─▶ revoke: controllers stopped, broker no longer served,
//!        │                               liveness stopped, heartbeat deadlines forgotten
//!        └─ follows a known leader ─▶ scheduler workers: snapshots from this replica,
//!                                     evaluations from the leader's broker, plans through
//!                                     this server's own HTTP API (forwarded to the leader)
//! ```
//!
//! The controllers (and the followers' workers) run only when the server is configured with
//! [`Controllers`]; the namespace and liveness duties always follow leadership.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use caravan_controllers::broker::EvalBroker;
use caravan_controllers::leader::LeaderConfig;
use caravan_runtime::Client;
use caravan_runtime::eval_source::EvalSource;
use caravan_schemas::Kind;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cluster::secret::ClusterSecret;
use crate::context::ApiContext;
use crate::liveness;
use crate::local_client::LocalClient;
use crate::raft::{ReplicatedStore, WriteError};
use crate::store::{ObjectJson, ObjectKey, Op, OpError, Precondition};

/// The longest [`Leadership::stop`] waits for the duties to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts a follower's scheduler workers, or `None` when it cannot reach the leader's broker.
type Follow = dyn Fn(&Arc<ApiContext>, &LeaderConfig) -> Option<Task> + Send + Sync;

/// The scheduling duties of a server: the leader's controllers while it leads (evaluator,
/// broker, workers, drainer, garbage collection), scheduler workers fed by the leader's broker
/// while it follows.
#[derive(Clone)]
pub struct Controllers {
    config: LeaderConfig,
    follow: Arc<Follow>,
}

impl fmt::Debug for Controllers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controllers")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Controllers {
    /// Controllers with `config`. While this server follows, its workers reach the leader
    /// through `follower_remote(address, secret)`: a client of this server's own HTTP API at
    /// `address`, carrying the cluster `secret`, which forwards to the leader what needs it
    /// (the workers take evaluations from the leader's broker and submit plans through it).
    pub fn new<R, F>(config: LeaderConfig, follower_remote: F) -> Controllers
    where
        R: Client + EvalSource,
        F: Fn(&str, &ClusterSecret) -> anyhow::Result<R> + Send + Sync + 'static,
    {
        let follow = move |ctx: &Arc<ApiContext>, config: &LeaderConfig| {
            let address = ctx.cluster()?.identity().http_addr.clone();
            match follower_remote(&address, ctx.store.secret()) {
                Ok(remote) => Some(Task(tokio::spawn(
                    caravan_controllers::leader::run_follower_workers(
                        LocalClient::new(ctx.clone()),
                        remote.clone(),
                        remote,
                        config.clone(),
                    ),
                ))),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "no client for the follower's workers");
                    None
                }
            }
        };
        Controllers {
            config,
            follow: Arc::new(follow),
        }
    }
}

/// A spawned task, aborted when dropped.
struct Task(JoinHandle<()>);

impl Task {
    /// Aborts the task and waits until it is gone.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What runs on this server for its role.
enum Role {
    None,
    Leading {
        liveness: Task,
        controllers: Option<Task>,
    },
    /// Scheduler workers taking evaluations from the leader's broker.
    Following {
        workers: Task,
    },
}

/// The task that follows leadership. [`Leadership::stop`] stops every duty it started and
/// waits for them; dropping it aborts them without waiting.
pub struct Leadership {
    task: Task,
    stop: oneshot::Sender<()>,
}

impl Leadership {
    /// Follows this server's Raft leadership from now on. When it leads already, the
    /// `default` namespace is created before this returns, so the API never serves a new
    /// cluster without it; a failure to create it then is an error.
    pub async fn start(
        ctx: Arc<ApiContext>,
        controllers: Option<Controllers>,
    ) -> anyhow::Result<Leadership> {
        if let Some(controllers) = &controllers {
            ctx.set_gc_trigger(controllers.config.gc.trigger.clone());
        }
        if ctx.store.is_leader() {
            ensure_default_namespace(&ctx.store).await?;
        }
        let (stop, stopped) = oneshot::channel();
        Ok(Leadership {
            task: Task(tokio::spawn(follow(ctx, controllers, stopped))),
            stop,
        })
    }

    /// Stops every duty (as losing leadership would) and waits until they are gone, at most
    /// `STOP_TIMEOUT`; then aborts what is left.
    pub async fn stop(self) {
        let Leadership { mut task, stop } = self;
        let _ = stop.send(());
        if tokio::time::timeout(STOP_TIMEOUT, &mut task.0)
            .await
            .is_err()
        {
            tracing::warn!("the leader's duties did not stop within {STOP_TIMEOUT:?}: aborted");
        }
    }
}

/// Switches duties as Raft's metrics show leadership move, until the Raft core stops or
/// `stopped` fires; then stops them.
async fn follow(
    ctx: Arc<ApiContext>,
    controllers: Option<Controllers>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut metrics = ctx.store.raft().metrics();
    let mut role = Role::None;
    loop {
        let leading = ctx.store.is_leader();
        let following = !leading && ctx.store.leader_addr().is_some();
        role = match role {
            Role::Leading {
                liveness,
                controllers: running,
            } if !leading => {
                tracing::info!("this server no longer leads");
                revoke(&ctx, liveness, running).await;
                Role::None
            }
            Role::Following { workers } if leading => {
                workers.stop().await;
                Role::None
            }
            other => other,
        };
        role = match role {
            Role::None if leading => establish(&ctx, controllers.as_ref()).await,
            Role::None if following => match &controllers {
                Some(c) => match (c.follow)(&ctx, &c.config) {
                    Some(workers) => {
                        tracing::info!(
                            "this server follows: scheduling evaluations of the leader's broker"
                        );
                        Role::Following { workers }
                    }
                    None => Role::None,
                },
                None => Role::None,
            },
            other => other,
        };
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                break;
            },
            _ = &mut stopped => break,
        }
    }
    match role {
        Role::Leading {
            liveness,
            controllers,
        } => revoke(&ctx, liveness, controllers).await,
        Role::Following { workers } => workers.stop().await,
        Role::None => {}
    }
}

/// What starts when this server gains leadership.
async fn establish(ctx: &Arc<ApiContext>, controllers: Option<&Controllers>) -> Role {
    if controllers.is_some() {
        tracing::info!("this server leads: starting the leader's controllers");
    } else {
        tracing::info!("this server leads");
    }
    if let Err(e) = ensure_default_namespace(&ctx.store).await {
        tracing::warn!(error = %format!("{e:#}"), "could not create the default namespace");
    }
    let liveness = Task(tokio::spawn(liveness::run(ctx.clone())));
    let controllers = controllers.map(|c| {
        let broker = EvalBroker::new(c.config.broker.clone());
        ctx.set_broker(Some(broker.clone()));
        Task(tokio::spawn(caravan_controllers::leader::run_with_broker(
            LocalClient::new(ctx.clone()),
            c.config.clone(),
            broker,
        )))
    });
    Role::Leading {
        liveness,
        controllers,
    }
}

/// What stops when this server loses leadership (or stops).
async fn revoke(ctx: &ApiContext, liveness: Task, controllers: Option<Task>) {
    if let Some(controllers) = controllers {
        tracing::info!("stopping the leader's controllers");
        ctx.set_broker(None);
        controllers.stop().await;
    }
    liveness.stop().await;
    liveness::forget_deadlines(ctx);
}

/// Creates the `default` namespace on a new cluster (the leader does, when it starts leading).
pub async fn ensure_default_namespace(store: &ReplicatedStore) -> anyhow::Result<()> {
    let key = ObjectKey {
        kind: Kind::Namespace,
        namespace: String::new(),
        name: "default".into(),
    };
    if store.state().get(&key).is_some() {
        return Ok(());
    }
    let object = json!({
        "apiVersion": caravan_schemas::API_VERSION,
        "kind": "Namespace",
        "metadata": {
            "name": "default",
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            "generation": 1,
        },
        "spec": {"description": "The namespace of objects that name none"},
    });
    match store
        .write(Op::Put {
            kind: Kind::Namespace,
            object: ObjectJson::from_value(object),
            expect: Precondition::Absent,
            version: None,
        })
        .await
    {
        Ok(_) | Err(WriteError::Rejected(OpError::AlreadyExists)) => Ok(()),
        Err(e) => Err(e).context("failed to create the default namespace"),
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::Kind;

    use super::*;
    use crate::api::{self, GetOptions};
    use crate::context::ApiConfig;
    use crate::raft::StoreConfig;

    #[tokio::test]
    async fn a_leader_has_the_default_namespace_and_stops_its_duties() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = StoreConfig::new(dir.path().join("raft"), "127.0.0.1:0".into());
        let store = ReplicatedStore::open(config).await.expect("store opens");
        let ctx = Arc::new(ApiContext::new(store, ApiConfig::default()));
        let leadership = Leadership::start(ctx.clone(), None).await.expect("starts");
        // A sole voter leads when its store opens: the namespace exists before serving.
        let options = GetOptions::default();
        assert!(api::get(&ctx, Kind::Namespace, "", "default", &options).is_ok());
        // Registering counts as a heartbeat: the leader holds the node's deadline.
        let node = serde_json::to_value(caravan_schemas::mock::node("n1")).expect("a node");
        api::create(&ctx, Kind::Node, "", node, &Default::default())
            .await
            .expect("the node registers");
        assert!(ctx.heartbeats.is_tracked("n1"));
        tokio::time::timeout(Duration::from_secs(1), leadership.stop())
            .await
            .expect("the duties stop at once");
        // Stopping is losing leadership to the duties: every deadline is forgotten.
        assert!(!ctx.heartbeats.is_tracked("n1"));
        assert!(ctx.broker().is_none());
    }
}
