//! Discovery, OpenAPI, health and metrics: what kubectl and Prometheus read first.

use serde_json::Value;

use crate::support::start;

#[tokio::test]
async fn discovery_documents_describe_every_kind() {
    let s = start().await;
    let (code, version) = s.get(&s.url("/version")).await;
    assert_eq!(
        (code, version["major"].as_str(), version["minor"].as_str()),
        (200, Some("1"), Some("37"))
    );
    let (_, core) = s.get(&s.url("/api")).await;
    assert_eq!(core["versions"], Value::Array(vec![]));
    let (_, groups) = s.get(&s.url("/apis")).await;
    assert_eq!(groups["groups"][0]["name"], "caravan.dev");
    let resp = s
        .http
        .get(s.url("/apis"))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("as=APIGroupDiscoveryList")
    );
    let aggregated: Value = resp.json().await.unwrap();
    let resources = aggregated["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap();
    assert_eq!(resources.len(), caravan_schemas::Kind::ALL.len());
    let versions = resources
        .iter()
        .find(|r| r["resource"] == "jobversions")
        .expect("jobversions in aggregated discovery");
    assert_eq!(
        versions["verbs"],
        serde_json::json!(["get", "list", "watch"])
    );
    assert_eq!(
        versions["subresources"][0]["verbs"],
        serde_json::json!(["get", "patch", "update"])
    );
    let (_, list) = s.get(&s.url("/apis/caravan.dev/v1")).await;
    let names: Vec<&str> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in ["jobs", "jobs/status", "allocations", "nodes", "namespaces"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let alloc = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "allocations")
        .unwrap();
    assert_eq!(alloc["shortNames"], serde_json::json!(["alloc", "allocs"]));
}

#[tokio::test]
async fn openapi_index_points_at_the_group_version_document() {
    let s = start().await;
    let (_, index) = s.get(&s.url("/openapi/v3")).await;
    let url = index["paths"]["apis/caravan.dev/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, doc) = s.get(&s.url(&url)).await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let job = &doc["components"]["schemas"]["dev.caravan.v1.Job"];
    assert_eq!(job["x-kubernetes-group-version-kind"][0]["kind"], "Job");
    let (code, _) = s.get(&s.url("/openapi/v2")).await;
    assert_eq!(code, 404, "kubectl must fall back to v3");
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let s = start().await;
    s.create_job("web").await;
    for path in ["/healthz", "/livez", "/readyz"] {
        let resp = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    let text = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("caravan_apiserver_requests_total{"), "{text}");
    assert!(text.contains("verb=\"create\""), "{text}");
    assert!(
        text.contains("caravan_store_objects{kind=\"Job\"} 1"),
        "{text}"
    );
    // The standard process metrics, under the names dashboards (and etcd) use.
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no resident memory in {text}"));
    assert!(rss > 1024 * 1024, "{rss}");
    assert!(
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
    assert!(text.contains("process_cpu_seconds_total "), "{text}");
    assert!(text.contains("process_open_fds "), "{text}");
}
