//! What the CNI plugins are given and what they answer, pure: the bridge network's plugin list
//! (Nomad's), the configuration each plugin of a chain reads on its stdin, the port mappings of
//! an allocation, and the address in a plugin's result.

use std::net::Ipv4Addr;

use caravan_schemas::allocation::AllocatedPort;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The CNI specification version of the configurations the agent writes.
pub const CNI_VERSION: &str = "1.0.0";

/// The name of the bridge network (and of its IPAM directory, `/var/lib/cni/networks/<name>`).
pub const BRIDGE_NETWORK: &str = "caravan";

/// The Linux bridge the allocations' veth pairs are attached to.
pub const BRIDGE_INTERFACE: &str = "caravan";

/// The subnet allocations get their addresses from unless the agent sets another.
pub const DEFAULT_BRIDGE_SUBNET: &str = "172.26.64.0/20";

/// The interface an allocation sees inside its namespace.
pub const CONTAINER_IFNAME: &str = "eth0";

/// The iptables chain the firewall plugin lets an operator add rules to.
const ADMIN_CHAIN: &str = "CARAVAN-ADMIN";

/// The bridge network as a plugin list (`conflist`): a `bridge` with host-local addresses on
/// `subnet`, masquerading and the gateway on the bridge, then `firewall`, then `portmap` for
/// the allocation's ports.
pub fn bridge_conflist(subnet: &str) -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": BRIDGE_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE_INTERFACE,
                "isGateway": true,
                "ipMasq": true,
                "forceAddress": true,
                "hairpinMode": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            },
            {
                "type": "firewall",
                "backend": "iptables",
                "iptablesAdminChainName": ADMIN_CHAIN
            },
            {
                "type": "portmap",
                "capabilities": {"portMappings": true},
                "snat": true
            }
        ]
    })
}

/// The single-plugin list that brings the loopback interface up (every allocation namespace).
pub fn loopback_conflist() -> Value {
    json!({
        "cniVersion": CNI_VERSION,
        "name": "caravan-loopback",
        "plugins": [{"type": "loopback"}]
    })
}

/// Whether `subnet` is an IPv4 CIDR (`a.b.c.d/n`, n from 8 to 30), as the agent flag needs.
pub fn check_subnet(subnet: &str) -> Result<(), String> {
    match subnet.parse::<ipnet::Ipv4Net>().map(|net| net.prefix_len()) {
        Ok(8..=30) => Ok(()),
        _ => Err(format!(
            "{subnet:?} is not an IPv4 subnet such as {DEFAULT_BRIDGE_SUBNET}"
        )),
    }
}

/// One host port forwarded into the allocation's namespace (the `portMappings` capability).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    #[serde(default, rename = "hostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// The port mappings of an allocation's ports: each host port to its `to` (or the same number),
/// over TCP and UDP, on the port's host address when it has one. Ports out of range are
/// skipped (the servers never assign one).
pub fn port_mappings(ports: &[AllocatedPort]) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for port in ports {
        let Ok(host_port) = u16::try_from(port.value) else {
            continue;
        };
        let to = port.to.filter(|t| *t > 0).unwrap_or(port.value);
        let Ok(container_port) = u16::try_from(to) else {
            continue;
        };
        if host_port == 0 || container_port == 0 {
            continue;
        }
        let host_ip = port.host_ip.clone().filter(|ip| !ip.is_empty());
        for protocol in ["tcp", "udp"] {
            out.push(PortMapping {
                host_port,
                container_port,
                protocol: protocol.into(),
                host_ip: host_ip.clone(),
            });
        }
    }
    out
}

/// The configuration plugin `index` of `conflist` reads on its stdin: the plugin's own object
/// with the list's `cniVersion` and `name`, the `prevResult` it chains on, and the port
/// mappings in `runtimeConfig` when it asks for that capability. `None` past the list's end.
pub fn plugin_config(
    conflist: &Value,
    index: usize,
    prev_result: Option<&Value>,
    mappings: &[PortMapping],
) -> Option<Value> {
    let plugin = conflist.get("plugins")?.as_array()?.get(index)?;
    let mut config = plugin.as_object()?.clone();
    config.insert("cniVersion".into(), conflist["cniVersion"].clone());
    config.insert("name".into(), conflist["name"].clone());
    if let Some(prev) = prev_result {
        config.insert("prevResult".into(), prev.clone());
    }
    let wants_ports = plugin
        .pointer("/capabilities/portMappings")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if wants_ports && !mappings.is_empty() {
        config.insert(
            "runtimeConfig".into(),
            json!({"portMappings": serde_json::to_value(mappings).ok()?}),
        );
    }
    Some(Value::Object(config))
}

/// The `type` of every plugin of `conflist`, in order; an error names a plugin whose type could
/// not be a file of the plugin directory.
pub fn plugin_types(conflist: &Value) -> Result<Vec<String>, String> {
    let plugins = conflist
        .get("plugins")
        .and_then(Value::as_array)
        .ok_or("the network configuration has no plugins")?;
    plugins
        .iter()
        .map(|p| {
            let typ = p.get("type").and_then(Value::as_str).unwrap_or_default();
            let valid = !typ.is_empty()
                && typ
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if valid {
                Ok(typ.to_string())
            } else {
                Err(format!("invalid CNI plugin type {typ:?}"))
            }
        })
        .collect()
}

/// The first IPv4 address a result gives the container's interface, without its prefix.
pub fn result_ipv4(result: &Value) -> Option<Ipv4Addr> {
    result
        .get("ips")?
        .as_array()?
        .iter()
        .filter_map(|ip| ip.get("address")?.as_str())
        .filter_map(|cidr| cidr.split('/').next()?.parse::<Ipv4Addr>().ok())
        .next()
}

/// The message of a plugin's error answer (`{"code", "msg", "details"}`), else its output.
pub fn error_message(stdout: &[u8], stderr: &[u8]) -> String {
    if let Ok(err) = serde_json::from_slice::<Value>(stdout) {
        let msg = err.get("msg").and_then(Value::as_str).unwrap_or_default();
        let details = err
            .get("details")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !msg.is_empty() {
            return if details.is_empty() {
                msg.to_string()
            } else {
                format!("{msg}: {details}")
            };
        }
    }
    let text = String::from_utf8_lossy(if stderr.is_empty() { stdout } else { stderr });
    text.trim().chars().take(1000).collect()
}

#[cfg(test)]
mod tests;
