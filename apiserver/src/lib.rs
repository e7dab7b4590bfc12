//! Caravan's API server: the Kubernetes-style HTTP API over a Raft-replicated object store.
//!
//! `api/` is the service layer (every call on typed arguments, no HTTP); `http/` serves it
//! (routing, parsing, content negotiation, the one mapping from error to `Status`); the
//! in-process client (`local_client.rs`), node liveness (`liveness.rs`) and what follows
//! leadership (`leadership.rs`) call `api/` directly.

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
pub mod procfs;
pub mod raft;
pub mod server;
pub mod store;

pub use context::{ApiConfig, ApiContext};
pub use leadership::Controllers;
pub use local_client::LocalClient;
pub use server::{Server, ServerConfig};
