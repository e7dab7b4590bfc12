//! Tests of the plan applier and the per-node usage index.

use caravan_schemas::allocation::{AllocatedTaskResources, ClientStatus, DesiredStatus};
use caravan_schemas::mock;
use caravan_schemas::node::NodeState;
use caravan_schemas::plan::Plan;
use serde_json::{Value, json};

use super::*;
use crate::store::ObjectJson;
use crate::store::object::{Op, OpOutcome, Precondition};

/// Nodes of 1000 MHz and 1000 MB, nothing reserved.
fn node(name: &str, state: NodeState) -> Value {
    let mut node = mock::node(name);
    if let Some(status) = node.status.as_mut() {
        status.status = state;
        status.reserved = None;
        if let Some(resources) = status.resources.as_mut() {
            resources.cpu = 1000;
            resources.memory_mb = 1000;
        }
    }
    serde_json::to_value(node).expect("node serializes")
}

/// An allocation of job `web` on `node` asking `cpu` MHz and 100 MB.
fn alloc(name: &str, node: &str, cpu: u64) -> Allocation {
    let job = mock::job("web");
    let mut alloc = mock::allocation(name, &job, &mock::node(node));
    alloc.metadata.uid = Some(format!("uid-{name}"));
    alloc.metadata.creation_timestamp = Some("2024-01-01T00:00:00Z".to_owned());
    alloc.metadata.generation = Some(1);
    if let Some(resources) = alloc.spec.allocated_resources.as_mut() {
        resources.tasks = caravan_schemas::NameMap::from([(
            "web".to_owned(),
            AllocatedTaskResources {
                cpu,
                memory_mb: 100,
                ..AllocatedTaskResources::default()
            },
        )]);
        resources.shared.disk_mb = 10;
    }
    alloc
}

fn create(kind: Kind, object: Value) -> Op {
    Op::Put {
        kind,
        object: ObjectJson::from_value(object),
        expect: Precondition::Absent,
        version: None,
    }
}

fn alloc_value(alloc: &Allocation) -> Value {
    serde_json::to_value(alloc).expect("allocation serializes")
}

/// Namespace `default`, ready nodes n1 and n2, a down node, an ineligible node, at index 1.
fn cluster() -> State {
    let mut state = State::default();
    let mut ineligible = node("ineligible", NodeState::Ready);
    ineligible["spec"]["schedulingEligibility"] = json!("ineligible");
    let applied = state.apply(
        1,
        vec![
            create(
                Kind::Namespace,
                json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            ),
            create(Kind::Node, node("n1", NodeState::Ready)),
            create(Kind::Node, node("n2", NodeState::Ready)),
            create(Kind::Node, node("down", NodeState::Down)),
            create(Kind::Node, ineligible),
        ],
    );
    assert!(applied.results.iter().all(Result::is_ok));
    state
}

fn with_allocs(mut state: State, index: u64, allocs: &[Allocation]) -> State {
    let ops = allocs
        .iter()
        .map(|a| create(Kind::Allocation, alloc_value(a)))
        .collect();
    let applied = state.apply(index, ops);
    assert!(applied.results.iter().all(Result::is_ok));
    state
}

fn plan() -> Plan {
    Plan {
        eval_name: "e1".to_owned(),
        namespace: "default".to_owned(),
        job_name: "web".to_owned(),
        ..Plan::default()
    }
}

/// Applies `plan` alone at `index`: its result and events.
fn apply(state: &mut State, index: u64, plan: Plan) -> (PlanResult, Vec<Arc<Change>>) {
    let mut applied = state.apply(index, vec![Op::Plan(PlanOp { plan })]);
    let result = match applied.results.pop() {
        Some(Ok(OpOutcome::Plan(result))) => PlanResult::clone(&result),
        other => panic!("expected a plan result, got {other:?}"),
    };
    (result, applied.events)
}

fn stored(state: &State, name: &str) -> Option<Allocation> {
    let key = ObjectKey {
        kind: Kind::Allocation,
        namespace: "default".to_owned(),
        name: name.to_owned(),
    };
    let object = state.get(&key)?;
    serde_json::from_slice(&object.json).ok()
}

fn used_cpu(state: &State, node: &str) -> u64 {
    state.usage().used(node).cpu
}

#[test]
fn a_plan_that_fits_commits_every_allocation_with_events() {
    let mut state = cluster();
    let mut plan = plan();
    plan.append_alloc(alloc("a", "n1", 400));
    plan.append_alloc(alloc("b", "n1", 600));
    plan.append_alloc(alloc("c", "n2", 1000));
    let (result, events) = apply(&mut state, 5, plan);

    assert_eq!((result.refresh_index, result.alloc_index), (0, 5));
    assert_eq!(result.counts(), (0, 3));
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(types, [EventType::Added; 3]);
    let a = stored(&state, "a").expect("a stored");
    assert_eq!(a.metadata.resource_version.as_deref(), Some("5"));
    assert_eq!(a.metadata.uid.as_deref(), Some("uid-a"));
    assert_eq!(a.metadata.generation, Some(1));
    assert_eq!(result.node_allocation["n1"], ["a", "b"]);
    assert_eq!(
        (used_cpu(&state, "n1"), used_cpu(&state, "n2")),
        (1000, 1000)
    );
    assert_eq!(state.revision(), 5);
}

