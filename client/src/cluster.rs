//! Server membership requests: `GET /v1/agent/members`, `PUT /v1/agent/join`,
//! `PUT /v1/agent/force-leave`, `GET /v1/operator/raft/configuration`,
//! `PUT /v1/operator/raft/transfer-leadership`.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::Value;

use crate::client::{HttpClient, Request};
use crate::error::Result;

fn encode(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

impl HttpClient {
    /// The servers of the answering server's region its gossip knows (of every region with
    /// `wan`): `{"members": [...]}`.
    pub async fn server_members(&self, wan: bool) -> Result<Value> {
        let path = if wan {
            "/v1/agent/members?wan=true"
        } else {
            "/v1/agent/members"
        };
        self.get_path(path).await
    }

    /// Asks the server to gossip with the servers at `addresses` (their gossip addresses).
    pub async fn server_join(&self, addresses: &[String]) -> Result<Value> {
        let query: Vec<String> = addresses
            .iter()
            .map(|a| format!("address={}", encode(a)))
            .collect();
        let req = Request::new(Method::PUT, format!("/v1/agent/join?{}", query.join("&")))
            .accept("application/json");
        self.json(req).await
    }

    /// Removes the server `name` from the Raft membership.
    pub async fn server_force_leave(&self, name: &str) -> Result<Value> {
        let req = Request::new(
            Method::PUT,
            format!("/v1/agent/force-leave?node={}", encode(name)),
        )
        .accept("application/json");
        self.json(req).await
    }

    /// Hands leadership to the server `to` (a name or Raft id), or to any other voter:
    /// `{"leader": {...}}` once it leads.
    pub async fn raft_transfer_leadership(&self, to: Option<&str>) -> Result<Value> {
        let path = match to {
            Some(to) => format!("/v1/operator/raft/transfer-leadership?to={}", encode(to)),
            None => "/v1/operator/raft/transfer-leadership".to_string(),
        };
        let req = Request::new(Method::PUT, path).accept("application/json");
        self.json(req).await
    }

    /// The Raft configuration: `{"servers": [...]}`.
    pub async fn raft_configuration(&self) -> Result<Value> {
        self.get_path("/v1/operator/raft/configuration").await
    }
}
