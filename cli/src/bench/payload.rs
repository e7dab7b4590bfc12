//! Benchmark payloads: valid Jobs of a chosen size, and a namespace per run.

use anyhow::Context;
use serde_json::{Value, json};

/// Parses `1KiB`, `512B`, `2KB`, `1024`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("KiB").or_else(|| s.strip_suffix("KB")) {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("MiB").or_else(|| s.strip_suffix("MB")) {
        (n, 1024 * 1024)
    } else if let Some(n) = s.strip_suffix('B') {
        (n, 1)
    } else {
        (s, 1)
    };
    num.trim()
        .parse::<f64>()
        .map(|n| (n * mult as f64) as usize)
        .map_err(|_| format!("invalid size {s:?}: use e.g. 1KiB, 512B"))
}

/// A valid service Job named `name` whose JSON is about `size` bytes (padded through `meta`).
pub fn job(namespace: &str, name: &str, size: usize, annotations: Value) -> Value {
    let mut job = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"bench": "true"}, "annotations": annotations},
        "spec": {
            "type": "service",
            "datacenters": ["dc1"],
            "groups": [{
                "name": "web",
                "count": 3,
                "tasks": [{
                    "name": "server",
                    "driver": "mock",
                    "config": {"runFor": "1h"},
                    "resources": {"cpu": 100, "memoryMB": 64}
                }]
            }],
            "meta": {"padding": ""}
        }
    });
    let base = serde_json::to_vec(&job).map(|v| v.len()).unwrap_or(0);
    if size > base {
        job["spec"]["meta"]["padding"] = Value::String("x".repeat(size - base));
    }
    job
}

/// Creates a fresh namespace for one run so runs never collide.
pub async fn create_namespace(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
) -> anyhow::Result<String> {
    let name = format!("{prefix}-{}", &uuid_suffix());
    let body =
        json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": name}});
    let resp = http
        .post(format!("{base}/apis/caravan.dev/v1/namespaces"))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("failed to reach {base}"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "creating namespace {name}: {}",
        resp.text().await.unwrap_or_default()
    );
    Ok(name)
}

fn uuid_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}", nanos & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn jobs_have_the_requested_size() {
        let j = job("ns", "job-1", 1024, json!({}));
        let len = serde_json::to_vec(&j).unwrap().len();
        assert!((1024..1040).contains(&len), "{len}");
    }
}
