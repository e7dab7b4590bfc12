//! Mutual TLS between three servers and two client agents: peers without a certificate from
//! the cluster's CA are refused by servers and node agents alike, the servers reach the node
//! agents over TLS (logs), and certificates reload on SIGHUP without a restart.

use std::time::{Duration, Instant};

use caravan_e2e::tls::Certs;
use caravan_e2e::{ClientAgent, Sandbox};
use serde_json::{Value, json};

use super::{DEADLINE, start_with};

/// Whether `client` gets any HTTP answer from `url` (a refused handshake gets none).
async fn answers(client: &reqwest::Client, url: &str) -> bool {
    client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok()
}

/// A reqwest client for a node agent's API: `certs`' server certificate, checking that the
/// agent presents `client.global.caravan`.
fn agent_client(certs: &Certs) -> reqwest::Client {
    let config = certs
        .client_tls(Some("server"))
        .client_config(caravan_tls::Peer::Client {
            region: "global".into(),
        });
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_and_agents_refuse_peers_without_the_cas_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("ca"));
    let other = Certs::create(&dir.path().join("other"));
    let cluster = start_with("tls", &["s1", "s2", "s3"], Some(&certs), |_| Vec::new());
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let clients: Vec<ClientAgent> = ["c1", "c2"]
        .iter()
        .enumerate()
        .map(|(i, name)| ClientAgent::start(&cluster.servers[i], name, &[]).unwrap())
        .collect();
    let mut agents: Vec<String> = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while agents.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the clients did not register over TLS:\n{}\n{}",
            clients[0].logs(),
            clients[1].logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        agents = cluster
            .get(leader, "/apis/caravan.dev/v1/nodes")
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|n| n["status"]["status"] == "ready")
            .filter_map(|n| n["spec"]["httpAddr"].as_str().map(str::to_string))
            .collect();
    }

    // A task's output comes back through a server, which reaches the agent over TLS.
    let job = json!({
        "apiVersion": "caravan.dev/v1", "kind": "Job",
        "metadata": {"name": "hello"},
        "spec": {"type": "batch", "groups": [{"name": "g", "tasks": [{
            "name": "t", "driver": "raw_exec",
            "config": {"command": "/bin/echo", "args": ["hello over tls"]},
            "resources": {"cpu": 10, "memoryMB": 8}}]}]}
    });
    let jobs = cluster.servers[1].url("/apis/caravan.dev/v1/namespaces/default/jobs");
    caravan_e2e::http::create(&cluster.http, &jobs, &job).await;
    let deadline = Instant::now() + DEADLINE;
    let alloc = loop {
        let allocs = cluster
            .get(
                leader,
                "/apis/caravan.dev/v1/namespaces/default/allocations",
            )
            .await
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default();
        if let Some(done) = allocs
            .iter()
            .find(|a| a["status"]["clientStatus"] == "complete")
        {
            break done["metadata"]["name"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the job never completed: {allocs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let logs = cluster.servers[2].caravan(&["logs", &alloc]);
    logs.assert_success();
    assert!(logs.stdout.contains("hello over tls"), "{logs:?}");

    // Who is refused, by servers and by node agents.
    let url = |i: usize| cluster.servers[i].url("/apis/caravan.dev/v1/namespaces");
    let agent_url = |addr: &str| format!("https://{addr}/v1/client/fs/logs/x");
    let no_certificate = certs.reqwest(None);
    let foreign = other.reqwest(Some("cli"));
    for i in 0..3 {
        assert!(
            answers(&cluster.http, &url(i)).await,
            "server {i} refused the CLI certificate"
        );
        assert!(
            !answers(&no_certificate, &url(i)).await,
            "server {i} answered a client without a certificate"
        );
        assert!(
            !answers(&foreign, &url(i)).await,
            "server {i} answered a certificate of another CA"
        );
    }
    let agent = agent_client(&certs);
    let foreign_agent = agent_client(&other);
    let no_certificate_agent =
        reqwest::Client::builder()
            .use_preconfigured_tls(certs.client_tls(None).client_config(
                caravan_tls::Peer::Client {
                    region: "global".into(),
                },
            ))
            .build()
            .unwrap();
    for addr in &agents {
        assert!(
            answers(&agent, &agent_url(addr)).await,
            "agent {addr} refused a server"
        );
        assert!(
            !answers(&no_certificate_agent, &agent_url(addr)).await,
            "agent {addr} answered a client without a certificate"
        );
        assert!(
            !answers(&foreign_agent, &agent_url(addr)).await,
            "agent {addr} answered a certificate of another CA"
        );
    }
    // Plain HTTP gets nothing either.
    let plain = caravan_e2e::http::client();
    let plain_url = format!("http://{}/healthz", cluster.servers[0].addr());
    let answered = plain
        .get(&plain_url)
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert!(
        !matches!(answered, Ok(200)),
        "plain HTTP answered {answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_on_sighup_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(&dir.path().join("old"));
    let new = Certs::create(&dir.path().join("new"));
    let server = Sandbox::builder()
        .name("tls-reload")
        .tls(&certs)
        .start()
        .unwrap();
    let old_client = certs.reqwest(Some("cli"));
    let new_client = new.reqwest(Some("cli"));
    let namespaces = server.url("/apis/caravan.dev/v1/namespaces");
    assert!(answers(&old_client, &namespaces).await);
    assert!(!answers(&new_client, &namespaces).await);
    // A watch opened before the reload.
    let mut watch = caravan_e2e::http::WatchStream::open(
        &old_client,
        &format!("{namespaces}?watch=true&resourceVersion=0"),
    )
    .await
    .unwrap();

    // The operator replaces the CA, certificate and key in place, then sends SIGHUP.
    for name in [
        "caravan-agent-ca.pem",
        "global-server-caravan.pem",
        "global-server-caravan-key.pem",
    ] {
        std::fs::copy(new.dir.join(name), certs.dir.join(name)).unwrap();
    }
    let pid = server.pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + DEADLINE;
    while !answers(&new_client, &namespaces).await {
        assert!(
            Instant::now() < deadline,
            "the new certificates were never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !answers(&old_client, &namespaces).await,
        "the old CA still works"
    );
    assert_eq!(
        server.pid().unwrap().to_string(),
        pid,
        "the server restarted"
    );
    assert!(server.logs().contains("reloaded the TLS certificates"));

    // The connection opened before the reload carries on.
    let body = json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "after-reload"}});
    caravan_e2e::http::create(&new_client, &namespaces, &body).await;
    loop {
        let event: Value = watch
            .next_event(Duration::from_secs(10))
            .await
            .unwrap()
            .expect("the watch goes on");
        if event["object"]["metadata"]["name"] == "after-reload" {
            break;
        }
    }
}
