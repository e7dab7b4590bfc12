//! The leader's live scheduler state: one [`MemState`] kept current from the caches' events
//! and cloned (O(1), its maps are persistent) for every snapshot, instead of a state rebuilt
//! from every cached object whenever the caches moved.
//!
//! Each cache task applies an event to its typed store first (the reflector), then here, then
//! advances its revision: a snapshot that reads the revisions before cloning the live state
//! holds at least everything up to them.

use std::collections::HashSet;

use caravan_schemas::{Allocation, Job, Node};
use serde_json::Value;

use crate::runtime::object_ref::{name_of, namespace_of};
use crate::runtime::{Event, Store};
use crate::scheduler::util::{name, namespace};
use crate::scheduler::{MemState, State};

/// Job versions kept per job for telling in-place from destructive updates (Nomad keeps 6).
pub(super) const TRACKED_VERSIONS: usize = 6;

/// How one kind's cache events change the live state.
pub(super) type Apply<T> = fn(&mut MemState, &Store<T>, &Event);

/// The store key and the scheduler's namespace of an event's object.
fn keys(object: &Value) -> Option<(&str, &str)> {
    Some((namespace_of(object), name_of(object)?))
}

/// The scheduler's namespace for a store namespace (`default` when absent).
fn scheduler_namespace(store_namespace: &str) -> &str {
    if store_namespace.is_empty() {
        "default"
    } else {
        store_namespace
    }
}

pub(super) fn nodes(state: &mut MemState, store: &Store<Node>, event: &Event) {
    match event {
        Event::Apply(object) => {
            if let Some(node) = keys(object).and_then(|(ns, name)| store.get(ns, name)) {
                state.upsert_node(node);
            }
        }
        Event::Delete(object) => {
            if let Some(name) = name_of(object) {
                state.delete_node(name);
            }
        }
        Event::InitDone => {
            let listed = store.state();
            let names: HashSet<String> = listed.iter().map(|n| name(&n.metadata).into()).collect();
            for gone in state.nodes() {
                if !names.contains(name(&gone.metadata)) {
                    state.delete_node(name(&gone.metadata));
                }
            }
            for node in listed {
                state.upsert_node(node);
            }
        }
        Event::Init | Event::InitApply(_) | Event::Progress(_) => {}
    }
}

fn upsert_job(state: &mut MemState, job: std::sync::Arc<Job>) {
    let (ns, job_name) = (
        namespace(&job.metadata).to_owned(),
        name(&job.metadata).to_owned(),
    );
    state.upsert_job(job);
    state.trim_job_versions(&ns, &job_name, TRACKED_VERSIONS);
}

pub(super) fn jobs(state: &mut MemState, store: &Store<Job>, event: &Event) {
    match event {
        Event::Apply(object) => {
            if let Some(job) = keys(object).and_then(|(ns, name)| store.get(ns, name)) {
                upsert_job(state, job);
            }
        }
        Event::Delete(object) => {
            if let Some((ns, name)) = keys(object) {
                state.delete_job(scheduler_namespace(ns), name);
            }
        }
        Event::InitDone => {
            let listed = store.state();
            let keys: HashSet<(String, String)> = listed
                .iter()
                .map(|j| (namespace(&j.metadata).into(), name(&j.metadata).into()))
                .collect();
            for gone in state.jobs() {
                let key = (
                    namespace(&gone.metadata).to_owned(),
                    name(&gone.metadata).to_owned(),
                );
                if !keys.contains(&key) {
                    state.delete_job(&key.0, &key.1);
                }
            }
            for job in listed {
                upsert_job(state, job);
            }
        }
        Event::Init | Event::InitApply(_) | Event::Progress(_) => {}
    }
}

pub(super) fn allocations(state: &mut MemState, store: &Store<Allocation>, event: &Event) {
    match event {
        Event::Apply(object) => {
            if let Some(alloc) = keys(object).and_then(|(ns, name)| store.get(ns, name)) {
                state.upsert_alloc(alloc);
            }
        }
        Event::Delete(object) => {
            if let Some((ns, name)) = keys(object) {
                state.delete_alloc(scheduler_namespace(ns), name);
            }
        }
        Event::InitDone => {
            let listed = store.state();
            let keys: HashSet<(String, String)> = listed
                .iter()
                .map(|a| (namespace(&a.metadata).into(), name(&a.metadata).into()))
                .collect();
            for gone in state.allocs() {
                let key = (
                    namespace(&gone.metadata).to_owned(),
                    name(&gone.metadata).to_owned(),
                );
                if !keys.contains(&key) {
                    state.delete_alloc(&key.0, &key.1);
                }
            }
            for alloc in listed {
                state.upsert_alloc(alloc);
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
    use crate::runtime::store;

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
        feed(&mut state, jobs, &events);
        let current = state.job("default", "web").expect("the job");
        assert_eq!(crate::scheduler::util::job_version(&current), 9);
        assert!(state.job_by_version("default", "web", 4).is_some());
        assert!(state.job_by_version("default", "web", 3).is_none());

        feed(&mut state, jobs, &[Event::Delete(value(&job_version(9)))]);
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
            allocations(&mut state, &reader, &event);
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
            .map(|a| name(&a.metadata).into())
            .collect();
        assert_eq!(names, ["a2"]);
        assert!(state.allocs_by_node("n1").is_empty());
        assert_eq!(state.allocs_by_node("n2").len(), 1);
    }
}
