//! Admission checks of ACLPolicies and ACLTokens.

use crate::acl::{AclPolicySpec, AclToken, TokenType};
use crate::admission::checks::{Checks, dns1123_label, dns1123_subdomain};
use crate::limits::{
    MAX_ACL_DESCRIPTION_LEN, MAX_ACL_NAMESPACE_RULES, MAX_ACL_TOKEN_POLICIES, MAX_LABEL_NAME_LEN,
};

/// A namespace rule's name: a namespace name, or a glob of one (`*` anywhere).
fn namespace_glob(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > MAX_LABEL_NAME_LEN {
        return Some(format!(
            "must be 1 to {MAX_LABEL_NAME_LEN} characters: a namespace name or a glob of one"
        ));
    }
    if name.contains('*') {
        let ok = name
            .bytes()
            .all(|b| b == b'*' || b == b'-' || b.is_ascii_lowercase() || b.is_ascii_digit());
        return (!ok)
            .then(|| "a glob may hold lowercase letters, digits, '-' and '*' only".to_string());
    }
    dns1123_label(name)
}

fn description(checks: &mut Checks, field: &str, text: Option<&str>) {
    if text.is_some_and(|t| t.len() > MAX_ACL_DESCRIPTION_LEN) {
        checks.invalid(
            field,
            format!("must be at most {MAX_ACL_DESCRIPTION_LEN} bytes"),
        );
    }
}

/// Checks a policy's rules.
pub(crate) fn policy(checks: &mut Checks, spec: &AclPolicySpec) {
    description(checks, "spec.description", spec.description.as_deref());
    checks.max_items(
        "spec.namespaces",
        spec.namespaces.len(),
        MAX_ACL_NAMESPACE_RULES,
    );
    for (i, rule) in spec.namespaces.iter().enumerate() {
        if let Some(problem) = namespace_glob(&rule.name) {
            checks.invalid(format!("spec.namespaces[{i}].name"), problem);
        }
        if rule.policy.is_none() && rule.capabilities.is_empty() {
            checks.invalid(
                format!("spec.namespaces[{i}]"),
                "grants nothing: give a policy (read, write, deny) or capabilities",
            );
        }
    }
    checks.unique_names(
        "spec.namespaces",
        spec.namespaces.iter().map(|r| r.name.as_str()),
    );
}

/// Whether `hash` is a lowercase hex SHA-256.
pub(crate) fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a token: its type and policies, its expiry and the stored hash.
pub(crate) fn token(checks: &mut Checks, token: &AclToken) {
    let spec = &token.spec;
    description(checks, "spec.displayName", spec.display_name.as_deref());
    checks.max_items("spec.policies", spec.policies.len(), MAX_ACL_TOKEN_POLICIES);
    if spec.token_type == TokenType::Management && !spec.policies.is_empty() {
        checks.invalid(
            "spec.policies",
            "a management token may do everything and takes no policies",
        );
    }
    for (i, name) in spec.policies.iter().enumerate() {
        if let Some(problem) = dns1123_subdomain(name) {
            checks.invalid(format!("spec.policies[{i}]"), problem);
        }
    }
    if let Some(at) = &spec.expiration_time
        && crate::time::parse_rfc3339(at).is_none()
    {
        checks.invalid(
            "spec.expirationTime",
            "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z",
        );
    }
    if let Some(status) = &token.status {
        let hash = &status.secret_hash;
        if !hash.is_empty() && !is_sha256_hex(hash) {
            checks.invalid(
                "status.secretHash",
                "must be the lowercase hex SHA-256 of the secret",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::Kind;
    use crate::admission::{FieldError, admit};

    fn fields(kind: Kind, object: Value) -> Vec<String> {
        match admit(kind, object, true) {
            Ok(admitted) => panic!("admitted: {:#}", admitted.object),
            Err(errors) => errors.into_iter().map(|e: FieldError| e.field).collect(),
        }
    }

    fn policy(spec: Value) -> Value {
        json!({"apiVersion": "caravan.dev/v1", "kind": "ACLPolicy",
               "metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn policies_are_checked_with_every_failing_field() {
        let good = policy(json!({"namespaces": [
            {"name": "team-*", "policy": "write"},
            {"name": "default", "capabilities": ["list-jobs", "read-logs"]}
        ], "node": "read", "operator": "write"}));
        admit(Kind::AclPolicy, good, true).expect("a good policy");
        // Values the schema does not know: capabilities not built yet, unknown levels.
        let unknown = policy(json!({"namespaces": [
            {"name": "y", "capabilities": ["alloc-exec"]},
            {"name": "z", "policy": "scale"}
        ], "node": "admin"}));
        let failing = fields(Kind::AclPolicy, unknown);
        for field in [
            "spec.namespaces[0].capabilities[0]",
            "spec.namespaces[1].policy",
            "spec.node",
        ] {
            assert!(failing.iter().any(|f| f == field), "{field} in {failing:?}");
        }
        // Then the semantic checks, every failing field at once.
        let bad = policy(json!({"namespaces": [
            {"name": "Bad_Name", "policy": "read"},
            {"name": "x"},
            {"name": "x", "policy": "deny"}
        ]}));
        let failing = fields(Kind::AclPolicy, bad);
        for field in [
            "spec.namespaces[0].name",
            "spec.namespaces[1]",
            "spec.namespaces[2].name",
        ] {
            assert!(failing.iter().any(|f| f == field), "{field} in {failing:?}");
        }
    }

    #[test]
    fn tokens_and_node_secret_hashes_are_checked() {
        let token = json!({"apiVersion": "caravan.dev/v1", "kind": "ACLToken",
            "metadata": {"name": "t"},
            "spec": {"type": "management", "policies": ["p"], "expirationTime": "tomorrow"},
            "status": {"secretHash": "ABC"}});
        let failing = fields(Kind::AclToken, token);
        for field in ["spec.policies", "spec.expirationTime", "status.secretHash"] {
            assert!(failing.iter().any(|f| f == field), "{field} in {failing:?}");
        }
        let node = json!({"apiVersion": "caravan.dev/v1", "kind": "Node",
            "metadata": {"name": "n1"}, "spec": {"secretIdHash": "not-a-hash"}});
        assert_eq!(fields(Kind::Node, node), ["spec.secretIdHash"]);
    }
}
