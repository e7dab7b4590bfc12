use caravan_schemas::{Kind, mock};
use serde_json::{Value, json};

use super::*;
use crate::store::StoredObject;

/// The object stored through the spliced path and through the value path: equal in every
/// field, the JSON equal as a value.
fn both_ways(kind: Kind, value: Value) -> (StoredObject, StoredObject) {
    let spliced = StoredObject::from_put(kind, &ObjectJson::serialize(&value).unwrap(), 42);
    let parsed = StoredObject::from_value(kind, value, 42);
    (spliced, parsed)
}

fn assert_same(kind: Kind, value: Value) -> StoredObject {
    let (spliced, parsed) = both_ways(kind, value);
    let spliced_value: Value = serde_json::from_slice(&spliced.json).expect("valid JSON");
    assert_eq!(spliced_value, parsed.to_value());
    assert_eq!(
        StoredObject {
            json: parsed.json.clone(),
            ..spliced.clone()
        },
        parsed
    );
    spliced
}

#[test]
fn splicing_stores_what_reserializing_stores() {
    let job = mock::job("web");
    let alloc = mock::allocation("web.api[0]-1", &job, &mock::node("n\u{e9}ud-7"));
    let mut alloc = serde_json::to_value(alloc).unwrap();
    alloc["metadata"]["labels"] = json!({"app": "web", "tier": "a \"quoted\" \\ value", "n": 3});
    alloc["spec"]["nested"] = json!({"nodeName": "not this one"});
    alloc["status"] = json!({"clientStatus": "running", "taskStates": {}});
    let stored = assert_same(Kind::Allocation, alloc);
    assert!(
        stored.usage.is_some(),
        "a live placed allocation holds resources"
    );
    assert_eq!(stored.field("spec.nodeName"), Some("n\u{e9}ud-7"));
    assert_eq!(stored.field("status.clientStatus"), Some("running"));
    assert_eq!(
        stored.labels.get("tier").map(String::as_str),
        Some("a \"quoted\" \\ value")
    );
    assert!(
        !stored.labels.contains_key("n"),
        "only string labels are indexed"
    );

    for kind in Kind::ALL {
        assert!(readable(kind), "{kind:?} has a field the view cannot read");
        assert_same(
            kind,
            json!({"apiVersion": "caravan.dev/v1", "kind": kind.name(),
                   "metadata": {"name": "x", "namespace": "ns"},
                   "spec": {"type": "batch", "jobName": 5}, "status": "odd"}),
        );
    }
}

#[test]
fn the_resource_version_goes_first_in_metadata() {
    let put =
        ObjectJson::serialize(&json!({"kind": "Namespace", "metadata": {"name": "a"}})).unwrap();
    let stored = StoredObject::from_put(Kind::Namespace, &put, 7);
    assert_eq!(
        std::str::from_utf8(&stored.json).unwrap(),
        r#"{"kind":"Namespace","metadata":{"resourceVersion":"7","name":"a"}}"#
    );
    let empty = ObjectJson::serialize(&json!({"metadata": {}})).unwrap();
    let stored = StoredObject::from_put(Kind::Namespace, &empty, 8);
    assert_eq!(
        std::str::from_utf8(&stored.json).unwrap(),
        r#"{"metadata":{"resourceVersion":"8"}}"#
    );
    assert_eq!(stored.json.len(), stored.json.as_ref().len());
}

#[test]
fn objects_the_splice_cannot_stamp_take_the_value_path() {
    let cases = [
        // A resourceVersion already there is replaced, not duplicated.
        json!({"metadata": {"name": "a", "resourceVersion": "3"}}),
        json!({"metadata": {"name": "a", "resourceVersion": null}}),
        // No metadata, or metadata that is not an object.
        json!({"spec": {}}),
        json!({"metadata": "a"}),
    ];
    for value in cases {
        let json = ObjectJson::serialize(&value).unwrap();
        assert!(Indexed::read(json.get()).is_none(), "{value}");
        let stored = assert_same(Kind::Namespace, value);
        let back: Value = serde_json::from_slice(&stored.json).unwrap();
        assert_eq!(
            back.pointer("/metadata/resourceVersion"),
            Some(&json!("42"))
        );
    }
    // Whitespace and duplicate keys, which Caravan's own serializer never writes.
    let text = r#" { "metadata" : { } , "metadata": {"name": "b"} } "#;
    let json: ObjectJson = serde_json::from_str(text).unwrap();
    let stored = StoredObject::from_put(Kind::Namespace, &json, 5);
    assert_eq!(stored.key.name, "b");
    let text = r#"{"metadata" : { } }"#;
    let json: ObjectJson = serde_json::from_str(text).unwrap();
    let stored = StoredObject::from_put(Kind::Namespace, &json, 5);
    let back: Value = serde_json::from_slice(&stored.json).unwrap();
    assert_eq!(back, json!({"metadata": {"resourceVersion": "5"}}));
}

#[test]
fn from_value_leaves_the_resource_version_out() {
    let json = ObjectJson::from_value(json!({"metadata": {"name": "a", "resourceVersion": "9"}}));
    assert_eq!(json.get(), r#"{"metadata":{"name":"a"}}"#);
}
