//! The registry, the check tasks and the writer together, against the fake client and real
//! loopback sockets.

use std::time::Duration;

use caravan_runtime::fake::{FakeClient, wait_for};
use caravan_schemas::service_registration::ServiceRegistrationSpec;
use caravan_schemas::{Kind, ObjectMeta, ServiceRegistration};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::build::{CheckDef, CheckKind};
use super::check_state::RestartRule;
use super::*;

fn key(name: &str) -> AllocKey {
    AllocKey {
        namespace: "prod".into(),
        name: name.into(),
    }
}

fn registration(alloc: &str, node: &str) -> ServiceRegistration {
    ServiceRegistration {
        api_version: "caravan.dev/v1".into(),
        kind: "ServiceRegistration".into(),
        metadata: ObjectMeta {
            name: Some(format!("{alloc}-web")),
            namespace: Some("prod".into()),
            ..Default::default()
        },
        spec: ServiceRegistrationSpec {
            service_name: "web".into(),
            job_name: "j".into(),
            group_name: "g".into(),
            task_name: Some("web".into()),
            alloc_name: alloc.into(),
            node_name: node.into(),
            address: "127.0.0.1".into(),
            port: 1,
            ..Default::default()
        },
        status: None,
    }
}

fn wanted(alloc: &str, checks: Vec<CheckDef>) -> Wanted {
    Wanted {
        registration: registration(alloc, "n1"),
        task: Some("web".into()),
        run: Some("t0".into()),
        checks,
    }
}

fn tcp(name: &str, port: u16, initial: CheckStatus) -> CheckDef {
    CheckDef {
        name: name.into(),
        kind: CheckKind::Tcp {
            address: "127.0.0.1".into(),
            port: u32::from(port),
        },
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        initial,
        success_before_passing: 0,
        failures_before_critical: 0,
        restart: None,
    }
}

/// A port nobody listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn stored(client: &FakeClient, name: &str) -> Option<Value> {
    client.object(Kind::ServiceRegistration, "prod", name)
}

#[tokio::test]
async fn registrations_are_created_checked_and_deleted() {
    let client = FakeClient::new();
    let services = Services::new();
    let writer = tokio::spawn(services.clone().run(client.clone(), "n1".into()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let a = key("a");
    services.open_alloc(a.clone());
    let (tx, mut events) = mpsc::unbounded_channel();
    services.sync_alloc(
        &a,
        vec![wanted("a", vec![tcp("up", port, CheckStatus::Critical)])],
        &tx,
    );
    wait_for("the registration passes", || {
        stored(&client, "a-web").is_some_and(|o| o["status"]["status"] == "passing")
    })
    .await;
    let object = stored(&client, "a-web").unwrap();
    let check = &object["status"]["checks"][0];
    assert_eq!(check["name"], "up");
    assert_eq!(check["type"], "tcp");
    assert_eq!(check["status"], "passing");
    assert_eq!(
        check["output"],
        format!("TCP connect 127.0.0.1:{port}: Success")
    );
    assert!(check["timestamp"].is_string());
    assert_eq!(object["spec"]["nodeName"], "n1");
    assert_eq!(events.recv().await, Some(ServiceEvent::ChecksChanged));
    assert!(services.alloc_checks(&a)[0].passing_since.is_some());

    services.sync_alloc(&a, Vec::new(), &tx);
    wait_for("the registration is deleted", || {
        stored(&client, "a-web").is_none()
    })
    .await;
    wait_for("nothing is left to write", || services.backlog() == 0).await;
    writer.abort();
}

#[tokio::test]
async fn a_registration_is_created_with_its_checks_initial_status() {
    let client = FakeClient::new();
    let services = Services::new();
    let writer = tokio::spawn(services.clone().run(client.clone(), "n1".into()));
    let mut held = tcp("down", closed_port().await, CheckStatus::Warning);
    held.failures_before_critical = 1000;
    let (tx, _events) = mpsc::unbounded_channel();
    services.sync_alloc(&key("a"), vec![wanted("a", vec![held])], &tx);
    wait_for("the registration exists", || {
        stored(&client, "a-web").is_some()
    })
    .await;
    let object = stored(&client, "a-web").unwrap();
    assert_eq!(object["status"]["status"], "warning");
    assert_eq!(object["status"]["checks"][0]["status"], "warning");
    writer.abort();
}

#[tokio::test]
async fn an_unhealthy_check_asks_for_its_tasks_restart() {
    let services = Services::new();
    let mut failing = tcp("down", closed_port().await, CheckStatus::Critical);
    failing.restart = Some(RestartRule {
        limit: 2,
        grace: Duration::ZERO,
        ignore_warnings: false,
    });
    let (tx, mut events) = mpsc::unbounded_channel();
    services.sync_alloc(&key("a"), vec![wanted("a", vec![failing])], &tx);
    let restart = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await {
                Some(ServiceEvent::ChecksChanged) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("a restart is asked");
    assert_eq!(
        restart,
        Some(ServiceEvent::Restart {
            task: Some("web".into()),
            run: Some("t0".into()),
            reason: "healthcheck: check \"down\" unhealthy".into()
        })
    );
    // No longer wanted: its check stops.
    services.close_alloc(&key("a"));
    while events.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.try_recv().is_err(), "the check task was stopped");
}

#[tokio::test]
async fn the_writer_deletes_what_no_runner_wants_and_keeps_what_a_restored_one_may() {
    let client = FakeClient::new();
    for (alloc, node) in [("gone", "n1"), ("restored", "n1"), ("elsewhere", "n2")] {
        client.seed(
            Kind::ServiceRegistration,
            serde_json::to_value(registration(alloc, node)).unwrap(),
        );
    }
    let services = Services::new();
    services.open_alloc(key("restored"));
    let writer = tokio::spawn(services.clone().run(client.clone(), "n1".into()));
    wait_for("the orphan is deleted", || {
        stored(&client, "gone-web").is_none()
    })
    .await;
    assert!(
        stored(&client, "restored-web").is_some(),
        "held until its runner says"
    );
    assert!(stored(&client, "elsewhere-web").is_some(), "another node's");
    // The restored runner wants it still: adopted, its status written.
    let (tx, _events) = mpsc::unbounded_channel();
    services.sync_alloc(&key("restored"), vec![wanted("restored", Vec::new())], &tx);
    wait_for("the status is written", || {
        stored(&client, "restored-web").is_some_and(|o| o["status"]["status"] == "passing")
    })
    .await;
    services.close_alloc(&key("restored"));
    wait_for("deleted once closed", || {
        stored(&client, "restored-web").is_none()
    })
    .await;
    writer.abort();
}
