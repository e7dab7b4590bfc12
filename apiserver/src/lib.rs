//! Caravan's API server: the Kubernetes-style HTTP API over a Raft-replicated object store.
//!
//! `api/` is the service layer (every call on typed arguments, no HTTP); `http/` serves it
//! (routing, parsing, content negotiation, the one mapping from error to `Status`), and only
//! `http/` knows HTTP. The in-process client (`local_client.rs`) and node liveness
//! (`liveness.rs`) call `api/` directly; `leadership.rs` starts and stops what follows Raft
//! leadership (the `default` namespace, liveness, the controllers over the in-process client).

pub mod acl;
pub mod api;
pub mod cluster;
pub mod context;
pub mod heartbeat;
pub mod http;
pub mod job_plan;
pub mod leadership;
pub mod liveness;
pub mod local_client;
pub mod metrics;
pub mod peers;
pub mod procfs;
pub mod raft;
pub mod server;
pub mod store;

pub use context::{ApiConfig, ApiContext, DEFAULT_JOB_VERSIONS_KEPT};
pub use leadership::Controllers;
pub use local_client::LocalClient;
pub use server::{Server, ServerConfig};
