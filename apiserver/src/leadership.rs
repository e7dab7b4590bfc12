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

use anyhow::Context;
use caravan_controllers::broker::EvalBroker;
use caravan_controllers::leader::LeaderConfig;
use caravan_runtime::Client;
use caravan_runtime::eval_source::EvalSource;
use caravan_schemas::Kind;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cluster::secret::ClusterSecret;
use crate::context::ApiContext;
use crate::liveness;
use crate::local_client::LocalClient;
use crate::raft::{ReplicatedStore, WriteError};
use crate::store::{ObjectJson, ObjectKey, Op, OpError, Precondition};

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
        _workers: Task,
    },
}

/// The task that follows leadership; dropping (or stopping) it stops every duty it started.
pub struct Leadership {
    _task: Task,
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
        Ok(Leadership {
            _task: Task(tokio::spawn(follow(ctx, controllers))),
        })
    }

    /// Stops every duty.
    pub fn stop(self) {
        drop(self);
    }
}

/// Switches duties as Raft's metrics show leadership move, until the Raft core stops.
async fn follow(ctx: Arc<ApiContext>, controllers: Option<Controllers>) {
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
                revoke(&ctx, liveness, running);
                Role::None
            }
            Role::Following { .. } if leading => Role::None,
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
                        Role::Following { _workers: workers }
                    }
                    None => Role::None,
                },
                None => Role::None,
            },
            other => other,
        };
        if metrics.changed().await.is_err() {
            break;
        }
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

/// What stops when this server loses leadership.
fn revoke(ctx: &ApiContext, liveness: Task, controllers: Option<Task>) {
    if let Some(controllers) = controllers {
        tracing::info!("this server no longer leads: stopping the leader's controllers");
        ctx.set_broker(None);
        drop(controllers);
    }
    drop(liveness);
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
        })
        .await
    {
        Ok(_) | Err(WriteError::Rejected(OpError::AlreadyExists)) => Ok(()),
        Err(e) => Err(e).context("failed to create the default namespace"),
    }
}
