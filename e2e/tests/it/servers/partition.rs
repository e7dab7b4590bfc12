//! A partitioned minority, in its own network namespace.

use caravan_e2e::Sandbox;
use caravan_e2e::tls::Certs;

use super::Servers;

/// Runs curl inside network namespace `netns`: the HTTP code of `method url` with `body`,
/// over mutual TLS with `certs`' CLI certificate.
fn curl_in(certs: &Certs, netns: &str, method: &str, url: &str, body: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("ip");
    cmd.args([
        "netns", "exec", netns, "curl", "-s", "-m", "20", "-X", method,
    ]);
    let (cert, key) = certs.pair("cli");
    cmd.arg("--cacert")
        .arg(certs.ca())
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key);
    cmd.args(["-o", "/dev/null", "-w", "%{http_code}"]);
    if let Some(body) = body {
        cmd.args(["-H", "content-type: application/json", "-d", body]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_minority_refuses_writes_and_rejoins_when_healed() {
    // Declared first, dropped last: the servers stop before their namespaces go.
    let lan = caravan_e2e::netns::Lan::create(3).expect("network namespaces (needs root)");
    // With mutual TLS: the servers' certificate names their addresses in the namespaces.
    let dir = tempfile::tempdir().unwrap();
    let ips: Vec<std::net::IpAddr> = (0..3).map(|i| lan.ip(i).into()).collect();
    let certs = Certs::create_for(dir.path(), &ips);
    let servers = (0..3)
        .map(|i| {
            Sandbox::builder()
                .name(&format!("partition-s{i}"))
                .ready_path("/healthz")
                .tls(&certs)
                .netns(&lan.netns(i), lan.ip(i))
                .arg("--name")
                .arg(&format!("s{i}"))
                .arg("--gossip-addr")
                .arg(&format!("{}:4648", lan.ip(i)))
                .arg("--join")
                .arg(&format!("{}:4648", lan.ip(0)))
                .arg("--bootstrap-expect")
                .arg("3")
                .arg("--raft-election-timeout")
                .arg("200ms")
                .start()
                .unwrap_or_else(|e| panic!("server s{i} did not start: {e:#}"))
        })
        .collect();
    let cluster = Servers {
        servers,
        http: certs.reqwest(Some("cli")),
    };
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    let minority = (leader + 1) % 3;
    let majority: Vec<usize> = (0..3).filter(|i| *i != minority).collect();

    lan.cut(minority).unwrap();
    let mut acked = Vec::new();
    for n in 0..10 {
        let name = format!("during-{n}");
        let through = majority[n % 2];
        cluster
            .create_namespace(through, &name)
            .await
            .unwrap_or_else(|e| panic!("the majority refused {name} through {through}: {e}"));
        acked.push(name);
    }
    // The cut-off server refuses writes (it reaches no leader) and has none of the majority's.
    let ns = lan.netns(minority);
    let base = cluster.servers[minority].base_url();
    let body =
        r#"{"apiVersion":"caravan.dev/v1","kind":"Namespace","metadata":{"name":"minority"}}"#;
    let code = curl_in(
        &certs,
        &ns,
        "POST",
        &format!("{base}/apis/caravan.dev/v1/namespaces"),
        Some(body),
    );
    assert_eq!(code, "503", "a write through the partitioned minority");
    let code = curl_in(
        &certs,
        &ns,
        "GET",
        &format!("{base}/apis/caravan.dev/v1/namespaces/during-0?resourceVersion=0"),
        None,
    );
    assert_eq!(
        code, "404",
        "the minority's replica cannot have the majority's writes"
    );

    // Healed: it rejoins and catches up; the refused write never happened.
    lan.heal(minority).unwrap();
    cluster.wait_holds(minority, &acked).await;
    let all = cluster.local_namespaces(majority[0]).await;
    assert!(!all.contains(&"minority".to_string()), "{all:?}");
    cluster.agreed_leader(&[0, 1, 2]).await;
}
