//! Host ports: dynamic ports differ on one node and each allocation answers on its own; a
//! static port held by one job keeps a second job asking for it blocked, with the reason, until
//! the first stops.

use std::time::{Duration, Instant};

use caravan_e2e::cluster::field;
use caravan_e2e::sandbox::free_port;
use serde_json::{Value, json};

use super::{http_job, ports_of, running, wait_answers};
use crate::deployments::{Api, dev};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_ports_differ_and_each_allocation_answers_on_its_own() {
    let server = dev("ports-dynamic");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    api.submit(
        "web.yaml",
        &http_job("web", 2, json!({"ports": [{"label": "http"}]})),
    );

    let allocs = api
        .wait_allocs("web", "both allocations run", |a| {
            a.iter().filter(|a| running(a)).count() == 2
        })
        .await;
    let mut ports: Vec<u16> = allocs
        .iter()
        .map(|a| {
            let ports = ports_of(a);
            assert_eq!(ports.len(), 1, "{a:#}");
            assert_eq!(ports[0].0, "http");
            ports[0].1
        })
        .collect();
    ports.sort_unstable();
    assert_ne!(
        ports[0], ports[1],
        "two allocations on one node got one port"
    );
    for port in &ports {
        assert!(
            (20000..=32000).contains(port),
            "{port} is outside the dynamic range"
        );
        wait_answers(*port).await;
    }
    for alloc in &allocs {
        let ip = alloc
            .pointer("/spec/allocatedResources/shared/ports/0/hostIp")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(!ip.is_empty(), "the port names its host address: {alloc:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_static_port_blocks_a_second_job_until_the_first_stops() {
    let server = dev("ports-static");
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    let port = free_port().expect("a free port");
    let network = json!({"ports": [{"label": "http", "static": port}]});
    api.submit("first.yaml", &http_job("first", 1, network.clone()));
    api.wait_allocs("first", "the first job runs", |a| a.iter().any(running))
        .await;
    wait_answers(port).await;

    api.submit("second.yaml", &http_job("second", 1, network));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let evals = api
            .list_of_job("evaluations", "second")
            .await
            .map(|(items, _)| items)
            .unwrap_or_default();
        let blocked = evals
            .iter()
            .any(|e| field(e, "/status/status") == "blocked");
        let why = evals.iter().any(|e| {
            e.pointer("/status/failedGroupAllocs/g/dimensionExhausted")
                .and_then(|d| d.get("network: port collision"))
                .is_some()
        });
        if blocked && why {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no blocked evaluation saying why: {:#}",
            Value::from(evals)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = api.caravan(&["job", "status", "second"]);
    out.assert_success();
    assert!(
        out.stdout.contains("network: port collision"),
        "job status says why nothing was placed:\n{}",
        out.stdout
    );
    assert!(api.allocs("second").await.is_empty());

    api.caravan(&["job", "stop", "--detach", "first"])
        .assert_success();
    let allocs = api
        .wait_allocs("second", "the second job runs once the port is free", |a| {
            a.iter().any(running)
        })
        .await;
    assert_eq!(ports_of(&allocs[0]), [("http".to_string(), port)]);
    wait_answers(port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_lands_on_the_host_network_it_names() {
    let server = caravan_e2e::Sandbox::builder()
        .name("host-networks")
        .client()
        .arg("--host-network")
        .arg("local=lo")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"));
    let http = caravan_e2e::http::client();
    let api = Api::new(&server, &http);
    let network = json!({"ports": [{"label": "http", "hostNetwork": "local"}]});
    api.submit("local.yaml", &http_job("local", 1, network));
    let allocs = api
        .wait_allocs("local", "the allocation runs", |a| a.iter().any(running))
        .await;
    assert_eq!(
        field(&allocs[0], "/spec/allocatedResources/shared/ports/0/hostIp"),
        "127.0.0.1",
        "{:#}",
        allocs[0]
    );
    wait_answers(ports_of(&allocs[0])[0].1).await;

    // No node has a host network `public`: nothing is placed, and the evaluation says why.
    let network = json!({"ports": [{"label": "http", "hostNetwork": "public"}]});
    api.submit("public.yaml", &http_job("public", 1, network));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let evals = api
            .list_of_job("evaluations", "public")
            .await
            .map(|(items, _)| items)
            .unwrap_or_default();
        let why = evals.iter().any(|e| {
            e.pointer("/status/failedGroupAllocs/g/dimensionExhausted")
                .and_then(|d| d.get("network: host network not found"))
                .is_some()
        });
        if why {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no evaluation saying why: {:#}",
            Value::from(evals)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(api.allocs("public").await.is_empty());
}
