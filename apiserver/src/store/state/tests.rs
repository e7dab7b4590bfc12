//! Tests of the in-memory state.

use serde_json::{Value, json};

use super::*;
use crate::store::ObjectJson;

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": name, "uid": format!("ns-{name}")}})
}

fn alloc(ns: &str, name: &str, node: &str, job: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Allocation",
        "metadata": {"name": name, "namespace": ns, "uid": format!("u-{name}"), "labels": {"app": job}},
        "spec": {"nodeName": node, "jobName": job, "group": "g", "desiredStatus": "run"},
        "status": {"clientStatus": "pending"}
    })
}

fn eval(ns: &str, name: &str, job: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Evaluation",
        "metadata": {"name": name, "namespace": ns, "uid": format!("u-{name}")},
        "spec": {"jobName": job},
        "status": {"status": "pending"}
    })
}

fn create(kind: Kind, object: Value) -> Op {
    Op::Put {
        kind,
        object: ObjectJson::from_value(object),
        expect: Precondition::Absent,
        version: None,
    }
}

fn put(kind: Kind, object: Value, expect: Precondition) -> Op {
    Op::Put {
        kind,
        object: ObjectJson::from_value(object),
        expect,
        version: None,
    }
}

fn delete(kind: Kind, ns: &str, name: &str, expect: Precondition) -> Op {
    Op::Delete {
        key: key(kind, ns, name),
        expect,
    }
}

fn key(kind: Kind, ns: &str, name: &str) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: ns.to_owned(),
        name: name.to_owned(),
    }
}

/// A state with namespaces `default` and `prod` created at index 1.
fn with_namespaces() -> State {
    let mut state = State::default();
    let applied = state.apply(
        1,
        vec![
            create(Kind::Namespace, namespace("default")),
            create(Kind::Namespace, namespace("prod")),
        ],
    );
    assert!(applied.results.iter().all(Result::is_ok));
    state
}

fn names<'a>(objects: impl IntoIterator<Item = &'a Arc<StoredObject>>) -> Vec<String> {
    objects
        .into_iter()
        .map(|o| format!("{}/{}", o.key.namespace, o.key.name))
        .collect()
}

fn by_field(state: &State, kind: Kind, field: &str, value: &str, ns: Option<&str>) -> Vec<String> {
    names(
        &state
            .list_by_field(kind, field, value, ns)
            .expect("indexed field"),
    )
}

#[test]
fn from_value_extracts_key_labels_fields_and_stamps_resource_version() {
    let object = StoredObject::from_value(Kind::Allocation, alloc("default", "a1", "n1", "web"), 7);
    assert_eq!(object.key, key(Kind::Allocation, "default", "a1"));
    assert_eq!(object.uid, "u-a1");
    assert_eq!(object.resource_version, 7);
    assert_eq!(object.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(object.field("spec.nodeName"), Some("n1"));
    assert_eq!(object.field("spec.jobName"), Some("web"));
    assert_eq!(object.field("status.clientStatus"), Some("pending"));
    assert_eq!(object.field("metadata.namespace"), Some("default"));
    assert_eq!(object.field("spec.missing"), None);
    assert_eq!(object.to_value()["metadata"]["resourceVersion"], "7");

    let node = json!({"kind": "Node", "metadata": {"name": "n1", "namespace": "ignored"}, "spec": {"datacenter": 3}});
    let node = StoredObject::from_value(Kind::Node, node, 2);
    assert_eq!(
        node.key.namespace, "",
        "cluster-scoped kinds have no namespace"
    );
    assert_eq!(node.field("spec.datacenter"), None, "only string values");
}

#[test]
fn create_update_delete_emit_events_with_previous() {
    let mut state = with_namespaces();
    let created = state.apply(
        2,
        vec![create(
            Kind::Allocation,
            alloc("default", "a1", "n1", "web"),
        )],
    );
    let a1 = created.results[0].clone().expect("created");
    assert_eq!(a1.object().map(|o| o.resource_version), Some(2));
    assert_eq!(created.events[0].event_type, EventType::Added);
    assert!(created.events[0].previous.is_none());

    let updated = state.apply(
        3,
        vec![put(
            Kind::Allocation,
            alloc("default", "a1", "n2", "web"),
            Precondition::ResourceVersion(2),
        )],
    );
    assert_eq!(
        updated.results[0]
            .as_ref()
            .map(|o| o.object().map(|o| o.resource_version)),
        Ok(Some(3))
    );
    let event = &updated.events[0];
    assert_eq!(event.event_type, EventType::Modified);
    assert_eq!(event.previous.as_ref().map(|p| p.resource_version), Some(2));

    let deleted = state.apply(
        4,
        vec![delete(
            Kind::Allocation,
            "default",
            "a1",
            Precondition::Exists,
        )],
    );
    let event = &deleted.events[0];
    assert_eq!(event.event_type, EventType::Deleted);
    assert_eq!(event.resource_version(), 4);
    assert_eq!(event.object.to_value()["metadata"]["resourceVersion"], "4");
    assert_eq!(
        event.object.field("spec.nodeName"),
        Some("n2"),
        "the last state"
    );
    assert_eq!(event.previous.as_ref().map(|p| p.resource_version), Some(3));
    assert_eq!(state.get(&key(Kind::Allocation, "default", "a1")), None);
    assert_eq!(state.revision(), 4);
}

#[test]
fn preconditions_reject_without_changing_state_or_emitting_events() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![create(
            Kind::Allocation,
            alloc("default", "a1", "n1", "web"),
        )],
    );
    let before = state.clone();
    let a = |node: &str| alloc("default", "a1", node, "web");
    let applied = state.apply(
        3,
        vec![
            create(Kind::Allocation, a("n9")),
            put(Kind::Allocation, a("n9"), Precondition::ResourceVersion(1)),
            put(
                Kind::Allocation,
                alloc("default", "zz", "n9", "web"),
                Precondition::ResourceVersion(2),
            ),
            put(
                Kind::Allocation,
                alloc("default", "zz", "n9", "web"),
                Precondition::Exists,
            ),
            delete(
                Kind::Allocation,
                "default",
                "a1",
                Precondition::ResourceVersion(9),
            ),
            delete(Kind::Allocation, "default", "zz", Precondition::Exists),
            delete(
                Kind::Allocation,
                "default",
                "zz",
                Precondition::ResourceVersion(2),
            ),
            delete(Kind::Allocation, "default", "a1", Precondition::Absent),
            create(Kind::Allocation, alloc("missing", "a2", "n1", "web")),
        ],
    );
    assert_eq!(
        applied
            .results
            .into_iter()
            .map(|r| r.err())
            .collect::<Vec<_>>(),
        vec![
            Some(OpError::AlreadyExists),
            Some(OpError::Conflict { current: 2 }),
            Some(OpError::NotFound),
            Some(OpError::NotFound),
            Some(OpError::Conflict { current: 2 }),
            Some(OpError::NotFound),
            Some(OpError::NotFound),
            Some(OpError::AlreadyExists),
            Some(OpError::NamespaceNotFound("missing".to_owned())),
        ]
    );
    assert!(applied.events.is_empty());
    assert_eq!(state.revision(), 3);
    state.revision = before.revision;
    assert_eq!(state, before);
}

