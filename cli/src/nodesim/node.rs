//! A simulated node's identity and the Node object it registers, built by the real agent's own
//! functions (`caravan_nodeagent::agent::node`) from a synthetic fingerprint. Pure.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use caravan_nodeagent::agent::ClientConfig;
use caravan_nodeagent::agent::node::{node_object, node_status};
use caravan_nodeagent::driver::Driver as _;
use caravan_nodeagent::driver::mock::MockDriver;
use caravan_nodeagent::fingerprint::Fingerprint;
use caravan_schemas::node::{NodeAddress, NodeNetwork, NodeResources};
use serde_json::Value;

/// Port the agent API would listen on (Nomad's client port).
const AGENT_PORT: u16 = 4647;
/// Values of the `rack` meta key, spread over the nodes in turn.
pub const RACKS: usize = 10;

/// The resources every simulated node offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub cpu_mhz: u64,
    pub cores: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
}

/// Who one simulated node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    /// A stable id derived from the name, so a restarted simulator registers the same nodes.
    pub id: String,
    pub datacenter: String,
    /// `r0` … `r9`, in the node's `meta.rack`.
    pub rack: String,
    /// An address in 198.18.0.0/15 (the benchmarking range), one per node.
    pub ip: String,
}

/// The `index`-th node of a simulator whose nodes are named `<prefix>-<index>`.
pub fn identity(prefix: &str, index: usize, datacenters: &[String]) -> Identity {
    let name = format!("{prefix}-{index:05}");
    let datacenter = datacenters
        .get(index % datacenters.len().max(1))
        .cloned()
        .unwrap_or_else(|| "dc1".into());
    let host = u32::try_from(index).unwrap_or(u32::MAX) % (1 << 17);
    let ip = format!(
        "198.{}.{}.{}",
        18 + (host >> 16),
        (host >> 8) & 0xff,
        host & 0xff
    );
    Identity {
        id: stable_id(&name),
        rack: format!("r{}", index % RACKS),
        name,
        datacenter,
        ip,
    }
}

/// A UUID-shaped id hashed from `name`.
fn stable_id(name: &str) -> String {
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, name).hash(&mut h);
        h.finish()
    };
    let (a, b) = (half(1), half(2));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// What a real agent on such a machine would fingerprint.
pub fn fingerprint(node: &Identity, shape: &Shape) -> Fingerprint {
    let mut attributes = BTreeMap::new();
    let mhz_per_core = shape.cpu_mhz / u64::from(shape.cores.max(1));
    for (key, value) in [
        ("cpu.arch", "amd64".to_string()),
        ("cpu.numcores", shape.cores.to_string()),
        ("cpu.frequency", mhz_per_core.to_string()),
        ("cpu.totalcompute", shape.cpu_mhz.to_string()),
        ("cpu.modelname", "Simulated CPU".to_string()),
        (
            "memory.totalbytes",
            (shape.memory_mb * 1024 * 1024).to_string(),
        ),
        ("kernel.name", "linux".to_string()),
        ("kernel.version", "6.1.0".to_string()),
        ("kernel.arch", "x86_64".to_string()),
        ("os.name", "debian".to_string()),
        ("os.version", "12".to_string()),
        ("os.cgroups.version", "2".to_string()),
        ("unique.cgroup.mountpoint", "/sys/fs/cgroup".to_string()),
        ("unique.hostname", node.name.clone()),
        ("unique.network.ip-address", node.ip.clone()),
        ("unique.storage.volume", "/dev/sda1".to_string()),
        (
            "unique.storage.bytestotal",
            (shape.disk_mb * 1024 * 1024).to_string(),
        ),
        (
            "unique.storage.bytesfree",
            (shape.disk_mb * 1024 * 1024).to_string(),
        ),
    ] {
        attributes.insert(key.to_string(), value);
    }
    Fingerprint {
        hostname: node.name.clone(),
        attributes,
        resources: NodeResources {
            cpu: shape.cpu_mhz,
            cores: shape.cores,
            memory_mb: shape.memory_mb,
            disk_mb: shape.disk_mb,
            networks: vec![NodeNetwork {
                device: "eth0".into(),
                cidr: format!("{}/32", node.ip),
                ip: node.ip.clone(),
                mbits: Some(1000),
                ..Default::default()
            }],
            ..Default::default()
        },
        addresses: vec![
            NodeAddress {
                r#type: "Hostname".into(),
                address: node.name.clone(),
            },
            NodeAddress {
                r#type: "InternalIP".into(),
                address: node.ip.clone(),
            },
        ],
    }
}

