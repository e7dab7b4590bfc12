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
//! Value rings are pruned to the kind ring's window every `capacity` events of the kind, and
//! each keeps its own window: a watch of a quiet value stays valid (no 410 `Expired`) however
//! far the kind's window moved, as long as nothing of its value was dropped.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_schemas::Kind;
use tokio::sync::watch;

use super::{Change, Ring, TooOld};
use crate::store::object::INDEXED_FIELDS;

/// An indexed field of a kind, as in `INDEXED_FIELDS`.
pub type Field = (Kind, &'static str);

/// Events per indexed value.
#[derive(Debug)]
pub(super) struct ValueRings {
    fields: HashMap<Field, FieldRings>,
    /// Where a field's window starts before any of its rings was forgotten.
    initial_floor: u64,
    /// Events pushed per kind since the last prune.
    since_prune: HashMap<Kind, usize>,
}

/// The rings of one field's values.
#[derive(Debug)]
struct FieldRings {
    /// Each value's recent events, with its own window: a quiet value's watch stays valid
    /// however far the kind's window moved, since nothing of its value was dropped.
    values: HashMap<String, Ring>,
    /// The newest event dropped with a forgotten ring: a value without a ring may have had
    /// events up to here.
    floor: u64,
}

/// The values of `field` the event's object has now or had before it.
fn values_of<'e>(event: &'e Change, field: &'static str) -> impl Iterator<Item = &'e str> {
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
    /// No events; nothing before `revision` can be replayed.
    pub(super) fn new(revision: u64) -> ValueRings {
        ValueRings {
            fields: HashMap::new(),
            initial_floor: revision,
            since_prune: HashMap::new(),
        }
    }

    /// Appends `event` to the rings of its indexed values; returns the (field, value) pairs it
    /// touched, for waking their watches.
    pub(super) fn push(&mut self, event: &Arc<Change>) -> Vec<(Field, String)> {
        let kind = event.kind();
        let mut touched = Vec::new();
        for field in INDEXED_FIELDS.iter().filter(|(k, _)| *k == kind) {
            let rings = self.fields.entry(*field).or_insert_with(|| FieldRings {
                values: HashMap::new(),
                floor: self.initial_floor,
            });
            for value in values_of(event, field.1) {
                match rings.values.get_mut(value) {
                    Some(ring) => ring.events.push_back(event.clone()),
                    None => {
                        let mut ring = Ring::new(rings.floor);
                        ring.events.push_back(event.clone());
                        rings.values.insert(value.to_owned(), ring);
                    }
                }
                touched.push((*field, value.to_owned()));
            }
        }
        *self.since_prune.entry(kind).or_default() += 1;
        touched
    }

    /// Once `capacity` events of `kind` were pushed since the last prune: drops the events at
    /// or before `window_start` (the kind's window) from its value rings, and, past `capacity`
    /// rings of a field, forgets the empty rings whose window is oldest.
    pub(super) fn prune(&mut self, kind: Kind, window_start: u64, capacity: usize) {
        let capacity = capacity.max(1);
        let pushed = self.since_prune.entry(kind).or_default();
        if *pushed < capacity {
            return;
        }
        *pushed = 0;
        for (_, rings) in self.fields.iter_mut().filter(|((k, _), _)| *k == kind) {
            for ring in rings.values.values_mut() {
                while ring
                    .events
                    .front()
                    .is_some_and(|e| e.resource_version() <= window_start)
                {
                    ring.pop_oldest();
                }
            }
            if rings.values.len() > capacity {
                let mut empty: Vec<(u64, String)> = rings
                    .values
                    .iter()
                    .filter(|(_, ring)| ring.events.is_empty())
                    .map(|(value, ring)| (ring.window_start, value.clone()))
                    .collect();
                empty.sort_unstable();
                let excess = rings.values.len() - capacity / 2;
                for (window, value) in empty.into_iter().take(excess) {
                    rings.floor = rings.floor.max(window);
                    rings.values.remove(&value);
                }
            }
        }
    }

    /// Events of `value` with a resourceVersion greater than `after`, oldest first, at most
    /// `max`; `Err(TooOld)` when events of `value` after `after` were dropped.
    pub(super) fn events_after(
        &self,
        field: Field,
        value: &str,
        after: u64,
        max: usize,
    ) -> Result<Vec<Arc<Change>>, TooOld> {
        let Some(rings) = self.fields.get(&field) else {
            return Ring::new(self.initial_floor).events_after(after, max);
        };
        match rings.values.get(value) {
            Some(ring) => ring.events_after(after, max),
            // A value without a ring may have had events up to the field's floor.
            None => Ring::new(rings.floor).events_after(after, max),
        }
    }

    /// The resourceVersion of the newest event of `value` (0 when none is kept).
    pub(super) fn newest(&self, field: Field, value: &str) -> u64 {
        self.fields
            .get(&field)
            .and_then(|rings| rings.values.get(value))
            .and_then(|ring| ring.events.back())
            .map_or(0, |e| e.resource_version())
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
