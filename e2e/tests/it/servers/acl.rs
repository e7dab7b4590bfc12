//! ACLs across a cluster: a token made through one server works on every server, and once
//! revoked stops working on all three within a second (each server compiles tokens from its
//! own replica).

use std::time::{Duration, Instant};

use caravan_e2e::http::client_with_token;

use super::{DEADLINE, start};

fn secret_of(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Secret ID"))
        .map(|s| s.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_working_on_every_server_within_a_second() {
    let mut cluster = start("acl3", &["s1", "s2", "s3"], |_| {
        vec!["--acl-enabled".into()]
    });
    // Bootstrap is open to anyone, once there is a leader.
    let deadline = Instant::now() + DEADLINE;
    let management = loop {
        let out = cluster.servers[1].caravan(&["acl", "bootstrap"]);
        if out.success() {
            break secret_of(&out.stdout).expect("a secret");
        }
        assert!(Instant::now() < deadline, "no bootstrap: {}", out.stderr);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cluster.http = client_with_token(&management, None);
    cluster.agreed_leader(&[0, 1, 2]).await;

    let made = cluster.servers[2].caravan(&[
        "--token",
        &management,
        "acl",
        "token",
        "create",
        "--name",
        "ops",
        "--type",
        "management",
    ]);
    made.assert_success();
    let secret = secret_of(&made.stdout).unwrap();
    let accessor = made
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Accessor ID"))
        .unwrap()
        .trim()
        .to_string();
    let token = client_with_token(&secret, None);
    // Each server answers from its own replica (`resourceVersion=0` is never forwarded).
    let local =
        |i: usize| cluster.servers[i].url("/apis/caravan.dev/v1/namespaces?resourceVersion=0");
    let code = |url: String| {
        let token = token.clone();
        async move {
            token
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    for i in 0..3 {
        let deadline = Instant::now() + DEADLINE;
        while code(local(i)).await != 200 {
            assert!(Instant::now() < deadline, "server {i} never took the token");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    cluster.servers[0]
        .caravan(&["--token", &management, "acl", "token", "delete", &accessor])
        .assert_success();
    let revoked = Instant::now();
    for i in 0..3 {
        while code(local(i)).await != 401 {
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "server {i} still takes the revoked token after {:?}",
                revoked.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
