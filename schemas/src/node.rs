//! The `Node` kind: a client machine that runs allocations.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;
use crate::stable_hash::StableHasher;

/// A node: a machine running the Caravan agent in client mode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Versioned schema of this object: `caravan.dev/v1`.
    pub api_version: String,
    /// Kind of this object: `Node`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// Placement settings of the node.
    #[serde(default)]
    pub spec: NodeSpec,
    /// What the node reports: fingerprint, resources, health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
}

/// Whether the scheduler may place new allocations on a node: `eligible` or `ineligible`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchedulingEligibility {
    #[default]
    Eligible,
    Ineligible,
}

/// Placement settings of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    /// Datacenter of the node. Defaults to `dc1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// Node pool of the node. Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_pool: Option<String>,
    /// Class of the node, used to group similar nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class: Option<String>,
    /// Operator-set key/value metadata, usable in constraints as `${meta.key}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// `eligible` or `ineligible`. Defaults to `eligible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_eligibility: Option<SchedulingEligibility>,
    /// Drain in progress; absent when the node is not draining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainStrategy>,
    /// Address of the agent's HTTP API, e.g. `10.0.0.5:4646`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    /// Lowercase hex SHA-256 of the node's secret id, which its agent authenticates with
    /// when ACLs are enabled (the secret itself stays on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id_hash: Option<String>,
}

/// Whether `addr` may be a node's [`httpAddr`](NodeSpec::http_addr): exactly `HOST:PORT`,
/// HOST an IPv4 address, a bracketed IPv6 address (`[::1]`) or a DNS name (letters, digits,
/// `-` and `.`, at most 253 characters), PORT from 1 to 65535. No scheme, path, query,
/// userinfo or whitespace: the servers make the URL of the node's agent API of it
/// (`http://{addr}/…`), and anything more would let a node's registration steer their
/// requests elsewhere. The log proxy checks it again before it connects.
pub fn valid_http_addr(addr: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{addr:?} is not HOST:PORT (an IPv4 address, a bracketed IPv6 address or a DNS \
             name, and a port from 1 to 65535): {why}"
        ))
    };
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let Some((ip, port)) = rest.split_once("]:") else {
            return bad("an IPv6 address must be written [ADDRESS]:PORT");
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("the address in brackets is not an IPv6 address");
        }
        (None, port)
    } else {
        let Some((host, port)) = addr.rsplit_once(':') else {
            return bad("the port is missing");
        };
        (Some(host), port)
    };
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return bad("the port is not a number");
    }
    if !port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p)) {
        return bad("the port is out of range");
    }
    let Some(host) = host else {
        return Ok(());
    };
    if host.is_empty() {
        return bad("the host is missing");
    }
    if host.len() > 253 {
        return bad("the host is longer than 253 characters");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return bad("the host has characters other than letters, digits, '-' and '.'");
    }
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if numeric {
        if host.parse::<std::net::Ipv4Addr>().is_err() {
            return bad("the host is not an IPv4 address");
        }
        return Ok(());
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty() && label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-')
    });
    if !labels_ok {
        return bad("the host is not a DNS name");
    }
    Ok(())
}

/// How a node is drained.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainStrategy {
    /// Time allowed for migrations before remaining allocations are stopped, e.g. `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Leave system job allocations running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_system_jobs: Option<bool>,
    /// Stop every allocation at once, ignoring migrate settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// RFC 3339 time the drain started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
}

/// Health of a node: `initializing`, `ready`, `down` or `disconnected`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    #[default]
    Initializing,
    Ready,
    Down,
    Disconnected,
}

