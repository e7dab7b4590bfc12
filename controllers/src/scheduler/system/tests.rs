use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::{Constraint, JobType, Operator};
use caravan_schemas::node::{DrainStrategy, NodeState};

use crate::scheduler::state::State;
use crate::scheduler::testing::*;

#[test]
fn system_job_runs_one_allocation_per_node_and_follows_new_nodes() {
    let mut harness = Harness::new(cluster(5, &["dc1"]));
    let job = job_of_type("agent", JobType::System, 1);
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(per_node.len(), 5);
    assert!(per_node.values().all(|c| *c == 1));

    harness.state.upsert_node(node("node-new", "dc1"));
    harness.process(&eval_for("e2", &job)).expect("process");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(per_node.len(), 6);
    assert_eq!(
        harness.plans.last().map(|p| p.annotations["web"].place),
        Some(1)
    );

    // Nothing to do: no plan.
    let plans = harness.plans.len();
    harness.process(&eval_for("e3", &job)).expect("process");
    assert_eq!(harness.plans.len(), plans);
}

#[test]
fn system_job_skips_infeasible_nodes_without_failing() {
    let mut state = cluster(4, &["dc1"]);
    let mut arm = node("arm", "dc1");
    arm.status
        .get_or_insert_default()
        .attributes
        .insert("cpu.arch".into(), "arm64".into());
    state.upsert_node(arm);
    let mut harness = Harness::new(state);
    let mut job = job_of_type("agent", JobType::System, 1);
    job.spec.constraints.push(Constraint {
        attribute: "${attr.cpu.arch}".into(),
        operator: Some(Operator::Equal),
        value: "amd64".into(),
    });
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(per_node.len(), 4);
    assert!(!per_node.contains_key("arm"));
    let status = harness
        .last_eval()
        .and_then(|e| e.status.clone())
        .expect("status");
    assert_eq!(status.status, EvaluationState::Complete);
    assert!(status.failed_group_allocs.is_empty());
}

#[test]
fn system_allocations_stop_on_down_and_draining_nodes() {
    let mut harness = Harness::new(cluster(3, &["dc1"]));
    let job = job_of_type("agent", JobType::Sysbatch, 1);
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let mut down = (*harness.state.node("node-0000").expect("node")).clone();
    down.status.get_or_insert_default().status = NodeState::Down;
    harness.state.upsert_node(down);
    let mut draining = (*harness.state.node("node-0001").expect("node")).clone();
    draining.spec.drain = Some(DrainStrategy::default());
    harness.state.upsert_node(draining);
    // Until the drainer marks it, the draining node's system allocation stays.
    harness.process(&eval_for("e2", &job)).expect("process");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(
        per_node.keys().collect::<Vec<_>>(),
        ["node-0001", "node-0002"]
    );
    let mut marked = harness
        .state
        .allocs_by_job("default", job.metadata.name())
        .into_iter()
        .find(|a| a.spec.node_name == "node-0001")
        .map(|a| (*a).clone())
        .expect("the draining node's allocation");
    marked.spec.desired_transition = Some(caravan_schemas::allocation::DesiredTransition {
        migrate: Some(true),
    });
    harness.state.upsert_alloc(marked);
    harness.process(&eval_for("e3", &job)).expect("process");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(per_node.keys().collect::<Vec<_>>(), ["node-0002"]);
    let stopped = harness
        .state
        .allocs_by_job("default", job.metadata.name())
        .into_iter()
        .filter(|a| desired(a) == DesiredStatus::Stop)
        .count();
    assert_eq!(stopped, 2);
    // Only the stop on the down node says the allocation is lost; the drained one migrates.
    let plan = harness.plans.last().expect("a plan");
    let lost = |node: &str| {
        plan.node_update[node]
            .iter()
            .map(|s| s.client_status)
            .collect::<Vec<_>>()
    };
    assert_eq!(lost("node-0001"), [None]);
    let lost_plan = &harness.plans[harness.plans.len() - 2];
    assert_eq!(
        lost_plan.node_update["node-0000"]
            .iter()
            .map(|s| s.client_status)
            .collect::<Vec<_>>(),
        [Some(ClientStatus::Lost)]
    );
}

#[test]
fn system_job_exhaustion_is_reported() {
    let mut harness = Harness::new(cluster(2, &["dc1"]));
    let filler = service_job("filler", 2, 3900, 256);
    harness.state.upsert_job(filler.clone());
    harness.process(&eval_for("e0", &filler)).expect("process");
    let job = job_of_type("agent", JobType::System, 1);
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let status = harness
        .last_eval()
        .and_then(|e| e.status.clone())
        .expect("status");
    let metrics = &status.failed_group_allocs["web"];
    assert_eq!(metrics.dimension_exhausted.get("cpu"), Some(&1));
    assert_eq!(metrics.coalesced_failures, 1);
    assert_eq!(status.queued_allocations.get("web"), Some(&2));
}