#[test]
fn namespaced_create_requires_the_namespace_cluster_scoped_does_not() {
    let mut state = State::default();
    let node = json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {"datacenter": "dc1"}});
    let applied = state.apply(
        1,
        vec![
            create(Kind::Allocation, alloc("default", "a1", "n1", "web")),
            create(Kind::Node, node),
        ],
    );
    assert_eq!(
        applied.results[0],
        Err(OpError::NamespaceNotFound("default".to_owned()))
    );
    assert!(applied.results[1].is_ok());
    assert_eq!(state.count(Kind::Node), 1);
    assert_eq!(state.count(Kind::Allocation), 0);
}

#[test]
fn later_ops_in_a_batch_see_earlier_ones() {
    let mut state = State::default();
    let applied = state.apply(
        5,
        vec![
            create(Kind::Namespace, namespace("default")),
            create(Kind::Allocation, alloc("default", "a1", "n1", "web")),
            put(
                Kind::Allocation,
                alloc("default", "a1", "n2", "web"),
                Precondition::ResourceVersion(5),
            ),
            delete(
                Kind::Allocation,
                "default",
                "a1",
                Precondition::ResourceVersion(5),
            ),
        ],
    );
    assert!(
        applied.results.iter().all(Result::is_ok),
        "{:?}",
        applied.results
    );
    let types: Vec<_> = applied.events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::Added,
            EventType::Added,
            EventType::Modified,
            EventType::Deleted
        ]
    );
    assert!(applied.events.iter().all(|e| e.resource_version() == 5));
    assert_eq!(state.count(Kind::Allocation), 0);
}

#[test]
fn indexes_follow_updates_and_deletes() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![
            create(Kind::Allocation, alloc("prod", "a1", "n1", "web")),
            create(Kind::Allocation, alloc("default", "a2", "n1", "web")),
            create(Kind::Allocation, alloc("default", "a3", "n2", "db")),
            create(Kind::Evaluation, eval("default", "e1", "web")),
            create(Kind::Evaluation, eval("prod", "e2", "web")),
        ],
    );
    let node = "spec.nodeName";
    let job = "spec.jobName";
    assert_eq!(
        by_field(&state, Kind::Allocation, node, "n1", None),
        ["default/a2", "prod/a1"]
    );
    assert_eq!(
        by_field(&state, Kind::Allocation, node, "n1", Some("prod")),
        ["prod/a1"]
    );
    assert_eq!(
        by_field(&state, Kind::Allocation, job, "web", Some("default")),
        ["default/a2"]
    );
    assert_eq!(
        by_field(&state, Kind::Evaluation, job, "web", None),
        ["default/e1", "prod/e2"]
    );

    state.apply(
        3,
        vec![put(
            Kind::Allocation,
            alloc("default", "a2", "n2", "web"),
            Precondition::Exists,
        )],
    );
    assert_eq!(
        by_field(&state, Kind::Allocation, node, "n1", None),
        ["prod/a1"]
    );
    assert_eq!(
        by_field(&state, Kind::Allocation, node, "n2", None),
        ["default/a2", "default/a3"]
    );
    let moved = state
        .list_by_field(Kind::Allocation, node, "n2", None)
        .expect("indexed");
    assert_eq!(
        moved[0].resource_version, 3,
        "the index serves the current object"
    );

    state.apply(
        4,
        vec![
            delete(Kind::Allocation, "default", "a3", Precondition::Exists),
            delete(Kind::Evaluation, "prod", "e2", Precondition::Exists),
        ],
    );
    assert_eq!(
        by_field(&state, Kind::Allocation, node, "n2", None),
        ["default/a2"]
    );
    assert!(by_field(&state, Kind::Allocation, job, "db", None).is_empty());
    assert_eq!(
        by_field(&state, Kind::Evaluation, job, "web", None),
        ["default/e1"]
    );
    assert!(by_field(&state, Kind::Evaluation, job, "web", Some("zzz")).is_empty());
    assert!(by_field(&state, Kind::Allocation, node, "n1", Some("default")).is_empty());
}

