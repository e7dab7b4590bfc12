//! `caravan operator gossip keyring generate|list|install|use|remove`, as `nomad operator
//! gossip keyring …`: make a key, and change the servers' gossip keys without a restart
//! (`GET`, `PUT /v1/operator/keyring`; the answering server applies a change on every server).

use std::time::Duration;

use caravan_apiserver::cluster::keyring::GossipKey;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::cmd::Context;
use crate::cmd::job::format::columns;

/// Gossip operations.
#[derive(Debug, Subcommand)]
pub enum GossipCommand {
    /// The keys that encrypt the servers' gossip.
    #[command(subcommand)]
    Keyring(KeyringCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Print a new random key (32 bytes, base64) for `caravan agent --encrypt`.
    Generate,
    /// List the keys the servers hold, and how many servers hold and use each.
    List,
    /// Install a key on every server: it decrypts gossip, and can be used next.
    Install { key: String },
    /// Encrypt gossip with an installed key from now on, on every server.
    Use { key: String },
    /// Remove a key from every server (not the one in use).
    Remove { key: String },
}

/// Longest a keyring change takes (the server asks every other server).
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Context, command: GossipCommand) -> anyhow::Result<()> {
    let GossipCommand::Keyring(command) = command;
    let (op, key) = match command {
        KeyringCommand::Generate => {
            println!("{}", GossipKey::generate().encode());
            return Ok(());
        }
        KeyringCommand::List => {
            let keyring: Value = ctx.client.get_path("/v1/operator/keyring").await?;
            print!("{}", keys_table(&keyring));
            return failures(&keyring);
        }
        KeyringCommand::Install { key } => ("install", key),
        KeyringCommand::Use { key } => ("use", key),
        KeyringCommand::Remove { key } => ("remove", key),
    };
    // Checked here, so that a typo never reaches the servers.
    GossipKey::parse(&key)?;
    let keyring = change(ctx, op, &key).await?;
    let servers = &keyring["numServers"];
    match op {
        "install" => println!("Installed the key on {servers} servers"),
        "use" => println!("Using the key on {servers} servers"),
        _ => println!("Removed the key from {servers} servers"),
    }
    Ok(())
}

/// `PUT /v1/operator/keyring?op=OP` with the key in the body (never in the URL).
async fn change(ctx: &Context, op: &str, key: &str) -> anyhow::Result<Value> {
    let url = format!(
        "{}/v1/operator/keyring?op={op}",
        ctx.client.address().trim_end_matches('/')
    );
    let mut request = reqwest::Client::builder()
        .build()?
        .put(&url)
        .timeout(CHANGE_TIMEOUT)
        .json(&json!({"key": key}));
    if let Some(token) = ctx.client.token() {
        request = request.bearer_auth(token);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("failed to reach {}: {e}", ctx.client.address()))?;
    let code = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    if !code.is_success() {
        let message = body["message"]
            .as_str()
            .map_or_else(|| code.to_string(), str::to_owned);
        anyhow::bail!("keyring {op} failed: {message}");
    }
    Ok(body)
}

/// Fails when some servers did not answer, naming them.
fn failures(keyring: &Value) -> anyhow::Result<()> {
    let errors: Vec<String> = keyring["errors"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, e)| format!("{name}: {}", e.as_str().unwrap_or_default()))
        .collect();
    anyhow::ensure!(
        errors.is_empty(),
        "some servers did not answer: {}",
        errors.join("; ")
    );
    Ok(())
}

/// `Key Servers Primary`: per key, the servers holding it and using it, out of all.
fn keys_table(keyring: &Value) -> String {
    let total = keyring["numServers"].as_u64().unwrap_or_default();
    let count = |map: &str, key: &str| keyring[map][key].as_u64().unwrap_or_default();
    let mut rows = vec![vec!["Key".to_string(), "Servers".into(), "Primary".into()]];
    for key in keyring["keys"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        rows.push(vec![
            key.clone(),
            format!("{}/{total}", count("keys", key)),
            format!("{}/{total}", count("primaryKeys", key)),
        ]);
    }
    columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_counts_servers_per_key() {
        let keyring = json!({"numServers": 3, "keys": {"a=": 3, "b=": 1},
            "primaryKeys": {"a=": 3}, "errors": {}});
        let table = keys_table(&keyring);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("Key"), "{table}");
        assert!(
            lines[1].contains("3/3") && lines[1].contains("a="),
            "{table}"
        );
        assert!(
            lines[2].contains("1/3") && lines[2].contains("0/3"),
            "{table}"
        );
        assert!(failures(&keyring).is_ok());
        let failed = json!({"errors": {"s3": "timed out"}});
        assert!(failures(&failed).unwrap_err().to_string().contains("s3"));
    }
}
