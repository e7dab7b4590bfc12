//! Bridge networking: a `network.mode: bridge` allocation runs in a namespace of its own on the
//! `caravan` bridge, its host port forwarded to the port it listens on inside (`to`); once it
//! stops — before and after its agent was killed with -9 and restarted — no namespace, veth,
//! iptables rule naming it or address lease is left. An `oci` busybox task serves HTTP; the only
//! traffic the test sends goes to loopback. Needs root, the CNI plugins and iptables.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::cluster::field;
use serde_json::{Value, json};

use super::{ports_of, running, wait_answers};
use crate::deployments::Api;

/// How long teardown may take once the allocation is stopped.
const TEARDOWN: Duration = Duration::from_secs(60);

const CNI_PLUGINS: [&str; 5] = ["bridge", "host-local", "portmap", "firewall", "loopback"];

/// Why this machine cannot run the test, if it cannot.
fn skip_reason() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    });
    if !root {
        return Some("bridge networking needs root".into());
    }
    if let Some(missing) = CNI_PLUGINS
        .iter()
        .find(|p| !Path::new("/usr/lib/cni").join(p).is_file())
    {
        return Some(format!(
            "the CNI plugin /usr/lib/cni/{missing} is missing (containernetworking-plugins)"
        ));
    }
    if Command::new("iptables-save").output().is_err() {
        return Some("iptables is not installed".into());
    }
    None
}

/// A dev agent on loopback whose image store (`images`) holds busybox.
fn start(name: &str, images: &Path) -> Sandbox {
    let node = Sandbox::builder()
        .name(name)
        .client()
        .arg("--network-interface")
        .arg("lo")
        .env("CARAVAN_IMAGE_DIR", images.to_str().unwrap())
        .start()
        .unwrap_or_else(|e| panic!("failed to start the dev agent: {e:#}"));
    caravan_e2e::images::import_busybox(&node, images);
    node
}

/// A service job whose bridge-mode busybox serves `/local` on port 8080 inside its namespace,
/// the page holding the port variables it was given.
fn bridge_job(name: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "groups": [{
                "name": "g",
                "network": {"mode": "bridge", "ports": [{"label": "http", "to": 8080}]},
                "tasks": [{
                    "name": "t",
                    "driver": "oci",
                    "config": {
                        "image": "busybox",
                        "command": "sh",
                        "args": ["-c", "echo \"$NOMAD_PORT_http $NOMAD_HOST_PORT_http $NOMAD_IP_http\" > /local/index.html && exec httpd -f -p 8080 -h /local"]
                    },
                    "resources": {"cpu": 50, "memoryMB": 32},
                    "killTimeout": "1s"
                }]
            }]
        }
    })
}

/// The body `GET /index.html` on `127.0.0.1:port` answers.
fn page(port: u16) -> String {
    let mut stream = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_secs(5),
    )
    .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_string())
        .unwrap_or_default()
}

/// The veth interfaces attached to the `caravan` bridge.
fn bridge_veths() -> BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", "caravan"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// What is left of allocation `uid`'s network, described; empty when nothing is.
fn traces(uid: &str, veths: &BTreeSet<String>) -> Vec<String> {
    let mut left = Vec::new();
    let netns = Path::new("/run/caravan/netns").join(uid);
    if netns.exists() {
        left.push(format!("the namespace {}", netns.display()));
    }
    let still: Vec<_> = bridge_veths().intersection(veths).cloned().collect();
    if !still.is_empty() {
        left.push(format!("the veths {still:?}"));
    }
    let rules = Command::new("iptables-save").output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout);
    let named: Vec<_> = rules.lines().filter(|l| l.contains(uid)).collect();
    if !named.is_empty() {
        left.push(format!("the iptables rules {named:#?}"));
    }
    let leases = Path::new("/var/lib/cni/networks/caravan");
    for lease in std::fs::read_dir(leases).into_iter().flatten().flatten() {
        if std::fs::read_to_string(lease.path()).is_ok_and(|t| t.contains(uid)) {
            left.push(format!("the lease {}", lease.path().display()));
        }
    }
    left
}

/// Runs `job` until it answers through its host port; its uid, host port, and the veths it
/// added to the bridge.
async fn run_until_it_answers(api: &Api<'_>, job: &str) -> (String, u16, BTreeSet<String>) {
    let before = bridge_veths();
    api.submit(&format!("{job}.yaml"), &bridge_job(job));
    let allocs = api
        .wait_allocs(job, "the bridge allocation runs", |a| a.iter().any(running))
        .await;
    let alloc = allocs.iter().find(|a| running(a)).unwrap();
    let uid = field(alloc, "/metadata/uid").to_string();
    let ports = ports_of(alloc);
    assert_eq!(ports.len(), 1, "{alloc:#}");
    let host_port = ports[0].1;
    assert_ne!(host_port, 8080, "the host port is a dynamic one");
    wait_answers(host_port).await;
    let body = tokio::task::spawn_blocking(move || page(host_port))
        .await
        .unwrap();
    assert_eq!(
        body,
        format!("8080 {host_port} 127.0.0.1"),
        "the port variables"
    );
    assert!(
        Path::new("/run/caravan/netns").join(&uid).exists(),
        "the allocation's namespace is mounted"
    );
    let veths: BTreeSet<String> = bridge_veths().difference(&before).cloned().collect();
    assert_eq!(veths.len(), 1, "one veth on the bridge: {veths:?}");
    assert!(!traces(&uid, &BTreeSet::new()).is_empty());
    (uid, host_port, veths)
}

async fn stop_and_check_nothing_is_left(
    api: &Api<'_>,
    job: &str,
    uid: &str,
    veths: &BTreeSet<String>,
) {
    api.caravan(&["job", "stop", job, "--detach"])
        .assert_success();
    api.wait_allocs(job, "the allocation stopped", |a| {
        a.iter()
            .all(|a| field(a, "/status/clientStatus") == "complete")
    })
    .await;
    let mut left = Vec::new();
    let done = caravan_e2e::wait_until(TEARDOWN, "the allocation network is torn down", || {
        left = traces(uid, veths);
        left.is_empty()
    });
    assert!(done.is_ok(), "left behind: {left:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_allocation_answers_on_its_host_port_and_leaves_nothing_behind() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let images = tempfile::Builder::new()
        .prefix("caravan-e2e-images-")
        .tempdir()
        .unwrap();
    let mut node = start("bridge", images.path());
    let http = caravan_e2e::http::client();

    {
        let api = Api::new(&node, &http);
        let (uid, _, veths) = run_until_it_answers(&api, "web").await;
        stop_and_check_nothing_is_left(&api, "web", &uid, &veths).await;
    }

    // A killed agent keeps the running allocation and its namespace; the restarted one tears
    // them down when the allocation stops.
    let (uid, host_port, veths) = {
        let api = Api::new(&node, &http);
        run_until_it_answers(&api, "again").await
    };
    node.kill_9();
    node.restart().unwrap();
    wait_answers(host_port).await;
    let api = Api::new(&node, &http);
    stop_and_check_nothing_is_left(&api, "again", &uid, &veths).await;
}
