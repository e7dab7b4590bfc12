//! Host ports in the generic scheduler: dynamic ports differ on one node, static ones are
//! exclusive, and a node without a free port is exhausted in the `network` dimension.

use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::{NetworkResource, Port};
use caravan_schemas::ports::{DYNAMIC_PORTS_EXHAUSTED, PORT_COLLISION};
use caravan_schemas::{Allocation, Job};

use crate::scheduler::state::State;
use crate::scheduler::testing::*;

fn with_ports(mut job: Job, ports: &[(&str, Option<u32>)]) -> Job {
    job.spec.groups[0].network = Some(NetworkResource {
        mode: None,
        ports: ports
            .iter()
            .map(|(label, fixed)| Port {
                label: (*label).into(),
                r#static: *fixed,
                ..Port::default()
            })
            .collect(),
    });
    job
}

fn ports_of(alloc: &Allocation) -> Vec<(String, u32, String)> {
    alloc
        .spec
        .allocated_resources
        .iter()
        .flat_map(|r| r.shared.ports.iter())
        .map(|p| {
            (
                p.label.clone(),
                p.value,
                p.host_ip.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn dynamic_ports_on_one_node_differ_and_land_in_allocated_resources() {
    let mut harness = Harness::new(cluster(1, &["dc1"]));
    let job = with_ports(
        service_job("web", 5, 100, 64),
        &[("http", None), ("admin", None)],
    );
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let allocs = harness.live_allocs("default", "web");
    assert_eq!(allocs.len(), 5);
    let mut seen = Vec::new();
    for alloc in &allocs {
        let ports = ports_of(alloc);
        assert_eq!(
            ports.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["http", "admin"]
        );
        for (_, value, ip) in ports {
            assert!((20000..=32000).contains(&value), "{value}");
            assert_eq!(ip, "192.168.0.100");
            seen.push(value);
        }
    }
    let count = seen.len();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), count, "every port once");
}

#[test]
fn a_static_port_is_held_once_per_node_and_blocks_the_rest() {
    let mut harness = Harness::new(cluster(2, &["dc1"]));
    let job = with_ports(service_job("web", 3, 100, 64), &[("http", Some(8080))]);
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let allocs = harness.live_allocs("default", "web");
    assert_eq!(allocs.len(), 2, "one per node");
    assert_ne!(allocs[0].spec.node_name, allocs[1].spec.node_name);
    for alloc in &allocs {
        assert_eq!(ports_of(alloc)[0].1, 8080);
    }
    let eval = harness.last_eval().expect("eval");
    let status = eval.status.as_ref().expect("status");
    assert_eq!(status.status, EvaluationState::Complete);
    let metrics = &status.failed_group_allocs["web"];
    assert_eq!(metrics.nodes_exhausted, 2);
    assert_eq!(metrics.dimension_exhausted.get(PORT_COLLISION), Some(&2));
    let blocked = &harness.created_evals[0];
    assert_eq!(
        blocked.status.as_ref().map(|s| s.status),
        Some(EvaluationState::Blocked)
    );

    // Another job asking for the same port finds no node either.
    let other = with_ports(service_job("api", 1, 100, 64), &[("http", Some(8080))]);
    harness.state.upsert_job(other.clone());
    harness.process(&eval_for("e2", &other)).expect("process");
    assert!(harness.live_allocs("default", "api").is_empty());
    no_node_oversubscribed(&harness.state).expect("no port held twice");
}

#[test]
fn an_exhausted_dynamic_range_fails_the_node() {
    let mut state = cluster(1, &["dc1"]);
    let mut node = (*state.nodes()[0]).clone();
    let resources = node
        .status
        .as_mut()
        .and_then(|s| s.resources.as_mut())
        .expect("resources");
    resources.min_dynamic_port = Some(30000);
    resources.max_dynamic_port = Some(30001);
    state.upsert_node(node);
    let mut harness = Harness::new(state);
    let job = with_ports(service_job("web", 3, 100, 64), &[("http", None)]);
    harness.state.upsert_job(job.clone());
    harness.process(&eval_for("e1", &job)).expect("process");
    let allocs = harness.live_allocs("default", "web");
    let mut values: Vec<u32> = allocs.iter().map(|a| ports_of(a)[0].1).collect();
    values.sort_unstable();
    assert_eq!(values, [30000, 30001]);
    let eval = harness.last_eval().expect("eval");
    let metrics = &eval.status.as_ref().expect("status").failed_group_allocs["web"];
    assert_eq!(
        metrics.dimension_exhausted.get(DYNAMIC_PORTS_EXHAUSTED),
        Some(&1)
    );
}
