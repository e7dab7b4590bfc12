//! `caravan acl bootstrap`, `caravan acl token create|list|info|self|update|delete` and
//! `caravan acl policy list|info|delete`, as `nomad acl …`. Policies are written with
//! `caravan apply -f policy.yaml` (kind `ACLPolicy`).

use caravan_client::{DeleteParams, ListParams, PatchParams};
use caravan_schemas::Kind;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::job::format::{columns, text};

/// Arguments of `caravan acl`.
#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    pub command: AclCommand,
}

#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Create the first management token (once per cluster); prints its secret.
    Bootstrap,
    /// Tokens: bearer secrets granted policies.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Policies (written with `caravan apply -f`, kind ACLPolicy).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenType {
    Client,
    Management,
}

impl TokenType {
    fn as_str(self) -> &'static str {
        match self {
            TokenType::Client => "client",
            TokenType::Management => "management",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret (shown only now).
    Create {
        /// Human-readable name.
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type", value_enum, default_value = "client")]
        token_type: TokenType,
        /// A policy to grant (repeat for several).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// How long the token works, e.g. `8h` [default: forever].
        #[arg(long)]
        ttl: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Show a token by accessor id.
    Info { accessor: String },
    /// Show the token this command sends (`--token`, `CARAVAN_TOKEN`).
    #[command(name = "self")]
    Self_,
    /// Change a token's name, type or policies.
    Update {
        accessor: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type", value_enum)]
        token_type: Option<TokenType>,
        /// The policies to grant instead of the current ones (repeat for several).
        #[arg(long = "policy")]
        policies: Vec<String>,
    },
    /// Revoke a token by accessor id.
    Delete { accessor: String },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List policies.
    List,
    /// Show a policy.
    Info { name: String },
    /// Delete a policy.
    Delete { name: String },
}

pub async fn run(ctx: &Context, args: AclArgs) -> anyhow::Result<()> {
    match args.command {
        AclCommand::Bootstrap => print!("{}", token_info(&ctx.client.acl_bootstrap().await?)),
        AclCommand::Token(command) => token(ctx, command).await?,
        AclCommand::Policy(command) => policy(ctx, command).await?,
    }
    Ok(())
}

async fn token(ctx: &Context, command: TokenCommand) -> anyhow::Result<()> {
    let api = ctx.client.api(Kind::AclToken, None);
    match command {
        TokenCommand::Create {
            name,
            token_type,
            policies,
            ttl,
        } => {
            let mut request = json!({"type": token_type.as_str(), "policies": policies});
            if let Some(name) = name {
                request["displayName"] = json!(name);
            }
            if let Some(ttl) = ttl {
                request["expirationTTL"] = json!(ttl);
            }
            print!(
                "{}",
                token_info(&ctx.client.acl_create_token(&request).await?)
            );
        }
        TokenCommand::List => {
            let list = api.list_all(&ListParams::default()).await?;
            let mut rows = vec![vec![
                "NAME".to_string(),
                "TYPE".to_string(),
                "ACCESSOR ID".to_string(),
                "POLICIES".to_string(),
                "EXPIRES".to_string(),
            ]];
            rows.extend(list.items.iter().map(|t| {
                vec![
                    text(t, "/spec/displayName").to_string(),
                    type_of(t).to_string(),
                    text(t, "/metadata/name").to_string(),
                    policies_of(t),
                    or_never(text(t, "/spec/expirationTime")),
                ]
            }));
            print!("{}", columns(&rows));
        }
        TokenCommand::Info { accessor } => print!("{}", token_info(&api.get(&accessor).await?)),
        TokenCommand::Self_ => print!("{}", token_info(&ctx.client.acl_token_self().await?)),
        TokenCommand::Update {
            accessor,
            name,
            token_type,
            policies,
        } => {
            let mut spec = serde_json::Map::new();
            if let Some(name) = name {
                spec.insert("displayName".into(), json!(name));
            }
            if let Some(token_type) = token_type {
                spec.insert("type".into(), json!(token_type.as_str()));
            }
            if !policies.is_empty() {
                spec.insert("policies".into(), json!(policies));
            }
            anyhow::ensure!(
                !spec.is_empty(),
                "nothing to update: give --name, --type or --policy"
            );
            let patch = json!({ "spec": spec });
            let updated = api
                .patch_merge(&accessor, &patch, &PatchParams::default())
                .await?;
            print!("{}", token_info(&updated));
        }
        TokenCommand::Delete { accessor } => {
            api.delete(&accessor, &DeleteParams::default()).await?;
            println!("Token {accessor} deleted");
        }
    }
    Ok(())
}

async fn policy(ctx: &Context, command: PolicyCommand) -> anyhow::Result<()> {
    let api = ctx.client.api(Kind::AclPolicy, None);
    match command {
        PolicyCommand::List => {
            let list = api.list_all(&ListParams::default()).await?;
            let mut rows = vec![vec!["NAME".to_string(), "DESCRIPTION".to_string()]];
            rows.extend(list.items.iter().map(|p| {
                vec![
                    text(p, "/metadata/name").to_string(),
                    text(p, "/spec/description").to_string(),
                ]
            }));
            print!("{}", columns(&rows));
        }
        PolicyCommand::Info { name } => {
            let policy = api.get(&name).await?;
            println!("{}", yaml_serde::to_string(&policy)?);
        }
        PolicyCommand::Delete { name } => {
            api.delete(&name, &DeleteParams::default()).await?;
            println!("Policy {name} deleted");
        }
    }
    Ok(())
}

fn type_of(token: &Value) -> &str {
    match text(token, "/spec/type") {
        "" => "client",
        t => t,
    }
}

fn policies_of(token: &Value) -> String {
    token
        .pointer("/spec/policies")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn or_never(text: &str) -> String {
    if text.is_empty() {
        "never".to_string()
    } else {
        text.to_string()
    }
}

/// A token as `nomad acl token info` prints it; the secret only when the answer has it.
fn token_info(token: &Value) -> String {
    let secret = match text(token, "/secretID") {
        "" => "<hidden>",
        s => s,
    };
    let rows = vec![
        vec![
            "Accessor ID".to_string(),
            text(token, "/metadata/name").to_string(),
        ],
        vec!["Secret ID".to_string(), secret.to_string()],
        vec![
            "Name".to_string(),
            text(token, "/spec/displayName").to_string(),
        ],
        vec!["Type".to_string(), type_of(token).to_string()],
        vec!["Policies".to_string(), policies_of(token)],
        vec![
            "Create Time".to_string(),
            text(token, "/metadata/creationTimestamp").to_string(),
        ],
        vec![
            "Expiry Time".to_string(),
            or_never(text(token, "/spec/expirationTime")),
        ],
    ];
    columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_info_shows_the_secret_only_when_answered() {
        let mut token = json!({
            "metadata": {"name": "a1"},
            "spec": {"type": "management", "displayName": "Bootstrap Token"},
        });
        let shown = token_info(&token);
        assert!(
            shown.contains("<hidden>") && shown.contains("management"),
            "{shown}"
        );
        assert!(shown.contains("never"), "{shown}");
        token["secretID"] = json!("s3cr3t");
        assert!(token_info(&token).contains("s3cr3t"));
    }
}
