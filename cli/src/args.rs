//! The command line: global flags and every subcommand's arguments (clap derive).

use std::path::PathBuf;

use caravan_client::DEFAULT_ADDRESS;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::agent::AgentArgs;

/// Caravan: Nomad's scheduler behind a Kubernetes-style API.
#[derive(Debug, Parser)]
#[command(name = "caravan", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every client command shares.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Server address; several comma-separated addresses fail over in order.
    #[arg(long, global = true, env = "CARAVAN_ADDR", default_value = DEFAULT_ADDRESS)]
    pub address: String,
    /// Namespace of namespaced objects [default: default].
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Region to send requests to [default: the answering server's]; any server forwards them
    /// to a server of that region.
    #[arg(long, global = true, env = "CARAVAN_REGION")]
    pub region: Option<String>,
    /// ACL token (secret id) every request carries when the servers enforce ACLs.
    #[arg(long, global = true, env = "CARAVAN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) to check an `https://` server with.
    #[arg(long, global = true, env = "CARAVAN_CACERT")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for servers that require one (`verifyHttpsClient`).
    #[arg(long, global = true, env = "CARAVAN_CLIENT_CERT")]
    pub client_cert: Option<std::path::PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, env = "CARAVAN_CLIENT_KEY")]
    pub client_key: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry, instead of the address's host (e.g.
    /// `server.global.caravan`).
    #[arg(long, global = true, env = "CARAVAN_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

impl GlobalArgs {
    /// The namespace to use when an object does not name one.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server and/or node agent.
    Agent(Box<AgentArgs>),
    /// Create or update objects from files.
    Apply(ApplyArgs),
    /// Display one or many objects.
    Get(GetArgs),
    /// Show details of an object.
    Describe(DescribeArgs),
    /// Delete objects by name or from files.
    Delete(DeleteArgs),
    /// Print the client and server versions.
    Version,
    /// Run, plan, inspect and stop jobs, as `nomad job` does.
    Job(crate::cmd::job::JobArgs),
    /// List, inspect, promote, fail, pause and resume deployments, as `nomad deployment` does.
    Deployment(crate::cmd::deployment::DeploymentArgs),
    /// List and inspect evaluations.
    Eval(crate::cmd::eval::EvalArgs),
    /// Inspect allocations.
    Alloc(crate::cmd::alloc::AllocArgs),
    /// List and inspect nodes, set their scheduling eligibility, drain them.
    Node(crate::cmd::node::NodeArgs),
    /// List registered services and inspect their instances and checks, as `nomad service` does.
    Service(crate::cmd::service::ServiceArgs),
    /// System maintenance: garbage collection now.
    System(crate::cmd::system::SystemArgs),
    /// ACLs: bootstrap, tokens and policies.
    Acl(crate::cmd::acl::AclArgs),
    /// Create the certificate authority and the certificates for mutual TLS, as `nomad tls` does.
    Tls(crate::cmd::tls::TlsArgs),
    /// The servers: gossip members, join, force-leave.
    Server(crate::cmd::server::ServerArgs),
    /// Cluster operations: the Raft configuration, the gossip keyring.
    Operator(crate::cmd::server::OperatorArgs),
    /// Print or follow the stdout or stderr of an allocation's task.
    Logs(crate::cmd::logs::LogsArgs),
    /// Load generators: API throughput and latency, watch fan-out.
    Bench(crate::bench::BenchArgs),
    /// Simulated client nodes: register, heartbeat and run mock tasks like real agents.
    Nodesim(crate::nodesim::NodesimArgs),
    /// Run one task for the node agent (started by the agent, not by people).
    #[command(hide = true)]
    Executor(caravan_nodeagent::executor::ExecutorArgs),
    /// Import and list the OCI images of this node's local image store.
    Image(crate::cmd::image::ImageArgs),
}

/// `--dry-run` values, as kubectl spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DryRun {
    None,
    Server,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A file, a directory of .yaml/.yml/.json files, or `-` for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// `server`: have the server validate and admit, persisting nothing.
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "server")]
    pub dry_run: DryRun,
    /// Let the server merge the objects (server-side apply) instead of the client.
    #[arg(long)]
    pub server_side: bool,
    /// Field manager recorded by server-side apply.
    #[arg(long, default_value = "caravan")]
    pub field_manager: String,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// `KIND [NAME...]`, `KIND/NAME...`, or comma-separated kinds (`jobs,allocs`).
    #[arg(required = true, value_name = "KIND [NAME]...")]
    pub resources: Vec<String>,
    /// List across every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector, e.g. `app=web,tier!=cache`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=n1`.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<OutputFormat>,
    /// After listing, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Watch for changes without listing first.
    #[arg(long)]
    pub watch_only: bool,
    /// Objects fetched per list request.
    #[arg(long, default_value_t = 500)]
    pub chunk_size: u32,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// `KIND NAME...` or `KIND/NAME...`.
    #[arg(required = true, value_name = "KIND [NAME]...")]
    pub resources: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `KIND NAME...` or `KIND/NAME...`.
    #[arg(value_name = "KIND [NAME]...", required_unless_present = "files")]
    pub resources: Vec<String>,
    /// Delete the objects described in these files.
    #[arg(short = 'f', long = "filename", conflicts_with = "resources")]
    pub files: Vec<PathBuf>,
    /// Wait until the objects are gone (finalizers done) before returning.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
    /// Ignore objects that do not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// `server`: have the server check the delete, persisting nothing.
    #[arg(long, value_enum, default_value = "none", num_args = 0..=1, default_missing_value = "server")]
    pub dry_run: DryRun,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn job_inspect_and_revert_take_a_version() {
        let cli = Cli::try_parse_from(["caravan", "job", "inspect", "web", "--version", "2"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from(["caravan", "-n", "prod", "job", "revert", "web", "1"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from(["caravan", "job", "scale", "web", "frontend", "3"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from(["caravan", "job", "scale", "web", "a", "b", "3"]);
        assert!(cli.is_err());
    }
}
