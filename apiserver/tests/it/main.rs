//! Integration tests of the API server crate, one module per area.

mod api_discovery;
mod api_heartbeat;
mod api_job_versions;
mod api_list;
mod api_logs;
mod api_slow_client;
mod api_watch;
mod api_write;
mod plan_apply;
mod raft_cluster;
mod raft_conformance;
mod raft_crash;
mod raft_store;
mod support;
