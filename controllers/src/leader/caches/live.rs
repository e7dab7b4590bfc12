//! The leader's live scheduler state: one [`MemState`] kept current from the caches' events
//! and cloned (O(1), its maps are persistent) for every snapshot, instead of a state rebuilt
//! from every cached object whenever the caches moved.
//!
//! Each cache task applies an event to its typed store first (the reflector), then here, then
//! advances its revision: a snapshot that reads the revisions before cloning the live state
//! holds at least everything up to them.

use std::collections::HashSet;
use std::sync::Arc;

use caravan_schemas::{Allocation, Deployment, Job, Node, ObjectMeta};
use serde_json::Value;

use crate::scheduler::{MemState, State};
use caravan_runtime::object_ref::{name_of, namespace_of};
use caravan_runtime::{Event, Store};

/// Job versions kept per job for telling in-place from destructive updates (Nomad keeps 6).
pub(super) const TRACKED_VERSIONS: usize = 6;

/// How one kind's cache events change the live state.
pub(super) type Apply<T> = fn(&mut MemState, &Store<T>, &Event);

/// A kind the live state holds.
pub(super) trait LiveKind: Sized {
    fn meta(&self) -> &ObjectMeta;
    /// Every object of the kind the state holds.
    fn held(state: &MemState) -> Vec<Arc<Self>>;
    fn upsert(state: &mut MemState, object: Arc<Self>);
    /// Removes `namespace/name` (the namespace as the scheduler has it: `default` when absent).
    fn delete(state: &mut MemState, namespace: &str, name: &str);
}

impl LiveKind for Node {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn held(state: &MemState) -> Vec<Arc<Self>> {
        state.nodes()
    }
    fn upsert(state: &mut MemState, node: Arc<Self>) {
        state.upsert_node(node);
    }
    fn delete(state: &mut MemState, _namespace: &str, name: &str) {
        state.delete_node(name);
    }
}

impl LiveKind for Job {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn held(state: &MemState) -> Vec<Arc<Self>> {
        state.jobs()
    }
    fn upsert(state: &mut MemState, job: Arc<Self>) {
        let (ns, job_name) = (
            job.metadata.namespace().to_owned(),
            job.metadata.name().to_owned(),
        );
        state.upsert_job(job);
        state.trim_job_versions(&ns, &job_name, TRACKED_VERSIONS);
    }
    fn delete(state: &mut MemState, namespace: &str, name: &str) {
        state.delete_job(namespace, name);
    }
}

impl LiveKind for Allocation {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn held(state: &MemState) -> Vec<Arc<Self>> {
        state.allocs()
    }
    fn upsert(state: &mut MemState, alloc: Arc<Self>) {
        state.upsert_alloc(alloc);
    }
    fn delete(state: &mut MemState, namespace: &str, name: &str) {
        state.delete_alloc(namespace, name);
    }
}

impl LiveKind for Deployment {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn held(state: &MemState) -> Vec<Arc<Self>> {
        state.deployments()
    }
    fn upsert(state: &mut MemState, deployment: Arc<Self>) {
        state.upsert_deployment(deployment);
    }
    fn delete(state: &mut MemState, namespace: &str, name: &str) {
        state.delete_deployment(namespace, name);
    }
}

/// The store key of an event's object.
fn store_key(object: &Value) -> Option<(&str, &str)> {
    Some((namespace_of(object), name_of(object)?))
}

/// The scheduler's key of an object: (namespace, `default` when absent; name).
fn scheduler_key<T: LiveKind>(object: &T) -> (String, String) {
    (
        object.meta().namespace().to_owned(),
        object.meta().name().to_owned(),
    )
}

