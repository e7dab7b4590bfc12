//! `caravan service list|info`: Nomad's service commands over the `ServiceRegistration`
//! objects node agents write for the services of running tasks ([`format`](mod@format) holds
//! the layouts).

pub mod format;

use anyhow::Context as _;
use caravan_client::ListParams;
use caravan_schemas::{Kind, ServiceRegistration};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use crate::cmd::Context;
use crate::output::object::{list, to_json, to_yaml};

/// Arguments of `caravan service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// List the registered services: their tags, instances and how many pass their checks.
    List(ListArgs),
    /// Show the instances of one service and their checks.
    Info(InfoArgs),
}

/// Output formats of `service list` and `service info`: the registrations as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceFormat {
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List across every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Print the registrations as a list in this format instead of the table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ServiceFormat>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The service's name.
    pub name: String,
    /// Print the service's registrations as a list in this format instead of the table.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<ServiceFormat>,
}

/// Runs a `service` subcommand.
pub async fn run(ctx: &Context, args: ServiceArgs) -> anyhow::Result<()> {
    match args.command {
        ServiceCommand::List(a) => {
            let items = registrations(ctx, a.all_namespaces, None).await?;
            if let Some(format) = a.output {
                return print_list(format, items);
            }
            if items.is_empty() {
                println!("No services found");
                return Ok(());
            }
            print!(
                "{}",
                format::services_table(&decode(items)?, a.all_namespaces)
            );
        }
        ServiceCommand::Info(a) => {
            let selector = format!("spec.serviceName={}", a.name);
            let items = registrations(ctx, false, Some(selector)).await?;
            if items.is_empty() {
                anyhow::bail!(
                    "no service named {:?} in namespace {:?}",
                    a.name,
                    ctx.global.namespace()
                );
            }
            if let Some(format) = a.output {
                return print_list(format, items);
            }
            print!("{}", format::service_info(&decode(items)?));
        }
    }
    Ok(())
}

/// The registrations in the `-n` namespace (or all), selected by `field_selector`.
async fn registrations(
    ctx: &Context,
    all_namespaces: bool,
    field_selector: Option<String>,
) -> anyhow::Result<Vec<Value>> {
    let api = if all_namespaces {
        ctx.client.all_namespaces(Kind::ServiceRegistration)
    } else {
        ctx.api(Kind::ServiceRegistration)
    };
    let params = ListParams {
        field_selector,
        ..ListParams::default()
    };
    Ok(api.list_all(&params).await?.items)
}

fn decode(items: Vec<Value>) -> anyhow::Result<Vec<ServiceRegistration>> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item)
                .context("the server returned an undecodable ServiceRegistration")
        })
        .collect()
}

fn print_list(format: ServiceFormat, items: Vec<Value>) -> anyhow::Result<()> {
    let value = list(items);
    match format {
        ServiceFormat::Json => print!("{}", to_json(&value)),
        ServiceFormat::Yaml => print!("{}", to_yaml(&value)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command};

    use super::*;

    #[test]
    fn list_and_info_parse_like_nomads() {
        let cli = Cli::try_parse_from(["caravan", "service", "list", "-A", "-o", "json"]).unwrap();
        let Command::Service(ServiceArgs {
            command: ServiceCommand::List(list),
        }) = cli.command
        else {
            panic!("not service list: {:?}", cli.command);
        };
        assert!(list.all_namespaces);
        assert_eq!(list.output, Some(ServiceFormat::Json));
        let cli = Cli::try_parse_from(["caravan", "-n", "prod", "service", "info", "web"]).unwrap();
        assert_eq!(cli.global.namespace(), "prod");
        assert!(matches!(
            cli.command,
            Command::Service(ServiceArgs {
                command: ServiceCommand::Info(InfoArgs { ref name, output: None }),
            }) if name == "web"
        ));
    }
}
