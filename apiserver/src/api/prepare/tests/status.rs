//! The typed status write ([`prepare_status_merge`]) against the generic one (the merge patch
//! applied to the whole object, then [`prepare_update`] through the status subresource).

use caravan_schemas::mock;
use serde_json::json;

use super::*;

/// A stored allocation with a running status, as a node agent leaves it.
fn allocation() -> crate::store::StoredObject {
    let job = mock::job("web");
    let node = mock::node("n1");
    let mut alloc = serde_json::to_value(mock::allocation("web-0", &job, &node)).unwrap();
    alloc["metadata"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "name");
    let created = stored(Kind::Allocation, alloc, 3);
    let mut running = created.to_value();
    running["status"] = json!({
        "clientStatus": "running",
        "clientDescription": "Tasks are running",
        "taskStates": {"web": {"state": "running", "failed": false, "restarts": 0,
            "events": [{"type": "Started", "time": "2026-12-04T20:05:11Z"}]}},
        "metrics": {"nodesEvaluated": 4, "scores": [{"nodeName": "n1", "normScore": 0.5,
            "scores": {"binpack": 0.5}}]}
    });
    running["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    // Stored objects are written from their types (defaults in, empty fields out).
    let running: caravan_schemas::Allocation = serde_json::from_value(running).unwrap();
    let running = serde_json::to_value(running).unwrap();
    crate::store::StoredObject::from_put(Kind::Allocation, &ObjectJson::from_value(running), 4)
}

/// What each path does with `patch`: the typed result (JSON, unchanged, warnings) when both
/// admit it, or both paths' errors.
fn both(
    kind: Kind,
    current: &crate::store::StoredObject,
    patch: &Value,
    strict: bool,
) -> Result<(Value, bool, Vec<String>), Vec<caravan_schemas::FieldError>> {
    let text = std::str::from_utf8(&current.json).unwrap();
    let current_value = current.to_value();
    let typed = prepare_status_merge(kind, text, "x", patch, strict).expect("decodes");
    let mut patched = current_value.clone();
    json_patch::merge(&mut patched, patch);
    let generic = prepare_update(kind, &current_value, patched, true, strict);
    match (typed, generic) {
        (Ok(replacement), Ok((mut next, warnings))) => {
            next["metadata"]["resourceVersion"] = json!(current.resource_version.to_string());
            let unchanged = next == current_value;
            assert_eq!(replacement.unchanged, unchanged, "unchanged");
            assert_eq!(replacement.removed, ready_to_remove(&next), "removed");
            assert_eq!(replacement.warnings, warnings, "warnings");
            next["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("resourceVersion");
            let typed: Value = serde_json::from_str(replacement.json.get()).unwrap();
            assert_eq!(typed, next, "the typed status write is the generic one");
            Ok((typed, unchanged, warnings))
        }
        (Err(Error::Invalid { causes: a, .. }), Err(Error::Invalid { causes: b, .. })) => {
            let fields = |c: &[caravan_schemas::FieldError]| {
                c.iter().map(|e| e.field.clone()).collect::<Vec<_>>()
            };
            assert_eq!(fields(&a), fields(&b), "the same failing fields");
            Err(a)
        }
        (typed, generic) => panic!("the paths disagree: {typed:?} against {generic:?}"),
    }
}

#[test]
fn a_typed_status_write_is_what_the_generic_one_writes() {
    let current = allocation();

    // A node agent's report: the task finished.
    let done = json!({"status": {"clientStatus": "complete",
        "clientDescription": "All tasks have completed",
        "taskStates": {"web": {"state": "dead", "finishedAt": "2026-12-04T20:06:00Z"}}}});
    let (next, unchanged, _) = both(Kind::Allocation, &current, &done, true).unwrap();
    assert!(!unchanged);
    assert_eq!(next["status"]["clientStatus"], "complete");
    assert_eq!(next["status"]["taskStates"]["web"]["state"], "dead");
    // Merged, not replaced: what the patch leaves out stays.
    assert_eq!(next["status"]["metrics"]["nodesEvaluated"], 4);
    assert_eq!(
        next["status"]["taskStates"]["web"]["events"][0]["type"],
        "Started"
    );
    assert_eq!(next["spec"], current.to_value()["spec"]);

    // The same status again changes nothing; neither do spec or metadata in a status patch.
    let same = json!({"status": {"clientStatus": "running"}, "spec": {"nodeName": "n9"},
        "metadata": {"labels": {"a": "b"}}});
    let (_, unchanged, _) = both(Kind::Allocation, &current, &same, true).unwrap();
    assert!(unchanged);
    let (_, unchanged, _) = both(Kind::Allocation, &current, &json!({}), true).unwrap();
    assert!(unchanged);

    // Null removes a field, and the whole status.
    let no_metrics = json!({"status": {"metrics": null}});
    let (next, _, _) = both(Kind::Allocation, &current, &no_metrics, true).unwrap();
    assert!(next["status"].get("metrics").is_none());
    let (next, _, _) = both(Kind::Allocation, &current, &json!({"status": null}), true).unwrap();
    assert!(next.get("status").is_none());
}

#[test]
fn a_typed_status_write_refuses_and_drops_what_the_generic_one_does() {
    let current = allocation();

    let bad =
        json!({"status": {"clientStatus": "sleeping", "taskStates": {"web": {"restarts": -1}}}});
    let causes = both(Kind::Allocation, &current, &bad, true).unwrap_err();
    let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
    assert!(fields.contains(&"status.clientStatus"), "{fields:?}");
    assert!(
        fields.contains(&"status.taskStates.web.restarts"),
        "{fields:?}"
    );

    // An unknown field: an error when strict, dropped with a warning otherwise.
    let unknown = json!({"status": {"clientStatus": "running", "mood": "fine"}});
    let causes = both(Kind::Allocation, &current, &unknown, true).unwrap_err();
    assert_eq!(causes[0].field, "status.mood");
    let (next, unchanged, warnings) = both(Kind::Allocation, &current, &unknown, false).unwrap();
    assert!(unchanged);
    assert!(next["status"].get("mood").is_none());
    assert_eq!(warnings, ["unknown field \"status.mood\""]);

    // A status that is not an object.
    assert!(both(Kind::Allocation, &current, &json!({"status": "up"}), true).is_err());
}

#[test]
fn a_typed_node_status_write_recomputes_the_computed_class() {
    let node = json!({"apiVersion": "caravan.dev/v1", "kind": "Node",
        "metadata": {"name": "n1"}, "spec": {"datacenter": "dc1"}});
    let current = stored(Kind::Node, node, 2);
    let before = current.to_value()["status"]["computedClass"].clone();
    let patch = json!({"status": {"status": "ready", "attributes": {"kernel.name": "linux"},
        "heartbeatTTL": "10s"}});
    let (next, _, _) = both(Kind::Node, &current, &patch, true).unwrap();
    assert_eq!(next["status"]["status"], "ready");
    assert_ne!(next["status"]["computedClass"], before);

    // Semantic checks of the status still apply.
    let bad_ttl = json!({"status": {"heartbeatTTL": "soon"}});
    let causes = both(Kind::Node, &current, &bad_ttl, true).unwrap_err();
    assert_eq!(causes[0].field, "status.heartbeatTTL");
}
