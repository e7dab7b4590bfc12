use std::sync::Arc;

use caravan_schemas::acl::{Acl, Capability, Level, NamespaceRule};
use caravan_schemas::{AclPolicySpec, Kind};

use super::*;

fn token(rules: &[(&str, Level)], node: Option<Level>) -> Identity {
    let spec = AclPolicySpec {
        namespaces: rules
            .iter()
            .map(|(name, level)| NamespaceRule {
                name: name.to_string(),
                policy: Some(*level),
                capabilities: Vec::new(),
            })
            .collect(),
        node,
        ..AclPolicySpec::default()
    };
    Identity::Policies {
        acl: Arc::new(Acl::compile([&spec])),
        accessor: "t1".into(),
    }
}

fn resource<'a>(
    kind: Kind,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    verb: Verb,
) -> Target<'a> {
    Target::Resource {
        kind,
        namespace,
        name,
        verb,
        status: false,
    }
}

fn allowed(decision: &Decision) -> bool {
    matches!(decision, Decision::Allow(_))
}

#[test]
fn a_read_token_reads_but_cannot_submit_or_read_logs() {
    let reader = token(&[("default", Level::Read)], None);
    let ns = Some("default");
    assert!(allowed(&decide(
        &reader,
        resource(Kind::Job, ns, Some("web"), Verb::Get)
    )));
    assert!(allowed(&decide(
        &reader,
        resource(Kind::Allocation, ns, None, Verb::Watch)
    )));
    for verb in [Verb::Create, Verb::Update, Verb::Patch, Verb::Delete] {
        assert!(!allowed(&decide(
            &reader,
            resource(Kind::Job, ns, Some("web"), verb)
        )));
    }
    assert!(!allowed(&decide(
        &reader,
        Target::Logs {
            namespace: "default"
        }
    )));
    assert!(!allowed(&decide(
        &reader,
        Target::JobPlan {
            namespace: "default"
        }
    )));
    assert!(!allowed(&decide(
        &reader,
        resource(Kind::Job, Some("other"), None, Verb::List)
    )));
    assert!(!allowed(&decide(
        &reader,
        resource(Kind::Node, None, None, Verb::List)
    )));
    assert!(!allowed(&decide(
        &reader,
        resource(Kind::AclToken, None, None, Verb::List)
    )));
    assert!(!allowed(&decide(&reader, Target::Management)));
}

#[test]
fn lists_of_every_namespace_are_scoped_not_refused() {
    let reader = token(&[("team-*", Level::Read)], None);
    let Decision::Allow(access) = decide(&reader, resource(Kind::Job, None, None, Verb::List))
    else {
        panic!("a list of every namespace is allowed, scoped");
    };
    let Some(scope) = access.scope else {
        panic!("scoped");
    };
    assert!(matches!(
        *scope,
        Scope::Namespaces {
            capability: Some(Capability::ListJobs),
            ..
        }
    ));
    // Namespaces: only those it sees.
    assert!(allowed(&decide(
        &reader,
        resource(Kind::Namespace, None, Some("team-a"), Verb::Get)
    )));
    assert!(!allowed(&decide(
        &reader,
        resource(Kind::Namespace, None, Some("ops"), Verb::Get)
    )));
    // Writes across every namespace do not exist.
    assert!(!allowed(&decide(
        &reader,
        resource(Kind::Job, None, None, Verb::Create)
    )));
}

#[test]
fn status_writes_and_token_kinds_are_the_servers() {
    let writer = token(&[("*", Level::Write)], Some(Level::Write));
    let status = Target::Resource {
        kind: Kind::Job,
        namespace: Some("default"),
        name: Some("web"),
        verb: Verb::Patch,
        status: true,
    };
    assert!(!allowed(&decide(&writer, status)));
    assert!(allowed(&decide(
        &writer,
        resource(Kind::Job, Some("default"), Some("web"), Verb::Patch)
    )));
    assert!(allowed(&decide(
        &writer,
        resource(Kind::Node, None, Some("n1"), Verb::Patch)
    )));
    assert!(!allowed(&decide(
        &writer,
        resource(Kind::AclPolicy, None, None, Verb::Create)
    )));
    assert!(allowed(&decide(&Identity::Management, status)));
}

#[test]
fn a_node_writes_only_its_own_objects() {
    let node = Identity::Node {
        name: "n1".into(),
        secret_hash: "h".into(),
    };
    let Decision::Allow(access) =
        decide(&node, resource(Kind::Node, None, Some("n1"), Verb::Patch))
    else {
        panic!("its own node");
    };
    let guard = access.guard.expect("guarded");
    assert_eq!(guard.node_secret_hash.as_deref(), Some("h"));
    assert!(!allowed(&decide(
        &node,
        resource(Kind::Node, None, Some("n2"), Verb::Patch)
    )));
    assert!(!allowed(&decide(
        &node,
        resource(Kind::Node, None, Some("n1"), Verb::Delete)
    )));
    let alloc_status = Target::Resource {
        kind: Kind::Allocation,
        namespace: Some("default"),
        name: Some("a1"),
        verb: Verb::Patch,
        status: true,
    };
    let Decision::Allow(access) = decide(&node, alloc_status) else {
        panic!("its allocations' status");
    };
    assert!(matches!(
        access.guard.as_deref().map(|g| &g.scope),
        Some(Scope::Field { field: "spec.nodeName", value }) if value == "n1"
    ));
    assert!(!allowed(&decide(
        &node,
        resource(Kind::Allocation, Some("default"), Some("a1"), Verb::Delete)
    )));
    assert!(!allowed(&decide(
        &node,
        resource(Kind::Job, Some("default"), None, Verb::List)
    )));
    assert!(allowed(&decide(
        &node,
        resource(Kind::Job, Some("default"), Some("web"), Verb::Get)
    )));
    assert!(allowed(&decide(&node, Target::Heartbeat { node: "n1" })));
    assert!(!allowed(&decide(&node, Target::Heartbeat { node: "n2" })));
    assert!(!allowed(&decide(
        &node,
        Target::Logs {
            namespace: "default"
        }
    )));
}

#[test]
fn anonymous_gets_only_public_paths_without_a_policy() {
    let anonymous = Identity::Policies {
        acl: Arc::new(Acl::default()),
        accessor: String::new(),
    };
    assert!(allowed(&decide(&anonymous, Target::Public)));
    assert!(!allowed(&decide(&anonymous, Target::Token)));
    assert!(!allowed(&decide(&anonymous, Target::Agent(Level::Read))));
    assert!(!allowed(&decide(
        &anonymous,
        resource(Kind::Job, Some("default"), None, Verb::List)
    )));
}
