//! `meta.k8s.io/v1` Table output: the columns `kubectl get` and `caravan get` print per kind.

use std::time::SystemTime;

use caravan_schemas::Kind;
use serde_json::{Value, json};

use crate::store::StoredObject;

/// Whether the `Accept` header asks for a Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    })
}

struct Column {
    name: &'static str,
    description: &'static str,
    priority: u8,
    /// Path of the value in the object, or a computed column.
    source: Source,
}

enum Source {
    Path(&'static [&'static str]),
    Name,
    Age,
    Join(&'static [&'static str]),
    GroupCount,
    /// A boolean at a path, `false` when absent.
    Flag(&'static [&'static str]),
    /// The sum of a number field over the values of the map at a path (`0` without the map).
    Sum(&'static [&'static str], &'static str),
    /// A deployment's canaries over its groups, `placed/desired`; `<none>` when no group
    /// wants canaries.
    Canaries,
    /// The earliest RFC 3339 time in a field over the values of the map at a path.
    Earliest(&'static [&'static str], &'static str),
}

/// The map of a deployment's group states.
const GROUPS: &[&str] = &["status", "groups"];

const fn col(
    name: &'static str,
    description: &'static str,
    priority: u8,
    source: Source,
) -> Column {
    Column {
        name,
        description,
        priority,
        source,
    }
}

fn columns(kind: Kind) -> Vec<Column> {
    use Source::*;
    let name = col("Name", "Name of the object", 0, Name);
    let age = col("Age", "Time since creation", 0, Age);
    let mut cols = vec![name];
    match kind {
        Kind::Job => cols.extend([
            col("Type", "Scheduler type", 0, Path(&["spec", "type"])),
            col(
                "Priority",
                "Scheduling priority",
                0,
                Path(&["spec", "priority"]),
            ),
            col("Groups", "Number of task groups", 0, GroupCount),
            col(
                "Status",
                "pending, running or dead",
                0,
                Path(&["status", "status"]),
            ),
            age,
            col(
                "Datacenters",
                "Datacenters the job may run in",
                1,
                Join(&["spec", "datacenters"]),
            ),
            col("Version", "Job version", 1, Path(&["status", "version"])),
        ]),
        Kind::Evaluation => cols.extend([
            col("Job", "Job evaluated", 0, Path(&["spec", "jobName"])),
            col(
                "Triggered By",
                "What created the evaluation",
                0,
                Path(&["spec", "triggeredBy"]),
            ),
            col(
                "Status",
                "Evaluation status",
                0,
                Path(&["status", "status"]),
            ),
            age,
            col("Priority", "Priority", 1, Path(&["spec", "priority"])),
            col("Type", "Scheduler type", 1, Path(&["spec", "type"])),
            col(
                "Node",
                "Node that triggered it",
                1,
                Path(&["spec", "nodeName"]),
            ),
        ]),
        Kind::Allocation => cols.extend([
            col("Job", "Job", 0, Path(&["spec", "jobName"])),
            col("Group", "Task group", 0, Path(&["spec", "group"])),
            col(
                "Node",
                "Node it is placed on",
                0,
                Path(&["spec", "nodeName"]),
            ),
            col(
                "Desired",
                "Desired status",
                0,
                Path(&["spec", "desiredStatus"]),
            ),
            col(
                "Status",
                "Client status",
                0,
                Path(&["status", "clientStatus"]),
            ),
            age,
            col("Version", "Job version", 1, Path(&["spec", "jobVersion"])),
        ]),
        Kind::Node => cols.extend([
            col("Datacenter", "Datacenter", 0, Path(&["spec", "datacenter"])),
            col("Pool", "Node pool", 0, Path(&["spec", "nodePool"])),
            col("Status", "Node status", 0, Path(&["status", "status"])),
            col(
                "Eligibility",
                "Scheduling eligibility",
                0,
                Path(&["spec", "schedulingEligibility"]),
            ),
            age,
            col("Class", "Node class", 1, Path(&["spec", "nodeClass"])),
            col(
                "Address",
                "HTTP address of the agent",
                1,
                Path(&["spec", "httpAddr"]),
            ),
        ]),
        Kind::Deployment => cols.extend([
            col("Job", "Job", 0, Path(&["spec", "jobName"])),
            col("Version", "Job version", 0, Path(&["spec", "jobVersion"])),
            col(
                "Status",
                "Deployment status",
                0,
                Path(&["status", "status"]),
            ),
            col(
                "Desired",
                "Allocations wanted, over every group",
                0,
                Sum(GROUPS, "desiredTotal"),
            ),
            col(
                "Placed",
                "Allocations placed",
                0,
                Sum(GROUPS, "placedAllocs"),
            ),
            col(
                "Healthy",
                "Placed allocations that became healthy",
                0,
                Sum(GROUPS, "healthyAllocs"),
            ),
            col(
                "Unhealthy",
                "Placed allocations that became unhealthy",
                0,
                Sum(GROUPS, "unhealthyAllocs"),
            ),
            col("Canaries", "Canaries placed/wanted", 0, Canaries),
            age,
            col(
                "Description",
                "Details of the status",
                1,
                Path(&["status", "statusDescription"]),
            ),
            col(
                "Progress Deadline",
                "Earliest time a group must make progress by",
                1,
                Earliest(GROUPS, "requireProgressBy"),
            ),
        ]),
        Kind::JobVersion => cols.extend([
            col("Job", "Job", 0, Path(&["spec", "jobName"])),
            col("Version", "Job version", 0, Path(&["spec", "version"])),
            col(
                "Stable",
                "A deployment of this version succeeded",
                0,
                Flag(&["status", "stable"]),
            ),
            age,
            col("Type", "Scheduler type", 1, Path(&["spec", "job", "type"])),
        ]),
        Kind::ServiceRegistration => cols.extend([
            col("Service", "Service name", 0, Path(&["spec", "serviceName"])),
            col("Address", "Address", 0, Path(&["spec", "address"])),
            col("Port", "Port", 0, Path(&["spec", "port"])),
            col(
                "Status",
                "Worst status of its checks",
                0,
                Path(&["status", "status"]),
            ),
            age,
            col(
                "Allocation",
                "Allocation offering it",
                1,
                Path(&["spec", "allocName"]),
            ),
            col("Node", "Node", 1, Path(&["spec", "nodeName"])),
            col("Tags", "Tags", 1, Join(&["spec", "tags"])),
        ]),
        Kind::AclPolicy => cols.extend([
            col(
                "Description",
                "Description",
                0,
                Path(&["spec", "description"]),
            ),
            age,
        ]),
        Kind::AclToken => cols.extend([
            col(
                "Display Name",
                "Display name",
                0,
                Path(&["spec", "displayName"]),
            ),
            col("Type", "client or management", 0, Path(&["spec", "type"])),
            col("Policies", "Policies", 0, Join(&["spec", "policies"])),
            col(
                "Expires",
                "When it stops working",
                0,
                Path(&["spec", "expirationTime"]),
            ),
            age,
        ]),
        Kind::Namespace => cols.extend([
            col(
                "Description",
                "Description",
                0,
                Path(&["spec", "description"]),
            ),
            age,
        ]),
    }
    cols
}

