//! Whole objects as YAML or JSON, lists as kubectl's `v1 List`, and `kind.group/name` names.

use caravan_schemas::Kind;
use serde_json::{Value, json};

use crate::resource::qualified_singular;

/// Wraps objects in kubectl's `{apiVersion: v1, kind: List, items}`.
pub fn list(items: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": items,
    })
}

/// Pretty JSON with a final newline.
pub fn to_json(value: &Value) -> String {
    let mut out = serde_json::to_string_pretty(value).expect("a JSON value always serializes");
    out.push('\n');
    out
}

/// YAML, as one document.
pub fn to_yaml(value: &Value) -> anyhow::Result<String> {
    Ok(yaml_serde::to_string(value)?)
}

/// `job.caravan.dev/web`.
pub fn name_of(kind: Kind, object: &Value) -> String {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("{}/{name}", qualified_singular(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_by_group() {
        let job = json!({"metadata": {"name": "web"}});
        assert_eq!(name_of(Kind::Job, &job), "job.caravan.dev/web");
    }

    #[test]
    fn lists_are_wrapped_like_kubectl() {
        let yaml = to_yaml(&list(vec![json!({"kind": "Job"})])).unwrap();
        assert_eq!(
            yaml,
            "apiVersion: v1\nitems:\n- kind: Job\nkind: List\nmetadata:\n  resourceVersion: ''\n"
        );
    }
}