/// The Node object and the status a real agent with only the mock driver would write.
#[derive(Clone, Debug, PartialEq)]
pub struct Registration {
    pub node: Value,
    pub status: Value,
}

/// The agent settings that shape the Node object.
fn config(servers: &str, node: &Identity) -> ClientConfig {
    let mut config = ClientConfig::new(servers, "/nonexistent/caravan-nodesim");
    config.name = Some(node.name.clone());
    config.datacenter = node.datacenter.clone();
    config.meta.insert("rack".into(), node.rack.clone());
    config.drivers = Some(vec!["mock".into()]);
    config
}

/// The registration of `node`, built as `caravan agent --client` builds its own.
pub fn registration(servers: &str, node: &Identity, shape: &Shape) -> Registration {
    let config = config(servers, node);
    let advertised = format!("{}:{AGENT_PORT}", node.ip);
    let mut drivers = BTreeMap::new();
    drivers.insert("mock".to_string(), MockDriver.fingerprint());
    Registration {
        // Simulated nodes do not authenticate (the simulator needs ACLs off): the hash is of
        // their id, a placeholder with the shape a real agent registers.
        node: node_object(
            &node.name,
            &node.id,
            &config,
            &advertised,
            &caravan_schemas::acl::secret_hash(&node.id),
        ),
        status: node_status(&fingerprint(node, shape), &node.id, &drivers, &config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            cpu_mhz: 8000,
            cores: 4,
            memory_mb: 16384,
            disk_mb: 100_000,
        }
    }

    #[test]
    fn identities_are_stable_and_spread_over_datacenters_and_racks() {
        let dcs = vec!["dc1".to_string(), "dc2".to_string()];
        let a = identity("sim", 3, &dcs);
        assert_eq!(a, identity("sim", 3, &dcs), "same index, same identity");
        assert_eq!(a.name, "sim-00003");
        assert_eq!((a.datacenter.as_str(), a.rack.as_str()), ("dc2", "r3"));
        assert_eq!(a.ip, "198.18.0.3");
        assert_eq!(identity("sim", 70_000, &dcs).ip, "198.19.17.112");
        let b = identity("sim", 4, &dcs);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 36);
        assert_eq!(identity("sim", 0, &[]).datacenter, "dc1");
    }

    #[test]
    fn the_registration_looks_like_a_real_agent_with_the_mock_driver() {
        let node = identity("sim", 7, &["dc1".to_string()]);
        let reg = registration("127.0.0.1:4646", &node, &shape());
        assert_eq!(reg.node["kind"], "Node");
        assert_eq!(reg.node["metadata"]["name"], "sim-00007");
        assert_eq!(
            reg.node["metadata"]["labels"]["caravan.dev/node-id"],
            node.id
        );
        assert_eq!(reg.node["spec"]["datacenter"], "dc1");
        assert_eq!(reg.node["spec"]["nodePool"], "default");
        assert_eq!(reg.node["spec"]["meta"]["rack"], "r7");
        assert_eq!(reg.node["spec"]["httpAddr"], "198.18.0.7:4647");
        let status = &reg.status;
        assert_eq!(status["resources"]["cpu"], 8000);
        assert_eq!(status["resources"]["memoryMB"], 16384);
        assert_eq!(status["attributes"]["kernel.name"], "linux");
        assert_eq!(status["attributes"]["cpu.arch"], "amd64");
        assert_eq!(status["attributes"]["driver.mock"], "1");
        assert_eq!(status["attributes"]["unique.node.id"], node.id);
        assert_eq!(status["drivers"]["mock"]["detected"], true);
        assert_eq!(status["drivers"]["mock"]["healthy"], true);
        assert!(
            status.get("status").is_none(),
            "the first heartbeat sets it"
        );
        assert_eq!(status["addresses"][1]["address"], "198.18.0.7");
    }
}