/// The column definitions of a kind's Table.
pub fn column_definitions(kind: Kind) -> Value {
    Value::Array(
        columns(kind)
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": "string",
                    "format": if c.name == "Name" { "name" } else { "" },
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// One Table row for an object. `include_object` is `Object`, `None` or (default) `Metadata`.
pub fn row(kind: Kind, obj: &StoredObject, include_object: Option<&str>, now: SystemTime) -> Value {
    let value = obj.to_value();
    let cells: Vec<Value> = columns(kind)
        .iter()
        .map(|c| cell(&c.source, &value, now))
        .collect();
    let object = match include_object {
        Some("Object") => value,
        Some("None") => Value::Null,
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": value.get("metadata").cloned().unwrap_or(Value::Null),
        }),
    };
    json!({ "cells": cells, "object": object })
}

/// A whole Table.
pub fn table(
    kind: Kind,
    rows: Vec<Value>,
    resource_version: u64,
    with_columns: bool,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if let Some(c) = continue_token {
        metadata["continue"] = Value::String(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if with_columns { column_definitions(kind) } else { Value::Array(Vec::new()) },
        "rows": rows,
    })
}

fn cell(source: &Source, value: &Value, now: SystemTime) -> Value {
    let at = |path: &[&str]| path.iter().try_fold(value, |v, k| v.get(k));
    match source {
        Source::Name => at(&["metadata", "name"]).cloned().unwrap_or(Value::Null),
        Source::Path(p) => match at(p) {
            Some(Value::String(s)) => Value::String(s.clone()),
            Some(Value::Number(n)) => Value::String(n.to_string()),
            Some(Value::Bool(b)) => Value::String(b.to_string()),
            _ => Value::String("<none>".into()),
        },
        Source::Join(p) => match at(p).and_then(Value::as_array) {
            Some(items) => Value::String(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => Value::String("<none>".into()),
        },
        Source::GroupCount => Value::String(
            at(&["spec", "groups"])
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                .to_string(),
        ),
        Source::Flag(p) => {
            Value::String(at(p).and_then(Value::as_bool).unwrap_or(false).to_string())
        }
        Source::Sum(map, field) => Value::String(sum(at(map), field).to_string()),
        Source::Canaries => {
            let groups = at(GROUPS);
            let desired = sum(groups, "desiredCanaries");
            let placed: u64 = values(groups)
                .filter_map(|g| g.get("placedCanaries")?.as_array())
                .fold(0, |n: u64, names| {
                    n.saturating_add(u64::try_from(names.len()).unwrap_or(u64::MAX))
                });
            Value::String(if desired == 0 && placed == 0 {
                "<none>".into()
            } else {
                format!("{placed}/{desired}")
            })
        }
        Source::Earliest(map, field) => values(at(map))
            .filter_map(|g| g.get(*field)?.as_str())
            .filter_map(|t| Some((humantime::parse_rfc3339_weak(t).ok()?, t)))
            .min_by_key(|(time, _)| *time)
            .map_or_else(|| Value::String("<none>".into()), |(_, t)| t.into()),
        Source::Age => Value::String(
            at(&["metadata", "creationTimestamp"])
                .and_then(Value::as_str)
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .map(|t| human_duration(now.duration_since(t).unwrap_or_default()))
                .unwrap_or_else(|| "<unknown>".into()),
        ),
    }
}

/// The values of a JSON object (none for anything else).
fn values(map: Option<&Value>) -> impl Iterator<Item = &Value> {
    map.and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
}

/// The sum of the non-negative integer `field` over the values of `map`, saturating.
fn sum(map: Option<&Value>, field: &str) -> u64 {
    values(map)
        .filter_map(|v| v.get(field)?.as_u64())
        .fold(0, u64::saturating_add)
}

/// Kubernetes' `HumanDuration`: `45s`, `3m20s`, `12m`, `5h10m`, `3d4h`, `30d`, `2y10d`.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (m, h, days) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        match s % 60 {
            0 => format!("{m}m"),
            r => format!("{m}m{r}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            r => format!("{h}h{r}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{days}d"),
            r => format!("{days}d{r}h"),
        }
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        format!("{}y{}d", days / 365, days % 365)
    } else {
        format!("{}y", days / 365)
    }
}

#[cfg(test)]
mod tests;
