//! `caravan describe`: a header of metadata, then spec and status as indented, aligned
//! `key: value` lines.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::age::age_of;

/// Annotations too long and too mechanical to show.
const HIDDEN_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// Renders one object.
pub fn describe(object: &Value, now: SystemTime) -> String {
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let text = |path: &str| {
        meta.pointer(path)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let mut header: Vec<(&str, Vec<String>)> = Vec::new();
    header.push(("Name", vec![text("/name").unwrap_or_default()]));
    if let Some(ns) = text("/namespace") {
        header.push(("Namespace", vec![ns]));
    }
    header.push(("Labels", pairs(meta.get("labels"), &[])));
    header.push((
        "Annotations",
        pairs(meta.get("annotations"), HIDDEN_ANNOTATIONS),
    ));
    if let Some(kind) = object.get("kind").and_then(Value::as_str) {
        header.push(("Kind", vec![kind.to_owned()]));
    }
    if let Some(created) = text("/creationTimestamp") {
        let age = age_of(&created, now)
            .map(|a| format!(" ({a} ago)"))
            .unwrap_or_default();
        header.push(("Created", vec![format!("{created}{age}")]));
    }
    if let Some(rv) = text("/resourceVersion") {
        header.push(("ResourceVersion", vec![rv]));
    }
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        header.push(("Generation", vec![generation.to_string()]));
    }
    if let Some(uid) = text("/uid") {
        header.push(("UID", vec![uid]));
    }
    if let Some(deleted) = text("/deletionTimestamp") {
        header.push(("Deleting since", vec![deleted]));
    }
    if let Some(Value::Array(finalizers)) = meta.get("finalizers") {
        let names = finalizers.iter().map(scalar).collect::<Vec<_>>().join(", ");
        header.push(("Finalizers", vec![names]));
    }

    let width = header.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for (key, values) in &header {
        let label = format!("{key}:");
        let mut values = values.iter();
        let first = values.next().map(String::as_str).unwrap_or("<none>");
        out.push_str(&format!("{label:width$}{first}\n"));
        for more in values {
            out.push_str(&format!("{:width$}{more}\n", ""));
        }
    }
    let Some(body) = object.as_object() else {
        return out;
    };
    for (key, value) in body {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        out.push_str(&format!("{}:\n", title(key)));
        render_value(value, 1, &mut out);
    }
    out
}

/// `key=value` lines of a label or annotation map; `<none>` when empty.
fn pairs(map: Option<&Value>, hidden: &[&str]) -> Vec<String> {
    let lines: Vec<String> = map
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !hidden.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", scalar(v)))
        .collect();
    if lines.is_empty() {
        vec!["<none>".into()]
    } else {
        lines
    }
}

/// `spec` → `Spec`.
fn title(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => true,
    }
}

fn render_scalar(value: &Value) -> String {
    match value {
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
        other => scalar(other),
    }
}

/// Renders any value at `depth` (two spaces each).
fn render_value(value: &Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) if !map.is_empty() => render_map(map, &indent, &indent, depth, out),
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match item {
                    Value::Object(map) if !map.is_empty() => {
                        let first = format!("{indent}- ");
                        let rest = format!("{indent}  ");
                        render_map(map, &first, &rest, depth + 1, out);
                    }
                    other => out.push_str(&format!("{indent}- {}\n", render_scalar(other))),
                }
            }
        }
        other => out.push_str(&format!("{indent}{}\n", render_scalar(other))),
    }
}

/// A map's entries with values aligned; the first line starts with `first_prefix` (for list
/// items, `- `), later ones with `prefix`.
fn render_map(
    map: &Map<String, Value>,
    first_prefix: &str,
    prefix: &str,
    depth: usize,
    out: &mut String,
) {
    let width = map
        .iter()
        .filter(|(_, v)| is_scalar(v))
        .map(|(k, _)| k.len() + 1)
        .max()
        .unwrap_or(0)
        + 2;
    for (i, (key, value)) in map.iter().enumerate() {
        let lead = if i == 0 { first_prefix } else { prefix };
        if is_scalar(value) {
            let label = format!("{key}:");
            out.push_str(&format!("{lead}{label:width$}{}\n", render_scalar(value)));
        } else {
            out.push_str(&format!("{lead}{key}:\n"));
            render_value(value, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describe_shows_metadata_then_nested_spec_and_status() {
        let job = json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "Job",
            "metadata": {
                "name": "web", "namespace": "default", "resourceVersion": "12",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {"app": "web", "tier": "front"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
            },
            // Keys in sorted order, so the test holds with or without serde_json's
            // `preserve_order`.
            "spec": {
                "datacenters": ["dc1"],
                "groups": [{"count": 3, "name": "web", "tasks": [{"driver": "raw_exec", "name": "srv"}]}],
                "type": "service"
            },
            "status": {"status": "running"}
        });
        let now = humantime::parse_rfc3339("2025-01-01T00:05:30Z").unwrap();
        let out = describe(&job, now);
        let expected = "\
Name:             web
Namespace:        default
Labels:           app=web
                  tier=front
Annotations:      <none>
Kind:             Job
Created:          2025-01-01T00:00:00Z (5m30s ago)
ResourceVersion:  12
Spec:
  datacenters:
    - dc1
  groups:
    - count:  3
      name:   web
      tasks:
        - driver:  raw_exec
          name:    srv
  type:  service
Status:
  status:  running
";
        assert_eq!(out, expected);
    }
}
