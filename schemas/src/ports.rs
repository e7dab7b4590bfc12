//! Host ports (Nomad's `NetworkIndex`): what a node offers — its host networks, each an
//! address with reserved ports, and the dynamic port range — what its allocations hold, and
//! the assignment of a group's static and dynamic ports. The scheduler assigns with
//! [`assign`]; the API server's plan applier re-checks a node with [`collision`], so that no
//! two live allocations ever hold one port on one address.
//!
//! ```text
//! Node status: resources.networks[] (hostNetwork, ip, reservedPorts),
//!              resources.{min,max}DynamicPort, reserved.reservedPorts
//!        │ NodePorts::of
//!        ▼
//! NodePorts ── assign(held ports, group asks) ──▶ AllocatedPort { label, value, hostIp }
//!           ── collision(held ports)          ──▶ the plan applier's verdict
//! ```

use std::collections::BTreeSet;

use crate::Node;
use crate::allocation::{AllocatedPort, Allocation};
use crate::job::{NetworkMode, TaskGroup};

/// Name of the host network a port uses when it names none.
pub const DEFAULT_HOST_NETWORK: &str = "default";
/// Lowest dynamic port when the node sets none (Nomad's default).
pub const DEFAULT_MIN_DYNAMIC_PORT: u16 = 20000;
/// Highest dynamic port when the node sets none (Nomad's default).
pub const DEFAULT_MAX_DYNAMIC_PORT: u16 = 32000;

/// Why a node cannot take a group's ports; recorded as the exhausted dimension.
pub const PORT_COLLISION: &str = "network: port collision";
/// Why a node cannot take a group's dynamic ports.
pub const DYNAMIC_PORTS_EXHAUSTED: &str = "network: dynamic port selection failed";
/// Why a node cannot take a port on a host network it does not have.
pub const NO_HOST_NETWORK: &str = "network: host network not found";

/// A port held on a node: its address and number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// Host address, as the node reports it.
    pub ip: String,
    /// Port number.
    pub port: u16,
}

impl HostPort {
    /// The ports `alloc` holds, from its `allocatedResources`; ports that cannot be real
    /// (0 or above 65535) are skipped.
    pub fn of_alloc(alloc: &Allocation) -> impl Iterator<Item = HostPort> + '_ {
        alloc
            .spec
            .allocated_resources
            .iter()
            .flat_map(|r| r.shared.ports.iter())
            .filter_map(HostPort::of_allocated)
    }

    /// The host port of an allocated port, `None` when its number is not a port.
    pub fn of_allocated(port: &AllocatedPort) -> Option<HostPort> {
        let number = u16::try_from(port.value).ok().filter(|p| *p > 0)?;
        Some(HostPort {
            ip: port.host_ip.clone().unwrap_or_default(),
            port: number,
        })
    }
}

/// One port a group asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAsk {
    /// Label, e.g. `http`.
    pub label: String,
    /// The fixed host port; `None` for a dynamic one.
    pub static_port: Option<u16>,
    /// Port inside the allocation's network namespace.
    pub to: Option<u16>,
    /// Host network the port is on.
    pub host_network: String,
}

impl PortAsk {
    /// The ports `group` asks for, in the order of its network block.
    pub fn of_group(group: &TaskGroup) -> Vec<PortAsk> {
        let Some(network) = &group.network else {
            return Vec::new();
        };
        if network.mode == Some(NetworkMode::None) {
            return Vec::new();
        }
        network
            .ports
            .iter()
            .map(|port| PortAsk {
                label: port.label.clone(),
                static_port: port.r#static.and_then(|p| u16::try_from(p).ok()),
                to: port.to.and_then(|p| u16::try_from(p).ok()),
                host_network: port
                    .host_network
                    .clone()
                    .unwrap_or_else(|| DEFAULT_HOST_NETWORK.to_string()),
            })
            .collect()
    }
}

/// An address of a node and the ports reserved on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNetwork {
    /// Host network name (`default` unless the agent names it).
    pub name: String,
    /// The address.
    pub ip: String,
    /// Ports no allocation may hold on this address, sorted.
    pub reserved: Vec<PortRange>,
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    fn contains(&self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// Parses a list of ports and ranges, Nomad's `reserved_ports` syntax: `22,80,8000-8100`.
/// Whitespace around items is allowed; an empty text is an empty list.
pub fn parse_port_list(text: &str) -> Result<Vec<PortRange>, String> {
    let mut ranges = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (item, item),
        };
        let parse = |s: &str| -> Result<u16, String> {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{s:?} is not a port (1-65535)"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("range {item:?} ends before it starts"));
        }
        ranges.push(PortRange { first, last });
    }
    ranges.sort();
    Ok(ranges)
}

fn reserved(ranges: &[PortRange], port: u16) -> bool {
    ranges.iter().any(|r| r.contains(port))
}

/// What a node offers in ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodePorts {
    /// Its addresses; a port is held per address.
    pub networks: Vec<HostNetwork>,
    /// Ports reserved on every address.
    pub reserved: Vec<PortRange>,
    /// Lowest dynamic port.
    pub min_dynamic: u16,
    /// Highest dynamic port.
    pub max_dynamic: u16,
}

