use caravan_schemas::Allocation;
use caravan_schemas::allocation::DesiredStatus;
use futures::StreamExt;
use serde_json::json;

use super::*;

fn job(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {"priority": 50}})
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn create_stamps_revisions_and_refuses_duplicates() {
    let fake = FakeClient::new();
    let a = fake.create(Kind::Job, job("a")).await.unwrap();
    let b = fake.create(Kind::Job, job("b")).await.unwrap();
    assert_eq!(a["metadata"]["namespace"], "default");
    assert_eq!(a["kind"], "Job");
    assert_eq!(a["metadata"]["generation"], 1);
    assert!(rv(&b) > rv(&a));
    assert_eq!(fake.revision(), rv(&b));
    assert_eq!(
        fake.create(Kind::Job, job("a")).await,
        Err(ClientError::AlreadyExists)
    );
    assert!(matches!(
        fake.create(Kind::Job, json!({"metadata": {}})).await,
        Err(ClientError::Invalid(_))
    ));
    let node = fake
        .create(
            Kind::Node,
            json!({"metadata": {"name": "n1", "namespace": "x"}}),
        )
        .await
        .unwrap();
    assert!(node["metadata"].get("namespace").is_none());
    assert_eq!(fake.get(Kind::Node, "anything", "n1").await.unwrap(), node);
}

#[tokio::test]
async fn patches_merge_and_keep_spec_and_status_apart() {
    let fake = FakeClient::new();
    let a = fake.seed(Kind::Job, job("a"));
    let patched = fake
        .patch(
            Kind::Job,
            "default",
            "a",
            json!({"spec": {"priority": 70}, "status": {"status": "x"}}),
        )
        .await
        .unwrap();
    assert_eq!(patched["spec"]["priority"], 70);
    assert!(
        patched.get("status").is_none(),
        "status is written through the subresource only"
    );
    assert_eq!(patched["metadata"]["generation"], 2);

    let status = fake
        .patch_status(
            Kind::Job,
            "default",
            "a",
            json!({"spec": {"priority": 1}, "status": {"status": "running"}}),
        )
        .await
        .unwrap();
    assert_eq!(status["status"]["status"], "running");
    assert_eq!(status["spec"]["priority"], 70);
    assert_eq!(status["metadata"]["generation"], 2);

    let stale = json!({"metadata": {"resourceVersion": a["metadata"]["resourceVersion"]}, "spec": {"priority": 5}});
    assert!(matches!(
        fake.patch(Kind::Job, "default", "a", stale).await,
        Err(ClientError::Conflict(_))
    ));
    let before = fake.revision();
    let same = fake
        .patch(Kind::Job, "default", "a", json!({"spec": {"priority": 70}}))
        .await
        .unwrap();
    assert_eq!(rv(&same), before, "a no-op patch writes nothing");
    assert_eq!(
        fake.patch(Kind::Job, "default", "zz", json!({})).await,
        Err(ClientError::NotFound)
    );
}

