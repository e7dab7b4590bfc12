//! Server-to-server Raft transport: JSON over HTTP POST to `/internal/raft/{append,vote,snapshot}`,
//! `/internal/raft/campaign` (start an election now: a leadership transfer's last step), and
//! the leader's Raft configuration for a leaving server ([`raft_members`]).
//!
//! Both ends live here (the reqwest client and the axum routes) so that TLS, authentication
//! and compression can be added in one place. Snapshots use openraft's chunked
//! `install_snapshot` transfer.

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft, RaftNetwork, RaftNetworkFactory};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::type_config::{NodeId, TypeConfig};
use crate::cluster::secret::{ClusterSecret, SECRET_HEADER};

/// Route prefix of the Raft RPCs.
pub const RAFT_PATH: &str = "/internal/raft";

/// Largest RPC body accepted (append batches and snapshot chunks).
const MAX_BODY: usize = 512 * 1024 * 1024;

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

/// The highest Raft term a peer may name. Terms grow by one an election, so no real cluster
/// comes near it; openraft adds one to the term it holds when it campaigns, and a term at
/// `u64::MAX` would wrap and stop its core for good.
pub const MAX_TERM: u64 = u64::MAX >> 1;

/// Builds connections to peers over HTTP.
#[derive(Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
}

impl HttpNetwork {
    /// A network whose every request carries `secret`.
    pub fn new(secret: &ClusterSecret) -> Result<HttpNetwork, reqwest::Error> {
        // reqwest is built without a bundled crypto provider and refuses to build a client
        // (even for plain http) until one is installed; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(secret.expose())
            .expect("a secret is visible ASCII");
        value.set_sensitive(true);
        headers.insert(SECRET_HEADER, value);
        // With ACLs on, a server's own secret is its management token (for the operator
        // paths it asks, e.g. the Raft configuration).
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", secret.expose()))
                .expect("a secret is visible ASCII");
        bearer.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .default_headers(headers);
        let client = crate::peers::client_builder(builder, crate::peers::To::Server).build()?;
        Ok(HttpNetwork { client })
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> HttpConnection {
        HttpConnection {
            client: self.client.clone(),
            target,
            base: format!("{}{RAFT_PATH}", crate::peers::url(&node.addr)),
        }
    }
}

/// A connection to one peer.
pub struct HttpConnection {
    client: reqwest::Client,
    target: NodeId,
    base: String,
}

impl HttpConnection {
    async fn call<Req, Resp, E>(
        &self,
        rpc: &str,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}/{rpc}", self.base);
        let resp = self
            .client
            .post(&url)
            .timeout(option.hard_ttl())
            .json(req)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        let resp = resp
            .error_for_status()
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let result: Result<Resp, RaftError<NodeId, E>> = resp
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for HttpConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.call("vote", &rpc, &option).await
    }
}

/// The axum routes answering peers' RPCs with the local Raft node.
pub fn router<S: Clone + Send + Sync + 'static>(raft: Raft<TypeConfig>) -> Router<S> {
    Router::new()
        .route(&format!("{RAFT_PATH}/append"), post(append))
        .route(&format!("{RAFT_PATH}/vote"), post(vote))
        .route(&format!("{RAFT_PATH}/snapshot"), post(snapshot))
        .route(&format!("{RAFT_PATH}/campaign"), post(campaign))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(raft)
}

/// Starts an election on this server at once (the target's side of a leadership transfer).
async fn campaign(State(raft): State<Raft<TypeConfig>>) -> Json<Result<(), String>> {
    Json(raft.trigger().elect().await.map_err(|e| e.to_string()))
}

/// Asks the server at `addr` to start an election at once (the leader's side of a leadership
/// transfer).
pub async fn request_campaign(addr: &str, secret: &ClusterSecret) -> anyhow::Result<()> {
    use anyhow::Context;
    let network = HttpNetwork::new(secret).context("failed to build the HTTP client")?;
    let url = format!("{}{RAFT_PATH}/campaign", crate::peers::url(addr));
    let answer: Result<(), String> = network
        .client
        .post(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("asking {url} to campaign"))?
        .json()
        .await
        .with_context(|| format!("reading {url}'s answer"))?;
    answer.map_err(|e| anyhow::anyhow!("{addr} cannot campaign: {e}"))
}

/// The Raft ids in the configuration of the server at `addr` (the leader), as it reports them
/// at `/v1/operator/raft/configuration` (`http/cluster.rs`): a leaving server's check that it
/// is out (a removed follower may never receive the entry that removed it).
pub async fn raft_members(addr: &str, secret: &ClusterSecret) -> anyhow::Result<Vec<NodeId>> {
    use anyhow::Context;
    let network = HttpNetwork::new(secret).context("failed to build the HTTP client")?;
    let url = format!("{}/v1/operator/raft/configuration", crate::peers::url(addr));
    let configuration: serde_json::Value = network
        .client
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("asking {url} for the Raft configuration"))?
        .error_for_status()?
        .json()
        .await
        .with_context(|| format!("reading {url}'s answer"))?;
    Ok(configuration["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|peer| peer["raftId"].as_u64())
        .collect())
}

