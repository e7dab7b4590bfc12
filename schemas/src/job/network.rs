//! Checks of a task group's `network` block: what the scheduler and the node agent can honour.

use super::{NetworkMode, NetworkResource, TaskGroup};
use crate::admission::checks::{Checks, dns1123_label};
use crate::limits::{MAX_PORT_LABEL_LEN, MAX_PORTS_PER_GROUP};
use crate::ports::DEFAULT_HOST_NETWORK;

/// Checks `network` (at `base`, e.g. `spec.groups[0].network`), adding every problem.
pub(crate) fn check(checks: &mut Checks, base: &str, network: &NetworkResource) {
    let bridge = network.mode == Some(NetworkMode::Bridge);
    if network.mode == Some(NetworkMode::None) && !network.ports.is_empty() {
        checks.invalid(
            format!("{base}.ports"),
            "an allocation with network mode none has only loopback: no host port can reach it",
        );
    }
    checks.max_items(
        format!("{base}.ports"),
        network.ports.len(),
        MAX_PORTS_PER_GROUP,
    );
    let mut labels = std::collections::HashSet::new();
    let mut statics = std::collections::HashSet::new();
    for (i, port) in network.ports.iter().enumerate() {
        let at = format!("{base}.ports[{i}]");
        if let Some(problem) = label_problem(&port.label) {
            checks.invalid(format!("{at}.label"), problem);
        } else if !labels.insert(port.label.as_str()) {
            checks.push(
                format!("{at}.label"),
                crate::FieldErrorKind::Duplicate,
                format!("duplicate port label {:?}", port.label),
            );
        }
        if port.value.is_some() {
            checks.invalid(
                format!("{at}.value"),
                "the scheduler assigns host ports; ask for a fixed one with static",
            );
        }
        if port.to.is_some() && !bridge {
            checks.invalid(
                format!("{at}.to"),
                "to maps a port into a bridge network; set the network mode to bridge",
            );
        }
        let host_network = port.host_network.as_deref();
        if let Some(problem) = host_network.and_then(dns1123_label) {
            checks.invalid(format!("{at}.hostNetwork"), problem);
        }
        if let Some(number) = port.r#static {
            let key = (host_network.unwrap_or(DEFAULT_HOST_NETWORK), number);
            if !statics.insert(key) {
                checks.invalid(
                    format!("{at}.static"),
                    format!("static port {number} is asked twice on one host network"),
                );
            }
        }
    }
}

/// Checks that every task of a group with a network namespace of its own (`bridge` or `none`)
/// can join it: `raw_exec` tasks run on the host's network and cannot.
pub(crate) fn check_drivers(checks: &mut Checks, base: &str, group: &TaskGroup) {
    let mode = match group.network.as_ref().and_then(|n| n.mode) {
        Some(NetworkMode::Bridge) => "bridge",
        Some(NetworkMode::None) => "none",
        Some(NetworkMode::Host) | None => return,
    };
    for (i, task) in group.tasks.iter().enumerate() {
        if task.driver == "raw_exec" {
            checks.invalid(
                format!("{base}.tasks[{i}].driver"),
                format!(
                    "raw_exec tasks run on the host's network and cannot join the allocation's network namespace (network mode {mode}); use exec or oci, or network mode host"
                ),
            );
        }
    }
}

/// What is wrong with a port label, if anything: it becomes part of variable names such as
/// `NOMAD_PORT_<label>`, so letters, digits, `_` and `-` only.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("a port label must not be empty".into());
    }
    if label.len() > MAX_PORT_LABEL_LEN {
        return Some(format!(
            "a port label must be at most {MAX_PORT_LABEL_LEN} characters"
        ));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Some("a port label may hold only letters, digits, '_' and '-'".into());
    }
    None
}
