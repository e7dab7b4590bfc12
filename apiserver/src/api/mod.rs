//! The service layer: every call the API serves, on typed arguments (kind, namespace, name,
//! options), answering typed values or an [`Error`]. Nothing here knows HTTP — no request,
//! path, query string, header or `Status` — so the HTTP handlers (`http/`), the in-process
//! client (`local_client.rs`, which the leader's controllers read and write through) and the
//! node liveness loop (`liveness.rs`) all come through the same admission, preparation, store
//! writes and watch code.
//!
//! ```text
//! create / replace / patch ─▶ prepare (pure) + schemas::admit ─▶ ReplicatedStore::write(Op)
//! delete ─▶ preconditions, finalizers ───────────────────────────▶ ReplicatedStore::write(Op)
//! get / list ─▶ State (selectors, indexes, continue tokens)
//! watch ─▶ WatchSpec ─▶ frames(…, Framer): batches read from the WatchCache as the caller polls
//! submit_plan ─▶ prepare_plan ─▶ ReplicatedStore::write_outcome(Op::Plan)
//! heartbeat ─▶ HeartbeatTracker (+ a status write when the node was not ready)
//! collect_garbage ─▶ the leader's GcTrigger
//! ```
//!
//! Object calls take the namespace as `&str`, ignored (and `""` by convention) for
//! cluster-scoped kinds; list and watch take `Option<&str>`, `None` for every namespace.

mod delete;
mod error;
mod heartbeat;
pub mod job_version;
mod options;
mod outcome;
pub mod plan;
pub mod prepare;
mod read;
pub mod scope;
pub mod selector;
mod system;
#[cfg(test)]
pub(crate) mod testing;
pub mod watch;
mod write;

pub use caravan_runtime::Subresource;
pub use delete::delete;
pub use error::Error;
pub use heartbeat::heartbeat;
pub use options::{
    DeleteOptions, FieldValidation, GetOptions, ListOptions, Preconditions, WatchOptions,
    WriteOptions,
};
pub use outcome::{Outcome, Payload};
pub use plan::submit_plan;
pub use read::{Page, get, list, wait_for_revision};
pub use scope::{Access, Guard, Scope};
pub use selector::Selectors;
pub use system::collect_garbage;
pub use watch::{Framer, WatchSpec, frames};
pub(crate) use write::create_by_server;
pub use write::{Patch, create, patch, replace};