/// An RPC's JSON body. Unlike axum's `Json`, it does not track the path of every value it
/// decodes (for an error message no peer reads): on a follower that tracking around each
/// appended entry cost as much as the decoding itself.
struct Rpc<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Rpc<T> {
    type Rejection = (axum::http::StatusCode, String);

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| (e.status(), e.body_text()))?;
        serde_json::from_slice(&body).map(Rpc).map_err(|e| {
            (
                axum::http::StatusCode::BAD_REQUEST,
                format!("invalid RPC body: {e}"),
            )
        })
    }
}

/// A refused RPC: 403 with the reason.
type Refused = (axum::http::StatusCode, String);

/// Refuses an RPC from `sender` at `vote` unless the sender is another member of this
/// server's (`me`) Raft configuration (any member, voter or learner; a server not in a cluster
/// yet takes RPCs from whoever adds it) and its term is one a real cluster can reach. Pure.
pub fn admit_peer(
    me: NodeId,
    members: &[NodeId],
    sender: NodeId,
    vote: &openraft::Vote<NodeId>,
) -> Result<(), String> {
    if sender == me {
        return Err(format!(
            "server {sender} is this server: it sends itself no RPC"
        ));
    }
    let term = vote.leader_id().term;
    if term > MAX_TERM {
        return Err(format!(
            "term {term} of server {sender} is past the largest accepted ({MAX_TERM})"
        ));
    }
    if !members.is_empty() && !members.contains(&sender) {
        return Err(format!(
            "server {sender} is not a member of this cluster's Raft configuration"
        ));
    }
    Ok(())
}

fn check_peer(raft: &Raft<TypeConfig>, vote: &openraft::Vote<NodeId>) -> Result<(), Refused> {
    let sender = vote.leader_id().voted_for().unwrap_or_default();
    let (me, members): (NodeId, Vec<NodeId>) = {
        let metrics = raft.metrics();
        let metrics = metrics.borrow();
        let members = metrics.membership_config.membership().nodes();
        (metrics.id, members.map(|(id, _)| *id).collect())
    };
    admit_peer(me, &members, sender, vote).map_err(|reason| {
        tracing::warn!(sender, %reason, "refused a Raft RPC");
        (axum::http::StatusCode::FORBIDDEN, reason)
    })
}

type Answer<T, E = openraft::error::Infallible> =
    Result<Json<Result<T, RaftError<NodeId, E>>>, Refused>;

async fn append(
    State(raft): State<Raft<TypeConfig>>,
    Rpc(req): Rpc<AppendEntriesRequest<TypeConfig>>,
) -> Answer<AppendEntriesResponse<NodeId>> {
    check_peer(&raft, &req.vote)?;
    Ok(Json(raft.append_entries(req).await))
}

async fn vote(
    State(raft): State<Raft<TypeConfig>>,
    Rpc(req): Rpc<VoteRequest<NodeId>>,
) -> Answer<VoteResponse<NodeId>> {
    check_peer(&raft, &req.vote)?;
    Ok(Json(raft.vote(req).await))
}

async fn snapshot(
    State(raft): State<Raft<TypeConfig>>,
    Rpc(req): Rpc<InstallSnapshotRequest<TypeConfig>>,
) -> Answer<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
    check_peer(&raft, &req.vote)?;
    Ok(Json(raft.install_snapshot(req).await))
}

#[cfg(test)]
mod tests {
    use openraft::Vote;

    use super::*;

    #[test]
    fn peers_outside_the_membership_are_refused() {
        let vote = Vote::new(3, 7);
        assert!(admit_peer(1, &[1, 7], 7, &vote).is_ok());
        let err = admit_peer(1, &[1, 2], 7, &vote).unwrap_err();
        assert!(err.contains("not a member"), "{err}");
        // A server not in a cluster yet is added by a leader it does not know.
        assert!(admit_peer(1, &[], 7, &vote).is_ok());
        // Nobody speaks for this server.
        let err = admit_peer(7, &[7], 7, &vote).unwrap_err();
        assert!(err.contains("this server"), "{err}");
    }

    #[test]
    fn terms_that_would_wrap_are_refused() {
        let vote = Vote::new(u64::MAX, 7);
        let err = admit_peer(1, &[1, 7], 7, &vote).unwrap_err();
        assert!(err.contains("past the largest"), "{err}");
        assert!(admit_peer(1, &[], 7, &vote).is_err());
        assert!(admit_peer(1, &[1, 7], 7, &Vote::new(MAX_TERM, 7)).is_ok());
    }
}
