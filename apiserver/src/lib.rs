//! Caravan's API server: the Kubernetes-style HTTP API over a Raft-replicated object store.

pub mod cluster;
pub mod heartbeat;
pub mod http;
pub mod plan;
pub mod procfs;
pub mod raft;
pub mod server;
pub mod store;

pub use server::{Server, ServerConfig};
