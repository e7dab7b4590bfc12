use std::collections::BTreeMap;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::evaluation::{EvaluationState, TriggeredBy};
use caravan_schemas::job::{Affinity, Constraint, JobType, Operator, Spread, SpreadTarget};
use caravan_schemas::naming::parse_index;
use caravan_schemas::node::NodeState;

use crate::scheduler::state::State;
use crate::scheduler::testing::*;

fn register(harness: &mut Harness, job: &caravan_schemas::Job, eval: &str) {
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for(eval, job)).expect("process");
}

fn last_status(harness: &Harness) -> EvaluationState {
    harness
        .last_eval()
        .and_then(|e| e.status.as_ref())
        .map(|s| s.status)
        .unwrap_or_default()
}

#[test]
fn service_job_places_count_allocations() {
    let mut harness = Harness::new(cluster(10, &["dc1"]));
    let job = service_job("web", 5, 500, 256);
    register(&mut harness, &job, "e1");
    assert_eq!(harness.plans.len(), 1);
    let allocs = harness.live_allocs("default", "web");
    assert_eq!(allocs.len(), 5);
    let mut indexes: Vec<_> = allocs
        .iter()
        .filter_map(|a| parse_index(a.metadata.name()))
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    for alloc in &allocs {
        assert_eq!(alloc.spec.eval_name.as_deref(), Some("e1"));
        assert_eq!(alloc.client_status(), ClientStatus::Pending);
        let metrics = alloc
            .status
            .as_ref()
            .and_then(|s| s.metrics.as_ref())
            .expect("metrics");
        assert!(metrics.nodes_evaluated >= 1);
        assert!(!metrics.scores.is_empty());
        assert!(metrics.scores[0].scores.binpack.is_some());
        let resources = alloc.spec.allocated_resources.as_ref().expect("resources");
        assert_eq!(resources.tasks["web"].cpu, 500);
    }
    assert_eq!(last_status(&harness), EvaluationState::Complete);
    assert!(harness.created_evals.is_empty());
    assert_eq!(harness.plans[0].annotations["web"].place, 5);
}

#[test]
fn scale_up_then_down() {
    let mut harness = Harness::new(cluster(10, &["dc1"]));
    let job = service_job("web", 3, 500, 256);
    register(&mut harness, &job, "e1");
    let bigger = next_version(&job, |j| j.spec.groups[0].count = Some(6));
    register(&mut harness, &bigger, "e2");
    assert_eq!(harness.live_allocs("default", "web").len(), 6);
    let plan = harness.plans.last().expect("plan");
    assert_eq!(plan.annotations["web"].place, 3);
    assert_eq!(plan.annotations["web"].in_place_update, 3);

    let smaller = next_version(&bigger, |j| j.spec.groups[0].count = Some(2));
    register(&mut harness, &smaller, "e3");
    let live = harness.live_allocs("default", "web");
    assert_eq!(live.len(), 2);
    let mut indexes: Vec<_> = live
        .iter()
        .filter_map(|a| parse_index(a.metadata.name()))
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1], "highest indexes stopped first");
}

#[test]
fn task_change_is_a_rolling_destructive_update() {
    let mut harness = Harness::new(cluster(10, &["dc1"]));
    let mut job = service_job("web", 3, 500, 256);
    job.spec.groups[0].update = Some(caravan_schemas::job::defaults::update_strategy());
    register(&mut harness, &job, "e1");
    let changed = next_version(&job, |j| {
        j.spec.groups[0].tasks[0]
            .env
            .insert("VERSION".into(), "2".into());
    });
    register(&mut harness, &changed, "e2");
    let plan = harness.plans.last().expect("plan");
    assert_eq!(
        plan.annotations["web"].destructive_update, 1,
        "maxParallel 1"
    );
    assert_eq!(plan.annotations["web"].ignore, 2);
    let stops: usize = plan.node_update.values().map(Vec::len).sum();
    assert_eq!(stops, 1);
    let live = harness.live_allocs("default", "web");
    assert_eq!(live.len(), 3);
    let new: Vec<_> = live.iter().filter(|a| a.spec.job_version == 1).collect();
    assert_eq!(new.len(), 1);
    assert!(new[0].spec.previous_allocation.is_some());

    // Once the new allocation runs, the next one is replaced.
    let name = new[0].metadata.name().to_string();
    set_client_status(&mut harness.state, "default", &name, ClientStatus::Running);
    harness.process(&eval_for("e3", &changed)).expect("process");
    let live = harness.live_allocs("default", "web");
    assert_eq!(live.iter().filter(|a| a.spec.job_version == 1).count(), 2);
}

