//! Lists through the HTTP API: selectors, indexes, pagination, Tables.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{alloc, job, rv, start};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {list}"))
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn label_selectors_filter_lists() {
    let s = start().await;
    for (name, tier) in [("a", "front"), ("b", "back"), ("c", "front")] {
        let mut j = job(name);
        j["metadata"]["labels"]["tier"] = json!(tier);
        assert_eq!(s.post(&s.jobs(), &j).await.0, 201);
    }
    let cases = [
        ("tier=front", vec!["a", "c"]),
        ("tier!=front", vec!["b"]),
        ("tier in (back,middle)", vec!["b"]),
        ("tier notin (back)", vec!["a", "c"]),
        ("app", vec!["a", "b", "c"]),
        ("!app", vec![]),
        ("tier=front,app=c", vec!["c"]),
    ];
    for (selector, want) in cases {
        let url =
            reqwest::Url::parse_with_params(&s.jobs(), &[("labelSelector", selector)]).unwrap();
        let (code, list) = s.get(url.as_str()).await;
        assert_eq!(code, 200, "{selector}: {list}");
        assert_eq!(names(&list), want, "{selector}");
    }
    let (code, status) = s
        .get(&format!("{}?labelSelector=a%20b%20c", s.jobs()))
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn field_selectors_find_allocations_by_node_and_status() {
    let s = start().await;
    let allocs = s.url("/apis/caravan.dev/v1/namespaces/default/allocations");
    for (name, node) in [("a1", "n1"), ("a2", "n2"), ("a3", "n1")] {
        assert_eq!(s.post(&allocs, &alloc(name, "web", node)).await.0, 201);
    }
    s.send(
        Method::PATCH,
        &format!("{allocs}/a3/status"),
        "application/merge-patch+json",
        json!({"status": {"clientStatus": "running"}}).to_string(),
    )
    .await;
    let (_, list) = s
        .get(&format!("{allocs}?fieldSelector=spec.nodeName%3Dn1"))
        .await;
    assert_eq!(names(&list), vec!["a1", "a3"]);
    let (_, list) = s
        .get(&s.url("/apis/caravan.dev/v1/allocations?fieldSelector=spec.nodeName%3Dn1,status.clientStatus%3Drunning"))
        .await;
    assert_eq!(names(&list), vec!["a3"]);
    let (_, list) = s
        .get(&format!("{allocs}?fieldSelector=spec.nodeName!%3Dn1"))
        .await;
    assert_eq!(names(&list), vec!["a2"]);
    let (code, status) = s
        .get(&format!("{}?fieldSelector=spec.nodeName%3Dn1", s.jobs()))
        .await;
    assert_eq!(code, 400, "jobs have no spec.nodeName: {status}");
}

#[tokio::test]
async fn pagination_returns_every_object_once_at_the_first_pages_revision() {
    let s = start().await;
    for i in 0..23 {
        s.create_job(&format!("job-{i:02}")).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut revisions = BTreeSet::new();
    loop {
        let mut url = format!("{}?limit=5", s.jobs());
        if let Some(t) = &token {
            url.push_str(&format!("&continue={t}"));
        }
        let (code, page) = s.get(&url).await;
        assert_eq!(code, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 5);
        seen.extend(names(&page));
        revisions.insert(
            page["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        token = page["metadata"]["continue"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
        // A write between pages must not disturb the rest of the walk.
        if seen.len() == 5 {
            s.create_job("zz-late").await;
        }
    }
    let want: Vec<String> = (0..23)
        .map(|i| format!("job-{i:02}"))
        .chain(["zz-late".to_string()])
        .collect();
    assert_eq!(seen, want);
    assert_eq!(
        revisions.len(),
        1,
        "every page reports the first page's revision"
    );
}

#[tokio::test]
async fn list_resource_version_covers_every_listed_object() {
    let s = start().await;
    let last = s.create_job("a").await.max(s.create_job("b").await);
    let (_, list) = s.get(&s.jobs()).await;
    let list_rv: u64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(list_rv >= last);
    assert_eq!(list["kind"], "JobList");
    assert_eq!(list["apiVersion"], "caravan.dev/v1");
    for item in list["items"].as_array().unwrap() {
        assert!(rv(item) <= list_rv);
    }
}

#[tokio::test]
async fn tables_carry_kubectl_columns() {
    let s = start().await;
    s.create_job("web").await;
    let resp = s
        .http
        .get(s.jobs())
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .send()
        .await
        .unwrap();
    let table: Value = resp.json().await.unwrap();
    assert_eq!(table["kind"], "Table");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&columns[..3], ["Name", "Type", "Priority"]);
    let row = &table["rows"][0];
    assert_eq!(row["cells"][0], "web");
    assert_eq!(row["cells"][2], "50");
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
}
