//! What a set of policies allows, compiled once per token (Nomad's `acl.ACL`): capabilities
//! per namespace (exact names first, else the closest glob), and levels on nodes, the agent
//! and the operator. Pure.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AclPolicySpec;

/// A level of access to nodes, the agent or the operator, and a namespace policy shorthand.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Level {
    Read,
    Write,
    Deny,
}

/// A capability in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Overrides every other capability in the namespace.
    Deny,
    /// List and watch jobs and their objects.
    ListJobs,
    /// Get jobs and their objects (versions, evaluations, allocations, deployments,
    /// services).
    ReadJob,
    /// Create, change and delete jobs, evaluations and deployments; plan jobs.
    SubmitJob,
    /// Read allocations' logs.
    ReadLogs,
    /// Stop and delete allocations.
    AllocLifecycle,
}

impl Capability {
    const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The capability's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Deny => "deny",
            Capability::ListJobs => "list-jobs",
            Capability::ReadJob => "read-job",
            Capability::SubmitJob => "submit-job",
            Capability::ReadLogs => "read-logs",
            Capability::AllocLifecycle => "alloc-lifecycle",
        }
    }
}

/// What `policy: read` grants.
const READ: u32 = Capability::ListJobs.bit() | Capability::ReadJob.bit();
/// What `policy: write` grants.
const WRITE: u32 = READ
    | Capability::SubmitJob.bit()
    | Capability::ReadLogs.bit()
    | Capability::AllocLifecycle.bit();

fn level_bits(level: Level) -> u32 {
    match level {
        Level::Read => READ,
        Level::Write => WRITE,
        Level::Deny => Capability::Deny.bit(),
    }
}

/// Merges two levels as Nomad does: `deny` wins, then `write`.
fn merge(a: Option<Level>, b: Option<Level>) -> Option<Level> {
    match (a, b) {
        (Some(Level::Deny), _) | (_, Some(Level::Deny)) => Some(Level::Deny),
        (Some(Level::Write), _) | (_, Some(Level::Write)) => Some(Level::Write),
        (a, b) => a.or(b),
    }
}

fn grants(level: Option<Level>, wanted: Level) -> bool {
    matches!(
        (level, wanted),
        (Some(Level::Write), Level::Read | Level::Write) | (Some(Level::Read), Level::Read)
    )
}

/// What a token may do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    management: bool,
    /// Capability bits per exact namespace name.
    exact: HashMap<String, u32>,
    /// (glob, capability bits), in the order first written.
    globs: Vec<(String, u32)>,
    node: Option<Level>,
    agent: Option<Level>,
    operator: Option<Level>,
}

impl Acl {
    /// Everything.
    pub fn management() -> Acl {
        Acl {
            management: true,
            ..Acl::default()
        }
    }

    /// The union of `policies` (deny wins).
    pub fn compile<'a>(policies: impl IntoIterator<Item = &'a AclPolicySpec>) -> Acl {
        let mut acl = Acl::default();
        for policy in policies {
            for rule in &policy.namespaces {
                let mut bits = rule.policy.map_or(0, level_bits);
                for capability in &rule.capabilities {
                    bits |= capability.bit();
                }
                let slot = if rule.name.contains('*') {
                    match acl.globs.iter_mut().find(|(glob, _)| *glob == rule.name) {
                        Some((_, existing)) => existing,
                        None => {
                            acl.globs.push((rule.name.clone(), 0));
                            &mut acl.globs.last_mut().expect("just pushed").1
                        }
                    }
                } else {
                    acl.exact.entry(rule.name.clone()).or_default()
                };
                *slot |= bits;
            }
            acl.node = merge(acl.node, policy.node);
            acl.agent = merge(acl.agent, policy.agent);
            acl.operator = merge(acl.operator, policy.operator);
        }
        acl
    }

    /// Whether this is a management ACL.
    pub fn is_management(&self) -> bool {
        self.management
    }

    /// The capability bits that apply in `namespace`: its exact rule, else the closest
    /// matching glob (the one leaving the fewest characters to its wildcards), else none.
    fn namespace_bits(&self, namespace: &str) -> u32 {
        if let Some(bits) = self.exact.get(namespace) {
            return *bits;
        }
        self.globs
            .iter()
            .filter(|(glob, _)| glob_matches(glob, namespace))
            .min_by_key(|(glob, _)| namespace.len() - literal_len(glob).min(namespace.len()))
            .map_or(0, |(_, bits)| *bits)
    }

    /// Whether `capability` is granted in `namespace`.
    pub fn allows(&self, namespace: &str, capability: Capability) -> bool {
        if self.management {
            return true;
        }
        let bits = self.namespace_bits(namespace);
        bits & Capability::Deny.bit() == 0 && bits & capability.bit() != 0
    }

    /// Whether any capability is granted in `namespace` (the namespace is then visible).
    pub fn allows_any(&self, namespace: &str) -> bool {
        if self.management {
            return true;
        }
        let bits = self.namespace_bits(namespace);
        bits & Capability::Deny.bit() == 0 && bits != 0
    }

    /// Whether some namespace rule grants `capability` (any capability when `None`): a list
    /// or watch of every namespace is scoped for a token with one, refused for a token
    /// without any.
    pub fn allows_somewhere(&self, capability: Option<Capability>) -> bool {
        if self.management {
            return true;
        }
        let wanted = capability.map_or(!Capability::Deny.bit(), Capability::bit);
        self.exact
            .values()
            .chain(self.globs.iter().map(|(_, bits)| bits))
            .any(|bits| bits & Capability::Deny.bit() == 0 && bits & wanted != 0)
    }

    /// Whether nodes may be read (`Level::Read`) or written (`Level::Write`).
    pub fn allows_node(&self, wanted: Level) -> bool {
        self.management || grants(self.node, wanted)
    }

    /// Whether the agent may be read or written.
    pub fn allows_agent(&self, wanted: Level) -> bool {
        self.management || grants(self.agent, wanted)
    }

    /// Whether the operator may be read or written.
    pub fn allows_operator(&self, wanted: Level) -> bool {
        self.management || grants(self.operator, wanted)
    }
}

