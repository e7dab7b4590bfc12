//! Running CNI plugins: each plugin of a list is executed from the plugin directory with the
//! CNI variables set and its configuration ([`super::cni::plugin_config`]) on stdin. Blocking:
//! call from a blocking thread.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::cni::{self, PortMapping};

/// What a list is run for: one allocation's namespace and interface.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// `CNI_CONTAINERID`: the allocation uid.
    pub container_id: &'a str,
    /// `CNI_NETNS`: the namespace's path.
    pub netns: &'a Path,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_PATH`: the directory holding the plugins.
    pub cni_path: &'a Path,
}

/// `ADD`s every plugin of `conflist` in order, each chained on the previous one's result;
/// returns the last result.
pub fn add(
    conflist: &Value,
    target: Target<'_>,
    mappings: &[PortMapping],
) -> Result<Value, String> {
    let types = cni::plugin_types(conflist)?;
    let mut prev: Option<Value> = None;
    for (i, typ) in types.iter().enumerate() {
        let config = cni::plugin_config(conflist, i, prev.as_ref(), mappings)
            .ok_or("the network configuration changed while in use")?;
        let out = exec(typ, "ADD", target, &config)?;
        let result: Value = serde_json::from_slice(&out)
            .map_err(|e| format!("CNI plugin {typ} answered an unreadable result: {e}"))?;
        prev = Some(result);
    }
    prev.ok_or_else(|| "the network configuration has no plugins".into())
}

/// `DEL`s every plugin of `conflist` in reverse order, each given `result` (the ADD's) as its
/// previous result. Every plugin is run; the first failure is returned. Deleting what is
/// already gone succeeds (the plugins' contract).
pub fn del(
    conflist: &Value,
    target: Target<'_>,
    mappings: &[PortMapping],
    result: Option<&Value>,
) -> Result<(), String> {
    let types = cni::plugin_types(conflist)?;
    let mut first_error = None;
    for (i, typ) in types.iter().enumerate().rev() {
        let Some(config) = cni::plugin_config(conflist, i, result, mappings) else {
            continue;
        };
        if let Err(e) = exec(typ, "DEL", target, &config) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Runs one plugin; its stdout when it succeeds.
fn exec(typ: &str, command: &str, target: Target<'_>, config: &Value) -> Result<Vec<u8>, String> {
    let program = target.cni_path.join(typ);
    let stdin = serde_json::to_vec(config).map_err(|e| e.to_string())?;
    let mut child = Command::new(&program)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", target.container_id)
        .env("CNI_NETNS", target.netns)
        .env("CNI_IFNAME", target.ifname)
        .env("CNI_PATH", target.cni_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("failed to run CNI plugin {}: {e}", program.display()))?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading its input fails below with its own message.
        let _ = input.write_all(&stdin);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("CNI plugin {typ}: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "CNI plugin {typ} {command} failed ({}): {}",
            out.status,
            cni::error_message(&out.stdout, &out.stderr)
        ))
    }
}
