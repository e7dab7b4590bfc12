//! The JSON merge patch (RFC 7386) that turns one JSON value into another.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are equal. Keys missing from
/// `new` are removed with `null`; arrays and scalars are replaced whole.
pub fn merge_patch_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, new_value) in new {
                match old.get(key) {
                    Some(old_value) => {
                        if let Some(diff) = merge_patch_diff(old_value, new_value) {
                            patch.insert(key.clone(), diff);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), new_value.clone());
                    }
                }
            }
            for key in old.keys().filter(|k| !new.contains_key(*k)) {
                patch.insert(key.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_patch_diff;

    #[test]
    fn equal_values_need_no_patch() {
        let value = json!({"a": 1, "b": {"c": [1, 2]}});
        assert_eq!(merge_patch_diff(&value, &value), None);
    }

    #[test]
    fn patch_sets_changed_adds_new_and_nulls_removed_keys() {
        let old = json!({"a": 1, "b": {"c": 1, "d": 2}, "gone": true, "list": [1]});
        let new = json!({"a": 2, "b": {"c": 1}, "added": "x", "list": [1, 2]});
        let patch = json!({"a": 2, "b": {"d": null}, "added": "x", "gone": null, "list": [1, 2]});
        assert_eq!(merge_patch_diff(&old, &new), Some(patch));
    }

    #[test]
    fn non_object_replaced_whole() {
        assert_eq!(
            merge_patch_diff(&json!(null), &json!({"a": 1})),
            Some(json!({"a": 1}))
        );
    }
}
