//! Allocation networks (Nomad's `network.mode: bridge` and `none`): each such allocation gets a
//! network namespace of its own, `<netns dir>/<alloc uid>`, made before its tasks start and
//! joined by every one of them (`exec` and `oci` containers). In bridge mode the standard CNI
//! plugins set it up (`cni.rs` builds what they read, `invoke.rs` runs them): a veth on the
//! `caravan` bridge with a host-local address, the firewall rules, and the allocation's host
//! ports forwarded to it. In `none` mode the namespace has only its loopback interface.
//!
//! What tearing a network down needs (the plugin list, the port mappings, the ADD's result) is
//! saved in the agent's local state before the plugins run, so a restarted agent tears down
//! what an earlier one set up (`release.rs` decides when). Setting up again what is there and
//! tearing down what is gone are both fine.

pub mod cni;
mod invoke;
mod netns;
pub mod release;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use caravan_schemas::allocation::AllocatedPort;
use caravan_schemas::job::{NetworkMode, TaskGroup};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::LocalState;
use cni::PortMapping;
use invoke::Target;

/// Where the plugins are and what the bridge network looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkSettings {
    /// The subnet allocations get their addresses from (`--bridge-network-subnet`).
    pub bridge_subnet: String,
    /// The directory of the CNI plugins (`CNI_PATH`).
    pub cni_path: PathBuf,
    /// Where the allocations' namespaces are mounted, one file per allocation uid.
    pub netns_dir: PathBuf,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            bridge_subnet: cni::DEFAULT_BRIDGE_SUBNET.into(),
            cni_path: PathBuf::from("/usr/lib/cni"),
            netns_dir: PathBuf::from("/run/caravan/netns"),
        }
    }
}

/// The network an allocation's group asks for, when it is one the agent makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A namespace on the `caravan` bridge, with the allocation's ports forwarded into it.
    Bridge,
    /// A namespace with its loopback interface only.
    Isolated,
}

impl Mode {
    /// `None` for host networking (the default): nothing to make.
    pub fn of(group: &TaskGroup) -> Option<Mode> {
        match group.network.as_ref().and_then(|n| n.mode) {
            Some(NetworkMode::Bridge) => Some(Mode::Bridge),
            Some(NetworkMode::None) => Some(Mode::Isolated),
            Some(NetworkMode::Host) | None => None,
        }
    }
}

/// What the agent keeps of a network it set up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LocalNetwork {
    netns: PathBuf,
    /// The plugin list ADD ran (none in `none` mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conflist: Option<Value>,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
    /// The ADD's result, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
}

/// Makes the network of allocation `alloc_id` (unless an earlier agent did: then it is kept);
/// returns its namespace's path. On failure nothing is left.
pub async fn up(
    settings: &NetworkSettings,
    local: &LocalState,
    alloc_id: &str,
    mode: Mode,
    ports: &[AllocatedPort],
) -> Result<PathBuf, String> {
    // The uid becomes a path below.
    let alloc_id = crate::paths::alloc_uid(alloc_id)
        .map_err(|e| e.to_string())?
        .to_string();
    let saved = local.network(&alloc_id).ok().flatten();
    if let Some(saved) = saved.and_then(|v| serde_json::from_value::<LocalNetwork>(v).ok()) {
        let complete = saved.conflist.is_none() || saved.result.is_some();
        let netns = saved.netns.clone();
        let present = tokio::task::spawn_blocking(move || netns::exists(&netns)).await;
        if complete && present.is_ok_and(|p| p) {
            return Ok(saved.netns);
        }
        // Half made, or its namespace is gone (a reboot): start again from nothing.
        down(settings, local, &alloc_id).await;
    }
    let record = LocalNetwork {
        netns: settings.netns_dir.join(&alloc_id),
        conflist: (mode == Mode::Bridge).then(|| cni::bridge_conflist(&settings.bridge_subnet)),
        port_mappings: match mode {
            Mode::Bridge => cni::port_mappings(ports),
            Mode::Isolated => Vec::new(),
        },
        result: None,
    };
    save(local, &alloc_id, &record)?;
    let cni_path = settings.cni_path.clone();
    let id = alloc_id.clone();
    let made = record.clone();
    let outcome = tokio::task::spawn_blocking(move || make(&made, &id, &cni_path))
        .await
        .map_err(|e| format!("network setup panicked: {e}"))
        .and_then(|r| r);
    match outcome {
        Ok(result) => {
            let netns = record.netns.clone();
            save(local, &alloc_id, &LocalNetwork { result, ..record })?;
            Ok(netns)
        }
        Err(message) => {
            down(settings, local, &alloc_id).await;
            Err(message)
        }
    }
}

