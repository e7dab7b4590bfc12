//! Gossip encryption: servers sharing a key form a cluster; a server with another key, or with
//! none, never joins it (the cluster logs and counts its packets); keys rotate without a
//! restart, and a rotated keyring survives one.

use std::time::{Duration, Instant};

use caravan_e2e::Sandbox;
use caravan_e2e::sandbox::free_port;
use caravan_e2e::wait::wait_until_async;
use serde_json::Value;

use super::{DEADLINE, Servers, start};

/// Bytes 0 to 31, base64.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Bytes 32 to 63, base64.
const OTHER_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn encrypt(key: &str) -> Vec<String> {
    vec!["--encrypt".into(), key.into()]
}

impl Servers {
    /// The servers server `i`'s gossip knows: (name, status).
    async fn gossip_members(&self, i: usize) -> Vec<(String, String)> {
        let members = self
            .get(i, "/v1/agent/members")
            .await
            .and_then(|v| v["members"].as_array().cloned())
            .unwrap_or_default();
        let text = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
        let mut members: Vec<(String, String)> = members
            .iter()
            .map(|m| (text(m, "name"), text(m, "status")))
            .collect();
        members.sort();
        members
    }

    /// Waits until each of `servers` sees exactly `names`, alive.
    async fn wait_members(&self, servers: &[usize], names: &[&str]) {
        let want: Vec<(String, String)> = names
            .iter()
            .map(|n| (n.to_string(), "alive".to_string()))
            .collect();
        for &i in servers {
            let seen = wait_until_async(DEADLINE, &format!("server {i} sees {names:?}"), || {
                let want = want.clone();
                async move { self.gossip_members(i).await == want }
            })
            .await;
            if let Err(e) = seen {
                panic!(
                    "{e}: {:?}\n{}",
                    self.gossip_members(i).await,
                    self.servers[i].logs()
                );
            }
        }
    }

