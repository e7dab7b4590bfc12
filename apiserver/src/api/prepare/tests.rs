use std::time::SystemTime;

use serde_json::json;

use super::*;

fn job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Namespace",
        "metadata": {"name": name},
        "spec": {"description": "x"}
    })
}

#[test]
fn create_sets_server_fields_and_drops_client_ones() {
    let mut body = job("team-a");
    body["metadata"]["uid"] = json!("client-chosen");
    body["metadata"]["generation"] = json!(7);
    let prepared = prepare_create(
        Kind::Namespace,
        body,
        None,
        true,
        "u-1",
        SystemTime::UNIX_EPOCH,
    )
    .unwrap();
    let v: Value = serde_json::from_str(prepared.json.get()).unwrap();
    assert_eq!(v["metadata"]["uid"], "u-1");
    assert_eq!(v["metadata"]["generation"], 1);
    assert_eq!(v["metadata"]["creationTimestamp"], "1970-01-01T00:00:00Z");
}

#[test]
fn create_refuses_a_resource_version_and_a_missing_name() {
    let mut body = job("a");
    body["metadata"]["resourceVersion"] = json!("5");
    let err =
        prepare_create(Kind::Namespace, body, None, true, "u", SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }));
    let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {}});
    match prepare_create(Kind::Namespace, body, None, true, "u", SystemTime::now()).unwrap_err() {
        Error::Invalid { causes, .. } => assert_eq!(causes[0].field, "metadata.name"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn generate_name_makes_a_name() {
    let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"generateName": "tmp-"}});
    let prepared = prepare_create(
        Kind::Namespace,
        body,
        None,
        true,
        "0a1b2c3d",
        SystemTime::now(),
    )
    .unwrap();
    let v: Value = serde_json::from_str(prepared.json.get()).unwrap();
    let name = name_of(&v);
    assert_eq!(name, prepared.name);
    assert!(name.starts_with("tmp-") && name.len() == 9, "{name}");
}

#[test]
fn namespace_mismatch_is_a_bad_request() {
    let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Job", "metadata": {"name": "x", "namespace": "a"}, "spec": {}});
    let err = prepare_create(Kind::Job, body, Some("b"), true, "u", SystemTime::now()).unwrap_err();
    assert!(matches!(err, Error::BadRequest(_)));
}

#[test]
fn wrong_kind_or_version_is_a_bad_request() {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    assert!(matches!(
        prepare_create(Kind::Namespace, body, None, true, "u", SystemTime::now()),
        Err(Error::BadRequest(_))
    ));
}

#[test]
fn spec_changes_bump_generation_and_status_writes_do_not() {
    let current = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "u", "generation": 3, "resourceVersion": "9", "creationTimestamp": "t"},
        "spec": {"datacenter": "dc1"},
        "status": {"status": "ready"}
    });
    let mut desired = current.clone();
    desired["spec"]["datacenter"] = json!("dc2");
    desired["status"]["status"] = json!("down");
    desired["metadata"]["uid"] = json!("forged");
    let (next, _) = prepare_update(Kind::Node, &current, desired.clone(), false, true).unwrap();
    assert_eq!(next["metadata"]["generation"], 4);
    assert_eq!(next["metadata"]["uid"], "u");
    assert_eq!(
        next["status"]["status"], "ready",
        "main resource writes keep status"
    );
    let (next, _) = prepare_update(Kind::Node, &current, desired, true, true).unwrap();
    assert_eq!(next["metadata"]["generation"], 3);
    assert_eq!(next["spec"]["datacenter"], "dc1", "status writes keep spec");
    assert_eq!(next["status"]["status"], "down");
}

#[test]
fn finalizers_cannot_be_added_during_deletion() {
    let current = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Namespace",
        "metadata": {"name": "n", "deletionTimestamp": "t", "finalizers": ["a"]}
    });
    let mut desired = current.clone();
    desired["metadata"]["finalizers"] = json!(["a", "b"]);
    assert!(prepare_update(Kind::Namespace, &current, desired, false, true).is_err());
    let mut desired = current.clone();
    desired["metadata"]["finalizers"] = json!([]);
    let (next, _) = prepare_update(Kind::Namespace, &current, desired, false, true).unwrap();
    assert!(ready_to_remove(&next));
}

/// A stored object as the store keeps it: created through admission, stamped with `rv`.
fn stored(kind: Kind, body: Value, rv: u64) -> crate::store::StoredObject {
    let prepared = prepare_create(kind, body, Some("default"), true, "u-1", SystemTime::now())
        .unwrap_or_else(|e| panic!("{e:?}"));
    crate::store::StoredObject::from_put(kind, &prepared.json, rv)
}

