//! The in-memory state built by applying Raft entries: objects by kind/namespace/name, plus
//! indexes (node → allocations, job → allocations and evaluations, node → usage of its live
//! allocations). Pure and deterministic. Plans are applied by `plan`, the JobVersions kept with
//! their Job by `versions`.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use caravan_schemas::Kind;
use imbl::{OrdMap, OrdSet};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::object::{
    INDEXED_FIELDS, ObjectKey, Op, OpError, OpOutcome, Precondition, StoredObject,
};
use super::usage::UsageIndex;
use super::watch_cache::{Change, EventType};

mod key;
mod plan;
mod versions;

use key::{NsName, ns_name};

/// Objects of one kind by (namespace, name). Persistent maps: cloning the state for a snapshot
/// shares them instead of copying every key, so building one never stalls the writes behind it.
pub type Objects = OrdMap<(String, String), Arc<StoredObject>>;

/// A secondary index: (field value, namespace, name), so that one value's entries come out in
/// (namespace, name) order.
type FieldIndex = OrdSet<(String, String, String)>;

/// The result of applying one batch of operations at one log index.
#[derive(Debug, Default)]
pub struct Applied {
    /// One result per operation, in order.
    pub results: Vec<Result<OpOutcome, OpError>>,
    /// The watch events the batch produced, in order.
    pub events: Vec<Arc<Change>>,
}

/// Every object, indexed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct State {
    revision: u64,
    objects: BTreeMap<Kind, Objects>,
    indexes: BTreeMap<(Kind, &'static str), FieldIndex>,
    /// Node → summed usage of its live allocations.
    usage: UsageIndex,
}

impl State {
    /// Applies a batch at log `index`: each op is checked against its precondition and applied
    /// or rejected on its own; later ops see the effects of earlier ones. A put that carries a
    /// JobVersion stores it (and trims the job's versions) only when the put itself succeeds;
    /// deleting a Job deletes its JobVersions (`versions`).
    pub fn apply(&mut self, index: u64, ops: Vec<Op>) -> Applied {
        let mut applied = Applied {
            results: Vec::with_capacity(ops.len()),
            events: Vec::with_capacity(ops.len()),
        };
        for op in ops {
            let result = match op {
                Op::Put {
                    kind,
                    object,
                    expect,
                    version,
                } => {
                    let put = self.put(StoredObject::from_put(kind, &object, index), &expect);
                    let result = recorded(put, &mut applied.events);
                    if result.is_ok()
                        && let Some(version) = version
                    {
                        self.put_version(index, &version, &mut applied.events);
                    }
                    result
                }
                Op::Delete { key, expect } => {
                    let deleted = self.delete(&key, &expect, index);
                    let result = recorded(deleted, &mut applied.events);
                    if result.is_ok() && key.kind == Kind::Job {
                        self.delete_versions(index, &key.namespace, &key.name, &mut applied.events);
                    }
                    result
                }
                Op::Plan(plan) => self
                    .apply_plan(index, plan, &mut applied.events)
                    .map(|result| OpOutcome::Plan(Arc::new(result))),
            };
            applied.results.push(result);
        }
        self.revision = index;
        applied
    }

    /// Records that log `index` was applied without changing objects (blank or membership).
    pub fn advance(&mut self, index: u64) {
        self.revision = self.revision.max(index);
    }

