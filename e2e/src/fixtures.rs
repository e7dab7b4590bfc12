//! Objects the tests write: the shipped example web job and small jobs.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::paths::workspace_root;

/// Nomad's default job priority, filled in by admission when a job sets none.
pub const DEFAULT_PRIORITY: u64 = 50;

/// The web job manifest: `examples/web.yaml` when it exists, else `e2e/fixtures/web.yaml`.
pub fn web_job_path() -> PathBuf {
    let example = workspace_root().join("examples").join("web.yaml");
    if example.is_file() {
        example
    } else {
        workspace_root()
            .join("e2e")
            .join("fixtures")
            .join("web.yaml")
    }
}

/// The web job manifest as JSON.
pub fn web_job() -> Value {
    let path = web_job_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let value: Value = yaml_serde::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a single YAML document: {e}", path.display()));
    assert_eq!(value["kind"], "Job", "{} is not a Job", path.display());
    assert_eq!(
        value["metadata"]["name"],
        "web",
        "{} is not named web",
        path.display()
    );
    value
}

/// The priority the stored web job has: the manifest's, or the default.
pub fn web_job_priority() -> u64 {
    web_job()["spec"]["priority"]
        .as_u64()
        .unwrap_or(DEFAULT_PRIORITY)
}

/// A minimal job that places nothing (one group with count 0), in namespace `default`.
pub fn small_job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": { "name": name, "namespace": "default", "labels": { "e2e": "small" } },
        "spec": {
            "type": "batch",
            "datacenters": ["dc1"],
            "groups": [{
                "name": "g",
                "count": 0,
                "tasks": [{
                    "name": "t",
                    "driver": "raw_exec",
                    "config": { "command": "/bin/true" },
                    "resources": { "cpu": 20, "memoryMB": 16 }
                }]
            }]
        }
    })
}

/// Serializes `value` as YAML.
pub fn to_yaml(value: &Value) -> String {
    yaml_serde::to_string(value).expect("JSON values serialize as YAML")
}