/// Applies one cache event of kind `T`: upserts what was applied (as the store now holds it),
/// removes what was deleted, and after a (re-)list replaces the kind with what was listed.
pub(super) fn apply<T: LiveKind>(state: &mut MemState, store: &Store<T>, event: &Event) {
    match event {
        Event::Apply(object) => {
            if let Some(object) = store_key(object).and_then(|(ns, name)| store.get(ns, name)) {
                T::upsert(state, object);
            }
        }
        Event::Delete(object) => {
            if let Some((ns, name)) = store_key(object) {
                let ns = if ns.is_empty() { "default" } else { ns };
                T::delete(state, ns, name);
            }
        }
        Event::InitDone => {
            let listed = store.state();
            let keys: HashSet<(String, String)> =
                listed.iter().map(|o| scheduler_key(o.as_ref())).collect();
            for gone in T::held(state) {
                let key = scheduler_key(gone.as_ref());
                if !keys.contains(&key) {
                    T::delete(state, &key.0, &key.1);
                }
            }
            for object in listed {
                T::upsert(state, object);
            }
        }
        Event::Init | Event::InitApply(_) | Event::Progress(_) => {}
    }
}

/// Evaluations are not part of the scheduler's state.
pub(super) fn ignore<T>(_: &mut MemState, _: &Store<T>, _: &Event) {}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;
    use serde::Serialize;

    use super::*;
    use caravan_runtime::store;

    fn value<T: Serialize>(object: &T) -> Value {
        serde_json::to_value(object).unwrap()
    }

    /// Applies `events` to a fresh store and to `state` as a cache task does.
    fn feed<T>(state: &mut MemState, apply: Apply<T>, events: &[Event])
    where
        T: serde::de::DeserializeOwned + Send + Sync + 'static,
    {
        let (reader, mut writer) = store::<T>();
        for event in events {
            writer.apply_event(event);
            apply(state, &reader, event);
        }
    }

    fn job_version(version: i64) -> Job {
        let mut job = mock::job("web");
        job.metadata.namespace = Some("default".into());
        job.status.get_or_insert_default().version = version;
        job
    }

    #[test]
    fn jobs_keep_their_recent_versions_and_go_with_their_deletion() {
        let mut state = MemState::new();
        let mut events = vec![Event::Init, Event::InitDone];
        events.extend((0..10).map(|v| Event::Apply(value(&job_version(v)))));
        feed(&mut state, apply::<Job>, &events);
        let current = state.job("default", "web").expect("the job");
        assert_eq!(current.version(), 9);
        assert!(state.job_by_version("default", "web", 4).is_some());
        assert!(state.job_by_version("default", "web", 3).is_none());

        feed(
            &mut state,
            apply::<Job>,
            &[Event::Delete(value(&job_version(9)))],
        );
        assert!(state.job("default", "web").is_none());
        assert!(state.job_by_version("default", "web", 9).is_none());
    }

    #[test]
    fn a_relist_replaces_what_the_kind_holds() {
        let job = mock::job("web");
        let (n1, n2) = (mock::node("n1"), mock::node("n2"));
        let mut a1 = mock::allocation("a1", &job, &n1);
        a1.metadata.namespace = Some("default".into());
        let mut a2 = mock::allocation("a2", &job, &n2);
        a2.metadata.namespace = Some("default".into());
        let mut state = MemState::new();
        let (reader, mut writer) = store::<Allocation>();
        let mut apply = |event: Event| {
            writer.apply_event(&event);
            apply::<Allocation>(&mut state, &reader, &event);
        };
        apply(Event::Init);
        apply(Event::InitApply(value(&a1)));
        apply(Event::InitDone);
        // a1 was deleted while the watch was down; a2 was created.
        apply(Event::Init);
        apply(Event::InitApply(value(&a2)));
        apply(Event::InitDone);
        let names: Vec<String> = state
            .allocs()
            .iter()
            .map(|a| a.metadata.name().into())
            .collect();
        assert_eq!(names, ["a2"]);
        assert!(state.allocs_by_node("n1").is_empty());
        assert_eq!(state.allocs_by_node("n2").len(), 1);
    }
}