    /// The last applied log index: the revision lists are read at.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn get(&self, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        self.lookup(key).cloned()
    }

    /// Objects of `kind`, in `namespace` or all namespaces, ordered by (namespace, name),
    /// starting strictly after `after` when given (pagination).
    /// Every object of `kind`, as an O(1) copy of the map that shares it with the state: a
    /// reader walks it at its own pace without holding the state's lock.
    pub fn objects_of(&self, kind: Kind) -> Objects {
        self.objects.get(&kind).cloned().unwrap_or_default()
    }

    pub fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        after: Option<(&str, &str)>,
    ) -> Box<dyn Iterator<Item = &Arc<StoredObject>> + '_> {
        let Some(objects) = self.objects.get(&kind) else {
            return Box::new(std::iter::empty());
        };
        let owned = |ns: &str, name: &str| (ns.to_owned(), name.to_owned());
        let start = match (namespace, after) {
            (None, None) => Bound::Unbounded,
            (None, Some((ans, aname))) => Bound::Excluded(owned(ans, aname)),
            (Some(ns), None) => Bound::Included(owned(ns, "")),
            (Some(ns), Some((ans, aname))) => match ans.cmp(ns) {
                std::cmp::Ordering::Less => Bound::Included(owned(ns, "")),
                std::cmp::Ordering::Equal => Bound::Excluded(owned(ns, aname)),
                std::cmp::Ordering::Greater => return Box::new(std::iter::empty()),
            },
        };
        let range = objects
            .range::<_, (String, String)>((start, Bound::Unbounded))
            .map(|(_, object)| object);
        match namespace {
            None => Box::new(range),
            Some(ns) => {
                let ns = ns.to_owned();
                Box::new(range.take_while(move |object| object.key.namespace == ns))
            }
        }
    }

    /// Objects of `kind` whose indexed `field` equals `value` (e.g. allocations with
    /// `spec.nodeName` = n1), ordered by (namespace, name). `None` when the field is not indexed.
    pub fn list_by_field(
        &self,
        kind: Kind,
        field: &str,
        value: &str,
        namespace: Option<&str>,
    ) -> Option<Vec<Arc<StoredObject>>> {
        let &(_, field) = INDEXED_FIELDS
            .iter()
            .find(|(k, f)| *k == kind && *f == field)?;
        let (Some(index), Some(objects)) =
            (self.indexes.get(&(kind, field)), self.objects.get(&kind))
        else {
            return Some(Vec::new());
        };
        let start = (
            value.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            String::new(),
        );
        let found = index
            .range(start..)
            .take_while(|(v, ns, _)| v == value && namespace.is_none_or(|want| want == ns))
            .filter_map(|(_, ns, name)| objects.get(&ns_name(ns, name) as &dyn NsName).cloned())
            .collect();
        Some(found)
    }

    /// Node → summed usage of its live (non-terminal) allocations.
    pub fn usage(&self) -> &UsageIndex {
        &self.usage
    }

    /// Number of objects of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.objects.get(&kind).map_or(0, OrdMap::len)
    }

    /// Serializes the whole state (revision included) for a Raft snapshot:
    /// `{"revision":N,"objects":[{"kind":"Job","json":{…}},…]}`, objects as stored.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let size: usize = self
            .objects
            .values()
            .flat_map(OrdMap::values)
            .map(|object| object.json.len() + 40)
            .sum();
        let mut out = Vec::with_capacity(size + 64);
        // Writing to a Vec cannot fail.
        let _ = self.write_snapshot(&mut out);
        out
    }

    /// Writes what [`State::to_snapshot`] returns to `out`, object by object (a snapshot file is
    /// written this way, without holding a copy of the whole state in memory).
    pub fn write_snapshot(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(format!("{{\"revision\":{},\"objects\":[", self.revision).as_bytes())?;
        let mut first = true;
        for (kind, objects) in &self.objects {
            for object in objects.values() {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                out.write_all(b"{\"kind\":\"")?;
                out.write_all(kind.name().as_bytes())?;
                out.write_all(b"\",\"json\":")?;
                out.write_all(&object.json)?;
                out.write_all(b"}")?;
            }
        }
        out.write_all(b"]}")
    }

    /// Rebuilds a state from `to_snapshot` output.
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, serde_json::Error> {
        #[derive(Deserialize)]
        struct Snapshot<'a> {
            revision: u64,
            #[serde(borrow)]
            objects: Vec<SnapshotObject<'a>>,
        }
        #[derive(Deserialize)]
        struct SnapshotObject<'a> {
            kind: Kind,
            #[serde(borrow)]
            json: &'a RawValue,
        }

        let snapshot: Snapshot<'_> = serde_json::from_slice(bytes)?;
        let mut state = State {
            revision: snapshot.revision,
            ..State::default()
        };
        for object in snapshot.objects {
            let json = Bytes::copy_from_slice(object.json.get().as_bytes());
            state.insert(Arc::new(StoredObject::from_json(object.kind, json)?));
        }
        Ok(state)
    }

    /// Stores `object` if the current one matches `expect`; the event it produces.
    fn put(&mut self, object: StoredObject, expect: &Precondition) -> Result<Change, OpError> {
        let key = &object.key;
        if *expect == Precondition::Absent
            && key.kind.namespaced()
            && self.find(Kind::Namespace, "", &key.namespace).is_none()
        {
            return Err(OpError::NamespaceNotFound(key.namespace.clone()));
        }
        check(self.lookup(key), expect)?;
        let object = Arc::new(object);
        let previous = self.insert(object.clone());
        Ok(Change {
            event_type: if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            object,
            previous,
        })
    }

    /// Removes the object at `key` if it matches `expect`; the event it produces.
    fn delete(
        &mut self,
        key: &ObjectKey,
        expect: &Precondition,
        index: u64,
    ) -> Result<Change, OpError> {
        check(self.lookup(key), expect)?;
        let previous = self.remove(key).ok_or(OpError::NotFound)?;
        Ok(Change {
            event_type: EventType::Deleted,
            object: Arc::new(previous.restamped(index)),
            previous: Some(previous),
        })
    }

    fn lookup(&self, key: &ObjectKey) -> Option<&Arc<StoredObject>> {
        self.find(key.kind, &key.namespace, &key.name)
    }

    /// The object of `kind` at `namespace`/`name` (namespace empty for cluster-scoped kinds).
    fn find(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Arc<StoredObject>> {
        self.objects
            .get(&kind)?
            .get(&ns_name(namespace, name) as &dyn NsName)
    }

    /// Stores `object`, keeping the indexes in step; the object it replaced.
    fn insert(&mut self, object: Arc<StoredObject>) -> Option<Arc<StoredObject>> {
        let key = &object.key;
        let previous = self
            .objects
            .entry(key.kind)
            .or_default()
            .insert((key.namespace.clone(), key.name.clone()), object.clone());
        if let Some(previous) = &previous {
            self.unindex(previous);
        }
        self.index(&object);
        previous
    }

    /// Removes the object at `key`, keeping the indexes in step.
    fn remove(&mut self, key: &ObjectKey) -> Option<Arc<StoredObject>> {
        let objects = self.objects.get_mut(&key.kind)?;
        let removed = objects.remove(&ns_name(&key.namespace, &key.name) as &dyn NsName)?;
        if objects.is_empty() {
            // Keep the maps canonical, so a state equals its snapshot round trip.
            self.objects.remove(&key.kind);
        }
        self.unindex(&removed);
        Some(removed)
    }

    fn index(&mut self, object: &StoredObject) {
        if let Some(usage) = &object.usage {
            self.usage.add(usage);
        }
        for (kind, field) in INDEXED_FIELDS {
            if let Some(entry) = index_entry(object, kind, field) {
                self.indexes.entry((kind, field)).or_default().insert(entry);
            }
        }
    }

    fn unindex(&mut self, object: &StoredObject) {
        if let Some(usage) = &object.usage {
            self.usage.remove(usage);
        }
        for (kind, field) in INDEXED_FIELDS {
            if let Some(entry) = index_entry(object, kind, field)
                && let Some(index) = self.indexes.get_mut(&(kind, field))
            {
                index.remove(&entry);
                if index.is_empty() {
                    self.indexes.remove(&(kind, field));
                }
            }
        }
    }
}

