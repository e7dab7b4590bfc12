//! The registry of Caravan kinds: names, plurals, short names, scope and subresources.

use serde::{Deserialize, Serialize};

/// A kind served under `caravan.dev/v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Namespace,
    Node,
    Job,
    Evaluation,
    Allocation,
    Deployment,
    JobVersion,
    ServiceRegistration,
    AclPolicy,
    AclToken,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 10] = [
        Kind::Namespace,
        Kind::Node,
        Kind::Job,
        Kind::Evaluation,
        Kind::Allocation,
        Kind::Deployment,
        Kind::JobVersion,
        Kind::ServiceRegistration,
        Kind::AclPolicy,
        Kind::AclToken,
    ];

    /// The `kind` field, e.g. `Job`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Node => "Node",
            Kind::Job => "Job",
            Kind::Evaluation => "Evaluation",
            Kind::Allocation => "Allocation",
            Kind::Deployment => "Deployment",
            Kind::JobVersion => "JobVersion",
            Kind::ServiceRegistration => "ServiceRegistration",
            Kind::AclPolicy => "ACLPolicy",
            Kind::AclToken => "ACLToken",
        }
    }

    /// The `kind` of the list, e.g. `JobList`.
    pub fn list_name(self) -> String {
        format!("{}List", self.name())
    }

    /// The resource name used in URLs, e.g. `jobs`.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Node => "nodes",
            Kind::Job => "jobs",
            Kind::Evaluation => "evaluations",
            Kind::Allocation => "allocations",
            Kind::Deployment => "deployments",
            Kind::JobVersion => "jobversions",
            Kind::ServiceRegistration => "serviceregistrations",
            Kind::AclPolicy => "aclpolicies",
            Kind::AclToken => "acltokens",
        }
    }

    /// The singular resource name, e.g. `job`.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Node => "node",
            Kind::Job => "job",
            Kind::Evaluation => "evaluation",
            Kind::Allocation => "allocation",
            Kind::Deployment => "deployment",
            Kind::JobVersion => "jobversion",
            Kind::ServiceRegistration => "serviceregistration",
            Kind::AclPolicy => "aclpolicy",
            Kind::AclToken => "acltoken",
        }
    }

    /// Short names accepted by the CLI and advertised in discovery.
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &["ns"],
            Kind::Node => &["no"],
            Kind::Job => &["jb"],
            Kind::Evaluation => &["eval", "evals"],
            Kind::Allocation => &["alloc", "allocs"],
            Kind::Deployment => &["deploy"],
            Kind::JobVersion => &["jv"],
            Kind::ServiceRegistration => &["sreg"],
            Kind::AclPolicy => &["acp"],
            Kind::AclToken => &["act"],
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Kind::Namespace | Kind::Node | Kind::AclPolicy | Kind::AclToken
        )
    }

    /// Whether the kind has a `status` subresource (status is then only written through it).
    pub fn has_status(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::AclPolicy)
    }

    /// Whether clients may create, replace, patch and delete objects of this kind (their
    /// status subresource aside). JobVersions are written by the servers only.
    pub fn client_writable(self) -> bool {
        self != Kind::JobVersion
    }

    /// Whether clients may create objects of this kind through the resource API. ACLTokens
    /// are created by the servers, which make their secrets (`POST /v1/acl/tokens`).
    pub fn client_creatable(self) -> bool {
        self.client_writable() && self != Kind::AclToken
    }

    /// Whether clients may write the status subresource. An ACLToken's status is the hash of
    /// the secret the servers made: nobody writes it.
    pub fn client_writes_status(self) -> bool {
        self.has_status() && self != Kind::AclToken
    }

    /// Field paths usable in a `fieldSelector` besides `metadata.name` and `metadata.namespace`.
    pub fn selectable_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Allocation => &[
                "spec.nodeName",
                "spec.jobName",
                "spec.group",
                "spec.desiredStatus",
                "status.clientStatus",
            ],
            Kind::Evaluation => &["spec.jobName", "spec.nodeName", "status.status"],
            Kind::Deployment => &["spec.jobName", "status.status"],
            Kind::JobVersion => &["spec.jobName"],
            Kind::ServiceRegistration => &[
                "spec.serviceName",
                "spec.jobName",
                "spec.allocName",
                "spec.nodeName",
            ],
            Kind::Node => &["spec.datacenter", "spec.nodePool", "status.status"],
            Kind::Job => &["spec.type", "status.status"],
            Kind::Namespace | Kind::AclPolicy => &[],
            Kind::AclToken => &["spec.type"],
        }
    }

    /// Finds a kind by its kind name, plural, singular or short name (case-insensitive).
    pub fn lookup(name: &str) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        Kind::ALL.into_iter().find(|k| {
            k.name().eq_ignore_ascii_case(&lower)
                || k.plural() == lower
                || k.singular() == lower
                || k.short_names().contains(&lower.as_str())
        })
    }

    /// Finds a kind by the plural used in URLs.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// Finds a kind by its `kind` field.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_accepts_every_spelling() {
        for k in Kind::ALL {
            assert_eq!(Kind::lookup(k.name()), Some(k));
            assert_eq!(Kind::lookup(k.plural()), Some(k));
            assert_eq!(Kind::lookup(k.singular()), Some(k));
            for s in k.short_names() {
                assert_eq!(Kind::lookup(s), Some(k));
            }
        }
        assert_eq!(Kind::lookup("ALLOCS"), Some(Kind::Allocation));
        assert_eq!(Kind::lookup("pods"), None);
    }
}
