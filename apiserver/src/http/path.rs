//! Parsing of resource paths under `/apis/caravan.dev/v1/`.

use caravan_schemas::Kind;

use super::error::ApiError;

/// The prefix every resource path starts with.
pub const PREFIX: &str = "/apis/caravan.dev/v1/";

/// The namespace and name of `…/namespaces/{ns}/{plural}/{name}/{action}` (both non-empty,
/// percent-decoded), for the action paths served apart from the resource router (plans).
pub fn namespaced_action(path: &str, plural: &str, action: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix(PREFIX)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match segments.as_slice() {
        ["namespaces", ns, kind, name, last]
            if *kind == plural && *last == action && !ns.is_empty() && !name.is_empty() =>
        {
            Some((decode(ns), decode(name)))
        }
        _ => None,
    }
}

/// What a resource path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub kind: Kind,
    /// The namespace in the path; `None` for cluster-scoped kinds and all-namespace lists.
    pub namespace: Option<String>,
    /// The object name; `None` for a collection.
    pub name: Option<String>,
    /// Whether the path ends in `/status`.
    pub status: bool,
}

impl ResourcePath {
    /// Parses the part of `path` after [`PREFIX`].
    pub fn parse(path: &str) -> Result<ResourcePath, ApiError> {
        let rest = path.strip_prefix(PREFIX).ok_or(ApiError::NoRoute)?;
        let segments: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let kind_of = |plural: &str| Kind::from_plural(plural).ok_or(ApiError::NoRoute);
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let parsed = match seg.as_slice() {
            ["namespaces", ns, plural, rest @ ..] if *plural != "status" => {
                let kind = kind_of(plural)?;
                if !kind.namespaced() {
                    return Err(ApiError::NoRoute);
                }
                let (name, status) = match rest {
                    [] => (None, false),
                    [name] => (Some(name.to_string()), false),
                    [name, "status"] => (Some(name.to_string()), true),
                    _ => return Err(ApiError::NoRoute),
                };
                ResourcePath {
                    kind,
                    namespace: Some(ns.to_string()),
                    name,
                    status,
                }
            }
            [plural, rest @ ..] => {
                let kind = kind_of(plural)?;
                let (name, status) = match rest {
                    [] => (None, false),
                    [name] if !kind.namespaced() => (Some(name.to_string()), false),
                    [name, "status"] if !kind.namespaced() => (Some(name.to_string()), true),
                    _ => return Err(ApiError::NoRoute),
                };
                ResourcePath {
                    kind,
                    namespace: None,
                    name,
                    status,
                }
            }
            [] => return Err(ApiError::NoRoute),
        };
        if parsed.status && !parsed.kind.has_status() {
            return Err(ApiError::NoRoute);
        }
        if parsed.name.as_deref() == Some("") || parsed.namespace.as_deref() == Some("") {
            return Err(ApiError::NoRoute);
        }
        Ok(parsed)
    }

    /// The store namespace of an object under this path (`""` for cluster-scoped kinds).
    pub fn store_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<ResourcePath, ApiError> {
        ResourcePath::parse(&format!("{PREFIX}{s}"))
    }

    #[test]
    fn namespaced_paths_parse() {
        let r = p("namespaces/default/jobs/web/status").unwrap();
        assert_eq!(r.kind, Kind::Job);
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert!(r.status);
        let r = p("namespaces/default/allocations").unwrap();
        assert_eq!((r.kind, r.name), (Kind::Allocation, None));
    }

    #[test]
    fn cluster_paths_and_namespace_objects_parse() {
        let r = p("namespaces/default").unwrap();
        assert_eq!(r.kind, Kind::Namespace);
        assert_eq!(r.name.as_deref(), Some("default"));
        assert_eq!(r.namespace, None);
        let r = p("nodes/n1/status").unwrap();
        assert_eq!((r.kind, r.status), (Kind::Node, true));
        let r = p("jobs").unwrap();
        assert_eq!((r.kind, r.namespace), (Kind::Job, None));
    }

    #[test]
    fn unknown_or_malformed_paths_are_404() {
        for bad in [
            "pods",
            "namespaces/default/pods",
            "jobs/web",
            "namespaces/default/nodes",
            "namespaces/default/status",
            "namespaces/default/jobs/web/logs",
            "",
        ] {
            assert!(matches!(p(bad), Err(ApiError::NoRoute)), "{bad}");
        }
    }
}