/// What a node reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// `initializing`, `ready`, `down` or `disconnected`.
    #[serde(default)]
    pub status: NodeState,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_description: Option<String>,
    /// Fingerprinted attributes, e.g. `kernel.name`, `cpu.arch`, `driver.raw_exec`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Total resources of the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<NodeResources>,
    /// Resources kept for the operating system and the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<NodeReservedResources>,
    /// Health of each task driver.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drivers: BTreeMap<String, DriverInfo>,
    /// RFC 3339 time of the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<String>,
    /// Addresses of the node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    /// Heartbeat interval the servers expect, as a duration.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "heartbeatTTL"
    )]
    pub heartbeat_ttl: Option<String>,
    /// Nomad's computed class, set by the server from everything constraints and driver
    /// checks can see except what is unique to the node (`unique.` attributes and meta, its
    /// name and uid): nodes of one computed class pass or fail a job's checks together, so the
    /// scheduler checks one of them per class. `v1:` and 16 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_class: Option<String>,
}

/// Prefix of the attributes and meta keys that are unique to a node, left out of its
/// [computed class](NodeStatus::computed_class).
pub const UNIQUE_PREFIX: &str = "unique.";

/// The [computed class](NodeStatus::computed_class) of a node with `spec` and `status`: a
/// [stable hash](crate::stable_hash) of its datacenter, pool, class, meta, attributes and
/// drivers, unique keys left out.
pub fn computed_class(spec: &NodeSpec, status: &NodeStatus) -> String {
    let mut hash = StableHasher::default();
    for part in [&spec.datacenter, &spec.node_pool, &spec.node_class] {
        hash.part(part.as_deref().unwrap_or(""));
    }
    for (section, map) in [("meta", &spec.meta), ("attributes", &status.attributes)] {
        hash.part(section);
        for (key, value) in map.iter().filter(|(k, _)| !k.starts_with(UNIQUE_PREFIX)) {
            hash.part(key);
            hash.part(value);
        }
    }
    hash.part("drivers");
    for (name, driver) in &status.drivers {
        hash.part(name);
        hash.part(if driver.detected { "detected" } else { "-" });
        hash.part(if driver.healthy { "healthy" } else { "-" });
        for (key, value) in &driver.attributes {
            hash.part(key);
            hash.part(value);
        }
    }
    format!("v1:{:016x}", hash.finish())
}

impl Node {
    /// Sets [`NodeStatus::computed_class`] from the node as it is; a node without a status has
    /// none.
    pub fn compute_class(&mut self) {
        if let Some(status) = self.status.as_mut() {
            status.computed_class = Some(computed_class(&self.spec, status));
        }
    }

    /// Whether [`NodeStatus::computed_class`] is what [`Node::compute_class`] would set.
    pub fn class_is_current(&self) -> bool {
        match &self.status {
            Some(status) => {
                status.computed_class.as_deref() == Some(&computed_class(&self.spec, status))
            }
            None => true,
        }
    }
}

/// Total resources of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeResources {
    /// CPU in MHz (cores × clock).
    #[serde(default)]
    pub cpu: u64,
    /// Number of CPU cores.
    #[serde(default)]
    pub cores: u32,
    /// Memory in MB.
    #[serde(default, rename = "memoryMB")]
    pub memory_mb: u64,
    /// Disk available to allocations in MB.
    #[serde(default, rename = "diskMB")]
    pub disk_mb: u64,
    /// Network interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NodeNetwork>,
    /// Lowest port the scheduler assigns dynamically. Defaults to 20000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub min_dynamic_port: Option<u32>,
    /// Highest port the scheduler assigns dynamically. Defaults to 32000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub max_dynamic_port: Option<u32>,
}

/// A network interface of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeNetwork {
    /// Interface name, e.g. `eth0`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub device: String,
    /// CIDR of the interface, e.g. `10.0.0.5/32`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// IP address of the interface.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// Bandwidth in Mbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mbits: Option<u64>,
    /// Host network the address belongs to, as job ports name it. Defaults to `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_network: Option<String>,
    /// Ports no allocation may hold on this address, e.g. `22,8000-8100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_ports: Option<String>,
}

/// Resources of a node kept away from allocations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeReservedResources {
    /// CPU in MHz.
    #[serde(default)]
    pub cpu: u64,
    /// Memory in MB.
    #[serde(default, rename = "memoryMB")]
    pub memory_mb: u64,
    /// Disk in MB.
    #[serde(default, rename = "diskMB")]
    pub disk_mb: u64,
    /// Ports no allocation may hold on any address, e.g. `22,8000-8100`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_ports: Option<String>,
}

