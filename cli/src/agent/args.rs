//! Flags of `caravan agent`. Every setting may also come from a config file (`--config`);
//! flags given on the command line win over the file.

use std::path::PathBuf;

/// Arguments of `caravan agent`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AgentArgs {
    /// Run a single-node development cluster (server, controllers and a client in one
    /// process) with its state in a temporary directory unless --data-dir is given.
    #[arg(long)]
    pub dev: bool,
    /// Run as a server.
    #[arg(long)]
    pub server: bool,
    /// Run as a client (node agent): register this machine and run its allocations.
    #[arg(long)]
    pub client: bool,
    /// Servers a client talks to, comma-separated `host:port`; host names are resolved again
    /// on every reconnect.
    #[arg(long, env = "CARAVAN_SERVERS", value_delimiter = ',')]
    pub servers: Vec<String>,
    /// A YAML config file (see docs/agent.md); flags override its values.
    #[arg(long, short = 'c', env = "CARAVAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory holding the Raft log, snapshots and the client's local state (kept across
    /// restarts).
    #[arg(long, env = "CARAVAN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the HTTP API listens on [default: 127.0.0.1:4646].
    #[arg(long, env = "CARAVAN_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Address a client's own API (task logs) listens on [default: 127.0.0.1:4647 for a
    /// client, an ephemeral loopback port with --dev].
    #[arg(long)]
    pub client_http_addr: Option<String>,
    /// Log level: trace, debug, info, warn or error [default: info].
    #[arg(long)]
    pub log_level: Option<String>,
    /// Build a Raft snapshot after this many log entries, once they wrote at least half the
    /// last snapshot's size [default: 10000].
    #[arg(long)]
    pub snapshot_threshold: Option<u64>,
    /// Versions of each job the servers keep (JobVersions), besides its newest stable one
    /// [default: 6] (Nomad's `job_tracked_versions`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub job_tracked_versions: Option<u32>,
    /// Events kept per kind for watches to resume from [default: 20000].
    #[arg(long)]
    pub watch_cache_size: Option<usize>,
    /// Region of this agent [default: global]: the global `--region` flag, set by `main`.
    #[arg(skip)]
    pub region: Option<String>,
    /// Datacenter of this agent [default: dc1].
    #[arg(long)]
    pub datacenter: Option<String>,
    /// Node pool of this client [default: default].
    #[arg(long)]
    pub node_pool: Option<String>,
    /// Node class of this client.
    #[arg(long)]
    pub node_class: Option<String>,
    /// Node metadata `key=value`, usable in constraints as `${meta.key}`; repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Node name [default: the host name].
    #[arg(long)]
    pub name: Option<String>,
    /// CPU in MHz kept away from allocations.
    #[arg(long)]
    pub reserved_cpu: Option<u64>,
    /// Memory in MB kept away from allocations.
    #[arg(long)]
    pub reserved_memory: Option<u64>,
    /// Ports no allocation may hold on this client, e.g. `22,80,8000-8100` (Nomad's
    /// `reserved_ports`).
    #[arg(long, value_name = "LIST")]
    pub reserved_ports: Option<String>,
    /// Lowest port the scheduler assigns dynamically on this client [default: 20000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub min_dynamic_port: Option<u16>,
    /// Highest port the scheduler assigns dynamically on this client [default: 32000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_dynamic_port: Option<u16>,
    /// The interface whose IPv4 addresses the client offers ports on (its `default` host
    /// network; Nomad's `network_interface`), e.g. `eth1` or `lo` [default: the default
    /// route's interface, else the first with a usable address, else 127.0.0.1].
    #[arg(long, value_name = "IFACE")]
    pub network_interface: Option<String>,
    /// A named host network: the IPv4 addresses of INTERFACE, offered to job ports that name
    /// NAME as their `hostNetwork` (Nomad's client `host_network` block); repeatable. The
    /// config file's `client.hostNetworks` also selects by CIDR and reserves ports; a flag
    /// replaces the file's block of the same name.
    #[arg(long = "host-network", value_name = "NAME=INTERFACE")]
    pub host_network: Vec<String>,
    /// The config file's `client.hostNetworks`, set by the merge.
    #[arg(skip)]
    pub file_host_networks: Vec<caravan_nodeagent::fingerprint::HostNetworkConfig>,
    /// The subnet bridge-mode allocations get their addresses from (Nomad's
    /// `bridge_network_subnet`) [default: 172.26.64.0/20].
    #[arg(long, value_name = "CIDR")]
    pub bridge_network_subnet: Option<String>,
    /// The local OCI image store [default: $CARAVAN_IMAGE_DIR or /var/lib/caravan/images].
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    /// Task drivers to enable, comma-separated [default: exec,oci,mock; with --dev also
    /// raw_exec].
    #[arg(long, value_delimiter = ',')]
    pub drivers: Vec<String>,
    /// Capabilities `exec` and `oci` tasks may hold, comma-separated (`NET_ADMIN` or
    /// `CAP_NET_ADMIN`; `all`) [default: Docker's default set] (Nomad's `allow_caps`).
    #[arg(long, value_delimiter = ',')]
    pub allow_caps: Vec<String>,
    /// Shortest heartbeat TTL the servers hand out, e.g. `10s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat_min_ttl: Option<std::time::Duration>,
    /// Time past a node's TTL before its heartbeat counts as missed, e.g. `10s`.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub heartbeat_grace: Option<std::time::Duration>,
    /// Time between garbage collection passes of the servers [default: 5m].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub gc_interval: Option<std::time::Duration>,
    /// A node down this long is garbage-collected [default: 24h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub node_gc_threshold: Option<std::time::Duration>,
    /// A dead job this old is garbage-collected with its evaluations and allocations
    /// [default: 4h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub job_gc_threshold: Option<std::time::Duration>,
    /// A terminal evaluation this old is garbage-collected [default: 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub eval_gc_threshold: Option<std::time::Duration>,
    /// A terminal evaluation of a batch or sysbatch job this old is garbage-collected
    /// [default: 24h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub batch_eval_gc_threshold: Option<std::time::Duration>,
    /// A terminal deployment unchanged this long is garbage-collected, unless it is its job's
    /// newest or an allocation that is not terminal was placed under it [default: 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub deployment_gc_threshold: Option<std::time::Duration>,
    /// On SIGINT, drain this client so its allocations migrate, then exit (without it, SIGINT
    /// stops the agent at once and its tasks keep running).
    #[arg(long)]
    pub leave_on_interrupt: bool,
    /// On SIGTERM, drain this client so its allocations migrate, then exit.
    #[arg(long)]
    pub leave_on_terminate: bool,
    /// Drain deadline when leaving, e.g. `1h` [default: 1h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub leave_deadline: Option<std::time::Duration>,
    /// Scheduler workers on this server, leader or follower [default: one per core].
    #[arg(long)]
    pub num_schedulers: Option<usize>,
    /// Servers to wait for before forming the Raft cluster [default: 1 without --join, else
    /// none: join an existing cluster].
    #[arg(long)]
    pub bootstrap_expect: Option<usize>,
    /// Longest a task may take to stop after its kill signal before SIGKILL, whatever its
    /// `killTimeout`, e.g. `30s` [default: 30s] (Nomad's client `max_kill_timeout`).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub max_kill_timeout: Option<std::time::Duration>,
    /// Gossip address of another server to join through (repeatable, or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub join: Vec<String>,
    /// The secret every server of the cluster shares (16 to 256 visible ASCII characters):
    /// Raft RPCs, forwarded requests and the eval broker carry it and are refused without it.
    /// Needed by servers that join others; a lone server generates one [default: the one kept
    /// in the data dir].
    #[arg(long, env = "CARAVAN_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Authenticate and authorize every request with ACL tokens (`caravan acl bootstrap`
    /// makes the first); every server of a cluster must agree (see docs/security.md).
    #[arg(long)]
    pub acl_enabled: bool,
    #[command(flatten)]
    pub tls: super::tls::TlsArgs,
    /// Encrypt the servers' gossip with this key (32 bytes, base64: `caravan operator gossip
    /// keyring generate`), the same on every server. It seeds the keyring kept in the data
    /// dir on first start; later the kept keyring wins (rotate with `caravan operator gossip
    /// keyring`).
    #[arg(
        long,
        env = "CARAVAN_ENCRYPT",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub encrypt: Option<String>,
    /// Address other servers and agents reach this server at (an IP or host name), when the
    /// HTTP and gossip addresses bind a wildcard such as 0.0.0.0.
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// Gossip address of a server of another region to join through (repeatable): regions
    /// share one gossip pool, each keeps its own Raft cluster.
    #[arg(long, value_delimiter = ',')]
    pub join_wan: Vec<String>,
    /// UDP address of the servers' gossip [default: the HTTP address with port + 2].
    #[arg(long)]
    pub gossip_addr: Option<String>,
    /// Raft election timeout (the lower bound; the upper is twice it), e.g. `1s`
    /// [default: 1s]. Heartbeats go every quarter of it.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub raft_election_timeout: Option<std::time::Duration>,
    /// Serve only the API and the store: no evaluator, broker or scheduler workers (for
    /// controllers run out of process, and for benchmarking the API alone).
    #[arg(long)]
    pub no_controllers: bool,
}
