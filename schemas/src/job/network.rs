//! Checks of a task group's `network` block: what the scheduler and the node agent can honour.

use super::{NetworkMode, NetworkResource};
use crate::admission::checks::{Checks, dns1123_label};
use crate::limits::{MAX_PORT_LABEL_LEN, MAX_PORTS_PER_GROUP};
use crate::ports::DEFAULT_HOST_NETWORK;

/// Checks `network` (at `base`, e.g. `spec.groups[0].network`), adding every problem.
pub(crate) fn check(checks: &mut Checks, base: &str, network: &NetworkResource) {
    match network.mode {
        Some(NetworkMode::Bridge) => checks.invalid(
            format!("{base}.mode"),
            "network mode bridge is not supported yet; use host",
        ),
        Some(NetworkMode::None) => checks.invalid(
            format!("{base}.mode"),
            "network mode none is not supported yet; use host",
        ),
        Some(NetworkMode::Host) | None => {}
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
        if port.to.is_some() {
            checks.invalid(
                format!("{at}.to"),
                "to maps a port into a bridge network, which is not supported yet",
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
