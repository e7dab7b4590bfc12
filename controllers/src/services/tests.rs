//! Which registrations the leader deletes, and the fixtures the loop's tests share.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::node::NodeState;
use caravan_schemas::service_registration::{ServiceRegistrationSpec, name_for};
use caravan_schemas::{API_VERSION, Allocation, Kind, Node, ObjectMeta, ServiceRegistration, mock};

use super::*;

/// A registration of service `web` of task `web` of `alloc`, written at revision `rv`.
pub(crate) fn registration(alloc: &Allocation, rv: u64) -> ServiceRegistration {
    let name = alloc.metadata.name();
    ServiceRegistration {
        api_version: API_VERSION.into(),
        kind: Kind::ServiceRegistration.name().into(),
        metadata: ObjectMeta {
            name: Some(name_for(name, Some("web"), "web", 0)),
            namespace: Some(alloc.metadata.namespace().into()),
            resource_version: Some(rv.to_string()),
            ..ObjectMeta::default()
        },
        spec: ServiceRegistrationSpec {
            service_name: "web".into(),
            job_name: alloc.spec.job_name.clone(),
            group_name: alloc.spec.group.clone(),
            task_name: Some("web".into()),
            alloc_name: name.into(),
            node_name: alloc.spec.node_name.clone(),
            address: "192.168.0.100".into(),
            port: 8080,
            ..ServiceRegistrationSpec::default()
        },
        status: None,
    }
}

/// An allocation of `web` on `node` with the given statuses.
pub(crate) fn allocation(
    name: &str,
    node: &Node,
    client: ClientStatus,
    desired: DesiredStatus,
) -> Allocation {
    let mut alloc = mock::allocation(name, &mock::job("web"), node);
    alloc.spec.desired_status = Some(desired);
    alloc
        .status
        .get_or_insert_with(Default::default)
        .client_status = client;
    alloc
}

/// A node in state `state`.
pub(crate) fn node(name: &str, state: NodeState) -> Node {
    let mut node = mock::node(name);
    node.status.get_or_insert_with(Default::default).status = state;
    node
}

struct Cluster {
    allocations: HashMap<String, Arc<Allocation>>,
    nodes: HashMap<String, Arc<Node>>,
}

impl Cluster {
    fn new(allocations: &[&Allocation], nodes: &[&Node]) -> Cluster {
        Cluster {
            allocations: allocations
                .iter()
                .map(|a| (a.metadata.name().to_string(), Arc::new((*a).clone())))
                .collect(),
            nodes: nodes
                .iter()
                .map(|n| (n.metadata.name().to_string(), Arc::new((*n).clone())))
                .collect(),
        }
    }

    fn stale(&self, registrations: &[&ServiceRegistration], complete: u64) -> Vec<String> {
        let registrations: Vec<Arc<ServiceRegistration>> = registrations
            .iter()
            .map(|r| Arc::new((*r).clone()))
            .collect();
        let allocation = |ns: &str, name: &str| {
            assert_eq!(ns, "default");
            self.allocations.get(name).cloned()
        };
        let node = |name: &str| self.nodes.get(name).cloned();
        stale_registrations(&registrations, &allocation, &node, complete)
            .into_iter()
            .map(|r| {
                assert_eq!(r.kind, Kind::ServiceRegistration);
                assert_eq!(r.namespace, "default");
                r.name
            })
            .collect()
    }
}

fn name(registration: &ServiceRegistration) -> String {
    registration.metadata.name().to_string()
}

#[test]
fn registrations_of_running_allocations_stay() {
    let n1 = node("n1", NodeState::Ready);
    let running = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    let pending = allocation("a2", &n1, ClientStatus::Pending, DesiredStatus::Run);
    let cluster = Cluster::new(&[&running, &pending], &[&n1]);
    let r1 = registration(&running, 10);
    let r2 = registration(&pending, 10);
    assert!(cluster.stale(&[&r1, &r2], 10).is_empty());
}

#[test]
fn registrations_of_client_terminal_allocations_go() {
    let n1 = node("n1", NodeState::Ready);
    let complete = allocation("a1", &n1, ClientStatus::Complete, DesiredStatus::Run);
    let failed = allocation("a2", &n1, ClientStatus::Failed, DesiredStatus::Run);
    let lost = allocation("a3", &n1, ClientStatus::Lost, DesiredStatus::Stop);
    let cluster = Cluster::new(&[&complete, &failed, &lost], &[&n1]);
    let regs = [
        registration(&complete, 5),
        registration(&failed, 5),
        registration(&lost, 5),
    ];
    let mut expected: Vec<String> = regs.iter().map(name).collect();
    expected.sort();
    assert_eq!(cluster.stale(&[&regs[0], &regs[1], &regs[2]], 9), expected);
    assert_eq!(
        why_stale(&regs[2], Some(&lost), Some(&n1), 9),
        Some(Stale::AllocationEnded)
    );
}