#[test]
fn stopping_a_job_stops_every_allocation() {
    let mut harness = Harness::new(cluster(4, &["dc1"]));
    let job = service_job("web", 4, 500, 256);
    register(&mut harness, &job, "e1");
    let stopped = next_version(&job, |j| j.spec.stop = true);
    register(&mut harness, &stopped, "e2");
    assert!(harness.live_allocs("default", "web").is_empty());
    let all = harness.state.allocs_by_job("default", "web");
    assert!(all.iter().all(|a| desired(a) == DesiredStatus::Stop));
    // Deleting the job also stops (nothing left here) and completes the evaluation.
    harness.state.delete_job("default", "web");
    harness.process(&eval_for("e3", &job)).expect("process");
    assert_eq!(last_status(&harness), EvaluationState::Complete);
}

#[test]
fn batch_job_places_and_completed_allocations_are_not_replaced() {
    let mut harness = Harness::new(cluster(4, &["dc1"]));
    let job = job_of_type("report", JobType::Batch, 3);
    register(&mut harness, &job, "e1");
    let live = harness.live_allocs("default", "report");
    assert_eq!(live.len(), 3);
    let first = live[0].metadata.name().to_string();
    set_client_status(
        &mut harness.state,
        "default",
        &first,
        ClientStatus::Complete,
    );
    harness.process(&eval_for("e2", &job)).expect("process");
    assert_eq!(harness.live_allocs("default", "report").len(), 2);
    assert_eq!(harness.state.allocs_by_job("default", "report").len(), 3);
}

#[test]
fn constraint_filtering_is_named_in_metrics_and_blocks() {
    let mut harness = Harness::new(cluster(6, &["dc1"]));
    let mut job = service_job("web", 2, 500, 256);
    job.spec.constraints.push(Constraint {
        attribute: "${attr.cpu.arch}".into(),
        operator: Some(Operator::Equal),
        value: "arm64".into(),
    });
    register(&mut harness, &job, "e1");
    assert!(harness.live_allocs("default", "web").is_empty());
    let eval = harness.last_eval().expect("eval");
    let status = eval.status.as_ref().expect("status");
    let metrics = &status.failed_group_allocs["web"];
    assert_eq!(metrics.nodes_evaluated, 6);
    assert_eq!(metrics.nodes_filtered, 6);
    assert_eq!(
        metrics.constraint_filtered.get("${attr.cpu.arch} = arm64"),
        Some(&6)
    );
    assert_eq!(metrics.coalesced_failures, 1);
    assert_eq!(status.queued_allocations.get("web"), Some(&2));
    assert_eq!(harness.created_evals.len(), 1);
    assert!(status.blocked_eval.is_some());
}

#[test]
fn exhaustion_names_the_dimension_and_creates_a_blocked_eval() {
    let mut harness = Harness::new(cluster(2, &["dc1"]));
    let job = service_job("big", 3, 3000, 1024);
    register(&mut harness, &job, "e1");
    assert_eq!(harness.live_allocs("default", "big").len(), 2);
    let eval = harness.last_eval().expect("eval");
    let status = eval.status.as_ref().expect("status");
    assert_eq!(status.status, EvaluationState::Complete);
    let metrics = &status.failed_group_allocs["web"];
    assert_eq!(metrics.nodes_exhausted, 2);
    assert_eq!(metrics.dimension_exhausted.get("cpu"), Some(&2));
    let blocked = &harness.created_evals[0];
    let blocked_status = blocked.status.as_ref().expect("status");
    assert_eq!(blocked_status.status, EvaluationState::Blocked);
    assert_eq!(blocked.spec.triggered_by, TriggeredBy::QueuedAllocs);
    assert_eq!(blocked.spec.previous_eval.as_deref(), Some("e1"));
    assert_eq!(status.blocked_eval, blocked.metadata.name);
}

#[test]
fn spread_targets_split_allocations_between_datacenters() {
    let mut harness = Harness::new(cluster(20, &["dc1", "dc2"]));
    let mut job = service_job("web", 10, 100, 64);
    job.spec.spreads.push(Spread {
        attribute: "${node.datacenter}".into(),
        weight: Some(100),
        targets: vec![
            SpreadTarget {
                value: "dc1".into(),
                percent: 70,
            },
            SpreadTarget {
                value: "dc2".into(),
                percent: 30,
            },
        ],
    });
    register(&mut harness, &job, "e1");
    let mut per_dc: BTreeMap<String, usize> = BTreeMap::new();
    for alloc in harness.live_allocs("default", "web") {
        let node = harness.state.node(&alloc.spec.node_name).expect("node");
        *per_dc.entry(node.datacenter().to_string()).or_default() += 1;
    }
    let dc1 = per_dc.get("dc1").copied().unwrap_or(0);
    assert!((6..=8).contains(&dc1), "{per_dc:?}");
}

