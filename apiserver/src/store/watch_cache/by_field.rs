//! The watch cache's index of events by the value of an indexed field (`spec.nodeName` and
//! `spec.jobName` of allocations, `spec.jobName` of evaluations): a watch that selects one
//! value reads, and is woken by, that value's events only. Five thousand node agents each
//! watching `spec.nodeName=<self>` then cost O(events) per commit instead of O(watchers ×
//! events).
//!
//! ```text
//! push(event) ──▶ kind ring (every event of the kind)
//!             └─▶ value ring of every indexed value the object has, or had before the change
//!                 (so a watch sees an object leave its selection) ──▶ wake that value's watches
//! ```
//!
//! Value rings are pruned to the kind ring's window every `capacity` events of the kind; the
//! window check (410 `Expired`) is always the kind ring's.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use caravan_schemas::Kind;
use tokio::sync::watch;

use super::WatchEvent;
use crate::store::state::INDEXED_FIELDS;

/// An indexed field of a kind, as in [`INDEXED_FIELDS`].
pub type Field = (Kind, &'static str);

/// Events per indexed value, and the notifiers of the watches waiting on a value.
#[derive(Debug, Default)]
pub(super) struct ValueRings {
    rings: HashMap<Field, HashMap<String, VecDeque<Arc<WatchEvent>>>>,
    /// Events pushed per kind since the last prune.
    since_prune: HashMap<Kind, usize>,
}

/// The values of `field` the event's object has now or had before it.
fn values_of<'e>(event: &'e WatchEvent, field: &'static str) -> impl Iterator<Item = &'e str> {
    let now = field_value(&event.object.fields, field);
    let before = event
        .previous
        .as_deref()
        .and_then(|p| field_value(&p.fields, field))
        .filter(|before| Some(*before) != now);
    now.into_iter().chain(before)
}

fn field_value<'o>(fields: &'o [(&'static str, String)], field: &str) -> Option<&'o str> {
    fields
        .iter()
        .find(|(path, _)| *path == field)
        .map(|(_, value)| value.as_str())
}

impl ValueRings {
    /// Appends `event` to the rings of its indexed values; returns the (field, value) pairs it
    /// touched, for waking their watches.
    pub(super) fn push(&mut self, event: &Arc<WatchEvent>) -> Vec<(Field, String)> {
        let kind = event.kind();
        let mut touched = Vec::new();
        for field in INDEXED_FIELDS.iter().filter(|(k, _)| *k == kind) {
            let rings = self.rings.entry(*field).or_default();
            for value in values_of(event, field.1) {
                match rings.get_mut(value) {
                    Some(ring) => ring.push_back(event.clone()),
                    None => {
                        rings.insert(value.to_owned(), VecDeque::from([event.clone()]));
                    }
                }
                touched.push((*field, value.to_owned()));
            }
        }
        *self.since_prune.entry(kind).or_default() += 1;
        touched
    }

    /// Drops events at or before `window_start` from the value rings of `kind`, and the rings
    /// left empty, once `capacity` events of the kind were pushed since the last prune.
    pub(super) fn prune(&mut self, kind: Kind, window_start: u64, capacity: usize) {
        let pushed = self.since_prune.entry(kind).or_default();
        if *pushed < capacity.max(1) {
            return;
        }
        *pushed = 0;
        for (_, rings) in self.rings.iter_mut().filter(|((k, _), _)| *k == kind) {
            rings.retain(|_, ring| {
                while ring
                    .front()
                    .is_some_and(|e| e.resource_version() <= window_start)
                {
                    ring.pop_front();
                }
                !ring.is_empty()
            });
        }
    }

    /// Events of `value` with a resourceVersion greater than `after`, oldest first.
    pub(super) fn events_after(
        &self,
        field: Field,
        value: &str,
        after: u64,
    ) -> Vec<Arc<WatchEvent>> {
        let Some(ring) = self.rings.get(&field).and_then(|rings| rings.get(value)) else {
            return Vec::new();
        };
        let first = ring.partition_point(|e| e.resource_version() <= after);
        ring.range(first..).cloned().collect()
    }

    /// The resourceVersion of the newest event of `value` (0 when none is kept).
    pub(super) fn newest(&self, field: Field, value: &str) -> u64 {
        self.rings
            .get(&field)
            .and_then(|rings| rings.get(value))
            .and_then(|ring| ring.back())
            .map_or(0, |e| e.resource_version())
    }

    /// Forgets every event (after a snapshot install).
    pub(super) fn clear(&mut self) {
        self.rings.clear();
        self.since_prune.clear();
    }
}

/// The notifiers of the watches waiting on one value: the newest resourceVersion of its events.
#[derive(Debug, Default)]
pub(super) struct ValueWaiters {
    senders: HashMap<(Field, String), watch::Sender<u64>>,
    /// Subscriptions since the last prune.
    since_prune: usize,
}

impl ValueWaiters {
    /// A receiver of `value`'s newest revision, starting at `newest`.
    pub(super) fn subscribe(
        &mut self,
        field: Field,
        value: &str,
        newest: u64,
    ) -> watch::Receiver<u64> {
        let sender = self
            .senders
            .entry((field, value.to_owned()))
            .or_insert_with(|| watch::channel(newest).0);
        sender.send_if_modified(|known| {
            let advanced = newest > *known;
            *known = (*known).max(newest);
            advanced
        });
        sender.subscribe()
    }

    /// Wakes the watches of `value` (if any) with revision `rv`.
    pub(super) fn wake(&self, field: Field, value: String, rv: u64) {
        if let Some(sender) = self.senders.get(&(field, value)) {
            sender.send_if_modified(|known| {
                let advanced = rv > *known;
                *known = (*known).max(rv);
                advanced
            });
        }
    }

    /// Forgets the values no watch waits on, once in a while: every time as many
    /// subscriptions were made as there are values.
    pub(super) fn prune_now_and_then(&mut self) {
        self.since_prune += 1;
        if self.since_prune >= self.senders.len().max(1024) {
            self.since_prune = 0;
            self.senders.retain(|_, sender| sender.receiver_count() > 0);
        }
    }

    /// Wakes every waiting watch with `revision` (after a snapshot install).
    pub(super) fn reset(&self, revision: u64) {
        for sender in self.senders.values() {
            sender.send_replace(revision);
        }
    }
}

#[cfg(test)]
mod tests;