#[test]
fn list_by_field_is_none_for_unindexed_fields() {
    let state = with_namespaces();
    assert!(
        state
            .list_by_field(Kind::Allocation, "status.clientStatus", "x", None)
            .is_none()
    );
    assert!(
        state
            .list_by_field(Kind::Evaluation, "spec.nodeName", "x", None)
            .is_none()
    );
    assert!(
        state
            .list_by_field(Kind::Job, "spec.jobName", "x", None)
            .is_none()
    );
    assert_eq!(
        state.list_by_field(Kind::Evaluation, "spec.jobName", "x", None),
        Some(Vec::new()),
        "indexed but empty"
    );
}

#[test]
fn list_orders_by_namespace_then_name_and_paginates() {
    let mut state = with_namespaces();
    state.apply(1, vec![create(Kind::Namespace, namespace("zeta"))]);
    let ops = [
        ("prod", "b"),
        ("default", "c"),
        ("prod", "a"),
        ("default", "a"),
        ("zeta", "a"),
    ]
    .into_iter()
    .map(|(ns, name)| create(Kind::Allocation, alloc(ns, name, "n1", "web")))
    .collect();
    state.apply(2, ops);
    let list = |ns, after| names(state.list(Kind::Allocation, ns, after));
    assert_eq!(
        list(None, None),
        ["default/a", "default/c", "prod/a", "prod/b", "zeta/a"]
    );
    assert_eq!(
        list(None, Some(("default", "c"))),
        ["prod/a", "prod/b", "zeta/a"]
    );
    assert_eq!(
        list(None, Some(("default", "b"))),
        ["default/c", "prod/a", "prod/b", "zeta/a"]
    );
    assert_eq!(list(Some("prod"), None), ["prod/a", "prod/b"]);
    assert_eq!(list(Some("prod"), Some(("prod", "a"))), ["prod/b"]);
    assert_eq!(
        list(Some("prod"), Some(("default", "z"))),
        ["prod/a", "prod/b"]
    );
    assert!(list(Some("prod"), Some(("zeta", ""))).is_empty());
    assert!(list(Some("nope"), None).is_empty());
    assert!(names(state.list(Kind::Job, None, None)).is_empty());
    assert_eq!(
        names(state.list(Kind::Namespace, None, None)),
        ["/default", "/prod", "/zeta"]
    );
    assert_eq!(state.count(Kind::Allocation), 5);
    assert_eq!(state.count(Kind::Job), 0);
}

#[test]
fn snapshot_round_trip_restores_objects_versions_and_indexes() {
    let mut state = with_namespaces();
    state.apply(
        2,
        vec![
            create(Kind::Allocation, alloc("default", "a1", "n1", "web")),
            create(Kind::Allocation, alloc("prod", "a2", "n1", "web")),
            create(Kind::Evaluation, eval("default", "e1", "web")),
        ],
    );
    state.apply(
        3,
        vec![put(
            Kind::Allocation,
            alloc("default", "a1", "n2", "web"),
            Precondition::Exists,
        )],
    );
    state.advance(9);

    let bytes = state.to_snapshot();
    let restored = State::from_snapshot(&bytes).expect("valid snapshot");
    assert_eq!(restored, state);
    assert_eq!(restored.revision(), 9);
    let a1 = restored
        .get(&key(Kind::Allocation, "default", "a1"))
        .expect("a1");
    assert_eq!(a1.resource_version, 3);
    assert_eq!(
        by_field(&restored, Kind::Allocation, "spec.nodeName", "n1", None),
        ["prod/a2"]
    );
    assert_eq!(restored.to_snapshot(), bytes);

    let empty = State::from_snapshot(&State::default().to_snapshot()).expect("empty snapshot");
    assert_eq!(empty, State::default());
    assert!(State::from_snapshot(b"{\"revision\":1}").is_err());
    assert!(
        State::from_snapshot(
            br#"{"revision":1,"objects":[{"kind":"Job","json":{"metadata":{"name":"x"}}}]}"#
        )
        .is_err()
    );
}
