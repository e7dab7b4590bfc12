//! Resolution of constraint targets such as `${attr.kernel.name}`, `${node.datacenter}` or
//! `${meta.rack}` against a node (Nomad's `resolveTarget`).

use caravan_schemas::Node;

/// A parsed constraint target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A literal value (no `${…}`).
    Literal(String),
    /// `${node.unique.id}`: the node's uid, or its name when it has none.
    NodeId,
    /// `${node.unique.name}`.
    NodeName,
    /// `${node.datacenter}`.
    Datacenter,
    /// `${node.class}`.
    Class,
    /// `${node.pool}`.
    Pool,
    /// `${attr.X}`: a fingerprinted attribute.
    Attribute(String),
    /// `${meta.X}`: operator metadata of the node.
    Meta(String),
    /// Anything else in `${…}`: never set.
    Unknown(String),
}

impl Target {
    /// Parses a target as written in a constraint, affinity or spread.
    pub fn parse(raw: &str) -> Self {
        let Some(inner) = raw.strip_prefix("${").and_then(|s| s.strip_suffix('}')) else {
            return Target::Literal(raw.to_string());
        };
        match inner {
            "node.unique.id" => Target::NodeId,
            "node.unique.name" => Target::NodeName,
            "node.datacenter" => Target::Datacenter,
            "node.class" => Target::Class,
            "node.pool" => Target::Pool,
            _ => {
                if let Some(attr) = inner.strip_prefix("attr.") {
                    Target::Attribute(attr.to_string())
                } else if let Some(meta) = inner.strip_prefix("meta.") {
                    Target::Meta(meta.to_string())
                } else {
                    Target::Unknown(inner.to_string())
                }
            }
        }
    }

    /// The value of the target on `node`, `None` when unset.
    pub fn resolve<'a>(&'a self, node: &'a Node) -> Option<&'a str> {
        match self {
            Target::Literal(value) => Some(value),
            Target::NodeId => node
                .metadata
                .uid
                .as_deref()
                .or(node.metadata.name.as_deref()),
            Target::NodeName => node.metadata.name.as_deref(),
            Target::Datacenter => Some(node.datacenter()),
            Target::Class => node.spec.node_class.as_deref(),
            Target::Pool => Some(node.pool()),
            Target::Attribute(key) => node
                .status
                .as_ref()
                .and_then(|s| s.attributes.get(key))
                .map(String::as_str),
            Target::Meta(key) => node.spec.meta.get(key).map(String::as_str),
            Target::Unknown(_) => None,
        }
    }

    /// Whether every node of one computed class resolves it to the same value: false for the
    /// node's name and uid and for `unique.` attributes and meta.
    pub fn is_class_wide(&self) -> bool {
        match self {
            Target::NodeId | Target::NodeName => false,
            Target::Attribute(key) | Target::Meta(key) => {
                !key.starts_with(caravan_schemas::node::UNIQUE_PREFIX)
            }
            Target::Literal(_)
            | Target::Datacenter
            | Target::Class
            | Target::Pool
            | Target::Unknown(_) => true,
        }
    }

    /// Whether the value depends on the node (false for literals).
    pub fn is_interpolated(&self) -> bool {
        !matches!(self, Target::Literal(_))
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn targets_resolve_against_the_node() {
        let mut node = mock::node("n1");
        node.spec.meta.insert("rack".into(), "r1".into());
        let cases = [
            ("${attr.kernel.name}", Some("linux")),
            ("${node.datacenter}", Some("dc1")),
            ("${node.unique.name}", Some("n1")),
            ("${node.class}", Some("linux-medium-pci")),
            ("${node.pool}", Some("default")),
            ("${meta.rack}", Some("r1")),
            ("${meta.missing}", None),
            ("${bogus.x}", None),
            ("plain", Some("plain")),
        ];
        for (raw, want) in cases {
            assert_eq!(Target::parse(raw).resolve(&node), want, "{raw}");
        }
    }
}