#[tokio::test]
async fn watch_replays_changes_after_a_revision_then_streams_live_ones() {
    let fake = FakeClient::new();
    let a = fake.seed(Kind::Job, job("a"));
    fake.seed(Kind::Job, job("b"));
    fake.seed(Kind::Node, json!({"metadata": {"name": "n1"}}));
    let mut events = fake
        .watch(Kind::Job, Some("default"), &ListQuery::default(), rv(&a))
        .await
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert!(matches!(&first, WatchEvent::Added(o) if o["metadata"]["name"] == "b"));

    fake.delete(Kind::Job, "default", "a").await.unwrap();
    match events.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => {
            assert_eq!(o["metadata"]["name"], "a");
            assert_eq!(
                rv(&o),
                fake.revision(),
                "a deletion is seen at its own revision"
            );
        }
        other => panic!("expected a deletion, got {other:?}"),
    }
    assert_eq!(
        fake.delete(Kind::Job, "default", "a").await,
        Err(ClientError::NotFound)
    );
    fake.end_watches();
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn an_object_leaving_the_selection_is_deleted_for_the_watch() {
    let fake = FakeClient::new();
    fake.seed(Kind::Job, job("a"));
    let query = ListQuery {
        label_selector: Some("app=a".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        fake.list(Kind::Job, None, &query)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let mut events = fake
        .watch(Kind::Job, None, &query, fake.revision())
        .await
        .unwrap();
    fake.patch(
        Kind::Job,
        "default",
        "a",
        json!({"metadata": {"labels": {"app": "other"}}}),
    )
    .await
    .unwrap();
    assert!(matches!(
        events.next().await,
        Some(Ok(WatchEvent::Deleted(_)))
    ));
}

#[tokio::test]
async fn a_revision_older_than_the_window_is_gone() {
    let fake = FakeClient::with_window(2);
    let start = fake.revision();
    for name in ["a", "b", "c"] {
        fake.seed(Kind::Job, job(name));
    }
    let mut old = fake
        .watch(Kind::Job, None, &ListQuery::default(), start)
        .await
        .unwrap();
    assert!(matches!(old.next().await, Some(Err(ClientError::Gone(_)))));
    assert!(old.next().await.is_none());

    let mut recent = fake
        .watch(Kind::Job, None, &ListQuery::default(), fake.revision() - 1)
        .await
        .unwrap();
    assert!(matches!(
        recent.next().await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    fake.expire_watches();
    assert!(matches!(
        recent.next().await,
        Some(Err(ClientError::Gone(_)))
    ));
}

#[tokio::test]
async fn injected_failures_fail_the_next_call_only() {
    let fake = FakeClient::new();
    fake.fail_next(Verb::List, ClientError::Unavailable("down".into()));
    let query = ListQuery::default();
    assert!(fake.list(Kind::Job, None, &query).await.is_err());
    assert!(fake.list(Kind::Job, None, &query).await.is_ok());
    assert_eq!(fake.calls(Verb::List), 2);
}

fn alloc(name: &str, node: &str) -> Allocation {
    let mut alloc = Allocation::default();
    alloc.metadata.name = Some(name.into());
    alloc.spec.job_name = "web".into();
    alloc.spec.group = "web".into();
    alloc.spec.node_name = node.into();
    alloc
}

#[tokio::test]
async fn a_plan_applies_stops_and_allocations_at_one_revision() {
    let fake = FakeClient::new();
    let mut old = serde_json::to_value(alloc("web-old", "n1")).unwrap();
    old["status"] = json!({"clientStatus": "running"});
    fake.seed(Kind::Allocation, old);

    let mut plan = Plan {
        eval_name: "e1".into(),
        namespace: "default".into(),
        job_name: "web".into(),
        ..Plan::default()
    };
    plan.append_stop("n1", "web-old", DesiredStatus::Stop, "alloc not needed");
    plan.append_stop("n1", "web-missing", DesiredStatus::Stop, "gone already");
    plan.append_alloc(alloc("web-new", "n2"));
    let result = fake.submit_plan(plan.clone()).await.unwrap();

    assert_eq!(result.counts(), (1, 1));
    assert_eq!(result.alloc_index, fake.revision());
    assert_eq!(fake.plans(), vec![plan]);
    let stopped = fake.object(Kind::Allocation, "default", "web-old").unwrap();
    assert_eq!(stopped["spec"]["desiredStatus"], "stop");
    assert_eq!(stopped["spec"]["desiredDescription"], "alloc not needed");
    assert_eq!(stopped["status"]["clientStatus"], "running");
    let placed = fake.object(Kind::Allocation, "default", "web-new").unwrap();
    assert_eq!(placed["spec"]["nodeName"], "n2");
    assert_eq!(rv(&placed), rv(&stopped));
    assert_eq!(placed["apiVersion"], "caravan.dev/v1");
}

#[tokio::test]
async fn a_delete_with_a_stale_resource_version_is_a_conflict_and_keeps_the_object() {
    let fake = FakeClient::new();
    let a = fake.seed(Kind::Job, job("a"));
    let current = rv(&a).to_string();
    fake.patch(
        Kind::Job,
        "default",
        "a",
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await
    .unwrap();
    assert!(matches!(
        fake.delete_at(Kind::Job, "default", "a", &current).await,
        Err(ClientError::Conflict(_))
    ));
    assert!(fake.object(Kind::Job, "default", "a").is_some());
    let now = fake.object(Kind::Job, "default", "a").unwrap();
    fake.delete_at(Kind::Job, "default", "a", &rv(&now).to_string())
        .await
        .unwrap();
    assert!(fake.object(Kind::Job, "default", "a").is_none());
}
