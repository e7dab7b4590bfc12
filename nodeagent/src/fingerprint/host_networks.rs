//! Named host networks (Nomad's client `host_network` blocks): the agent's settings, their
//! checks, and the addresses each selects among the machine's. Pure; `network.rs` reads the
//! machine's addresses and reports the result.

use caravan_schemas::node::NodeNetwork;
use ipnet::Ipv4Net;

use super::network::{IfaceAddr, interface_addresses_of};

/// A named host network of the agent's settings (Nomad's client `host_network` block): the
/// addresses of one `interface`, or those within a `cidr` (exactly one of the two), with ports
/// no allocation may hold on them. Check one with [`check_host_networks`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNetworkConfig {
    /// The name job ports give as `hostNetwork`: a DNS-1123 label.
    pub name: String,
    /// Selects the IPv4 addresses of this interface.
    pub interface: Option<String>,
    /// Selects every IPv4 address of an up interface within this IPv4 CIDR (`10.0.0.0/8`).
    pub cidr: Option<String>,
    /// Ports no allocation may hold on these addresses, Nomad's syntax (`22,8000-8100`).
    pub reserved_ports: Option<String>,
}

impl HostNetworkConfig {
    /// The reserved ports as the Node reports them: `None` when the list names no port.
    pub fn reserved_ports_text(&self) -> Option<String> {
        self.reserved_ports
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }
}

/// Parses an IPv4 CIDR (`10.0.0.0/8`; host bits are ignored).
pub fn parse_cidr(text: &str) -> Result<Ipv4Net, String> {
    text.trim()
        .parse::<Ipv4Net>()
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IPv4 CIDR such as 10.0.0.0/8"))
}

/// Checks the named host networks: names that are DNS-1123 labels and unique, exactly one of
/// `interface` and `cidr` in each, a CIDR that parses, reserved ports in Nomad's syntax; and no
/// `default` block besides `network_interface` (both would choose the `default` network). The
/// agent refuses to start otherwise. An interface that does not exist is not an error here: the
/// fingerprint reports the block as matching nothing.
pub fn check_host_networks(
    blocks: &[HostNetworkConfig],
    network_interface: Option<&str>,
) -> Result<(), String> {
    for (i, block) in blocks.iter().enumerate() {
        let name = &block.name;
        if let Some(problem) = caravan_schemas::admission::dns1123_label(name) {
            return Err(format!("host network {}: name {problem}", i + 1));
        }
        if blocks[..i].iter().any(|b| b.name == *name) {
            return Err(format!("host network {name:?} is named twice"));
        }
        let interface = block.interface.as_deref().map(str::trim);
        let cidr = block.cidr.as_deref().map(str::trim);
        match (interface, cidr) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "host network {name:?} has both interface and cidr: give one"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "host network {name:?} needs an interface or a cidr"
                ));
            }
            (Some(""), None) => {
                return Err(format!("host network {name:?} has an empty interface"));
            }
            (None, Some(cidr)) => {
                parse_cidr(cidr)
                    .map_err(|e| format!("host network {name:?}: invalid cidr: {e}"))?;
            }
            (Some(_), None) => {}
        }
        if let Some(text) = &block.reserved_ports {
            caravan_schemas::ports::parse_port_list(text).map_err(|e| {
                format!("host network {name:?}: invalid reservedPorts {text:?}: {e}")
            })?;
        }
        if name == caravan_schemas::ports::DEFAULT_HOST_NETWORK
            && let Some(iface) = network_interface
        {
            return Err(format!(
                "host network \"default\" and the network interface {iface:?} both choose the \
                 default network's addresses: give one"
            ));
        }
    }
    Ok(())
}

/// The addresses a host network block selects: the IPv4 addresses of its interface (but
/// `0.0.0.0`, loopback ones included), or those of up interfaces within its CIDR. Empty when
/// none matches (or the block does not check).
pub fn host_network_addresses(addrs: &[IfaceAddr], block: &HostNetworkConfig) -> Vec<IfaceAddr> {
    if let Some(iface) = block.interface.as_deref().map(str::trim) {
        return interface_addresses_of(addrs, iface).unwrap_or_default();
    }
    let Some(cidr) = block.cidr.as_deref().and_then(|c| parse_cidr(c).ok()) else {
        return Vec::new();
    };
    addrs
        .iter()
        .filter(|a| a.up && !a.ip.is_unspecified() && cidr.contains(&a.ip))
        .cloned()
        .collect()
}

/// The networks a node reports: one per address of the `default` network (`host_network`
/// `None`, with the reserved ports of a `default` block when there is one), then one per address
/// of each other block, with its name and reserved ports; `speed` gives a device's link speed.
/// Also the names of the blocks that matched no address.
pub fn node_networks(
    addrs: &[IfaceAddr],
    default: &[IfaceAddr],
    blocks: &[HostNetworkConfig],
    speed: &dyn Fn(&str) -> Option<u64>,
) -> (Vec<NodeNetwork>, Vec<String>) {
    let entry = |addr: &IfaceAddr, name: Option<&str>, reserved: Option<String>| NodeNetwork {
        device: addr.device.clone(),
        cidr: format!("{}/32", addr.ip),
        ip: addr.ip.to_string(),
        mbits: speed(&addr.device),
        host_network: name.map(str::to_string),
        reserved_ports: reserved,
    };
    let default_block = blocks
        .iter()
        .find(|b| b.name == caravan_schemas::ports::DEFAULT_HOST_NETWORK);
    let default_reserved = default_block.and_then(HostNetworkConfig::reserved_ports_text);
    let mut networks: Vec<NodeNetwork> = default
        .iter()
        .map(|a| entry(a, None, default_reserved.clone()))
        .collect();
    let mut unmatched = Vec::new();
    for block in blocks {
        let found = host_network_addresses(addrs, block);
        if found.is_empty() {
            unmatched.push(block.name.clone());
        }
        if block.name == caravan_schemas::ports::DEFAULT_HOST_NETWORK {
            continue;
        }
        let reserved = block.reserved_ports_text();
        networks.extend(
            found
                .iter()
                .map(|a| entry(a, Some(&block.name), reserved.clone())),
        );
    }
    (networks, unmatched)
}
