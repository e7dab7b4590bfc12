//! The versioned object store: objects, write operations and the in-memory state they build.
//!
//! Data flow of a write:
//!
//! ```text
//! service call ──Op──▶ ReplicatedStore::write ──▶ proposer (group commit) ──Batch──▶ openraft
//!                                                                         │ log in redb, fsync
//!                                                                         ▼
//!      WatchCache ◀──events── State::apply(index, ops) ◀── RaftStateMachine::apply
//! ```

pub mod json;
pub mod object;
pub mod pruned;
pub mod state;
pub mod usage;
pub mod watch_cache;

pub use json::ObjectJson;
pub use object::{
    ObjectKey, Op, OpError, OpOutcome, PlanOp, Precondition, StoredObject, VersionPut,
};
pub use state::{Applied, Objects, State};
pub use watch_cache::{Change, EventType, TooOld, WatchCache};
