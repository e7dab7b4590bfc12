//! The job diff of `caravan job plan`: the old and new `spec` compared as JSON, groups and
//! tasks matched by name (as Nomad does), every other field flattened to a path
//! (`update.maxParallel`, `constraints[0].value`, `meta[owner]`). Rendered with Nomad's
//! markers: `+` added, `-` deleted, `+/-` edited, none when unchanged.

use std::collections::{BTreeMap, BTreeSet};

use caravan_schemas::plan::DesiredUpdates;
use serde_json::{Map, Value};

/// How an object or field changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffType {
    None,
    Added,
    Deleted,
    Edited,
}

impl DiffType {
    /// The marker printed before a line.
    pub fn marker(self) -> &'static str {
        match self {
            DiffType::None => "",
            DiffType::Added => "+",
            DiffType::Deleted => "-",
            DiffType::Edited => "+/-",
        }
    }
}

/// One changed leaf field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDiff {
    pub kind: DiffType,
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// A job, group or task: its own fields and its named children.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    pub kind: DiffType,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub children: Vec<ObjectDiff>,
}

/// Diffs two job specs (`None`: no such job).
pub fn job_diff(name: &str, old: Option<&Value>, new: Option<&Value>) -> ObjectDiff {
    object_diff(name, old, new, &["groups", "tasks"], false)
}

/// Diffs one object, recursing into the named-list fields in `nested` (first level only:
/// `groups` in a job, `tasks` in a group). A group's or task's `name` is its header, not a field.
fn object_diff(
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    nested: &[&str],
    named_child: bool,
) -> ObjectDiff {
    let empty = Map::new();
    let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
    let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
    let child_key = nested.first().copied();
    let mut fields = Vec::new();
    let keys: BTreeSet<&String> = old_map.keys().chain(new_map.keys()).collect();
    for key in keys {
        if Some(key.as_str()) == child_key || (named_child && key == "name") {
            continue;
        }
        diff_value(key, old_map.get(key), new_map.get(key), &mut fields);
    }
    let mut children = Vec::new();
    if let Some(child_key) = child_key {
        let old_children = named(old_map.get(child_key));
        let new_children = named(new_map.get(child_key));
        let names: BTreeSet<&String> = old_children.keys().chain(new_children.keys()).collect();
        for child in names {
            children.push(object_diff(
                child,
                old_children.get(child).copied(),
                new_children.get(child).copied(),
                &nested[1..],
                true,
            ));
        }
    }
    let kind = match (old.is_some(), new.is_some()) {
        (false, true) => DiffType::Added,
        (true, false) => DiffType::Deleted,
        (false, false) => DiffType::None,
        (true, true) if fields.is_empty() && children.iter().all(|c| c.kind == DiffType::None) => {
            DiffType::None
        }
        (true, true) => DiffType::Edited,
    };
    ObjectDiff {
        kind,
        name: name.to_owned(),
        fields,
        children,
    }
}

/// The elements of a list of objects, by their `name`.
fn named(list: Option<&Value>) -> BTreeMap<String, &Value> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| Some((v.get("name")?.as_str()?.to_owned(), v)))
        .collect()
}

