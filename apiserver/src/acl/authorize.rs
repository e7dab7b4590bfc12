//! What an identity may do to what a request targets (pure): allowed, with the scope of what
//! it reads and the guard of what it writes, or denied with the reason.

use std::sync::Arc;

use caravan_schemas::Kind;
use caravan_schemas::acl::{Acl, Capability, Level};

use super::Identity;
use crate::api::{Access, Guard, Scope};

/// A resource request's verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    fn reads(self) -> bool {
        matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// What a request targets, as far as authorization goes.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Health, version, discovery, OpenAPI, bootstrap: anyone.
    Public,
    /// Server-to-server paths, already refused without the cluster secret.
    Members,
    /// Any token (not anonymous, not a node): the token's own info.
    Token,
    /// Management tokens (and the servers) only.
    Management,
    Agent(Level),
    Operator(Level),
    /// A resource path (object, collection or status).
    Resource {
        kind: Kind,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
        verb: Verb,
        status: bool,
    },
    /// A node's heartbeat.
    Heartbeat {
        node: &'a str,
    },
    /// An allocation's logs.
    Logs {
        namespace: &'a str,
    },
    /// Planning a job (what submitting it would do).
    JobPlan {
        namespace: &'a str,
    },
}

/// The answer.
#[derive(Debug)]
pub enum Decision {
    Allow(Access),
    Deny(String),
}

fn allow() -> Decision {
    Decision::Allow(Access::default())
}

fn allow_if(ok: bool, deny: impl FnOnce() -> String) -> Decision {
    if ok { allow() } else { Decision::Deny(deny()) }
}

/// What a client token needs for a verb on a kind.
enum Need {
    Capability(Capability),
    /// Any capability in the namespace (Namespace objects).
    Visible,
    Node(Level),
    Management,
}

fn need(kind: Kind, verb: Verb, status: bool) -> Need {
    let read_cap = || {
        Need::Capability(if verb == Verb::Get {
            Capability::ReadJob
        } else {
            Capability::ListJobs
        })
    };
    match kind {
        Kind::AclPolicy | Kind::AclToken => Need::Management,
        Kind::Namespace if verb.reads() => Need::Visible,
        Kind::Namespace => Need::Management,
        Kind::Node if verb.reads() => Need::Node(Level::Read),
        Kind::Node => Need::Node(Level::Write),
        _ if verb.reads() => read_cap(),
        // Status is the servers' and the nodes' to write.
        _ if status => Need::Management,
        Kind::Job | Kind::JobVersion | Kind::Evaluation | Kind::Deployment => {
            Need::Capability(Capability::SubmitJob)
        }
        Kind::Allocation if verb != Verb::Create => Need::Capability(Capability::AllocLifecycle),
        Kind::Allocation | Kind::ServiceRegistration => Need::Management,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Read => "read",
        Level::Write => "write",
        Level::Deny => "deny",
    }
}

fn verb_name(verb: Verb) -> &'static str {
    match verb {
        Verb::Get => "get",
        Verb::List => "list",
        Verb::Watch => "watch",
        Verb::Create => "create",
        Verb::Update => "update",
        Verb::Patch => "patch",
        Verb::Delete => "delete",
    }
}

/// Decides whether `identity` may do what `target` asks.
pub fn decide(identity: &Identity, target: Target<'_>) -> Decision {
    match (identity, target) {
        (_, Target::Public | Target::Members) => allow(),
        (Identity::Management, _) => allow(),
        (Identity::Policies { acl, accessor }, target) => {
            by_policies(acl, accessor, &identity.describe(), target)
        }
        (Identity::Node { name, secret_hash }, target) => by_node(name, secret_hash, target),
    }
}

