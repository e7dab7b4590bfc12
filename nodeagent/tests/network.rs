//! Allocation networks on this machine, through the real CNI plugins: a bridge network is made
//! (namespace, veth, address lease, iptables rules naming the allocation), made again without
//! change, and torn down without a trace, twice; a `none` network has loopback only. Needs root
//! and the plugins (`containernetworking-plugins`, `iptables`); skipped with the reason without.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use caravan_nodeagent::network::{self, Mode, NetworkSettings};
use caravan_nodeagent::state::LocalState;
use caravan_schemas::allocation::AllocatedPort;

fn skip_reason(settings: &NetworkSettings) -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("allocation networks need root".into());
    }
    for plugin in ["bridge", "host-local", "portmap", "firewall", "loopback"] {
        if !settings.cni_path.join(plugin).is_file() {
            return Some(format!("the CNI plugin {plugin} is not installed"));
        }
    }
    if Command::new("iptables-save").output().is_err() {
        return Some("iptables is not installed".into());
    }
    None
}

fn iptables_mentions(id: &str) -> bool {
    let out = Command::new("iptables-save").output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains(id)
}

fn lease_held(id: &str) -> bool {
    let dir = Path::new("/var/lib/cni/networks").join(network::cni::BRIDGE_NETWORK);
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            std::fs::read_to_string(e.path()).is_ok_and(|text| text.lines().next() == Some(id))
        })
}

fn in_netns(netns: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn bridge_and_none_networks_are_made_and_torn_down_without_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let settings = NetworkSettings {
        netns_dir: dir.path().join("netns"),
        ..NetworkSettings::default()
    };
    if let Some(reason) = skip_reason(&settings) {
        eprintln!("skipped: {reason}");
        return;
    }
    let local = LocalState::open(&dir.path().join("state.redb")).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let ports = [AllocatedPort {
        label: "http".into(),
        value: 28080,
        to: Some(8080),
        host_ip: Some("127.0.0.1".into()),
    }];
    let netns = network::up(&settings, &local, &id, Mode::Bridge, &ports)
        .await
        .unwrap();
    assert_eq!(netns, settings.netns_dir.join(&id));
    let links = in_netns(&netns, &["ip", "-o", "addr"]);
    assert!(
        links.contains("eth0") && links.contains("172.26."),
        "{links}"
    );
    assert!(links.contains("127.0.0.1"), "loopback is up: {links}");
    assert!(iptables_mentions(&id), "the rules name the allocation");
    assert!(lease_held(&id));
    // Made again (a restarted agent): kept as it is.
    let again = network::up(&settings, &local, &id, Mode::Bridge, &ports)
        .await
        .unwrap();
    assert_eq!(again, netns);
    assert!(local.network(&id).unwrap().is_some());

    // Gone at start: torn down, like after a runner ended.
    network::release_gone(&settings, &local, &BTreeSet::new()).await;
    assert!(!netns.exists(), "the namespace is gone");
    assert!(!iptables_mentions(&id), "no rule names the allocation");
    assert!(!lease_held(&id), "the address is released");
    assert!(local.network(&id).unwrap().is_none());
    network::down(&settings, &local, &id).await;

    let isolated = network::up(&settings, &local, &id, Mode::Isolated, &[])
        .await
        .unwrap();
    let links = in_netns(&isolated, &["ip", "-o", "link"]);
    assert!(!links.contains("eth0"), "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    network::down(&settings, &local, &id).await;
    assert!(!isolated.exists());
    assert!(local.network(&id).unwrap().is_none());
}
