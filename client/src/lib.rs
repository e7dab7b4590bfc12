//! Typed HTTP client for the Caravan API: CRUD, patch, apply, list, Table output and watch. For a
//! re-listing watcher, use `caravan_runtime::watcher` over this client (it
//! implements `caravan_runtime::Client`).
//!
//! ```no_run
//! # async fn demo() -> caravan_client::Result<()> {
//! use caravan_client::{HttpClient, ListParams};
//! use caravan_schemas::Kind;
//!
//! let client = HttpClient::new("http://127.0.0.1:4646")?;
//! let jobs = client.api(Kind::Job, Some("default"));
//! for job in jobs.list(&ListParams::default()).await?.items {
//!     println!("{}", job["metadata"]["name"]);
//! }
//! # Ok(()) }
//! ```

mod acl;
mod api;
mod broker;
mod client;
mod cluster;
pub mod controller;
mod error;
pub mod lines;
mod node;
mod params;
mod system;
pub mod table;
#[cfg(test)]
mod test_support;
pub mod watch;

pub use api::{Api, Deleted, WireList};
pub use client::{DEFAULT_ADDRESS, HttpClient};
pub use error::{Error, Result};
pub use node::LogParams;
pub use params::{DeleteParams, IncludeObject, ListParams, PatchParams, PostParams, WatchParams};
pub use table::{Table, TableColumnDefinition, TableRow};
pub use watch::WireEvent;
