//! Node fingerprinting, after Nomad's client fingerprinters: facts about the machine the
//! agent runs on, reported in the Node's status as attributes, resources and addresses.
//!
//! Every fact family lives in its own module with PURE parsers (file contents in, values
//! out) and a small `collect` that reads the system. A fact that cannot be read is left out
//! with a `tracing::debug!`; [`fingerprint`] fails only when the agent's settings ask for
//! what the machine does not have (a `--network-interface` without an IPv4 address). It does
//! blocking I/O (and may run `nvidia-smi` for up to a few seconds): call it from
//! `spawn_blocking` in async code.
//!
//! Attributes produced (Nomad's names unless noted):
//!
//! | attribute | value |
//! |---|---|
//! | `cpu.arch` | Go-style architecture as in Nomad (`amd64`, `arm64`, `386`, …) |
//! | `cpu.numcores` | online logical CPUs |
//! | `cpu.frequency` | MHz of one core |
//! | `cpu.totalcompute` | `cpu.numcores` × `cpu.frequency`, MHz |
//! | `cpu.modelname` | `model name` of `/proc/cpuinfo`, when present |
//! | `memory.totalbytes` | `MemTotal` of `/proc/meminfo`, bytes |
//! | `kernel.name` | `linux` (lower-cased `uname -s`) |
//! | `kernel.version` | `uname -r` |
//! | `kernel.arch` | `uname -m` (`x86_64`, `aarch64`, …) |
//! | `os.name`, `os.version` | `ID` and `VERSION_ID` of `/etc/os-release` |
//! | `unique.hostname` | host name |
//! | `unique.storage.volume` | source of the file system holding the data dir (`df`'s column) |
//! | `unique.storage.bytestotal`, `unique.storage.bytesfree` | size and space available to unprivileged users of that file system |
//! | `unique.network.ip-address` | first IPv4 address of the `default` host network: the `--network-interface`'s, else the default-route interface's, else `127.0.0.1` (see `network.rs`) |
//! | `os.cgroups.version` | `1` (v1 or hybrid) or `2` |
//! | `unique.cgroup.mountpoint` | cgroup root (`/sys/fs/cgroup`); Nomad dropped it in 1.7, kept here |
//! | `gpu.count` | Caravan's: number of NVIDIA GPUs listed by `nvidia-smi` |
//! | `gpu.<i>.model`, `gpu.<i>.memory` | Caravan's: name and memory (MiB) of GPU `i` |
//! | `devices.nvidia/gpu/<model>` | GPUs of that model: the device inventory the scheduler reads (Nomad's nvidia device name) |
//!
//! Resources: `cpu` = `cpu.totalcompute`, `cores` = `cpu.numcores`, `memory_mb` = MemTotal in
//! MiB, `disk_mb` = free space of the data dir's file system in MiB, `networks` = the IPv4
//! addresses of the chosen interface, the node's `default` host network (CIDR `ip/32` as in
//! Nomad, `mbits` from `/sys/class/net/<dev>/speed` when the link reports one), then one per
//! address of each named host network (`host_network` and `reserved_ports` set from its
//! block; see `network.rs`). The dynamic
//! port range and the reserved ports come from the agent's settings, not from here
//! (`agent/node.rs`).
//!
//! CPU frequency: the highest `cpu MHz` of `/proc/cpuinfo`; when absent (most ARM machines,
//! some VMs) `cpu0`'s `cpuinfo_max_freq`; when that is absent too, 1000 MHz per core is
//! assumed (`cpu::FALLBACK_MHZ`), so the node still offers a usable amount of CPU.
//!
//! Addresses: `Hostname` first, then one `InternalIP` per IPv4 address of the chosen interface.

mod cgroup;
mod cpu;
mod gpu;
mod host_networks;
mod memory;
mod mounts;
mod network;
mod node_id;
mod os;
mod storage;

use std::collections::BTreeMap;
use std::path::Path;

use caravan_schemas::node::{NodeAddress, NodeResources};

pub use network::{HostNetworkConfig, check_host_networks};
pub use node_id::{load_or_create_node_id, load_or_create_secret_id};

/// What the agent reports about its machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fingerprint {
    /// Host name of the machine; empty when it cannot be read.
    pub hostname: String,
    /// Node attributes, Nomad naming (`cpu.arch`, `kernel.name`, `unique.hostname`, …); see
    /// the module documentation for the full list.
    pub attributes: BTreeMap<String, String>,
    /// Total resources: CPU MHz, cores, memory MB, free disk MB of the data dir, networks.
    pub resources: NodeResources,
    /// `Hostname`, then the `InternalIP` addresses.
    pub addresses: Vec<NodeAddress>,
}

impl Fingerprint {
    fn set(&mut self, key: impl Into<String>, value: impl ToString) {
        self.attributes.insert(key.into(), value.to_string());
    }
}

/// What the agent's settings ask of the fingerprint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FingerprintSettings {
    /// The interface whose IPv4 addresses form the node's `default` host network (Nomad's
    /// `network_interface`; a loopback interface may be named). `None` chooses one.
    pub network_interface: Option<String>,
    /// Named host networks (Nomad's client `host_network` blocks), checked with
    /// [`check_host_networks`]; one named `default` replaces the `default` network's choice.
    pub host_networks: Vec<HostNetworkConfig>,
}