/// Appends the changed leaves under `path`.
fn diff_value(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldDiff>) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) if !a.is_empty() || !b.is_empty() => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                diff_value(&child_path(path, key), a.get(key), b.get(key), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if !a.is_empty() || !b.is_empty() => {
            for i in 0..a.len().max(b.len()) {
                diff_value(&format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (Some(a), Some(b)) if a == b => {}
        (Some(a), None) if is_container(a) => leaves(path, a, DiffType::Deleted, out),
        (None, Some(b)) if is_container(b) => leaves(path, b, DiffType::Added, out),
        (None, None) => {}
        (old, new) => out.push(FieldDiff {
            kind: match (old, new) {
                (None, _) => DiffType::Added,
                (_, None) => DiffType::Deleted,
                _ => DiffType::Edited,
            },
            path: path.to_owned(),
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

fn is_container(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

/// Every leaf of `value` as added or deleted.
fn leaves(path: &str, value: &Value, kind: DiffType, out: &mut Vec<FieldDiff>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                leaves(&child_path(path, key), child, kind, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                leaves(&format!("{path}[{i}]"), child, kind, out);
            }
        }
        leaf => {
            let (old, new) = match kind {
                DiffType::Deleted => (Some(leaf.clone()), None),
                _ => (None, Some(leaf.clone())),
            };
            out.push(FieldDiff {
                kind,
                path: path.to_owned(),
                old,
                new,
            });
        }
    }
}

/// `update.maxParallel`; free-form maps (`meta`, `env`, `config`, …) index with brackets:
/// `meta[owner]`.
fn child_path(parent: &str, key: &str) -> String {
    let free_form = ["meta", "env", "config", "labels", "attributes"];
    let last = parent.rsplit('.').next().unwrap_or(parent);
    if free_form.contains(&last) || !is_identifier(key) {
        format!("{parent}[{key}]")
    } else {
        format!("{parent}.{key}")
    }
}

fn is_identifier(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A scalar in Nomad's quoting: `"50"`, `"true"`, `""` for null.
fn quoted(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "\"\"".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(other) => format!("\"{other}\""),
    }
}

/// `+/- count: "3" => "4"`, `+ meta[owner]: "me"`, `- priority: "60"`.
pub fn field_line(field: &FieldDiff) -> String {
    let value = match field.kind {
        DiffType::Edited => format!(
            "{} => {}",
            quoted(field.old.as_ref()),
            quoted(field.new.as_ref())
        ),
        DiffType::Deleted => quoted(field.old.as_ref()),
        _ => quoted(field.new.as_ref()),
    };
    format!("{}: {value}", field.path)
}

/// `(1 create, 2 ignore, 1 in-place update)`: Nomad's update types, alphabetical, zeros left
/// out. Reschedules are placements, as in Nomad.
pub fn annotation(updates: &DesiredUpdates) -> String {
    let mut parts: Vec<(&str, u64)> = vec![
        ("canary", updates.canary),
        ("create", updates.place + updates.reschedule),
        ("create/destroy update", updates.destructive_update),
        ("destroy", updates.stop),
        ("ignore", updates.ignore),
        ("in-place update", updates.in_place_update),
        ("migrate", updates.migrate),
    ];
    parts.retain(|(_, n)| *n > 0);
    let parts: Vec<String> = parts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// Renders the job diff: the job line and its changed fields, then each group with its
/// annotation and fields, then each task. Unchanged fields are never listed; the fields of a
/// whole added or deleted job, group or task only when `verbose` (as `nomad job plan -verbose`).
pub fn render(
    diff: &ObjectDiff,
    annotations: &BTreeMap<String, DesiredUpdates>,
    verbose: bool,
) -> String {
    let mut out = String::new();
    let fields = |object| listed(object, verbose);
    push(&mut out, 0, diff.kind, &format!("Job: {:?}", diff.name));
    for field in fields(diff) {
        push(&mut out, 0, field.kind, &field_line(field));
    }
    for group in &diff.children {
        let note = annotations
            .get(&group.name)
            .map(annotation)
            .unwrap_or_default();
        let header = format!("Task Group: {:?}{note}", group.name);
        push(&mut out, 0, group.kind, &header);
        for field in fields(group) {
            push(&mut out, 1, field.kind, &field_line(field));
        }
        for task in &group.children {
            push(&mut out, 1, task.kind, &format!("Task: {:?}", task.name));
            for field in fields(task) {
                push(&mut out, 2, field.kind, &field_line(field));
            }
        }
    }
    out
}

/// The fields to list of an object: none of a whole added or deleted one unless `verbose`.
fn listed(object: &ObjectDiff, verbose: bool) -> &[FieldDiff] {
    let whole = matches!(object.kind, DiffType::Added | DiffType::Deleted);
    if whole && !verbose {
        &[]
    } else {
        &object.fields
    }
}

/// One line: two spaces per level, then the marker padded to four columns when there is one.
fn push(out: &mut String, depth: usize, kind: DiffType, text: &str) {
    out.push_str(&"  ".repeat(depth));
    let marker = kind.marker();
    if !marker.is_empty() {
        out.push_str(&format!("{marker:<3} "));
    }
    out.push_str(text);
    out.push('\n');
}

#[cfg(test)]
mod tests;
