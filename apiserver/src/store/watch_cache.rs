//! The watch cache: a window of recent change events per kind, read by every watch, with the
//! events of each indexed field value kept apart for watches that select one (`by_field.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use caravan_schemas::Kind;
use tokio::sync::watch;

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
pub struct Change {
    pub event_type: EventType,
    pub object: Arc<StoredObject>,
    /// The object before the change (`None` for `Added`), so selector watches can tell an object
    /// that left the selection (sent as `DELETED`, as Kubernetes does).
    pub previous: Option<Arc<StoredObject>>,
}

impl Change {
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

mod by_field;

pub use by_field::Field;
use by_field::{ValueRings, ValueWaiters};

/// Recent events per kind, bounded, with a notification of the newest revision.
#[derive(Debug)]
pub struct WatchCache {
    capacity: usize,
    rings: RwLock<Rings>,
    /// The watches waiting on one indexed value.
    waiters: Mutex<ValueWaiters>,
    revision: watch::Sender<u64>,
    /// Per kind, the resourceVersion of its newest event: watchers of one kind are woken by
    /// changes of that kind only.
    kind_revisions: BTreeMap<Kind, watch::Sender<u64>>,
}

/// The rings of every kind and of every indexed value, changed together.
#[derive(Debug)]
struct Rings {
    kinds: BTreeMap<Kind, Ring>,
    values: ValueRings,
}

/// Recent events, oldest first, of one kind or of one indexed value.
#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Change>>,
    /// Every event with a resourceVersion greater than this is still in `events`.
    window_start: u64,
}

impl Ring {
    fn new(window_start: u64) -> Ring {
        Ring {
            events: VecDeque::new(),
            window_start,
        }
    }

    /// Events with a resourceVersion greater than `after`, oldest first, at most `max`;
    /// `Err(TooOld)` when events after `after` may have been dropped from the window.
    fn events_after(&self, after: u64, max: usize) -> Result<Vec<Arc<Change>>, TooOld> {
        if after < self.window_start {
            return Err(TooOld {
                requested: after,
                oldest: self.window_start,
            });
        }
        let first = self
            .events
            .partition_point(|event| event.resource_version() <= after);
        Ok(self.events.range(first..).take(max).cloned().collect())
    }

    /// Drops the oldest event; the window then starts at it.
    fn pop_oldest(&mut self) {
        if let Some(dropped) = self.events.pop_front() {
            self.window_start = self.window_start.max(dropped.resource_version());
        }
    }
}

impl WatchCache {
    /// A cache keeping up to `capacity` events per kind, starting at `revision` (nothing older
    /// than `revision` can be replayed).
    pub fn new(capacity: usize, revision: u64) -> WatchCache {
        WatchCache {
            capacity,
            rings: RwLock::new(Rings {
                kinds: rings_at(revision),
                values: ValueRings::new(revision),
            }),
            waiters: Mutex::default(),
            revision: watch::channel(revision).0,
            kind_revisions: Kind::ALL
                .into_iter()
                .map(|kind| (kind, watch::channel(revision).0))
                .collect(),
        }
    }

    /// Appends the events of one applied log entry and advances the revision to `index`
    /// (even when `events` is empty), waking every waiting watcher.
    pub fn push(&self, index: u64, events: &[Arc<Change>]) {
        if !events.is_empty() {
            let mut touched = Vec::new();
            let mut rings = self.rings.write().unwrap_or_else(PoisonError::into_inner);
            let Rings { kinds, values } = &mut *rings;
            for event in events {
                let ring = kinds.entry(event.kind()).or_insert_with(|| Ring::new(0));
                ring.events.push_back(event.clone());
                while ring.events.len() > self.capacity {
                    ring.pop_oldest();
                }
                for (field, value) in values.push(event) {
                    touched.push((field, value, event.resource_version()));
                }
                values.prune(event.kind(), ring.window_start, self.capacity);
            }
            drop(rings);
            if !touched.is_empty() {
                let waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
                for (field, value, rv) in touched {
                    waiters.wake(field, value, rv);
                }
            }
            for event in events {
                if let Some(sender) = self.kind_revisions.get(&event.kind()) {
                    let rv = event.resource_version();
                    sender.send_if_modified(|newest| {
                        let advanced = rv > *newest;
                        *newest = (*newest).max(rv);
                        advanced
                    });
                }
            }
        }
        self.revision.send_if_modified(|revision| {
            let advanced = index > *revision;
            *revision = (*revision).max(index);
            advanced
        });
    }