#[test]
fn affinity_prefers_matching_nodes() {
    let mut harness = Harness::new(cluster(10, &["dc1", "dc2"]));
    let mut job = service_job("web", 4, 100, 64);
    job.spec.affinities.push(Affinity {
        attribute: "${node.datacenter}".into(),
        operator: Some(Operator::Equal),
        value: "dc2".into(),
        weight: Some(100),
    });
    register(&mut harness, &job, "e1");
    for alloc in harness.live_allocs("default", "web") {
        let node = harness.state.node(&alloc.spec.node_name).expect("node");
        assert_eq!(node.datacenter(), "dc2");
    }
}

#[test]
fn distinct_hosts_puts_one_allocation_per_node() {
    let mut harness = Harness::new(cluster(3, &["dc1"]));
    let mut job = service_job("web", 4, 100, 64);
    job.spec.constraints.push(Constraint {
        operator: Some(Operator::DistinctHosts),
        ..Constraint::default()
    });
    register(&mut harness, &job, "e1");
    let per_node = allocs_per_node(&harness, &job);
    assert_eq!(per_node.len(), 3);
    assert!(per_node.values().all(|c| *c == 1));
    let status = harness
        .last_eval()
        .and_then(|e| e.status.clone())
        .expect("status");
    assert_eq!(
        status.failed_group_allocs["web"]
            .constraint_filtered
            .get("distinct_hosts"),
        Some(&3)
    );
}

#[test]
fn allocations_on_a_down_node_are_replaced_elsewhere() {
    let mut harness = Harness::new(cluster(3, &["dc1"]));
    let job = service_job("web", 3, 100, 64);
    register(&mut harness, &job, "e1");
    let victim = harness.live_allocs("default", "web")[0]
        .spec
        .node_name
        .clone();
    let mut node = (*harness.state.node(&victim).expect("node")).clone();
    node.status.get_or_insert_default().status = NodeState::Down;
    harness.state.upsert_node(node);
    harness.process(&eval_for("e2", &job)).expect("process");
    let live = harness.live_allocs("default", "web");
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|a| a.spec.node_name != victim));
    let replacements = live
        .iter()
        .filter(|a| a.spec.previous_allocation.is_some())
        .count();
    assert!(replacements >= 1);
    // The stops on the down node carry the `lost` client status; no other stop does.
    let plan = harness.plans.last().expect("a plan");
    let stops = &plan.node_update[&victim];
    assert!(!stops.is_empty());
    assert!(
        stops
            .iter()
            .all(|s| s.client_status == Some(ClientStatus::Lost))
    );
    assert!(
        plan.node_update
            .iter()
            .filter(|(n, _)| **n != victim)
            .flat_map(|(_, s)| s)
            .all(|s| s.client_status.is_none())
    );
}

#[test]
fn failed_allocation_is_rescheduled_away_from_its_node() {
    let mut harness = Harness::new(cluster(4, &["dc1"]));
    let job = service_job("web", 1, 100, 64);
    register(&mut harness, &job, "e1");
    let failed = harness.live_allocs("default", "web")[0].clone();
    let name = failed.metadata.name().to_string();
    set_client_status(&mut harness.state, "default", &name, ClientStatus::Failed);
    harness.process(&eval_for("e2", &job)).expect("process");
    let live = harness.live_allocs("default", "web");
    assert_eq!(live.len(), 1);
    let replacement = &live[0];
    assert_eq!(
        replacement.spec.previous_allocation.as_deref(),
        Some(name.as_str())
    );
    assert_ne!(replacement.spec.node_name, failed.spec.node_name);
    let tracker = replacement
        .spec
        .reschedule_tracker
        .as_ref()
        .expect("tracker");
    assert_eq!(tracker.events.len(), 1);
    let old = harness.state.alloc("default", &name).expect("old");
    assert_eq!(desired(&old), DesiredStatus::Stop);
}

/// Two tasks of 2^63 MHz and MB each (a wrapping sum: 0) on a 3,992 MHz node.
#[test]
fn a_group_whose_tasks_overflow_is_placed_nowhere() {
    use caravan_schemas::job::Resources;

    use crate::scheduler::state::MemState;

    let mut small = node("node-0", "dc1");
    let resources = small
        .status
        .as_mut()
        .and_then(|s| s.resources.as_mut())
        .expect("resources");
    resources.cpu = 3992;
    let mut state = MemState::new();
    state.upsert_node(small);
    state.set_index(1);
    let mut harness = Harness::new(state);
    let mut job = service_job("huge", 1, 1 << 63, 1 << 63);
    let task = job.spec.groups[0].tasks[0].clone();
    job.spec.groups[0].tasks.push(caravan_schemas::job::Task {
        name: "twin".into(),
        resources: Some(Resources {
            cpu: Some(1 << 63),
            memory_mb: Some(1 << 63),
            ..Resources::default()
        }),
        ..task
    });
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    assert!(harness.live_allocs("default", "huge").is_empty());
    no_node_oversubscribed(&harness.state).expect("nothing oversubscribed");
}