/// Both update paths on the same input: the generic one ([`prepare_update`], then what
/// `commit_update` compares) and the typed one ([`prepare_replacement`]).
fn both_paths(kind: Kind, current: &crate::store::StoredObject, desired: Value) -> (Value, bool) {
    let text = std::str::from_utf8(&current.json).unwrap();
    let current_value = current.to_value();
    let replacement = prepare_replacement(kind, text, desired.clone(), true)
        .expect("the stored object decodes")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let (mut next, _) = prepare_update(kind, &current_value, desired, false, true).unwrap();
    next["metadata"]["resourceVersion"] = json!(current.resource_version.to_string());
    let unchanged = next == current_value;
    assert_eq!(replacement.unchanged, unchanged, "unchanged");
    assert_eq!(replacement.removed, ready_to_remove(&next), "removed");
    let typed: Value = serde_json::from_str(replacement.json.get()).unwrap();
    assert!(typed["metadata"].get("resourceVersion").is_none());
    let meta = next["metadata"].as_object_mut().unwrap();
    meta.remove("resourceVersion");
    // The typed form leaves out empty metadata lists and maps, as a create does.
    meta.retain(|_, v| v.as_array().is_none_or(|a| !a.is_empty()));
    meta.retain(|_, v| v.as_object().is_none_or(|o| !o.is_empty()));
    assert_eq!(typed, next, "the typed replacement is the generic one");
    (typed, unchanged)
}

#[test]
fn a_typed_replacement_is_what_the_generic_update_writes() {
    let body = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"datacenters": ["dc1"], "groups": [{"name": "g", "count": 2,
            "tasks": [{"name": "t", "driver": "raw_exec", "config": {"command": "/bin/true"}}]}]}
    });
    let current = stored(Kind::Job, body.clone(), 7);
    let mut put = body.clone();
    put["metadata"]["resourceVersion"] = json!("7");

    // The body as first written, defaults left out: nothing changes.
    let (next, unchanged) = both_paths(Kind::Job, &current, put.clone());
    assert!(unchanged);
    assert_eq!(next["metadata"]["generation"], 1);

    // A spec change bumps generation; forged server fields and a status are ignored.
    let mut changed = put.clone();
    changed["spec"]["groups"][0]["count"] = json!(3);
    changed["metadata"]["uid"] = json!("forged");
    changed["metadata"]["creationTimestamp"] = json!("2001-01-01T00:00:00Z");
    changed["status"] = json!({"status": "dead"});
    let (next, unchanged) = both_paths(Kind::Job, &current, changed);
    assert!(!unchanged);
    assert_eq!(next["metadata"]["generation"], 2);
    assert_eq!(next["metadata"]["uid"], "u-1");
    assert_eq!(next["spec"]["groups"][0]["count"], 3);

    // A metadata change keeps the generation.
    let mut labelled = put;
    labelled["metadata"]["labels"]["tier"] = json!("front");
    let (next, unchanged) = both_paths(Kind::Job, &current, labelled);
    assert!(!unchanged);
    assert_eq!(next["metadata"]["generation"], 1);
    assert_eq!(next["metadata"]["labels"]["tier"], "front");
}

#[test]
fn a_typed_replacement_keeps_status_and_refuses_bad_specs() {
    let node = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {"datacenter": "dc1"}
    });
    let mut current = stored(Kind::Node, node.clone(), 4);
    // Give the stored node a status, as its status subresource would.
    let mut with_status = current.to_value();
    with_status["status"] = json!({"status": "ready"});
    with_status["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    current =
        crate::store::StoredObject::from_put(Kind::Node, &ObjectJson::from_value(with_status), 5);
    let mut put = node;
    put["metadata"]["resourceVersion"] = json!("5");
    put["spec"]["datacenter"] = json!("dc2");
    put["status"] = json!({"status": "down"});
    let (next, _) = both_paths(Kind::Node, &current, put.clone());
    assert_eq!(next["status"]["status"], "ready");
    assert_eq!(next["spec"]["datacenter"], "dc2");

    put["spec"]["datacenter"] = json!(5);
    let text = std::str::from_utf8(&current.json).unwrap();
    match prepare_replacement(Kind::Node, text, put, true) {
        Ok(Err(Error::Invalid { causes, .. })) => {
            assert_eq!(causes[0].field, "spec.datacenter");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_typed_replacement_honours_finalizers_during_deletion() {
    let ns = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Namespace",
        "metadata": {"name": "n", "finalizers": ["a"]}
    });
    let created = stored(Kind::Namespace, ns.clone(), 3);
    let deleting = mark_deleting(created.to_value(), SystemTime::UNIX_EPOCH);
    let mut deleting = deleting;
    deleting["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let current =
        crate::store::StoredObject::from_put(Kind::Namespace, &ObjectJson::from_value(deleting), 4);
    let text = std::str::from_utf8(&current.json).unwrap();

    let mut added = ns.clone();
    added["metadata"]["finalizers"] = json!(["a", "b"]);
    match prepare_replacement(Kind::Namespace, text, added, true) {
        Ok(Err(Error::Invalid { causes, .. })) => {
            assert_eq!(causes[0].field, "metadata.finalizers");
            assert!(
                causes[0].message.contains("[\"b\"]"),
                "{}",
                causes[0].message
            );
        }
        other => panic!("{other:?}"),
    }

    let mut released = ns;
    released["metadata"]["finalizers"] = json!([]);
    let (next, _) = both_paths(Kind::Namespace, &current, released);
    assert!(next["metadata"]["deletionTimestamp"].is_string());
}

mod status;
