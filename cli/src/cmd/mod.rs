//! The client subcommands, one module each, sharing a [`Context`].

pub mod acl;
pub mod alloc;
pub mod apply;
pub mod delete;
pub mod deployment;
pub mod describe;
pub mod eval;
pub mod get;
pub mod image;
pub mod job;
pub mod logs;
pub mod node;
pub mod server;
pub mod service;
pub mod system;
pub mod tls;
pub mod version;

use caravan_client::{Api, HttpClient};
use caravan_schemas::Kind;

use crate::args::{Command, GlobalArgs};

/// What every command needs: the client and the global flags.
#[derive(Debug)]
pub struct Context {
    pub client: HttpClient,
    pub global: GlobalArgs,
}

impl Context {
    pub fn new(global: GlobalArgs) -> anyhow::Result<Context> {
        let client = HttpClient::new(&global.address)?
            .in_region(global.region.as_deref())
            .with_token(global.token.as_deref());
        let client = match cli_tls(&global)? {
            Some(tls) => client.with_tls(
                &tls,
                caravan_tls::Peer::Named(global.tls_server_name.clone()),
            )?,
            None => client,
        };
        Ok(Context { client, global })
    }

    /// The handle for `kind` in the `-n` namespace (cluster-scoped kinds ignore it).
    pub fn api(&self, kind: Kind) -> Api {
        self.client.api(kind, Some(self.global.namespace()))
    }
}

/// The CLI's TLS: with `--ca-cert` (and a client certificate when given), or none.
fn cli_tls(global: &GlobalArgs) -> anyhow::Result<Option<std::sync::Arc<caravan_tls::Tls>>> {
    let Some(ca_file) = global.ca_cert.clone() else {
        anyhow::ensure!(
            global.client_cert.is_none() && global.client_key.is_none(),
            "--client-cert and --client-key need --ca-cert (CARAVAN_CACERT)"
        );
        return Ok(None);
    };
    let settings = caravan_tls::TlsSettings {
        ca_file,
        cert_file: global.client_cert.clone(),
        key_file: global.client_key.clone(),
        verify_server_hostname: true,
        verify_https_client: false,
    };
    let tls = caravan_tls::Tls::load(settings)
        .map_err(|e| anyhow::anyhow!("invalid --ca-cert, --client-cert or --client-key: {e}"))?;
    Ok(Some(tls))
}

/// Runs a client subcommand. `agent` is dispatched by the binary itself.
pub async fn run(global: GlobalArgs, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Version => return version::run(&global).await,
        Command::Bench(args) => {
            let credentials = crate::bench::Credentials {
                token: global.token.clone(),
                tls: cli_tls(&global)?,
                server_name: global.tls_server_name.clone(),
            };
            return crate::bench::run(&global.address, args, credentials).await;
        }
        Command::Nodesim(args) => return crate::nodesim::run(args).await,
        Command::Image(args) => return image::run(args).await,
        Command::Tls(args) => return tls::run(args, global.region.as_deref()),
        _ => {}
    }
    let ctx = Context::new(global)?;
    match command {
        Command::Apply(args) => apply::run(&ctx, args).await,
        Command::Get(args) => get::run(&ctx, args).await,
        Command::Describe(args) => describe::run(&ctx, args).await,
        Command::Delete(args) => delete::run(&ctx, args).await,
        Command::Job(args) => job::run(&ctx, args).await,
        Command::Deployment(args) => deployment::run(&ctx, args).await,
        Command::Eval(args) => eval::run(&ctx, args).await,
        Command::Alloc(args) => alloc::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Node(args) => node::run(&ctx, args).await,
        Command::Service(args) => service::run(&ctx, args).await,
        Command::System(args) => system::run(&ctx, args).await,
        Command::Acl(args) => acl::run(&ctx, args).await,
        Command::Server(args) => server::run(&ctx, args).await,
        Command::Operator(args) => server::run_operator(&ctx, args).await,
        Command::Executor(_) => unreachable!("dispatched by main before any runtime starts"),
        Command::Agent(_)
        | Command::Version
        | Command::Bench(_)
        | Command::Nodesim(_)
        | Command::Image(_)
        | Command::Tls(_) => {
            unreachable!("dispatched before the client commands")
        }
    }
}