#[test]
fn an_oversubscribing_node_part_is_rejected_while_other_nodes_commit() {
    let mut state = with_allocs(
        cluster(),
        2,
        &[alloc("old", "n1", 700), alloc("x", "n2", 100)],
    );
    let mut plan = plan();
    plan.append_alloc(alloc("a", "n1", 400));
    plan.append_stop("n1", "x", DesiredStatus::Stop, "not needed");
    plan.append_alloc(alloc("b", "n2", 500));
    let (result, events) = apply(&mut state, 6, plan);

    assert_eq!(result.refresh_index, 6);
    assert_eq!(
        result.node_allocation.keys().collect::<Vec<_>>(),
        ["n2"],
        "only n2 committed"
    );
    assert!(
        result.node_update.is_empty(),
        "n1's stop went with its part"
    );
    assert_eq!(events.len(), 1);
    assert!(stored(&state, "a").is_none());
    assert_eq!((used_cpu(&state, "n1"), used_cpu(&state, "n2")), (700, 600));
}

#[test]
fn stops_free_capacity_in_the_same_plan() {
    let mut state = with_allocs(cluster(), 2, &[alloc("old", "n1", 800)]);
    let mut plan = plan();
    plan.append_stop(
        "n1",
        "old",
        DesiredStatus::Stop,
        "alloc not needed due to job update",
    );
    plan.append_alloc(alloc("new", "n1", 800));
    let (result, events) = apply(&mut state, 7, plan);

    assert_eq!(result.refresh_index, 0);
    assert_eq!(result.counts(), (1, 1));
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_type, EventType::Modified);
    let old = stored(&state, "old").expect("old kept");
    assert_eq!(old.spec.desired_status, Some(DesiredStatus::Stop));
    assert_eq!(
        old.spec.desired_description.as_deref(),
        Some("alloc not needed due to job update")
    );
    assert_eq!(old.metadata.generation, Some(2));
    assert_eq!(used_cpu(&state, "n1"), 800);
    assert_eq!(state.usage().get("n1").map(|t| t.allocs), Some(1));
}

#[test]
fn stops_without_placements_always_commit() {
    let mut state = with_allocs(cluster(), 2, &[alloc("old", "n1", 800)]);
    let mut plan = plan();
    plan.append_stop("n1", "old", DesiredStatus::Evict, "preempted");
    plan.append_stop("gone-node", "missing", DesiredStatus::Stop, "node gone");
    let (result, _) = apply(&mut state, 3, plan);
    assert_eq!((result.refresh_index, result.counts()), (0, (2, 0)));
    assert_eq!(used_cpu(&state, "n1"), 0);
    assert_eq!(state.usage().get("n1"), None);
}