impl NodePorts {
    /// The ports `node` offers, from its status. Unreadable reserved lists (admission refuses
    /// them) reserve nothing; a range that ends before it starts offers no dynamic port.
    pub fn of(node: &Node) -> NodePorts {
        let status = node.status.as_ref();
        let resources = status.and_then(|s| s.resources.as_ref());
        let networks = resources
            .map(|r| r.networks.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|n| !n.ip.is_empty())
            .map(|n| HostNetwork {
                name: n
                    .host_network
                    .clone()
                    .unwrap_or_else(|| DEFAULT_HOST_NETWORK.to_string()),
                ip: n.ip.clone(),
                reserved: n
                    .reserved_ports
                    .as_deref()
                    .and_then(|t| parse_port_list(t).ok())
                    .unwrap_or_default(),
            })
            .collect();
        let reserved = status
            .and_then(|s| s.reserved.as_ref())
            .and_then(|r| r.reserved_ports.as_deref())
            .and_then(|t| parse_port_list(t).ok())
            .unwrap_or_default();
        let port = |value: Option<u32>, default: u16| {
            value
                .and_then(|v| u16::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        NodePorts {
            networks,
            reserved,
            min_dynamic: port(
                resources.and_then(|r| r.min_dynamic_port),
                DEFAULT_MIN_DYNAMIC_PORT,
            ),
            max_dynamic: port(
                resources.and_then(|r| r.max_dynamic_port),
                DEFAULT_MAX_DYNAMIC_PORT,
            ),
        }
    }

    /// The first address of the host network `name`.
    fn network(&self, name: &str) -> Option<&HostNetwork> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// Whether `port` may never be held on `network`.
    fn is_reserved(&self, network: &HostNetwork, port: u16) -> bool {
        reserved(&self.reserved, port) || reserved(&network.reserved, port)
    }
}

/// Assigns the ports `asks` on a node offering `node` whose live allocations hold `held`:
/// static ports as asked, dynamic ones from the node's range starting at a point chosen by
/// `seed` (so that schedulers working at once rarely pick the same port). The first reason
/// the node cannot take them otherwise.
pub fn assign(
    node: &NodePorts,
    held: &[HostPort],
    asks: &[PortAsk],
    seed: u64,
) -> Result<Vec<AllocatedPort>, &'static str> {
    let mut taken: BTreeSet<(&str, u16)> = held.iter().map(|h| (h.ip.as_str(), h.port)).collect();
    let mut assigned: Vec<Option<AllocatedPort>> = vec![None; asks.len()];
    // Static ports first, so that a dynamic pick never takes one the group asks for.
    for (slot, ask) in assigned.iter_mut().zip(asks) {
        let Some(port) = ask.static_port else {
            continue;
        };
        let network = node.network(&ask.host_network).ok_or(NO_HOST_NETWORK)?;
        if node.is_reserved(network, port) || !taken.insert((network.ip.as_str(), port)) {
            return Err(PORT_COLLISION);
        }
        *slot = Some(allocated(ask, network, port));
    }
    let (min, max) = (node.min_dynamic, node.max_dynamic);
    if max < min && asks.iter().any(|a| a.static_port.is_none()) {
        return Err(DYNAMIC_PORTS_EXHAUSTED);
    }
    let span = u64::from(max.saturating_sub(min)) + 1;
    for (i, (slot, ask)) in assigned.iter_mut().zip(asks).enumerate() {
        if slot.is_some() {
            continue;
        }
        let network = node.network(&ask.host_network).ok_or(NO_HOST_NETWORK)?;
        let start = seed.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) % span;
        let free = (0..span)
            .map(|step| min + ((start + step) % span) as u16)
            .find(|&port| {
                !node.is_reserved(network, port) && !taken.contains(&(network.ip.as_str(), port))
            })
            .ok_or(DYNAMIC_PORTS_EXHAUSTED)?;
        taken.insert((network.ip.as_str(), free));
        *slot = Some(allocated(ask, network, free));
    }
    Ok(assigned.into_iter().flatten().collect())
}

fn allocated(ask: &PortAsk, network: &HostNetwork, port: u16) -> AllocatedPort {
    AllocatedPort {
        label: ask.label.clone(),
        value: u32::from(port),
        to: ask.to.map(u32::from),
        host_ip: Some(network.ip.clone()),
    }
}

/// Whether the ports of new placements (`placed`) collide on a node offering `node` whose
/// other live allocations hold `kept`: a port held already or twice, a reserved port, or an
/// address the node does not have. The plan applier's check.
pub fn collision<'a>(
    node: &NodePorts,
    kept: impl IntoIterator<Item = &'a HostPort>,
    placed: impl IntoIterator<Item = &'a HostPort>,
) -> Option<&'static str> {
    let mut seen: BTreeSet<(&str, u16)> =
        kept.into_iter().map(|h| (h.ip.as_str(), h.port)).collect();
    for port in placed {
        let Some(network) = node.networks.iter().find(|n| n.ip == port.ip) else {
            return Some(NO_HOST_NETWORK);
        };
        if node.is_reserved(network, port.port) || !seen.insert((port.ip.as_str(), port.port)) {
            return Some(PORT_COLLISION);
        }
    }
    None
}

#[cfg(test)]
mod tests;
