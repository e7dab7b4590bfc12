//! The agent's YAML config file, merged under the command-line flags.
//!
//! ```yaml
//! dataDir: /var/lib/caravan
//! httpAddr: 0.0.0.0:4646
//! logLevel: info
//! region: global
//! datacenter: dc1
//! server:
//!   enabled: true
//!   heartbeatMinTTL: 10s
//!   heartbeatGrace: 10s
//!   gcInterval: 5m
//!   nodeGCThreshold: 24h
//!   jobGCThreshold: 4h
//!   evalGCThreshold: 1h
//!   batchEvalGCThreshold: 24h
//!   jobTrackedVersions: 6
//! client:
//!   enabled: true
//!   servers: ["caravan-0.caravan:4646", "caravan-1.caravan:4646"]
//!   httpAddr: 0.0.0.0:4647
//!   name: node-1
//!   nodePool: default
//!   nodeClass: compute
//!   meta: {rack: r1}
//!   reserved: {cpu: 500, memoryMB: 512, reservedPorts: "22,8000-8100"}
//!   minDynamicPort: 20000
//!   maxDynamicPort: 32000
//!   networkInterface: eth0
//!   hostNetworks:
//!     - {name: public, interface: eth1, reservedPorts: "22"}
//!     - {name: private, cidr: 10.0.0.0/8}
//!   imageDir: /var/lib/caravan/images
//!   drivers: [raw_exec, exec, oci]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use super::args::AgentArgs;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub http_addr: Option<String>,
    pub log_level: Option<String>,
    pub region: Option<String>,
    pub datacenter: Option<String>,
    /// Drain the client on SIGINT before exiting.
    pub leave_on_interrupt: Option<bool>,
    /// Drain the client on SIGTERM before exiting.
    pub leave_on_terminate: Option<bool>,
    #[serde(default)]
    pub acl: AclSection,
    #[serde(default)]
    pub tls: super::tls::TlsArgs,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub client: ClientSection,
}

/// `acl:` — ACL tokens and policies (`--acl-enabled`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclSection {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerSection {
    #[serde(default)]
    pub enabled: bool,
    pub bootstrap_expect: Option<usize>,
    pub num_schedulers: Option<usize>,
    #[serde(default)]
    pub join: Vec<String>,
    #[serde(default)]
    pub join_wan: Vec<String>,
    pub cluster_secret: Option<String>,
    /// The gossip encryption key (`--encrypt`).
    pub encrypt: Option<String>,
    pub advertise_addr: Option<String>,
    pub gossip_addr: Option<String>,
    #[serde(default, with = "opt_humantime")]
    pub raft_election_timeout: Option<std::time::Duration>,
    #[serde(rename = "heartbeatMinTTL", default, with = "opt_humantime")]
    pub heartbeat_min_ttl: Option<std::time::Duration>,
    #[serde(default, with = "opt_humantime")]
    pub heartbeat_grace: Option<std::time::Duration>,
    #[serde(default, with = "opt_humantime")]
    pub gc_interval: Option<std::time::Duration>,
    #[serde(rename = "nodeGCThreshold", default, with = "opt_humantime")]
    pub node_gc_threshold: Option<std::time::Duration>,
    #[serde(rename = "jobGCThreshold", default, with = "opt_humantime")]
    pub job_gc_threshold: Option<std::time::Duration>,
    #[serde(rename = "evalGCThreshold", default, with = "opt_humantime")]
    pub eval_gc_threshold: Option<std::time::Duration>,
    #[serde(rename = "batchEvalGCThreshold", default, with = "opt_humantime")]
    pub batch_eval_gc_threshold: Option<std::time::Duration>,
    #[serde(rename = "deploymentGCThreshold", default, with = "opt_humantime")]
    pub deployment_gc_threshold: Option<std::time::Duration>,
    pub snapshot_threshold: Option<u64>,
    pub job_tracked_versions: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSection {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub servers: Vec<String>,
    pub http_addr: Option<String>,
    pub name: Option<String>,
    pub node_pool: Option<String>,
    pub node_class: Option<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub reserved: Reserved,
    pub min_dynamic_port: Option<u16>,
    pub max_dynamic_port: Option<u16>,
    pub network_interface: Option<String>,
    #[serde(default)]
    pub host_networks: Vec<HostNetworkBlock>,
    pub bridge_network_subnet: Option<String>,
    pub image_dir: Option<PathBuf>,
    #[serde(default)]
    pub drivers: Vec<String>,
    #[serde(default)]
    pub allow_caps: Vec<String>,
    #[serde(default, with = "opt_humantime")]
    pub leave_deadline: Option<std::time::Duration>,
    #[serde(default, with = "opt_humantime")]
    pub max_kill_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reserved {
    pub cpu: Option<u64>,
    #[serde(rename = "memoryMB")]
    pub memory_mb: Option<u64>,
    /// Nomad's `reserved_ports` syntax: `22,80,8000-8100`.
    pub reserved_ports: Option<String>,
}

/// A named host network (Nomad's client `host_network` block): the addresses of `interface`,
/// or those within `cidr`; checked after the merge (`caravan_nodeagent::fingerprint::
/// check_host_networks`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostNetworkBlock {
    pub name: String,
    pub interface: Option<String>,
    pub cidr: Option<String>,
    /// Nomad's `reserved_ports` syntax: `22,80,8000-8100`.
    pub reserved_ports: Option<String>,
}

