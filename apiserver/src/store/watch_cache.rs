//! The watch cache: a window of recent change events per kind, read by every watch.
//!
//! SKELETON: the signatures are the contract; bodies are filled in.

use std::sync::Arc;

use caravan_schemas::Kind;

use super::object::StoredObject;

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change. For `Deleted` the object is the last state with `resource_version` set to the
/// index of the deletion.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub event_type: EventType,
    pub object: Arc<StoredObject>,
    /// The object before the change (`None` for `Added`), so selector watches can tell an object
    /// that left the selection (sent as `DELETED`, as Kubernetes does).
    pub previous: Option<Arc<StoredObject>>,
}

impl WatchEvent {
    pub fn resource_version(&self) -> u64 {
        self.object.resource_version
    }
    pub fn kind(&self) -> Kind {
        self.object.key.kind
    }
}

/// The requested revision is older than the window: the client must re-list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too old resource version: {requested} (oldest available {oldest})")]
pub struct TooOld {
    pub requested: u64,
    pub oldest: u64,
}

/// Recent events per kind, bounded, with a notification of the newest revision.
#[derive(Debug)]
pub struct WatchCache {
    capacity: usize,
}

impl WatchCache {
    /// A cache keeping up to `capacity` events per kind, starting at `revision` (nothing older
    /// than `revision` can be replayed).
    pub fn new(capacity: usize, revision: u64) -> WatchCache {
        let _ = revision;
        WatchCache { capacity }
    }

    /// Appends the events of one applied log entry and advances the revision to `index`
    /// (even when `events` is empty), waking every waiting watcher.
    pub fn push(&self, index: u64, events: &[Arc<WatchEvent>]) {
        let _ = (index, events, self.capacity);
        unimplemented!()
    }

    /// Events of `kind` with resourceVersion > `after`, oldest first; at most `max` of them.
    /// `Err(TooOld)` when events after `after` may have been dropped from the window.
    pub fn events_after(
        &self,
        kind: Kind,
        after: u64,
        max: usize,
    ) -> Result<Vec<Arc<WatchEvent>>, TooOld> {
        let _ = (kind, after, max);
        unimplemented!()
    }

    /// The newest revision pushed.
    pub fn revision(&self) -> u64 {
        unimplemented!()
    }

    /// Resolves once the revision is greater than `after`.
    pub async fn wait_after(&self, after: u64) {
        let _ = after;
        unimplemented!()
    }

    /// Resets the cache after a snapshot install: everything before `revision` is too old.
    pub fn reset(&self, revision: u64) {
        let _ = revision;
        unimplemented!()
    }
}
