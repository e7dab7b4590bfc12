//! The Node object the agent registers: its spec from the configuration, its status from the
//! fingerprint, the drivers and the port settings. Pure. [`node_vars`] is the same node as
//! its tasks' `${node.*}`, `${attr.*}` and `${meta.*}` read it.

use std::collections::BTreeMap;

use caravan_schemas::node::{DriverInfo, NodeReservedResources};
use serde_json::{Value, json};

use super::config::ClientConfig;
use crate::fingerprint::Fingerprint;
use crate::runner::interpolate::NodeVars;

/// The Node's `spec`.
pub fn node_spec(config: &ClientConfig, http_addr: &str, secret_id_hash: &str) -> Value {
    let mut spec = json!({
        "datacenter": config.datacenter,
        "nodePool": config.node_pool,
        "httpAddr": http_addr,
        "secretIdHash": secret_id_hash,
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
pub fn node_object(
    name: &str,
    node_id: &str,
    config: &ClientConfig,
    http_addr: &str,
    secret_id_hash: &str,
) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"caravan.dev/node-id": node_id},
        },
        "spec": node_spec(config, http_addr, secret_id_hash),
    })
}

/// The Node's `status.attributes`: the fingerprint's, the node id and the detected drivers.
pub fn node_attributes(
    fingerprint: &Fingerprint,
    node_id: &str,
    drivers: &BTreeMap<String, DriverInfo>,
) -> BTreeMap<String, String> {
    let mut attributes = fingerprint.attributes.clone();
    attributes.insert("unique.node.id".into(), node_id.to_string());
    for (name, info) in drivers {
        if info.detected {
            attributes.insert(format!("driver.{name}"), "1".into());
        }
    }
    attributes
}

/// The Node's `status` as fingerprinted (without `status.status`: the servers set it to
/// `ready` on the first heartbeat), with the dynamic port range in `resources` and the
/// reserved ports in `reserved`.
pub fn node_status(
    fingerprint: &Fingerprint,
    node_id: &str,
    drivers: &BTreeMap<String, DriverInfo>,
    config: &ClientConfig,
) -> Value {
    let attributes = node_attributes(fingerprint, node_id, drivers);
    let mut resources = fingerprint.resources.clone();
    resources.min_dynamic_port = Some(u32::from(config.min_dynamic_port));
    resources.max_dynamic_port = Some(u32::from(config.max_dynamic_port));
    let reserved = NodeReservedResources {
        cpu: config.reserved_cpu,
        memory_mb: config.reserved_memory_mb,
        disk_mb: config.reserved_disk_mb,
        reserved_ports: config.reserved_ports_text(),
    };
    json!({
        "attributes": attributes,
        "resources": resources,
        "reserved": reserved,
        "drivers": drivers,
        "addresses": fingerprint.addresses,
    })
}

/// The node as its tasks' interpolation reads it: what [`node_object`] and [`node_status`]
/// register, the agent's region besides.
pub fn node_vars(
    name: &str,
    node_id: &str,
    fingerprint: &Fingerprint,
    drivers: &BTreeMap<String, DriverInfo>,
    config: &ClientConfig,
) -> NodeVars {
    NodeVars {
        id: node_id.to_string(),
        name: name.to_string(),
        datacenter: config.datacenter.clone(),
        region: Some(config.region.clone()).filter(|r| !r.is_empty()),
        class: config.node_class.clone(),
        pool: config.node_pool.clone(),
        attributes: node_attributes(fingerprint, node_id, drivers),
        meta: config.meta.clone(),
    }
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
        let node = node_object("n1", "id-1", &config, "10.0.0.5:4647", "hash");
        assert_eq!(node["spec"]["nodeClass"], "gpu");
        assert_eq!(node["spec"]["meta"]["rack"], "r1");
        assert_eq!(node["spec"]["httpAddr"], "10.0.0.5:4647");
        let bound = "0.0.0.0:4647".parse().unwrap();
        assert_eq!(advertised_http_addr(&config, bound, &fp), "10.0.0.5:4647");
        // The ports the scheduler may use: the default range, nothing reserved.
        assert_eq!(status["resources"]["minDynamicPort"], 20000);
        assert_eq!(status["resources"]["maxDynamicPort"], 32000);
        assert!(status["reserved"].get("reservedPorts").is_none());
    }

    #[test]
    fn status_carries_the_port_settings() {
        let mut config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        config.min_dynamic_port = 25000;
        config.max_dynamic_port = 25100;
        config.reserved_ports = Some("22,8000-8100".into());
        let status = node_status(&Fingerprint::default(), "id-1", &BTreeMap::new(), &config);
        assert_eq!(status["resources"]["minDynamicPort"], 25000);
        assert_eq!(status["resources"]["maxDynamicPort"], 25100);
        assert_eq!(status["reserved"]["reservedPorts"], "22,8000-8100");
        // What the scheduler reads back.
        let node: caravan_schemas::Node = serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "Node",
            "metadata": {"name": "n1"}, "spec": {}, "status": status,
        }))
        .unwrap();
        let ports = caravan_schemas::ports::NodePorts::of(&node);
        assert_eq!((ports.min_dynamic, ports.max_dynamic), (25000, 25100));
        assert_eq!(ports.reserved.len(), 2);
    }

    #[test]
    fn tasks_see_the_node_as_registered() {
        let mut config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        config.datacenter = "dc2".into();
        config.region = "eu".into();
        config.node_class = Some("gpu".into());
        config.meta.insert("rack".into(), "r1".into());
        let mut fp = Fingerprint::default();
        fp.attributes.insert("kernel.name".into(), "linux".into());
        let drivers = BTreeMap::from([(
            "mock".to_string(),
            DriverInfo {
                detected: true,
                ..Default::default()
            },
        )]);
        let vars = node_vars("n1", "id-1", &fp, &drivers, &config);
        let status = node_status(&fp, "id-1", &drivers, &config);
        assert_eq!(json!(vars.attributes), status["attributes"]);
        assert_eq!(vars.get("attr.driver.mock"), Some("1"));
        assert_eq!(vars.get("attr.unique.node.id"), Some("id-1"));
        assert_eq!(vars.get("node.unique.id"), Some("id-1"));
        assert_eq!(vars.get("node.unique.name"), Some("n1"));
        assert_eq!(vars.get("node.datacenter"), Some("dc2"));
        assert_eq!(vars.get("node.region"), Some("eu"));
        assert_eq!(vars.get("node.class"), Some("gpu"));
        assert_eq!(vars.get("node.pool"), Some("default"));
        assert_eq!(vars.get("meta.rack"), Some("r1"));
    }
}