#[test]
fn an_in_place_update_does_not_double_count_and_keeps_server_fields() {
    let mut running = alloc("a", "n1", 900);
    if let Some(status) = running.status.as_mut() {
        status.client_status = ClientStatus::Running;
    }
    let mut state = with_allocs(cluster(), 2, &[running]);
    let mut updated = alloc("a", "n1", 900);
    updated.spec.job_version = 3;
    updated.metadata.uid = Some("another-uid".to_owned());
    updated.metadata.creation_timestamp = Some("2030-01-01T00:00:00Z".to_owned());
    let mut plan = plan();
    plan.append_alloc(updated);
    let (result, events) = apply(&mut state, 4, plan);

    assert_eq!(result.refresh_index, 0);
    assert_eq!(events[0].event_type, EventType::Modified);
    let a = stored(&state, "a").expect("a");
    assert_eq!(a.spec.job_version, 3);
    assert_eq!(a.metadata.uid.as_deref(), Some("uid-a"));
    assert_eq!(
        a.metadata.creation_timestamp.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(a.metadata.generation, Some(2));
    assert_eq!(
        a.status.map(|s| s.client_status),
        Some(ClientStatus::Running),
        "the node's report is kept"
    );
    assert_eq!(used_cpu(&state, "n1"), 900);
    assert_eq!(state.usage().get("n1").map(|t| t.allocs), Some(1));
}

#[test]
fn an_in_place_update_into_a_new_deployment_starts_its_health_over() {
    let mut running = alloc("a", "n1", 100);
    running.spec.deployment_name = Some("web-v1".to_owned());
    let status = running.status.get_or_insert_default();
    status.client_status = ClientStatus::Running;
    status.deployment_status = Some(caravan_schemas::allocation::AllocDeploymentStatus {
        healthy: Some(true),
        canary: false,
        timestamp: Some("2024-01-01T00:00:00Z".to_owned()),
    });
    let mut state = with_allocs(cluster(), 2, std::slice::from_ref(&running));

    // The same deployment: the node's health stays.
    let mut same = running.clone();
    same.spec.job_version = 1;
    let mut first = plan();
    first.append_alloc(same);
    apply(&mut state, 3, first);
    let a = stored(&state, "a").expect("a");
    assert_eq!(
        a.status
            .as_ref()
            .and_then(|s| s.deployment_status.as_ref())
            .and_then(|d| d.healthy),
        Some(true)
    );

    // Another deployment: health is unknown again, the rest of the node's report stays.
    let mut moved = running.clone();
    moved.spec.job_version = 2;
    moved.spec.deployment_name = Some("web-v2".to_owned());
    let mut second = plan();
    second.append_alloc(moved);
    apply(&mut state, 4, second);
    let a = stored(&state, "a").expect("a");
    let status = a.status.expect("status");
    assert_eq!(status.deployment_status, None);
    assert_eq!(status.client_status, ClientStatus::Running);
}

#[test]
fn down_missing_and_ineligible_nodes_are_rejected() {
    let mut state = with_allocs(cluster(), 2, &[alloc("kept", "ineligible", 100)]);
    let mut plan = plan();
    plan.append_alloc(alloc("a", "down", 100));
    plan.append_alloc(alloc("b", "missing", 100));
    plan.append_alloc(alloc("c", "ineligible", 100));
    let (result, events) = apply(&mut state, 3, plan);
    assert_eq!(result.refresh_index, 3);
    assert_eq!(result.counts(), (0, 0));
    assert!(events.is_empty());

    // An in-place update stays on an ineligible node.
    let mut plan = self::plan();
    let mut kept = alloc("kept", "ineligible", 200);
    kept.spec.job_version = 1;
    plan.append_alloc(kept);
    let (result, _) = apply(&mut state, 4, plan);
    assert_eq!((result.refresh_index, result.counts()), (0, (0, 1)));
    assert_eq!(used_cpu(&state, "ineligible"), 200);
}

#[test]
fn a_plan_in_a_missing_namespace_fails() {
    let mut state = cluster();
    let mut plan = plan();
    plan.namespace = "prod".to_owned();
    let applied = state.apply(2, vec![Op::Plan(PlanOp { plan })]);
    assert_eq!(
        applied.results[0],
        Err(OpError::NamespaceNotFound("prod".to_owned()))
    );
}

#[test]
fn plans_in_one_entry_see_each_other() {
    let mut state = cluster();
    let mut first = plan();
    first.append_alloc(alloc("a", "n1", 600));
    let mut second = plan();
    second.append_alloc(alloc("b", "n1", 600));
    let applied = state.apply(
        2,
        vec![
            Op::Plan(PlanOp { plan: first }),
            Op::Plan(PlanOp { plan: second }),
        ],
    );
    let refresh: Vec<u64> = applied
        .results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.plan().map(|p| p.refresh_index))
        .collect();
    assert_eq!(refresh, [0, 2]);
    assert_eq!(used_cpu(&state, "n1"), 600);
}

#[test]
fn the_usage_index_follows_creates_stops_status_writes_deletes_and_snapshots() {
    let mut state = with_allocs(
        cluster(),
        2,
        &[
            alloc("a", "n1", 100),
            alloc("b", "n1", 200),
            alloc("c", "n2", 300),
        ],
    );
    assert_eq!((used_cpu(&state, "n1"), used_cpu(&state, "n2")), (300, 300));
    assert_eq!(state.usage().get("n1").map(|t| t.allocs), Some(2));

    // The node reports `a` complete: it holds nothing any more.
    let mut done = alloc("a", "n1", 100);
    if let Some(status) = done.status.as_mut() {
        status.client_status = ClientStatus::Complete;
    }
    let applied = state.apply(
        3,
        vec![Op::Put {
            kind: Kind::Allocation,
            object: ObjectJson::from_value(alloc_value(&done)),
            expect: Precondition::ResourceVersion(2),
            version: None,
        }],
    );
    assert!(applied.results[0].is_ok());
    assert_eq!(used_cpu(&state, "n1"), 200);

    // A plan stops `b`.
    let mut plan = plan();
    plan.append_stop("n1", "b", DesiredStatus::Stop, "stopped");
    apply(&mut state, 4, plan);
    assert_eq!(state.usage().get("n1"), None);

    let restored = State::from_snapshot(&state.to_snapshot()).expect("snapshot");
    assert_eq!(restored.usage(), state.usage());
    assert_eq!(restored, state);

    // Deleting `c` frees n2.
    let applied = state.apply(
        5,
        vec![Op::Delete {
            key: ObjectKey {
                kind: Kind::Allocation,
                namespace: "default".to_owned(),
                name: "c".to_owned(),
            },
            expect: Precondition::Exists,
        }],
    );
    assert!(applied.results[0].is_ok());
    assert_eq!(state.usage().get("n2"), None);
    assert_eq!(state.usage().iter().count(), 0);
}

mod ports;
