//! A container task's capabilities: Docker's default set, less the task's `capDrop`, plus its
//! `capAdd`, every one of them within what the client allows (`--allow-caps`, Nomad's
//! `allow_caps`, Docker's default set unless the operator says otherwise). Pure.

use oci_spec::runtime::Capability;
use serde_json::Value;

use crate::container::spec::DEFAULT_CAPABILITIES;

/// A capability by name, as operators write it: `NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin`.
pub fn parse(name: &str) -> Result<Capability, String> {
    serde_json::from_value(Value::String(name.to_string()))
        .map_err(|_| format!("{name:?} is not a Linux capability"))
}

/// Every capability Linux defines (linux/capability.h), in order.
const ALL_NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A client's allow-list (`--allow-caps`): capability names, or `all`.
pub fn parse_allow_list(names: &[String]) -> Result<Vec<Capability>, String> {
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        return ALL_NAMES.iter().map(|n| parse(n)).collect();
    }
    names.iter().map(|n| parse(n)).collect()
}

/// The names in `list`, `all` standing for every capability in `all`.
fn expand(list: &[String], all: &[Capability]) -> Result<Vec<Capability>, String> {
    let mut caps = Vec::new();
    for name in list {
        if name.eq_ignore_ascii_case("all") {
            caps.extend_from_slice(all);
        } else {
            caps.push(parse(name)?);
        }
    }
    Ok(caps)
}

/// The capabilities a task gets: the default set less `drop` plus `add` (`all` in either
/// stands for every allowed capability); refused when one of them is not in `allowed`.
pub fn task_set(
    add: &[String],
    drop: &[String],
    allowed: &[Capability],
) -> Result<Vec<Capability>, String> {
    let dropped = expand(drop, &DEFAULT_CAPABILITIES)?;
    let mut caps: Vec<Capability> = DEFAULT_CAPABILITIES
        .into_iter()
        .filter(|c| !dropped.contains(c))
        .collect();
    for cap in expand(add, allowed)? {
        if !caps.contains(&cap) {
            caps.push(cap);
        }
    }
    let refused: Vec<String> = caps
        .iter()
        .filter(|c| !allowed.contains(c))
        .map(ToString::to_string)
        .collect();
    if !refused.is_empty() {
        return Err(format!(
            "this client does not allow the capabilities {} (allowed: {}; --allow-caps, \
             client.allowCaps)",
            refused.join(", "),
            allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn allow_lists_parse_and_all_is_every_capability() {
        assert_eq!(parse_allow_list(&names(&["all"])).unwrap().len(), 41);
        assert_eq!(
            parse_allow_list(&names(&["net_admin", "CAP_CHOWN"])).unwrap(),
            [Capability::NetAdmin, Capability::Chown]
        );
        assert!(parse_allow_list(&names(&["nope"])).is_err());
    }

    #[test]
    fn names_parse_as_operators_write_them() {
        for name in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin"] {
            assert_eq!(parse(name).unwrap(), Capability::NetAdmin);
        }
        assert!(parse("SUPERPOWERS").is_err());
    }

    #[test]
    fn the_default_set_less_drops_plus_allowed_adds() {
        let allowed = DEFAULT_CAPABILITIES.to_vec();
        assert_eq!(task_set(&[], &[], &allowed).unwrap(), allowed);
        let fewer = task_set(&[], &names(&["NET_RAW", "cap_mknod"]), &allowed).unwrap();
        assert_eq!(fewer.len(), allowed.len() - 2);
        assert!(!fewer.contains(&Capability::NetRaw));
        assert!(
            task_set(&[], &names(&["all"]), &allowed)
                .unwrap()
                .is_empty()
        );
        let kept = task_set(&names(&["CHOWN"]), &names(&["ALL"]), &allowed).unwrap();
        assert_eq!(kept, [Capability::Chown]);
    }

    #[test]
    fn a_capability_outside_the_allow_list_is_refused() {
        let allowed = DEFAULT_CAPABILITIES.to_vec();
        let refused = task_set(&names(&["NET_ADMIN"]), &[], &allowed).unwrap_err();
        assert!(refused.contains("NET_ADMIN"), "{refused}");
        let mut wider = allowed.clone();
        wider.push(Capability::NetAdmin);
        let caps = task_set(&names(&["NET_ADMIN"]), &[], &wider).unwrap();
        assert!(caps.contains(&Capability::NetAdmin));
        // An allow-list narrower than the defaults refuses tasks that keep the others.
        let narrow = vec![Capability::Chown];
        assert!(task_set(&[], &[], &narrow).is_err());
        assert_eq!(
            task_set(&[], &names(&["all"]), &narrow).unwrap(),
            Vec::<Capability>::new()
        );
    }
}