fn by_policies(acl: &Arc<Acl>, accessor: &str, who: &str, target: Target<'_>) -> Decision {
    let denied = |what: String, needs: &str| format!("{what} is forbidden: {who} lacks {needs}");
    match target {
        Target::Public | Target::Members => allow(),
        Target::Token => allow_if(!accessor.is_empty(), || {
            "an anonymous request has no token to describe: send one (Authorization: Bearer)"
                .to_string()
        }),
        Target::Management => Decision::Deny(denied("this request".into(), "a management token")),
        Target::Agent(level) => allow_if(acl.allows_agent(level), || {
            denied(
                "this request".into(),
                &format!("agent {}", level_name(level)),
            )
        }),
        Target::Operator(level) => allow_if(acl.allows_operator(level), || {
            denied(
                "this request".into(),
                &format!("operator {}", level_name(level)),
            )
        }),
        Target::Heartbeat { node } => allow_if(acl.allows_node(Level::Write), || {
            denied(format!("the heartbeat of node {node:?}"), "node write")
        }),
        Target::Logs { namespace } => allow_if(acl.allows(namespace, Capability::ReadLogs), || {
            denied(
                format!("reading logs in namespace {namespace:?}"),
                "read-logs",
            )
        }),
        Target::JobPlan { namespace } => {
            allow_if(acl.allows(namespace, Capability::SubmitJob), || {
                denied(
                    format!("planning a job in namespace {namespace:?}"),
                    "submit-job",
                )
            })
        }
        Target::Resource {
            kind,
            namespace,
            name,
            verb,
            status,
        } => {
            let what = || {
                format!(
                    "{} {}.{}{}{}",
                    verb_name(verb),
                    kind.plural(),
                    caravan_schemas::GROUP,
                    name.map(|n| format!(" {n:?}")).unwrap_or_default(),
                    namespace
                        .map(|ns| format!(" in namespace {ns:?}"))
                        .unwrap_or_default(),
                )
            };
            match need(kind, verb, status) {
                Need::Management => Decision::Deny(denied(what(), "a management token")),
                Need::Node(level) => allow_if(acl.allows_node(level), || {
                    denied(what(), &format!("node {}", level_name(level)))
                }),
                Need::Visible => match (verb, name) {
                    (Verb::Get, Some(name)) => allow_if(acl.allows_any(name), || {
                        denied(what(), "any capability in that namespace")
                    }),
                    _ => scoped(acl, None, who, what()),
                },
                Need::Capability(capability) => match namespace {
                    Some(ns) => allow_if(acl.allows(ns, capability), || {
                        denied(what(), capability.as_str())
                    }),
                    // Every namespace: only what the token may see.
                    None if !verb.reads() => Decision::Deny(denied(what(), "a namespace")),
                    None => scoped(acl, Some(capability), who, what()),
                },
            }
        }
    }
}

fn scoped(acl: &Arc<Acl>, capability: Option<Capability>, who: &str, what: String) -> Decision {
    if !acl.allows_somewhere(capability) {
        let needs = capability.map_or("any capability", Capability::as_str);
        return Decision::Deny(format!(
            "{what} is forbidden: {who} lacks {needs} in every namespace"
        ));
    }
    Decision::Allow(Access {
        scope: Some(Arc::new(Scope::Namespaces {
            acl: acl.clone(),
            capability,
        })),
        guard: None,
    })
}

fn by_node(node: &str, secret_hash: &str, target: Target<'_>) -> Decision {
    let own = |field: &'static str, hash: Option<&str>| {
        let scope = Scope::Field {
            field,
            value: node.to_string(),
        };
        Decision::Allow(Access {
            scope: Some(Arc::new(scope.clone())),
            guard: Some(Arc::new(Guard {
                scope,
                node_secret_hash: hash.map(str::to_string),
            })),
        })
    };
    let denied = || {
        Decision::Deny(format!(
            "node {node:?} may only read and write its own Node, allocations and service \
             registrations, and read jobs"
        ))
    };
    match target {
        Target::Public | Target::Members => allow(),
        Target::Heartbeat { node: target } if target == node => allow(),
        Target::Resource {
            kind, name, verb, ..
        } => match kind {
            Kind::Node if verb != Verb::Delete && name.is_none_or(|n| n == node) => {
                own("metadata.name", Some(secret_hash))
            }
            Kind::Allocation if verb.reads() => own("spec.nodeName", None),
            Kind::Allocation if matches!(target, Target::Resource { status: true, .. }) => {
                own("spec.nodeName", None)
            }
            Kind::ServiceRegistration => own("spec.nodeName", None),
            Kind::Job | Kind::JobVersion if verb == Verb::Get => allow(),
            _ => denied(),
        },
        _ => denied(),
    }
}

#[cfg(test)]
mod tests;
