//! The Node object the agent registers: its spec from the configuration, its status from the
//! fingerprint and the drivers. Pure.

use std::collections::BTreeMap;

use caravan_schemas::node::{DriverInfo, NodeReservedResources};
use serde_json::{Value, json};

use super::config::ClientConfig;
use crate::fingerprint::Fingerprint;

/// The Node's `spec`.
pub fn node_spec(config: &ClientConfig, http_addr: &str) -> Value {
    let mut spec = json!({
        "datacenter": config.datacenter,
        "nodePool": config.node_pool,
        "httpAddr": http_addr,
    });
    if let Some(class) = &config.node_class {
        spec["nodeClass"] = json!(class);
    }
    if !config.meta.is_empty() {
        spec["meta"] = json!(config.meta);
    }
    spec
}

/// A new Node object.
pub fn node_object(name: &str, node_id: &str, config: &ClientConfig, http_addr: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"caravan.dev/node-id": node_id},
        },
        "spec": node_spec(config, http_addr),
    })
}

/// The Node's `status` as fingerprinted (without `status.status`: the servers set it to
/// `ready` on the first heartbeat).
pub fn node_status(
    fingerprint: &Fingerprint,
    node_id: &str,
    drivers: &BTreeMap<String, DriverInfo>,
    config: &ClientConfig,
) -> Value {
    let mut attributes = fingerprint.attributes.clone();
    attributes.insert("unique.node.id".into(), node_id.to_string());
    for (name, info) in drivers {
        if info.detected {
            attributes.insert(format!("driver.{name}"), "1".into());
        }
    }
    let reserved = NodeReservedResources {
        cpu: config.reserved_cpu,
        memory_mb: config.reserved_memory_mb,
        disk_mb: config.reserved_disk_mb,
    };
    json!({
        "attributes": attributes,
        "resources": fingerprint.resources,
        "reserved": reserved,
        "drivers": drivers,
        "addresses": fingerprint.addresses,
    })
}

/// The address the servers reach the agent's API at.
pub fn advertised_http_addr(
    config: &ClientConfig,
    bound: std::net::SocketAddr,
    fingerprint: &Fingerprint,
) -> String {
    if let Some(addr) = &config.advertise_addr {
        return addr.clone();
    }
    if bound.ip().is_unspecified() {
        if let Some(ip) = fingerprint.attributes.get("unique.network.ip-address") {
            return format!("{ip}:{}", bound.port());
        }
        return format!("127.0.0.1:{}", bound.port());
    }
    bound.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_carries_fingerprint_drivers_and_reserved() {
        let mut config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        config.reserved_cpu = 500;
        config.node_class = Some("gpu".into());
        config.meta.insert("rack".into(), "r1".into());
        let mut fp = Fingerprint::default();
        fp.attributes.insert("kernel.name".into(), "linux".into());
        fp.attributes
            .insert("unique.network.ip-address".into(), "10.0.0.5".into());
        fp.resources.cpu = 4000;
        let mut drivers = BTreeMap::new();
        drivers.insert(
            "raw_exec".to_string(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..Default::default()
            },
        );
        let status = node_status(&fp, "id-1", &drivers, &config);
        assert_eq!(status["attributes"]["driver.raw_exec"], "1");
        assert_eq!(status["attributes"]["unique.node.id"], "id-1");
        assert_eq!(status["reserved"]["cpu"], 500);
        assert_eq!(status["resources"]["cpu"], 4000);
        assert_eq!(status["drivers"]["raw_exec"]["healthy"], true);
        let node = node_object("n1", "id-1", &config, "10.0.0.5:4647");
        assert_eq!(node["spec"]["nodeClass"], "gpu");
        assert_eq!(node["spec"]["meta"]["rack"], "r1");
        assert_eq!(node["spec"]["httpAddr"], "10.0.0.5:4647");
        let bound = "0.0.0.0:4647".parse().unwrap();
        assert_eq!(advertised_http_addr(&config, bound, &fp), "10.0.0.5:4647");
    }
}