/// Characters of `glob` that are not wildcards.
fn literal_len(glob: &str) -> usize {
    glob.chars().filter(|c| *c != '*').map(char::len_utf8).sum()
}

/// Whether `text` matches `glob`, where `*` matches any run of characters. Linear in
/// `text` × the number of wildcards, without backtracking blow-up.
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let mut parts = glob.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No wildcard: the whole text must be the glob.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::NamespaceRule;

    fn policy(rules: &[(&str, Option<Level>, &[Capability])]) -> AclPolicySpec {
        AclPolicySpec {
            namespaces: rules
                .iter()
                .map(|(name, policy, caps)| NamespaceRule {
                    name: name.to_string(),
                    policy: *policy,
                    capabilities: caps.to_vec(),
                })
                .collect(),
            ..AclPolicySpec::default()
        }
    }

    #[test]
    fn globs_match_like_nomad() {
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("team-*", "team-a"));
        assert!(!glob_matches("team-*", "ops"));
        assert!(glob_matches("*-prod", "web-prod"));
        assert!(glob_matches("a*b*c", "aXXbYYc"));
        assert!(!glob_matches("a*b*c", "aXXcYYb"));
        assert!(glob_matches("default", "default"));
        assert!(!glob_matches("default", "default2"));
        assert!(!glob_matches("ab*ba", "aba"));
    }

    #[test]
    fn read_grants_reads_and_write_grants_more() {
        let acl = Acl::compile([&policy(&[("default", Some(Level::Read), &[])])]);
        assert!(acl.allows("default", Capability::ReadJob));
        assert!(acl.allows("default", Capability::ListJobs));
        assert!(!acl.allows("default", Capability::SubmitJob));
        assert!(!acl.allows("default", Capability::ReadLogs));
        assert!(!acl.allows("other", Capability::ReadJob));
        assert!(!acl.allows_any("other"));
        let acl = Acl::compile([&policy(&[("default", Some(Level::Write), &[])])]);
        assert!(acl.allows("default", Capability::SubmitJob));
        assert!(acl.allows("default", Capability::AllocLifecycle));
    }

    #[test]
    fn exact_beats_glob_and_the_closest_glob_wins() {
        let acl = Acl::compile([&policy(&[
            ("*", Some(Level::Read), &[]),
            ("team-*", Some(Level::Write), &[]),
            ("team-secret", Some(Level::Deny), &[]),
        ])]);
        assert!(acl.allows("team-a", Capability::SubmitJob));
        assert!(!acl.allows("ops", Capability::SubmitJob));
        assert!(acl.allows("ops", Capability::ReadJob));
        assert!(!acl.allows("team-secret", Capability::ReadJob));
        assert!(!acl.allows_any("team-secret"));
    }

    #[test]
    fn policies_merge_and_deny_wins() {
        let reader = policy(&[("default", Some(Level::Read), &[])]);
        let logs = policy(&[("default", None, &[Capability::ReadLogs])]);
        let acl = Acl::compile([&reader, &logs]);
        assert!(acl.allows("default", Capability::ReadLogs));
        assert!(acl.allows("default", Capability::ReadJob));
        let deny = policy(&[("default", None, &[Capability::Deny])]);
        let acl = Acl::compile([&reader, &deny]);
        assert!(!acl.allows("default", Capability::ReadJob));
        let mut nodes = AclPolicySpec {
            node: Some(Level::Write),
            ..AclPolicySpec::default()
        };
        let acl = Acl::compile([&nodes]);
        assert!(acl.allows_node(Level::Read) && acl.allows_node(Level::Write));
        nodes.node = Some(Level::Deny);
        let acl = Acl::compile([
            &nodes,
            &AclPolicySpec {
                node: Some(Level::Write),
                ..AclPolicySpec::default()
            },
        ]);
        assert!(!acl.allows_node(Level::Read));
        assert!(!acl.allows_agent(Level::Read));
    }

    #[test]
    fn somewhere_means_some_rule_grants_it() {
        let acl = Acl::compile([&policy(&[
            ("team-*", Some(Level::Read), &[]),
            ("secret", Some(Level::Deny), &[]),
        ])]);
        assert!(acl.allows_somewhere(Some(Capability::ListJobs)));
        assert!(!acl.allows_somewhere(Some(Capability::SubmitJob)));
        assert!(acl.allows_somewhere(None));
        assert!(!Acl::default().allows_somewhere(None));
        assert!(!Acl::default().allows_somewhere(Some(Capability::ListJobs)));
    }

    #[test]
    fn secret_hashes_are_sha256_hex() {
        assert_eq!(
            crate::acl::secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn management_allows_everything() {
        let acl = Acl::management();
        assert!(acl.allows("any", Capability::SubmitJob));
        assert!(acl.allows_operator(Level::Write));
    }
}