    /// `caravan_gossip_packets_dropped_total{reason}` of server `i`.
    async fn dropped(&self, i: usize, reason: &str) -> u64 {
        let text = match self.http.get(self.servers[i].url("/metrics")).send().await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(_) => return 0,
        };
        let series = format!("caravan_gossip_packets_dropped_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// A server joining through `seed` (a gossip address) with `extra` flags.
fn late_server(test: &str, name: &str, seed: &str, extra: &[String]) -> Sandbox {
    let mut builder = Sandbox::builder()
        .name(&format!("{test}-{name}"))
        .ready_path("/healthz")
        .arg("--name")
        .arg(name)
        .arg("--gossip-addr")
        .arg(&format!("127.0.0.1:{}", free_port().unwrap()))
        .arg("--join")
        .arg(seed)
        .arg("--raft-election-timeout")
        .arg("200ms");
    for arg in extra {
        builder = builder.arg(arg);
    }
    builder.start().unwrap()
}

async fn gossip_addr(cluster: &Servers, name: &str) -> String {
    cluster
        .get(0, "/v1/agent/members")
        .await
        .and_then(|v| {
            v["members"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == name)
                .and_then(|m| m["gossipAddr"].as_str().map(str::to_string))
        })
        .expect("the gossip address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_sharing_a_key_form_a_cluster_that_others_cannot_join() {
    let cluster = start("gossipkey", &["s1", "s2", "s3"], |_| encrypt(KEY));
    cluster.agreed_leader(&[0, 1, 2]).await;
    cluster.wait_members(&[0, 1, 2], &["s1", "s2", "s3"]).await;
    let seed = gossip_addr(&cluster, "s1").await;

    // Another key, and no key at all: both gossip to s1, which drops every packet.
    let wrong = late_server("gossipkey", "wrong", &seed, &encrypt(OTHER_KEY));
    let plain = late_server("gossipkey", "plain", &seed, &[]);
    wait_until_async(DEADLINE, "s1 drops 20 packets of each stranger", || async {
        cluster.dropped(0, "decrypt").await >= 20 && cluster.dropped(0, "plaintext").await >= 20
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.servers[0].logs()));
    let logs = cluster.servers[0].logs();
    assert!(
        logs.contains("failed to decrypt: wrong encryption key?"),
        "{logs}"
    );
    assert!(logs.contains("is not encrypted"), "{logs}");
    // Rate-limited: a warning per sender every 10 s at most, not one per packet.
    assert!(logs.matches("failed to decrypt").count() <= 3, "{logs}");
    // Neither ever became a member, on any side.
    for i in 0..3 {
        let names: Vec<String> = cluster
            .gossip_members(i)
            .await
            .into_iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(names, ["s1", "s2", "s3"], "server {i}");
    }
    let strangers = Servers {
        servers: vec![wrong, plain],
        http: cluster.http.clone(),
    };
    strangers.wait_members(&[0], &["wrong"]).await;
    strangers.wait_members(&[1], &["plain"]).await;
    // Keyring operations need encryption.
    let out = strangers.servers[1].caravan(&["operator", "gossip", "keyring", "list"]);
    out.assert_failure();
    out.assert_stderr_contains("not enabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_a_restart_and_the_keyring_survives_one() {
    let mut cluster = start("gossiprot", &["s1", "s2", "s3"], |_| encrypt(KEY));
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    cluster
        .create_namespace(leader, "before-rotation")
        .await
        .unwrap();
    let generated = cluster.servers[0].caravan(&["operator", "gossip", "keyring", "generate"]);
    generated.assert_success();
    let new_key = generated.stdout.trim().to_string();
    assert_eq!(new_key.len(), 44, "{new_key}");

    let keyring = |i: usize, args: &[&str]| {
        let mut full = vec!["operator", "gossip", "keyring"];
        full.extend_from_slice(args);
        cluster.servers[i].caravan(&full)
    };
    // Through different servers: each applies the change on all.
    keyring(1, &["install", &new_key]).assert_success();
    let listed = keyring(2, &["list"]);
    listed.assert_success();
    let row = |out: &str, key: &str| {
        out.lines()
            .find(|l| l.starts_with(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        row(&listed.stdout, &new_key).as_deref(),
        Some("3/3 0/3"),
        "{}",
        listed.stdout
    );
    assert_eq!(
        row(&listed.stdout, KEY).as_deref(),
        Some("3/3 3/3"),
        "{}",
        listed.stdout
    );
    keyring(2, &["use", &new_key]).assert_success();
    // The key in use cannot be removed.
    let refused = keyring(0, &["remove", &new_key]);
    refused.assert_failure();
    refused.assert_stderr_contains("primary");
    keyring(0, &["remove", KEY]).assert_success();
    let listed = keyring(0, &["list"]);
    listed.assert_success();
    assert_eq!(
        row(&listed.stdout, &new_key).as_deref(),
        Some("3/3 3/3"),
        "{}",
        listed.stdout
    );
    assert_eq!(row(&listed.stdout, KEY), None, "{}", listed.stdout);

    // Healthy on the new key alone: members alive, writes replicate.
    cluster.wait_members(&[0, 1, 2], &["s1", "s2", "s3"]).await;
    let leader = cluster.agreed_leader(&[0, 1, 2]).await;
    cluster
        .create_namespace(leader, "after-rotation")
        .await
        .unwrap();
    let names = ["before-rotation".to_string(), "after-rotation".to_string()];
    for i in 0..3 {
        cluster.wait_holds(i, &names).await;
    }

    // A server with only the new key joins and becomes a voter.
    let seed = gossip_addr(&cluster, "s1").await;
    let late = late_server("gossiprot", "s4", &seed, &encrypt(&new_key));
    cluster.servers.push(late);
    cluster
        .wait_members(&[0, 3], &["s1", "s2", "s3", "s4"])
        .await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let peers = cluster.peers(leader).await;
        if peers.len() == 4 && peers.iter().all(|p| p["voter"] == true) {
            break;
        }
        assert!(Instant::now() < deadline, "s4 is not a voter: {peers:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // s2 restarts with the old --encrypt flag: the keyring kept in its data dir wins.
    let kept = cluster.servers[1].data_dir().join("gossip.keyring");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    cluster.servers[1].restart().unwrap();
    cluster
        .wait_members(&[0, 1, 3], &["s1", "s2", "s3", "s4"])
        .await;
    let logs = cluster.servers[1].logs();
    assert!(logs.contains("the keyring wins"), "{logs}");
    cluster.wait_holds(1, &names).await;
}