/// A stopping allocation still runs its tasks (kill timeout, shutdown delay): its agent
/// deletes their registrations when they stop. Nor is an `unknown` allocation (its node
/// disconnected) over.
#[test]
fn registrations_of_stopping_or_unknown_allocations_stay() {
    let n1 = node("n1", NodeState::Ready);
    let stopping = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Stop);
    let evicted = allocation("a2", &n1, ClientStatus::Running, DesiredStatus::Evict);
    let unknown = allocation("a3", &n1, ClientStatus::Unknown, DesiredStatus::Run);
    let cluster = Cluster::new(&[&stopping, &evicted, &unknown], &[&n1]);
    let regs = [
        registration(&stopping, 5),
        registration(&evicted, 5),
        registration(&unknown, 5),
    ];
    assert!(cluster.stale(&[&regs[0], &regs[1], &regs[2]], 9).is_empty());
}

#[test]
fn registrations_of_allocations_no_longer_stored_go() {
    let n1 = node("n1", NodeState::Ready);
    let gone = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    let cluster = Cluster::new(&[], &[&n1]);
    let r1 = registration(&gone, 5);
    assert_eq!(cluster.stale(&[&r1], 5), vec![name(&r1)]);
    assert_eq!(
        why_stale(&r1, None, Some(&n1), 5),
        Some(Stale::AllocationGone)
    );
}

#[test]
fn every_registration_of_a_down_node_goes() {
    let down = node("n1", NodeState::Down);
    let ready = node("n2", NodeState::Ready);
    let disconnected = node("n3", NodeState::Disconnected);
    let a1 = allocation("a1", &down, ClientStatus::Running, DesiredStatus::Run);
    let a2 = allocation("a2", &ready, ClientStatus::Running, DesiredStatus::Run);
    let a3 = allocation(
        "a3",
        &disconnected,
        ClientStatus::Unknown,
        DesiredStatus::Run,
    );
    let cluster = Cluster::new(&[&a1, &a2, &a3], &[&down, &ready, &disconnected]);
    let regs = [
        registration(&a1, 5),
        registration(&a2, 5),
        registration(&a3, 5),
    ];
    assert_eq!(
        cluster.stale(&[&regs[0], &regs[1], &regs[2]], 5),
        vec![name(&regs[0])]
    );
    assert_eq!(
        why_stale(&regs[0], Some(&a1), Some(&down), 5),
        Some(Stale::NodeDown)
    );
}

/// A node no longer stored decides nothing: its allocations do.
#[test]
fn a_node_missing_from_the_cache_is_not_a_reason() {
    let n1 = node("n1", NodeState::Ready);
    let a1 = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    let cluster = Cluster::new(&[&a1], &[]);
    assert!(cluster.stale(&[&registration(&a1, 5)], 5).is_empty());
}

/// A registration newer than what the caches hold waits: its allocation may just not be
/// cached yet.
#[test]
fn registrations_newer_than_the_caches_wait() {
    let down = node("n1", NodeState::Down);
    let a1 = allocation("a1", &down, ClientStatus::Failed, DesiredStatus::Run);
    let fresh = allocation("a2", &down, ClientStatus::Running, DesiredStatus::Run);
    let cluster = Cluster::new(&[&a1], &[&down]);
    let old = registration(&a1, 7);
    let new = registration(&fresh, 8);
    assert_eq!(cluster.stale(&[&old, &new], 7), vec![name(&old)]);
    let registrations = [Arc::new(old), Arc::new(new.clone())];
    assert!(any_undecided(&registrations, 7));
    assert!(!any_undecided(&registrations, 8));
    assert_eq!(cluster.stale(&[&new], 8), vec![name(&new)]);
}

/// Registrations are looked up in their own namespace.
#[test]
fn allocations_are_looked_up_in_the_registrations_namespace() {
    let n1 = node("n1", NodeState::Ready);
    let mut a1 = allocation("a1", &n1, ClientStatus::Running, DesiredStatus::Run);
    a1.metadata.namespace = Some("prod".into());
    let r1 = registration(&a1, 1);
    let registrations = [Arc::new(r1)];
    let cached = Arc::new(a1);
    let lookup = |ns: &str, name: &str| (ns == "prod" && name == "a1").then(|| cached.clone());
    let none = |_: &str| None;
    assert!(stale_registrations(&registrations, &lookup, &none, 1).is_empty());
    let elsewhere = |_: &str, _: &str| None;
    assert_eq!(
        stale_registrations(&registrations, &elsewhere, &none, 1)[0].namespace,
        "prod"
    );
}