mod opt_humantime {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<std::time::Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Reads a config file.
pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the config file {}", path.display()))?;
    yaml_serde::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Fills every flag not given on the command line from the file.
pub fn merge(mut args: AgentArgs, file: FileConfig) -> AgentArgs {
    fn fill<T>(flag: &mut Option<T>, file: Option<T>) {
        if flag.is_none() {
            *flag = file;
        }
    }
    args.server |= file.server.enabled;
    args.acl_enabled |= file.acl.enabled;
    args.tls = args.tls.clone().merged_over(file.tls.clone());
    args.client |= file.client.enabled;
    fill(&mut args.data_dir, file.data_dir);
    fill(&mut args.http_addr, file.http_addr);
    fill(&mut args.log_level, file.log_level);
    fill(&mut args.region, file.region);
    fill(&mut args.datacenter, file.datacenter);
    args.leave_on_interrupt |= file.leave_on_interrupt.unwrap_or(false);
    args.leave_on_terminate |= file.leave_on_terminate.unwrap_or(false);
    fill(&mut args.heartbeat_min_ttl, file.server.heartbeat_min_ttl);
    fill(&mut args.heartbeat_grace, file.server.heartbeat_grace);
    fill(&mut args.bootstrap_expect, file.server.bootstrap_expect);
    fill(&mut args.num_schedulers, file.server.num_schedulers);
    fill(&mut args.gossip_addr, file.server.gossip_addr.clone());
    fill(
        &mut args.raft_election_timeout,
        file.server.raft_election_timeout,
    );
    if args.join.is_empty() {
        args.join = file.server.join.clone();
    }
    fill(&mut args.advertise_addr, file.server.advertise_addr.clone());
    fill(&mut args.cluster_secret, file.server.cluster_secret.clone());
    fill(&mut args.encrypt, file.server.encrypt.clone());
    if args.join_wan.is_empty() {
        args.join_wan = file.server.join_wan.clone();
    }
    fill(&mut args.gc_interval, file.server.gc_interval);
    fill(&mut args.node_gc_threshold, file.server.node_gc_threshold);
    fill(&mut args.job_gc_threshold, file.server.job_gc_threshold);
    fill(&mut args.eval_gc_threshold, file.server.eval_gc_threshold);
    fill(
        &mut args.batch_eval_gc_threshold,
        file.server.batch_eval_gc_threshold,
    );
    fill(
        &mut args.deployment_gc_threshold,
        file.server.deployment_gc_threshold,
    );
    fill(&mut args.snapshot_threshold, file.server.snapshot_threshold);
    fill(
        &mut args.job_tracked_versions,
        file.server.job_tracked_versions,
    );
    let client = file.client;
    fill(&mut args.max_kill_timeout, client.max_kill_timeout);
    if args.servers.is_empty() {
        args.servers = client.servers;
    }
    fill(&mut args.client_http_addr, client.http_addr);
    fill(&mut args.name, client.name);
    fill(&mut args.node_pool, client.node_pool);
    fill(&mut args.node_class, client.node_class);
    fill(&mut args.reserved_cpu, client.reserved.cpu);
    fill(&mut args.reserved_memory, client.reserved.memory_mb);
    fill(&mut args.reserved_ports, client.reserved.reserved_ports);
    fill(&mut args.min_dynamic_port, client.min_dynamic_port);
    fill(&mut args.max_dynamic_port, client.max_dynamic_port);
    fill(&mut args.network_interface, client.network_interface);
    // Flags (`--host-network`) replace the file's blocks of the same name when the agent
    // builds its settings.
    args.file_host_networks = client
        .host_networks
        .into_iter()
        .map(|b| caravan_nodeagent::fingerprint::HostNetworkConfig {
            name: b.name,
            interface: b.interface,
            cidr: b.cidr,
            reserved_ports: b.reserved_ports,
        })
        .collect();
    fill(
        &mut args.bridge_network_subnet,
        client.bridge_network_subnet,
    );
    fill(&mut args.image_dir, client.image_dir);
    fill(&mut args.leave_deadline, client.leave_deadline);
    if args.allow_caps.is_empty() {
        args.allow_caps = client.allow_caps;
    }
    if args.drivers.is_empty() {
        args.drivers = client.drivers;
    }
    // Flags' meta entries win over the file's for the same key.
    let mut meta: Vec<String> = client
        .meta
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    meta.append(&mut args.meta);
    args.meta = meta;
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file() {
        let file: FileConfig = yaml_serde::from_str(
            "datacenter: east\nclient:\n  enabled: true\n  servers: [a:4646, b:4646]\n  nodeClass: big\n  meta: {rack: r1, zone: z}\n  reserved: {cpu: 300, memoryMB: 256}\nserver:\n  heartbeatMinTTL: 2s\n",
        )
        .unwrap();
        let args = AgentArgs {
            datacenter: Some("west".into()),
            meta: vec!["rack=r2".into()],
            ..Default::default()
        };
        let merged = merge(args, file);
        assert!(merged.client);
        assert_eq!(merged.datacenter.as_deref(), Some("west"));
        assert_eq!(merged.servers, ["a:4646", "b:4646"]);
        assert_eq!(merged.node_class.as_deref(), Some("big"));
        assert_eq!(merged.reserved_cpu, Some(300));
        assert_eq!(merged.reserved_memory, Some(256));
        assert_eq!(
            merged.heartbeat_min_ttl,
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(merged.meta, ["rack=r1", "zone=z", "rack=r2"]);
    }

    #[test]
    fn gc_settings_come_from_the_server_section_under_the_flags() {
        let file: FileConfig = yaml_serde::from_str(
            "server:\n  gcInterval: 1m\n  nodeGCThreshold: 2h\n  jobGCThreshold: 3h\n  evalGCThreshold: 30m\n  batchEvalGCThreshold: 12h\n  deploymentGCThreshold: 90m\n",
        )
        .unwrap();
        let args = AgentArgs {
            job_gc_threshold: Some(std::time::Duration::from_secs(5)),
            ..Default::default()
        };
        let merged = merge(args, file);
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs());
        assert_eq!(secs(merged.gc_interval), Some(60));
        assert_eq!(secs(merged.node_gc_threshold), Some(2 * 3600));
        assert_eq!(secs(merged.job_gc_threshold), Some(5));
        assert_eq!(secs(merged.eval_gc_threshold), Some(30 * 60));
        assert_eq!(secs(merged.batch_eval_gc_threshold), Some(12 * 3600));
        assert_eq!(secs(merged.deployment_gc_threshold), Some(90 * 60));
    }

    #[test]
    fn port_settings_come_from_the_client_section_under_the_flags() {
        let file: FileConfig = yaml_serde::from_str(
            "client:\n  minDynamicPort: 21000\n  maxDynamicPort: 22000\n  networkInterface: eth1\n  reserved: {cpu: 100, reservedPorts: \"22,80\"}\n",
        )
        .unwrap();
        let args = AgentArgs {
            max_dynamic_port: Some(23000),
            ..Default::default()
        };
        let merged = merge(args, file);
        assert_eq!(merged.min_dynamic_port, Some(21000));
        assert_eq!(merged.max_dynamic_port, Some(23000));
        assert_eq!(merged.network_interface.as_deref(), Some("eth1"));
        assert_eq!(merged.reserved_ports.as_deref(), Some("22,80"));
        assert_eq!(merged.reserved_cpu, Some(100));
        let flag = AgentArgs {
            reserved_ports: Some("443".into()),
            network_interface: Some("lo".into()),
            ..Default::default()
        };
        let file: FileConfig = yaml_serde::from_str(
            "client:\n  networkInterface: eth1\n  reserved: {reservedPorts: \"22\"}\n",
        )
        .unwrap();
        let merged = merge(flag, file);
        assert_eq!(merged.reserved_ports.as_deref(), Some("443"));
        assert_eq!(merged.network_interface.as_deref(), Some("lo"));
        // A port out of range is refused when the file is read.
        assert!(yaml_serde::from_str::<FileConfig>("client:\n  minDynamicPort: 70000\n").is_err());
    }

    #[test]
    fn host_networks_come_from_the_client_section() {
        let file: FileConfig = yaml_serde::from_str(
            "client:\n  hostNetworks:\n    - {name: public, interface: eth1, reservedPorts: \"22\"}\n    - name: private\n      cidr: 10.0.0.0/8\n",
        )
        .unwrap();
        let args = AgentArgs {
            host_network: vec!["public=eth2".into()],
            ..Default::default()
        };
        let merged = merge(args, file);
        // The flags stay as given; the file's blocks are kept beside them.
        assert_eq!(merged.host_network, ["public=eth2"]);
        let blocks = &merged.file_host_networks;
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].name.as_str(), blocks[0].interface.as_deref()),
            ("public", Some("eth1"))
        );
        assert_eq!(blocks[0].reserved_ports.as_deref(), Some("22"));
        assert_eq!(
            (blocks[1].name.as_str(), blocks[1].cidr.as_deref()),
            ("private", Some("10.0.0.0/8"))
        );
        assert_eq!(blocks[1].interface, None);
        // A block with a key it does not know, or without a name, is refused.
        assert!(
            yaml_serde::from_str::<FileConfig>(
                "client:\n  hostNetworks: [{name: a, iface: eth1}]\n"
            )
            .is_err()
        );
        assert!(
            yaml_serde::from_str::<FileConfig>("client:\n  hostNetworks: [{interface: eth1}]\n")
                .is_err()
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(yaml_serde::from_str::<FileConfig>("clinet: {}").is_err());
    }
}
