//! Client-side apply's three-way JSON merge patch (RFC 7386), as `kubectl apply` computes it
//! from the last applied configuration, the new one, and the live object.

use serde_json::{Map, Value};

/// The annotation recording what was last applied, shared with kubectl.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The annotation's value for an applied configuration: its compact JSON, without the
/// annotation itself.
pub fn last_applied_json(applied: &Value) -> String {
    let mut config = applied.clone();
    if let Some(annotations) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            config["metadata"]
                .as_object_mut()
                .expect("annotations live in a metadata object")
                .remove("annotations");
        }
    }
    let mut json = config.to_string();
    json.push('\n');
    json
}

/// The applied configuration carrying its own last-applied annotation: what is sent.
pub fn with_last_applied(applied: &Value) -> Value {
    let annotation = last_applied_json(applied);
    let mut object = applied.clone();
    let metadata = object
        .as_object_mut()
        .expect("a manifest is an object")
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let annotations = metadata
        .as_object_mut()
        .expect("just made an object")
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !annotations.is_object() {
        *annotations = Value::Object(Map::new());
    }
    annotations
        .as_object_mut()
        .expect("just made an object")
        .insert(LAST_APPLIED.to_owned(), Value::String(annotation));
    object
}

/// The last applied configuration recorded on a live object, if any.
pub fn recorded(current: &Value) -> Option<Value> {
    let text = current
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// The merge patch taking `current` to `modified`: every field of `modified` that differs from
/// `current`, plus `null` for every field `original` (the last applied configuration) had and
/// `modified` dropped — fields other writers set are left alone. `{}` when nothing changes.
pub fn three_way(original: Option<&Value>, modified: &Value, current: &Value) -> Value {
    let mut patch = changes(modified, current);
    if let Some(original) = original {
        let deletions = deletions(original, modified, current);
        merge_into(&mut patch, deletions);
    }
    Value::Object(patch)
}

/// Fields of `modified` that `current` lacks or holds differently.
fn changes(modified: &Value, current: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    let Some(modified) = modified.as_object() else {
        return patch;
    };
    let empty = Map::new();
    let current = current.as_object().unwrap_or(&empty);
    for (key, want) in modified {
        let have = current.get(key);
        match (want, have) {
            // An explicit null asks for removal: only needed if the field is there.
            (Value::Null, None | Some(Value::Null)) => {}
            (Value::Object(_), Some(have @ Value::Object(_))) => {
                let nested = changes(want, have);
                if !nested.is_empty() {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            (want, Some(have)) if want == have => {}
            (want, _) => {
                patch.insert(key.clone(), want.clone());
            }
        }
    }
    patch
}

/// `null` for fields `original` set and `modified` dropped, where `current` still has them.
fn deletions(original: &Value, modified: &Value, current: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    let (Some(original), Some(current)) = (original.as_object(), current.as_object()) else {
        return patch;
    };
    let empty = Map::new();
    let modified = modified.as_object().unwrap_or(&empty);
    for (key, was) in original {
        let Some(have) = current.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        match modified.get(key) {
            None => {
                patch.insert(key.clone(), Value::Null);
            }
            Some(now @ Value::Object(_)) if was.is_object() => {
                let nested = deletions(was, now, have);
                if !nested.is_empty() {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            Some(_) => {}
        }
    }
    patch
}

/// Deep-merges `extra` into `patch`; values already in `patch` win.
fn merge_into(patch: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (key, value) in extra {
        match (patch.get_mut(&key), value) {
            (None, value) => {
                patch.insert(key, value);
            }
            (Some(Value::Object(mine)), Value::Object(theirs)) => merge_into(mine, theirs),
            (Some(_), _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removed_fields_become_null_and_changed_fields_are_sent() {
        let original =
            json!({"spec": {"priority": 50, "meta": {"a": "1", "b": "2"}, "datacenters": ["dc1"]}});
        let modified = json!({"spec": {"meta": {"a": "1"}, "datacenters": ["dc1", "dc2"]}});
        let current = json!({
            "metadata": {"resourceVersion": "7"},
            "spec": {"priority": 50, "meta": {"a": "1", "b": "2"}, "datacenters": ["dc1"], "region": "global"},
            "status": {"status": "running"}
        });
        let patch = three_way(Some(&original), &modified, &current);
        assert_eq!(
            patch,
            json!({"spec": {"priority": null, "meta": {"b": null}, "datacenters": ["dc1", "dc2"]}})
        );
    }

    #[test]
    fn fields_set_by_others_are_kept() {
        let original = json!({"spec": {"count": 1}});
        let modified = json!({"spec": {"count": 1}});
        let current = json!({"spec": {"count": 1, "region": "global"}, "status": {}});
        assert_eq!(three_way(Some(&original), &modified, &current), json!({}));
    }

    #[test]
    fn without_a_record_only_changes_are_sent() {
        let modified = json!({"spec": {"count": 2}});
        let current = json!({"spec": {"count": 1, "extra": true}});
        assert_eq!(
            three_way(None, &modified, &current),
            json!({"spec": {"count": 2}})
        );
    }

    #[test]
    fn explicit_null_removes_only_present_fields() {
        let modified = json!({"spec": {"a": null, "b": null}});
        let current = json!({"spec": {"a": 1}});
        assert_eq!(
            three_way(None, &modified, &current),
            json!({"spec": {"a": null}})
        );
    }

    #[test]
    fn annotation_round_trips_and_reapplying_is_a_no_op() {
        let applied = json!({"apiVersion": "caravan.dev/v1", "kind": "Job", "metadata": {"name": "web"}, "spec": {"type": "service"}});
        let sent = with_last_applied(&applied);
        assert_eq!(recorded(&sent), Some(applied.clone()));
        // The server echoes the object back with its own fields added.
        let mut current = sent.clone();
        current["metadata"]["resourceVersion"] = json!("3");
        current["status"] = json!({"status": "pending"});
        let again = with_last_applied(&applied);
        assert_eq!(
            three_way(recorded(&current).as_ref(), &again, &current),
            json!({})
        );
    }

    #[test]
    fn changing_the_config_updates_the_annotation() {
        let first = json!({"kind": "Job", "metadata": {"name": "web", "labels": {"a": "1"}}});
        let current = with_last_applied(&first);
        let second = json!({"kind": "Job", "metadata": {"name": "web"}});
        let patch = three_way(
            recorded(&current).as_ref(),
            &with_last_applied(&second),
            &current,
        );
        assert_eq!(patch["metadata"].get("labels"), Some(&Value::Null));
        assert_eq!(
            patch["metadata"]["annotations"][LAST_APPLIED],
            json!(last_applied_json(&second))
        );
    }
}
