//! Settings of the node agent (client mode).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use caravan_schemas::ports::{DEFAULT_MAX_DYNAMIC_PORT, DEFAULT_MIN_DYNAMIC_PORT, parse_port_list};

use crate::fingerprint::{HostNetworkConfig, check_host_networks};

/// Settings of a client agent. Build one with [`ClientConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Server addresses, comma-separated (`host:port` or URLs); host names are resolved again
    /// on every new connection.
    pub servers: String,
    /// The agent's data directory: `client/` (node id, local state), `alloc/`, `containers/`.
    pub data_dir: PathBuf,
    /// Node name; defaults to the host name.
    pub name: Option<String>,
    pub datacenter: String,
    /// Region of the agent: `${node.region}` in tasks.
    pub region: String,
    pub node_pool: String,
    pub node_class: Option<String>,
    pub meta: BTreeMap<String, String>,
    /// CPU (MHz), memory (MB) and disk (MB) kept away from allocations.
    pub reserved_cpu: u64,
    pub reserved_memory_mb: u64,
    pub reserved_disk_mb: u64,
    /// Ports no allocation may hold on any of the node's addresses, Nomad's syntax
    /// (`22,80,8000-8100`); see [`ClientConfig::check`].
    pub reserved_ports: Option<String>,
    /// Lowest and highest port the scheduler assigns dynamically on this node.
    pub min_dynamic_port: u16,
    pub max_dynamic_port: u16,
    /// The interface whose IPv4 addresses form the node's `default` host network (Nomad's
    /// `network_interface`; a loopback interface may be named). `None` takes the default
    /// route's interface, else the first with a usable address, else the loopback address.
    pub network_interface: Option<String>,
    /// Named host networks (Nomad's client `host_network` blocks): more addresses the node
    /// offers ports on, each under its name; one named `default` replaces the choice of the
    /// `default` network's addresses. See [`ClientConfig::check`].
    pub host_networks: Vec<HostNetworkConfig>,
    /// The subnet bridge-mode allocations get their addresses from (Nomad's
    /// `bridge_network_subnet`).
    pub bridge_network_subnet: String,
    /// Where the agent's own API (task logs) listens.
    pub http_addr: SocketAddr,
    /// Address the servers use to reach the agent's API; defaults to `http_addr`, with an
    /// unspecified IP replaced by the node's fingerprinted address.
    pub advertise_addr: Option<String>,
    /// How to start an executor: the program and its leading arguments
    /// (`[<caravan binary>, "executor"]`).
    pub executor_command: Vec<OsString>,
    /// The local OCI image store.
    pub image_dir: PathBuf,
    /// Pids limit of `exec` and `oci` tasks; 0 means none.
    pub pids_limit: u64,
    /// The longest a task gets between its kill signal and SIGKILL, whatever its job's
    /// `killTimeout` says (Nomad's client `max_kill_timeout`).
    pub max_kill_timeout: Duration,
    /// How long status changes are collected before they are sent.
    pub status_batch_window: Duration,
    /// Stop every task when the agent shuts down gracefully (a throw-away dev agent). Without
    /// it tasks keep running and a restarted agent re-attaches to them (Nomad's default).
    pub stop_tasks_on_shutdown: bool,
    /// When leaving (`leave_on_interrupt`/`leave_on_terminate`): the drain deadline after
    /// which the servers stop what has not migrated yet.
    pub leave_deadline: Duration,
    /// Drivers to enable; `None` enables all (`raw_exec`, `exec`, `oci`, `mock`).
    pub drivers: Option<Vec<String>>,
    /// HTTPS on the agent's API and mutual TLS to the servers; `None`: plain HTTP.
    pub tls: Option<std::sync::Arc<caravan_tls::Tls>>,
    /// The capabilities `exec` and `oci` tasks may hold (Nomad's `allow_caps`): Docker's
    /// default set unless the operator says otherwise.
    pub allow_caps: Vec<oci_spec::runtime::Capability>,
}