/// Fingerprints this machine; `data_dir` is the agent's data directory (it need not exist yet:
/// the nearest existing ancestor is measured). Missing facts are left out; fails only when
/// `settings.network_interface` has no IPv4 address.
pub fn fingerprint(data_dir: &Path, settings: &FingerprintSettings) -> anyhow::Result<Fingerprint> {
    let mut fp = Fingerprint::default();
    os::collect(&mut fp);
    cpu::collect(&mut fp);
    memory::collect(&mut fp);
    storage::collect(&mut fp, data_dir);
    network::collect(
        &mut fp,
        settings.network_interface.as_deref(),
        &settings.host_networks,
    )
    .map_err(anyhow::Error::msg)?;
    cgroup::collect(&mut fp);
    gpu::collect(&mut fp);
    Ok(fp)
}

/// Checks that the interface `name` (`--network-interface`) has an IPv4 address, so that an
/// agent can refuse it before it starts anything; [`fingerprint`] checks it again.
pub fn check_network_interface(name: &str) -> anyhow::Result<()> {
    network::check_interface(name).map_err(anyhow::Error::msg)
}

/// Reads a whole text file, or logs why not at debug level.
fn read_text(path: impl AsRef<Path>) -> Option<String> {
    let path = path.as_ref();
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) => {
            tracing::debug!(path = %path.display(), %err, "fingerprint: cannot read");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_this_machine_has_the_basics() {
        let dir = tempfile::tempdir().unwrap();
        let fp = fingerprint(
            &dir.path().join("not-yet-created"),
            &FingerprintSettings::default(),
        )
        .unwrap();
        assert!(fp.resources.cores >= 1, "{fp:#?}");
        assert!(fp.resources.cpu >= 1, "{fp:#?}");
        assert!(fp.resources.memory_mb > 0, "{fp:#?}");
        assert!(!fp.hostname.is_empty(), "{fp:#?}");
        let attr = |k: &str| fp.attributes.get(k).map(String::as_str);
        assert_eq!(attr("kernel.name"), Some("linux"));
        assert_eq!(attr("unique.hostname"), Some(fp.hostname.as_str()));
        assert!(attr("cpu.arch").is_some_and(|a| !a.is_empty()));
        assert!(attr("memory.totalbytes").is_some_and(|m| m.parse::<u64>().unwrap() > 0));
        assert!(attr("unique.storage.bytestotal").is_some());
        assert_eq!(fp.addresses[0].r#type, "Hostname");
        assert_eq!(fp.addresses[0].address, fp.hostname);
        // Every machine has an address to offer ports on, if only the loopback one.
        let ip = attr("unique.network.ip-address").unwrap();
        assert_eq!(fp.resources.networks[0].ip, ip);
        assert_eq!(fp.addresses[1].address, ip);
    }

    #[test]
    fn fingerprint_the_named_loopback_interface() {
        let dir = tempfile::tempdir().unwrap();
        let lo = FingerprintSettings {
            network_interface: Some("lo".into()),
            ..Default::default()
        };
        let fp = fingerprint(dir.path(), &lo).unwrap();
        assert_eq!(fp.attributes["unique.network.ip-address"], "127.0.0.1");
        assert!(fp.resources.networks.iter().all(|n| n.device == "lo"));
        let missing = FingerprintSettings {
            network_interface: Some("caravan-no-such0".into()),
            ..Default::default()
        };
        let err = fingerprint(dir.path(), &missing).unwrap_err().to_string();
        assert!(
            err.contains("\"caravan-no-such0\" has no IPv4 address"),
            "{err}"
        );
        assert!(check_network_interface("lo").is_ok());
        assert!(check_network_interface("caravan-no-such0").is_err());
    }

    #[test]
    fn fingerprint_named_host_networks() {
        let dir = tempfile::tempdir().unwrap();
        let settings = FingerprintSettings {
            network_interface: None,
            host_networks: vec![
                HostNetworkConfig {
                    name: "local".into(),
                    interface: Some("lo".into()),
                    reserved_ports: Some("22".into()),
                    ..Default::default()
                },
                HostNetworkConfig {
                    name: "loopback".into(),
                    cidr: Some("127.0.0.0/8".into()),
                    ..Default::default()
                },
                // Matches nothing: a warning, not an error.
                HostNetworkConfig {
                    name: "missing".into(),
                    interface: Some("caravan-no-such0".into()),
                    ..Default::default()
                },
            ],
        };
        let fp = fingerprint(dir.path(), &settings).unwrap();
        let named = |name: &str| {
            fp.resources
                .networks
                .iter()
                .filter(|n| n.host_network.as_deref() == Some(name))
                .collect::<Vec<_>>()
        };
        let local = named("local");
        assert!(!local.is_empty(), "{fp:#?}");
        assert!(local.iter().all(|n| n.device == "lo"));
        assert!(
            local
                .iter()
                .all(|n| n.reserved_ports.as_deref() == Some("22"))
        );
        assert!(named("loopback").iter().any(|n| n.ip == "127.0.0.1"));
        assert!(named("missing").is_empty());
        // The default network is still there, first.
        assert_eq!(fp.resources.networks[0].host_network, None);
        assert_eq!(
            fp.resources.networks[0].ip,
            fp.attributes["unique.network.ip-address"]
        );
    }
}
