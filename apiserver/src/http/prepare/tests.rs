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
    assert!(matches!(err, ApiError::Invalid { .. }));
    let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {}});
    match prepare_create(Kind::Namespace, body, None, true, "u", SystemTime::now()).unwrap_err() {
        ApiError::Invalid { causes, .. } => assert_eq!(causes[0].field, "metadata.name"),
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
    assert!(matches!(err, ApiError::BadRequest(_)));
}

#[test]
fn wrong_kind_or_version_is_a_bad_request() {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}});
    assert!(matches!(
        prepare_create(Kind::Namespace, body, None, true, "u", SystemTime::now()),
        Err(ApiError::BadRequest(_))
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