/// Health of one task driver on a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverInfo {
    /// Whether the driver was found.
    #[serde(default)]
    pub detected: bool,
    /// Whether the driver can run tasks.
    #[serde(default)]
    pub healthy: bool,
    /// Details of the health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_description: Option<String>,
    /// Driver attributes, e.g. its version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

/// An address of a node, as in Kubernetes `NodeAddress`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeAddress {
    /// `Hostname`, `InternalIP` or `ExternalIP`.
    pub r#type: String,
    /// The address.
    pub address: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock;

    #[test]
    fn http_addr_is_exactly_host_and_port() {
        for good in [
            "10.0.0.5:4646",
            "127.0.0.1:1",
            "[::1]:4647",
            "[2001:db8::8a2e:370:7334]:65535",
            "localhost:4646",
            "node-1.dc1.example.com:4646",
            "NODE-1:80",
        ] {
            assert_eq!(valid_http_addr(good), Ok(()), "{good}");
        }
        let long_host = format!("{}:4646", vec!["a".repeat(63); 4].join("."));
        for bad in [
            "",
            "127.0.0.1:5190/admin/secret?x=",
            "127.0.0.1:5190?x=",
            "127.0.0.1:5190#x",
            "http://10.0.0.5:4646",
            "user@10.0.0.5:4646",
            "user:pw@10.0.0.5:4646",
            "10.0.0.5",
            "10.0.0.5:",
            "10.0.0.5:0",
            "10.0.0.5:65536",
            "10.0.0.5:99999999999999999999",
            "10.0.0.5:+80",
            "10.0.0.5: 80",
            " 10.0.0.5:80",
            "10.0.0.5:80 ",
            "10.0.0.5 :80",
            "999.0.0.1:80",
            "10.0.0:80",
            ":4646",
            "::1:4646",
            "[::1]",
            "[::1]4646",
            "[::1]:",
            "[not-ip]:4646",
            "[fe80::1%eth0]:4646",
            "[::1]:4646/x",
            "a..b:4646",
            ".a:4646",
            "-a:4646",
            "a-:4646",
            "a_b:4646",
            "nöde:4646",
            "a\nb:4646",
            "a\tb:4646",
            &long_host,
        ] {
            let problem = valid_http_addr(bad).expect_err(bad);
            assert!(!problem.starts_with(char::is_uppercase), "{problem}");
        }
    }

    /// Unique attributes and the name leave it alone; anything a constraint can see changes it.
    #[test]
    fn computed_class_follows_what_checks_see_and_leaves_out_unique_keys() {
        let class = mock::node("node-1")
            .status
            .and_then(|s| s.computed_class)
            .expect("a stored node carries its class");
        assert!(class.starts_with("v1:") && class.len() == 19, "{class}");
        let class_of = |edit: &dyn Fn(&mut Node)| {
            let mut node = mock::node("node-2");
            edit(&mut node);
            node.compute_class();
            node.status.and_then(|s| s.computed_class).expect("class")
        };
        assert_eq!(class_of(&|_| {}), class);
        assert_eq!(
            class_of(&|n| {
                let status = n.status.as_mut().expect("status");
                status
                    .attributes
                    .insert("unique.network.ip-address".into(), "10.0.0.9".into());
            }),
            class
        );
        for edit in [
            &(|n: &mut Node| n.spec.datacenter = Some("dc2".into())) as &dyn Fn(&mut Node),
            &|n| {
                n.spec.meta.insert("rack".into(), "r1".into());
            },
            &|n| {
                let status = n.status.as_mut().expect("status");
                status
                    .attributes
                    .insert("kernel.name".into(), "darwin".into());
            },
            &|n| {
                let status = n.status.as_mut().expect("status");
                if let Some(driver) = status.drivers.get_mut("mock") {
                    driver.healthy = false;
                }
            },
        ] {
            assert_ne!(class_of(edit), class);
        }
    }
}