impl ClientConfig {
    pub fn new(servers: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let executor = std::env::current_exe()
            .map(OsString::from)
            .unwrap_or_else(|_| OsString::from("caravan"));
        Self {
            servers: servers.into(),
            data_dir: data_dir.into(),
            name: None,
            datacenter: "dc1".into(),
            region: "global".into(),
            node_pool: "default".into(),
            node_class: None,
            meta: BTreeMap::new(),
            reserved_cpu: 0,
            reserved_memory_mb: 0,
            reserved_disk_mb: 0,
            reserved_ports: None,
            min_dynamic_port: DEFAULT_MIN_DYNAMIC_PORT,
            max_dynamic_port: DEFAULT_MAX_DYNAMIC_PORT,
            network_interface: None,
            host_networks: Vec::new(),
            bridge_network_subnet: crate::network::cni::DEFAULT_BRIDGE_SUBNET.into(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise_addr: None,
            executor_command: vec![executor, OsString::from("executor")],
            image_dir: crate::image::default_image_dir(),
            pids_limit: 4096,
            max_kill_timeout: caravan_schemas::limits::MAX_KILL_TIMEOUT,
            status_batch_window: Duration::from_millis(20),
            stop_tasks_on_shutdown: false,
            leave_deadline: Duration::from_secs(3600),
            tls: None,
            allow_caps: crate::container::spec::DEFAULT_CAPABILITIES.to_vec(),
            drivers: None,
        }
    }

    /// `<data>/alloc`.
    pub fn alloc_root(&self) -> PathBuf {
        self.data_dir.join("alloc")
    }

    /// `<data>/client`.
    pub fn client_dir(&self) -> PathBuf {
        self.data_dir.join("client")
    }

    /// `<data>/containers`: libcontainer's state root.
    pub fn container_root(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    pub fn driver_enabled(&self, name: &str) -> bool {
        self.drivers
            .as_ref()
            .is_none_or(|d| d.iter().any(|n| n == name))
    }

    /// Checks the port settings (a readable reserved list, a dynamic range that is not empty),
    /// the host networks ([`check_host_networks`]) and the bridge subnet. The agent refuses to
    /// start otherwise.
    pub fn check(&self) -> Result<(), String> {
        check_ports(
            self.min_dynamic_port,
            self.max_dynamic_port,
            self.reserved_ports.as_deref(),
        )?;
        check_host_networks(&self.host_networks, self.network_interface.as_deref())
            .map_err(|e| format!("invalid host networks: {e}"))?;
        crate::network::cni::check_subnet(&self.bridge_network_subnet)
            .map_err(|e| format!("invalid bridge network subnet: {e}"))
    }

    /// The reserved ports as the Node reports them: the list as given, `None` when it names
    /// no port.
    pub fn reserved_ports_text(&self) -> Option<String> {
        self.reserved_ports
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    }
}

/// Checks port settings (`--min-dynamic-port`, `--max-dynamic-port`, `--reserved-ports`):
/// ports from 1 to 65535, `min <= max`, a reserved list in Nomad's syntax (`22,80,8000-8100`).
pub fn check_ports(min: u16, max: u16, reserved: Option<&str>) -> Result<(), String> {
    if min == 0 || max == 0 {
        return Err("the dynamic port range must be within 1-65535".into());
    }
    if min > max {
        return Err(format!(
            "the lowest dynamic port ({min}) is above the highest ({max})"
        ));
    }
    if let Some(text) = reserved {
        parse_port_list(text).map_err(|e| format!("invalid reserved ports {text:?}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_max_kill_timeout_defaults_to_the_limit() {
        let config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        assert_eq!(
            config.max_kill_timeout,
            caravan_schemas::limits::MAX_KILL_TIMEOUT
        );
    }

    #[test]
    fn port_settings_are_checked() {
        let mut config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        assert_eq!(
            (config.min_dynamic_port, config.max_dynamic_port),
            (20000, 32000)
        );
        assert_eq!(config.check(), Ok(()));
        config.reserved_ports = Some(" 22, 80,8000-8100 ".into());
        assert_eq!(config.check(), Ok(()));
        assert_eq!(
            config.reserved_ports_text().as_deref(),
            Some("22, 80,8000-8100")
        );
        config.reserved_ports = Some(" ".into());
        assert_eq!(config.reserved_ports_text(), None);
        config.reserved_ports = Some("22,http".into());
        let err = config.check().unwrap_err();
        assert!(err.contains("invalid reserved ports \"22,http\""), "{err}");
        config.reserved_ports = Some("90-80".into());
        assert!(config.check().is_err());
        config.reserved_ports = None;
        config.min_dynamic_port = 40000;
        let err = config.check().unwrap_err();
        assert!(
            err.contains("(40000) is above the highest (32000)"),
            "{err}"
        );
        assert!(check_ports(0, 10, None).is_err());
        assert_eq!(check_ports(30000, 30000, Some("")), Ok(()));
    }

    #[test]
    fn host_networks_are_checked() {
        let mut config = ClientConfig::new("127.0.0.1:4646", "/tmp/x");
        config.host_networks = vec![HostNetworkConfig {
            name: "public".into(),
            interface: Some("eth1".into()),
            reserved_ports: Some("22".into()),
            ..Default::default()
        }];
        assert_eq!(config.check(), Ok(()));
        config.host_networks[0].reserved_ports = Some("22-".into());
        let err = config.check().unwrap_err();
        assert!(
            err.starts_with(
                "invalid host networks: host network \"public\": invalid reservedPorts"
            ),
            "{err}"
        );
        config.host_networks[0].reserved_ports = None;
        config.host_networks[0].name = "default".into();
        config.network_interface = Some("lo".into());
        let err = config.check().unwrap_err();
        assert!(err.contains("both choose the default network"), "{err}");
    }
}
