//! The objects of a watch's initial state, handed out a batch at a time.

use std::sync::Arc;

use crate::store::StoredObject;

/// The objects of a watch's initial state.
pub(super) enum InitialObjects {
    /// Found through an index (one node's allocations, one job's): `objects[next..]` are left.
    Listed {
        objects: Vec<Arc<StoredObject>>,
        next: usize,
    },
    /// The kind's map as it was at the watch's start (shared with the state, not copied),
    /// walked in (namespace, name) order from after the last key sent.
    Snapshot {
        objects: crate::store::state::Objects,
        namespace: Option<String>,
        after: Option<(String, String)>,
    },
}

impl InitialObjects {
    /// Hands `send` the next objects until it reports `limit` bytes or more; whether every
    /// object has been handed out.
    pub(super) fn take_while_under(
        &mut self,
        limit: usize,
        mut send: impl FnMut(&Arc<StoredObject>) -> usize,
    ) -> bool {
        match self {
            InitialObjects::Listed { objects, next } => {
                while let Some(object) = objects.get(*next) {
                    *next += 1;
                    if send(object) >= limit {
                        break;
                    }
                }
                *next == objects.len()
            }
            InitialObjects::Snapshot {
                objects,
                namespace,
                after,
            } => {
                use std::ops::Bound;
                let start = match (after.as_ref(), namespace.as_deref()) {
                    (Some(key), _) => Bound::Excluded(key.clone()),
                    (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
                    (None, None) => Bound::Unbounded,
                };
                let mut range = objects
                    .range::<_, (String, String)>((start, Bound::Unbounded))
                    .take_while(|((ns, _), _)| namespace.as_deref().is_none_or(|want| want == ns));
                for (key, object) in range.by_ref() {
                    *after = Some(key.clone());
                    if send(object) >= limit {
                        return false;
                    }
                }
                true
            }
        }
    }
}