/// Tears the network of allocation `alloc_id` down (if it has one) and forgets it. Failures are
/// logged; the record is kept then, for the next agent start to try again.
pub async fn down(settings: &NetworkSettings, local: &LocalState, alloc_id: &str) {
    let Ok(Some(value)) = local.network(alloc_id) else {
        return;
    };
    let cni_path = settings.cni_path.clone();
    let id = alloc_id.to_string();
    let released = tokio::task::spawn_blocking(move || {
        let record: LocalNetwork =
            serde_json::from_value(value).map_err(|e| format!("unreadable saved network: {e}"))?;
        release(&record, &id, &cni_path)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match released {
        Ok(()) => {
            if let Err(e) = local.delete_network(alloc_id) {
                tracing::warn!(alloc = %alloc_id, error = %e, "failed to forget a released network");
            }
        }
        Err(e) => {
            tracing::warn!(alloc = %alloc_id, error = %e, "failed to tear the allocation network down")
        }
    }
}

/// At start: tears down the saved networks of allocations the agent no longer keeps.
pub async fn release_gone(settings: &NetworkSettings, local: &LocalState, kept: &BTreeSet<String>) {
    let saved = match local.networks() {
        Ok(saved) => saved,
        Err(e) => {
            tracing::warn!(error = %e, "failed to read the saved networks");
            return;
        }
    };
    for id in release::gone_at_start(saved.iter().map(|(id, _)| id.as_str()), kept) {
        if crate::paths::alloc_uid(&id).is_err() {
            // Never set up (`up` checks the uid first): only the record goes.
            let _ = local.delete_network(&id);
            continue;
        }
        tracing::info!(alloc = %id, "tearing down the network of a gone allocation");
        down(settings, local, &id).await;
    }
}

fn save(local: &LocalState, alloc_id: &str, record: &LocalNetwork) -> Result<(), String> {
    let value = serde_json::to_value(record).map_err(|e| e.to_string())?;
    local
        .put_network(alloc_id, &value)
        .map_err(|e| format!("failed to save the allocation network: {e:#}"))
}

/// Creates the namespace, brings loopback up and runs the plugin list's ADD. Blocking.
fn make(record: &LocalNetwork, alloc_id: &str, cni_path: &Path) -> Result<Option<Value>, String> {
    netns::create(&record.netns)
        .map_err(|e| format!("failed to create the network namespace: {e}"))?;
    let target = |ifname| Target {
        container_id: alloc_id,
        netns: &record.netns,
        ifname,
        cni_path,
    };
    invoke::add(&cni::loopback_conflist(), target("lo"), &[])?;
    record
        .conflist
        .as_ref()
        .map(|list| invoke::add(list, target(cni::CONTAINER_IFNAME), &record.port_mappings))
        .transpose()
}

/// Runs the plugin list's DEL, then removes the namespace. Blocking.
fn release(record: &LocalNetwork, alloc_id: &str, cni_path: &Path) -> Result<(), String> {
    if let Some(list) = &record.conflist {
        let target = Target {
            container_id: alloc_id,
            netns: &record.netns,
            ifname: cni::CONTAINER_IFNAME,
            cni_path,
        };
        invoke::del(list, target, &record.port_mappings, record.result.as_ref())?;
    }
    netns::remove(&record.netns).map_err(|e| {
        format!(
            "failed to remove the network namespace {}: {e}",
            record.netns.display()
        )
    })
}
