//! Tests of the JobVersions the state keeps with their Job.

use serde_json::{Value, json};

use super::*;
use crate::store::object::{ObjectKey, Op, OpError, Precondition};
use crate::store::{Applied, ObjectJson};

fn namespace(name: &str) -> Op {
    let object = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace",
                        "metadata": {"name": name, "uid": format!("ns-{name}")}});
    Op::Put {
        kind: Kind::Namespace,
        object: ObjectJson::from_value(object),
        expect: Precondition::Absent,
        version: None,
    }
}

fn job_json(ns: &str, job: &str, generation: i64) -> ObjectJson {
    ObjectJson::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": job, "namespace": ns, "uid": format!("u-{job}"), "generation": generation},
        "spec": {"priority": generation},
    }))
}

fn version(ns: &str, job: &str, number: i64, keep: u32) -> Box<VersionPut> {
    let object = ObjectJson::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "JobVersion",
        "metadata": {"name": format!("{job}-v{number}"), "namespace": ns,
                     "uid": format!("u-{job}-v{number}"), "generation": 1,
                     "labels": {"caravan.dev/job": job}},
        "spec": {"jobName": job, "jobUid": format!("u-{job}"), "version": number,
                 "job": {"priority": number + 1}},
    }));
    Box::new(VersionPut { object, keep })
}

/// The put of generation `generation` of `job`, carrying its version.
fn job_put(ns: &str, job: &str, generation: i64, expect: Precondition, keep: u32) -> Op {
    Op::Put {
        kind: Kind::Job,
        object: job_json(ns, job, generation),
        expect,
        version: Some(version(ns, job, generation - 1, keep)),
    }
}

fn key(kind: Kind, ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

/// The names of the versions of `ns`/`job`, by version.
fn kept(state: &State, ns: &str, job: &str) -> Vec<String> {
    let mut versions = state.versions_of(ns, job);
    versions.sort_by_key(|(n, _)| *n);
    versions
        .into_iter()
        .map(|(_, v)| v.key.name.clone())
        .collect()
}

fn events(applied: &Applied) -> Vec<(EventType, Kind, String)> {
    applied
        .events
        .iter()
        .map(|c| (c.event_type, c.object.key.kind, c.object.key.name.clone()))
        .collect()
}

fn with_namespaces() -> State {
    let mut state = State::default();
    let applied = state.apply(1, vec![namespace("default"), namespace("prod")]);
    assert!(applied.results.iter().all(Result::is_ok));
    state
}

/// Marks a stored version stable, as a status write would.
fn make_stable(state: &mut State, index: u64, ns: &str, name: &str) {
    let current = state
        .get(&key(Kind::JobVersion, ns, name))
        .expect("the version");
    let mut value = current.to_value();
    value["status"] = json!({"stable": true});
    let op = Op::Put {
        kind: Kind::JobVersion,
        object: ObjectJson::from_value(value),
        expect: Precondition::ResourceVersion(current.resource_version),
        version: None,
    };
    assert!(state.apply(index, vec![op]).results[0].is_ok());
}

#[test]
fn a_version_is_stored_with_its_job_in_the_same_entry() {
    let mut state = with_namespaces();
    let applied = state.apply(
        2,
        vec![job_put("default", "web", 1, Precondition::Absent, 6)],
    );
    assert!(applied.results[0].is_ok());
    assert_eq!(applied.results.len(), 1, "one result per op");
    assert_eq!(
        events(&applied),
        [
            (EventType::Added, Kind::Job, "web".to_owned()),
            (EventType::Added, Kind::JobVersion, "web-v0".to_owned()),
        ]
    );
    let v0 = state
        .get(&key(Kind::JobVersion, "default", "web-v0"))
        .expect("stored");
    assert_eq!(v0.resource_version, 2);
    assert_eq!(v0.field("spec.jobName"), Some("web"));
    assert_eq!(
        v0.labels.get("caravan.dev/job").map(String::as_str),
        Some("web")
    );
}

#[test]
fn a_job_put_that_fails_stores_no_version() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![job_put("default", "web", 1, Precondition::Absent, 6)],
    );
    let lost_race = job_put("default", "web", 2, Precondition::ResourceVersion(1), 6);
    let exists = job_put("default", "web", 2, Precondition::Absent, 6);
    let no_namespace = job_put("gone", "api", 1, Precondition::Absent, 6);
    let missing = job_put("default", "api", 2, Precondition::Exists, 6);
    let applied = state.apply(3, vec![lost_race, exists, no_namespace, missing]);
    assert_eq!(
        applied.results,
        [
            Err(OpError::Conflict { current: 2 }),
            Err(OpError::AlreadyExists),
            Err(OpError::NamespaceNotFound("gone".to_owned())),
            Err(OpError::NotFound),
        ]
    );
    assert!(applied.events.is_empty());
    assert_eq!(kept(&state, "default", "web"), ["web-v0"]);
    assert_eq!(state.count(Kind::JobVersion), 1);
    // The same put with the right precondition stores its version.
    let applied = state.apply(
        4,
        vec![job_put(
            "default",
            "web",
            2,
            Precondition::ResourceVersion(2),
            6,
        )],
    );
    assert!(applied.results[0].is_ok());
    assert_eq!(kept(&state, "default", "web"), ["web-v0", "web-v1"]);
}