    /// Events of `kind` with resourceVersion > `after`, oldest first; at most `max` of them.
    /// `Err(TooOld)` when events after `after` may have been dropped from the window.
    pub fn events_after(
        &self,
        kind: Kind,
        after: u64,
        max: usize,
    ) -> Result<Vec<Arc<Change>>, TooOld> {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        match rings.kinds.get(&kind) {
            Some(ring) => ring.events_after(after, max),
            None => Ok(Vec::new()),
        }
    }

    /// Events with resourceVersion > `after` whose object has, or had before the change, `value`
    /// in the indexed `field`, oldest first; at most `max` of them. `Err(TooOld)` when events
    /// of that value after `after` were dropped (a quiet value's window does not move with its
    /// kind's).
    pub fn events_after_value(
        &self,
        field: Field,
        value: &str,
        after: u64,
        max: usize,
    ) -> Result<Vec<Arc<Change>>, TooOld> {
        let rings = self.rings.read().unwrap_or_else(PoisonError::into_inner);
        rings.values.events_after(field, value, after, max)
    }

    /// The resourceVersion of the newest event of `kind` (or of the last reset): it moves
    /// whenever an object of `kind` changed, after the state holds the change.
    pub fn kind_revision(&self, kind: Kind) -> u64 {
        self.kind_revisions
            .get(&kind)
            .map_or_else(|| self.revision(), |sender| *sender.borrow())
    }

    /// The newest revision pushed.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Resolves once the revision is greater than `after`.
    pub async fn wait_after(&self, after: u64) {
        let mut receiver = self.revision.subscribe();
        // The sender lives in `self`, so the channel cannot close while this borrow lasts.
        let _ = receiver.wait_for(|revision| *revision > after).await;
    }

    /// Resolves once an event of `kind` newer than `after` is in the cache (or the cache was
    /// reset past `after`).
    pub async fn wait_for_kind(&self, kind: Kind, after: u64) {
        let Some(sender) = self.kind_revisions.get(&kind) else {
            return self.wait_after(after).await;
        };
        let mut receiver = sender.subscribe();
        let _ = receiver.wait_for(|newest| *newest > after).await;
    }

    /// Resolves once an event of `value` in the indexed `field` newer than `after` is in the
    /// cache (or the cache was reset past `after`).
    pub async fn wait_for_value(&self, field: Field, value: &str, after: u64) {
        let mut receiver = {
            // Under the waiters' lock, so that a push cannot slip between reading the newest
            // event and subscribing: it wakes the subscription, or the read saw it.
            let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            let newest = self
                .rings
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .values
                .newest(field, value);
            waiters.prune_now_and_then();
            waiters.subscribe(field, value, newest)
        };
        let _ = receiver.wait_for(|newest| *newest > after).await;
    }

    /// Resets the cache after a snapshot install: everything before `revision` is too old.
    pub fn reset(&self, revision: u64) {
        {
            let mut rings = self.rings.write().unwrap_or_else(PoisonError::into_inner);
            rings.kinds = rings_at(revision);
            rings.values = ValueRings::new(revision);
        }
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reset(revision);
        self.revision.send_replace(revision);
        for sender in self.kind_revisions.values() {
            sender.send_replace(revision);
        }
    }
}

/// An empty ring per kind whose window starts at `revision`.
fn rings_at(revision: u64) -> BTreeMap<Kind, Ring> {
    Kind::ALL
        .into_iter()
        .map(|kind| (kind, Ring::new(revision)))
        .collect()
}

#[cfg(test)]
mod tests;