/// The outcome of a put or delete, its event appended to `events`.
fn recorded(
    change: Result<Change, OpError>,
    events: &mut Vec<Arc<Change>>,
) -> Result<OpOutcome, OpError> {
    change.map(|change| {
        let object = change.object.clone();
        events.push(Arc::new(change));
        OpOutcome::Object(object)
    })
}

/// The entry `object` has in the index of (`kind`, `field`), if any.
fn index_entry(object: &StoredObject, kind: Kind, field: &str) -> Option<(String, String, String)> {
    if object.key.kind != kind {
        return None;
    }
    let value = object.field(field)?;
    Some((
        value.to_owned(),
        object.key.namespace.clone(),
        object.key.name.clone(),
    ))
}

/// Checks a precondition against the current object.
fn check(current: Option<&Arc<StoredObject>>, expect: &Precondition) -> Result<(), OpError> {
    match (expect, current) {
        (Precondition::Absent, None) => Ok(()),
        (Precondition::Absent, Some(_)) => Err(OpError::AlreadyExists),
        (Precondition::ResourceVersion(_) | Precondition::Exists, None) => Err(OpError::NotFound),
        (Precondition::ResourceVersion(rv), Some(current)) if current.resource_version != *rv => {
            Err(OpError::Conflict {
                current: current.resource_version,
            })
        }
        (Precondition::ResourceVersion(_) | Precondition::Exists, Some(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