#[test]
fn versions_are_trimmed_to_the_newest_kept_plus_the_newest_stable() {
    let mut state = with_namespaces();
    // Another job whose versions share the name prefix, and the same job in another namespace.
    state.apply(
        2,
        vec![job_put("default", "web-v1", 1, Precondition::Absent, 1)],
    );
    state.apply(3, vec![job_put("prod", "web", 1, Precondition::Absent, 1)]);
    let mut index = 10;
    state.apply(
        index,
        vec![job_put("default", "web", 1, Precondition::Absent, 3)],
    );
    // Versions 0 to 10, version 1 stable: numeric order, not name order ("web-v10" < "web-v2").
    for generation in 2..=11 {
        index += 1;
        let op = job_put("default", "web", generation, Precondition::Exists, 3);
        let applied = state.apply(index, vec![op]);
        assert!(applied.results[0].is_ok());
        if generation == 2 {
            index += 1;
            make_stable(&mut state, index, "default", "web-v1");
        }
    }
    assert_eq!(
        kept(&state, "default", "web"),
        ["web-v1", "web-v8", "web-v9", "web-v10"]
    );
    assert_eq!(kept(&state, "default", "web-v1"), ["web-v1-v0"]);
    assert_eq!(kept(&state, "prod", "web"), ["web-v0"]);
    // A stable version among the newest: the older stable one goes at the next trim, with a
    // deletion event stamped with the entry's index.
    make_stable(&mut state, 30, "default", "web-v9");
    let applied = state.apply(
        31,
        vec![job_put("default", "web", 12, Precondition::Exists, 3)],
    );
    assert_eq!(
        kept(&state, "default", "web"),
        ["web-v9", "web-v10", "web-v11"]
    );
    let deleted: Vec<(String, u64)> = applied
        .events
        .iter()
        .filter(|c| c.event_type == EventType::Deleted)
        .map(|c| (c.object.key.name.clone(), c.object.resource_version))
        .collect();
    assert_eq!(
        deleted,
        [("web-v1".to_owned(), 31), ("web-v8".to_owned(), 31)]
    );
    // `keep` 0 keeps the newest version all the same.
    state.apply(
        32,
        vec![job_put("default", "web", 13, Precondition::Exists, 0)],
    );
    assert_eq!(kept(&state, "default", "web"), ["web-v9", "web-v12"]);
}

#[test]
fn deleting_a_job_deletes_its_versions_only() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![job_put("default", "web-v1", 1, Precondition::Absent, 6)],
    );
    state.apply(3, vec![job_put("prod", "web", 1, Precondition::Absent, 6)]);
    state.apply(
        4,
        vec![job_put("default", "web", 1, Precondition::Absent, 6)],
    );
    state.apply(
        5,
        vec![job_put("default", "web", 2, Precondition::Exists, 6)],
    );
    // A failed delete deletes nothing.
    let stale = Op::Delete {
        key: key(Kind::Job, "default", "web"),
        expect: Precondition::ResourceVersion(4),
    };
    let applied = state.apply(6, vec![stale]);
    assert!(applied.results[0].is_err());
    assert_eq!(kept(&state, "default", "web"), ["web-v0", "web-v1"]);
    let delete = Op::Delete {
        key: key(Kind::Job, "default", "web"),
        expect: Precondition::Exists,
    };
    let applied = state.apply(7, vec![delete]);
    assert_eq!(applied.results.len(), 1);
    assert_eq!(
        events(&applied),
        [
            (EventType::Deleted, Kind::Job, "web".to_owned()),
            (EventType::Deleted, Kind::JobVersion, "web-v0".to_owned()),
            (EventType::Deleted, Kind::JobVersion, "web-v1".to_owned()),
        ]
    );
    assert!(kept(&state, "default", "web").is_empty());
    assert_eq!(kept(&state, "default", "web-v1"), ["web-v1-v0"]);
    assert_eq!(kept(&state, "prod", "web"), ["web-v0"]);
}

#[test]
fn snapshots_carry_job_versions() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![job_put("default", "web", 1, Precondition::Absent, 6)],
    );
    state.apply(
        3,
        vec![job_put("default", "web", 2, Precondition::Exists, 6)],
    );
    make_stable(&mut state, 4, "default", "web-v0");
    let bytes = state.to_snapshot();
    let restored = State::from_snapshot(&bytes).expect("valid snapshot");
    assert_eq!(restored, state);
    assert_eq!(kept(&restored, "default", "web"), ["web-v0", "web-v1"]);
    let v0 = restored
        .get(&key(Kind::JobVersion, "default", "web-v0"))
        .expect("restored");
    assert!(is_stable(&v0));
    assert_eq!(v0.resource_version, 4);
    assert_eq!(restored.to_snapshot(), bytes);
}

#[test]
fn log_entries_without_a_version_still_decode_and_none_is_not_written() {
    let old: Value = json!({"Put": {"kind": "Job", "object": {"metadata": {"name": "web"}},
                                    "expect": "Absent"}});
    let op: Op = serde_json::from_value(old.clone()).expect("an entry from before versions");
    assert!(matches!(op, Op::Put { version: None, .. }));
    assert_eq!(serde_json::to_value(&op).unwrap(), old);
    let with = job_put("default", "web", 1, Precondition::Absent, 6);
    let text = serde_json::to_string(&with).unwrap();
    assert!(text.contains("\"keep\":6"), "{text}");
    assert_eq!(serde_json::from_str::<Op>(&text).unwrap(), with);
}
