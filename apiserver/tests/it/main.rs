//! Integration tests of the API server crate, one module per area.

mod raft_conformance;
mod raft_crash;
mod raft_store;
