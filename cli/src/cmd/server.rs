//! `caravan server members|join|force-leave` and `caravan operator raft
//! list-peers|transfer-leadership`, as
//! `nomad server …` and `nomad operator raft …` show and change the servers;
//! `caravan operator gossip keyring …` in `server/keyring.rs`.

mod keyring;

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cmd::Context;
use crate::cmd::job::format::columns;

/// Arguments of `caravan server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: ServerCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// List the servers of the region the answering server's gossip knows.
    Members {
        /// Every region's servers.
        #[arg(long)]
        wan: bool,
    },
    /// Gossip with other servers (their gossip addresses, `HOST:PORT`) so the clusters meet.
    Join {
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Remove a server (normally a dead one) from the Raft voters.
    ForceLeave { name: String },
}

/// Arguments of `caravan operator`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(subcommand)]
    pub command: OperatorCommand,
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Raft operations.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Gossip operations: the encryption keyring.
    #[command(subcommand)]
    Gossip(keyring::GossipCommand),
}

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Show the Raft configuration: every voter and learner, and the leader.
    ListPeers,
    /// Hand leadership to another voter (by name or Raft id; any other voter without --to).
    TransferLeadership {
        #[arg(long)]
        to: Option<String>,
    },
}

pub async fn run(ctx: &Context, args: ServerArgs) -> anyhow::Result<()> {
    match args.command {
        ServerCommand::Members { wan } => {
            let members = ctx.client.server_members(wan).await?;
            print!("{}", members_table(&members));
        }
        ServerCommand::Join { addresses } => {
            let answer = ctx.client.server_join(&addresses).await?;
            println!("Joined {} servers successfully", answer["numJoined"]);
        }
        ServerCommand::ForceLeave { name } => {
            ctx.client.server_force_leave(&name).await?;
            println!("Server {name:?} removed from the raft voters");
        }
    }
    Ok(())
}

pub async fn run_operator(ctx: &Context, args: OperatorArgs) -> anyhow::Result<()> {
    match args.command {
        OperatorCommand::Raft(RaftCommand::ListPeers) => {
            let config = ctx.client.raft_configuration().await?;
            print!("{}", peers_table(&config));
        }
        OperatorCommand::Raft(RaftCommand::TransferLeadership { to }) => {
            let answer = ctx.client.raft_transfer_leadership(to.as_deref()).await?;
            let leader = &answer["leader"];
            let name = leader["name"]
                .as_str()
                .map_or_else(|| text(leader, "raftId"), str::to_owned);
            println!(
                "Leadership transferred to {name} ({})",
                text(leader, "address")
            );
        }
        OperatorCommand::Gossip(command) => keyring::run(ctx, command).await?,
    }
    Ok(())
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `Name Address Status Leader Region Datacenter Raft ID Protocol`, one row per server.
pub fn members_table(members: &Value) -> String {
    let mut rows = vec![
        [
            "Name", "Address", "Status", "Leader", "Region", "DC", "Raft ID", "Protocol",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut list: Vec<&Value> = members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    list.sort_by_key(|m| text(m, "name"));
    for m in list {
        rows.push(vec![
            text(m, "name"),
            text(m, "httpAddr"),
            text(m, "status"),
            text(m, "leader"),
            text(m, "region"),
            text(m, "datacenter"),
            text(m, "raftId"),
            text(m, "protocolVersion"),
        ]);
    }
    columns(&rows)
}

/// `Node ID Address State Voter`, one row per Raft member.
pub fn peers_table(config: &Value) -> String {
    let mut rows = vec![
        ["Node", "ID", "Address", "State", "Voter"]
            .map(String::from)
            .to_vec(),
    ];
    for p in config["servers"].as_array().into_iter().flatten() {
        let state = if p["leader"] == true {
            "leader"
        } else {
            "follower"
        };
        rows.push(vec![
            p["name"].as_str().unwrap_or("(unknown)").to_string(),
            text(p, "raftId"),
            text(p, "address"),
            state.to_string(),
            text(p, "voter"),
        ]);
    }
    columns(&rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn members_and_peers_render_one_row_each() {
        let members = json!({"members": [
            {"name": "s2", "httpAddr": "10.0.0.2:4646", "status": "alive", "leader": false,
             "region": "global", "datacenter": "dc1", "raftId": 7, "protocolVersion": "1"},
            {"name": "s1", "httpAddr": "10.0.0.1:4646", "status": "failed", "leader": true,
             "region": "global", "datacenter": "dc1", "raftId": 3, "protocolVersion": "1"}]});
        let out = members_table(&members);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows[1],
            [
                "s1",
                "10.0.0.1:4646",
                "failed",
                "true",
                "global",
                "dc1",
                "3",
                "1"
            ]
        );
        assert_eq!(rows[2][0], "s2");

        let peers = json!({"servers": [
            {"raftId": 3, "name": "s1", "address": "10.0.0.1:4646", "leader": true, "voter": true},
            {"raftId": 9, "address": "10.0.0.9:4646", "leader": false, "voter": false}]});
        let out = peers_table(&peers);
        let rows: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[1], ["s1", "3", "10.0.0.1:4646", "leader", "true"]);
        assert_eq!(
            rows[2],
            ["(unknown)", "9", "10.0.0.9:4646", "follower", "false"]
        );
    }
}
