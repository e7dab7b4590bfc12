//! A speed measurement of the service scheduler, wired to `caravan bench scheduler`: an
//! in-memory cluster of identical nodes, one service job, one run through the [`Harness`].
//! The objects are built as a node agent and `caravan job run` would send them (JSON, then the
//! job's defaults), not from the test fixtures, which the binary does not carry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_schemas::job::{NetworkResource, Port, defaults};
use caravan_schemas::{Evaluation, Job, Node};
use serde_json::json;

use super::Scheduler;
use super::config::SchedulerConfig;
use super::generic::GenericScheduler;
use super::harness::Harness;
use super::state::{MemState, Planner, State};
use super::{Plan, PlanResult, SchedError};

/// What one scheduling run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// Time inside `process`, plan submission included.
    pub total: Duration,
    /// Of `total`, the time the harness spent applying the plan (re-checking every node's fit
    /// and storing the allocations): the plan applier's share, not the scheduler's.
    pub applying: Duration,
    /// Allocations placed.
    pub placed: usize,
}

impl Measured {
    /// Time the scheduler itself spent: reconciling, selecting nodes and building the plan.
    pub fn scheduling(&self) -> Duration {
        self.total.saturating_sub(self.applying)
    }
}

/// A [`Planner`] that times the plan submissions it forwards.
struct Timed<'a> {
    inner: &'a mut Harness,
    applying: Duration,
}

impl Planner for Timed<'_> {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError> {
        let start = Instant::now();
        let outcome = self.inner.submit_plan(plan);
        self.applying += start.elapsed();
        outcome
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.inner.update_eval(eval)
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.inner.create_eval(eval)
    }
}

/// A ready Linux node with 4000 MHz over 4 cores, 8192 MB and 100 GiB, nothing reserved, and
/// the healthy `mock` and `raw_exec` drivers.
fn node(name: &str) -> Node {
    let driver = json!({"detected": true, "healthy": true, "healthDescription": "healthy"});
    let mut node: Node = serde_json::from_value(json!({
        "apiVersion": caravan_schemas::API_VERSION,
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {
            "datacenter": "dc1",
            "nodePool": defaults::NODE_POOL,
            "nodeClass": "linux-medium-pci",
            "schedulingEligibility": "eligible",
            "httpAddr": "192.168.0.100:4646",
        },
        "status": {
            "status": "ready",
            "attributes": {
                "kernel.name": "linux",
                "os.name": "debian",
                "cpu.arch": "amd64",
                "cpu.numcores": "4",
                "unique.hostname": name,
                "driver.mock": "1",
                "driver.raw_exec": "1",
            },
            "resources": {
                "cpu": 4000, "cores": 4, "memoryMB": 8192, "diskMB": 102_400,
                "networks": [{"device": "eth0", "cidr": "192.168.0.100/32", "ip": "192.168.0.100"}],
            },
            "drivers": {"mock": driver, "raw_exec": driver},
            "addresses": [{"type": "InternalIP", "address": "192.168.0.100"}],
            "heartbeatTTL": "10s",
        },
    }))
    .expect("the bench node is a valid Node");
    node.compute_class();
    node
}

/// A cluster of `count` such nodes named `node-0000`….
fn cluster(count: usize) -> MemState {
    let mut state = MemState::new();
    for i in 0..count {
        state.upsert_node(node(&format!("node-{i:04}")));
    }
    state.set_index(1);
    state
}

/// The service job `name`: one group `web` of `count` allocations of one `mock` task asking
/// `cpu` MHz and `memory_mb` MB, on Linux, in every datacenter, with the job defaults.
fn service_job(name: &str, count: u32, cpu: u64, memory_mb: u64) -> Job {
    let mut job: Job = serde_json::from_value(json!({
        "apiVersion": caravan_schemas::API_VERSION,
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["*"],
            "constraints": [{"attribute": "${attr.kernel.name}", "operator": "=", "value": "linux"}],
            "groups": [{
                "name": "web",
                "count": count,
                "tasks": [{
                    "name": "web",
                    "driver": "mock",
                    "config": {"run_for": "10m"},
                    "resources": {"cpu": cpu, "memoryMB": memory_mb},
                }],
            }],
        },
    }))
    .expect("the bench job is a valid Job");
    defaults::apply(&mut job.spec);
    job
}

/// A pending `job-register` evaluation of the service `job`.
fn eval_for(name: &str, job: &Job) -> Evaluation {
    serde_json::from_value(json!({
        "apiVersion": caravan_schemas::API_VERSION,
        "kind": "Evaluation",
        "metadata": {"name": name, "namespace": job.metadata.namespace()},
        "spec": {
            "jobName": job.metadata.name(),
            "jobVersion": job.version(),
            "triggeredBy": "job-register",
            "priority": job.priority(),
            "type": "service",
        },
        "status": {"status": "pending"},
    }))
    .expect("the bench evaluation is a valid Evaluation")
}

/// Builds an in-memory cluster of `nodes` nodes, registers one service job of `count`
/// allocations (100 MHz, 64 MB each, `ports` dynamic host ports each) and runs the service
/// scheduler once through a [`Harness`] that applies the plan to its state without keeping a
/// copy.
pub fn bench_service_placement(nodes: usize, count: usize, ports: usize) -> Measured {
    let mut harness = Harness::without_records(cluster(nodes));
    let mut job = service_job("bench", u32::try_from(count).unwrap_or(u32::MAX), 100, 64);
    if ports > 0 {
        job.spec.groups[0].network = Some(NetworkResource {
            mode: None,
            ports: (0..ports)
                .map(|i| Port {
                    label: format!("p{i}"),
                    ..Port::default()
                })
                .collect(),
        });
    }
    harness.state.upsert_job(job.clone());
    let eval = eval_for("bench-eval", &job);
    let snapshot = harness.snapshot();
    let mut planner = Timed {
        inner: &mut harness,
        applying: Duration::ZERO,
    };
    let start = Instant::now();
    let outcome = GenericScheduler::service(snapshot, &mut planner, SchedulerConfig::default())
        .process(&eval);
    let total = start.elapsed();
    let applying = planner.applying;
    let placed = match outcome {
        Ok(()) => harness.live_allocs(job.metadata.namespace(), "bench").len(),
        Err(_) => 0,
    };
    Measured {
        total,
        applying,
        placed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing;

    #[test]
    fn bench_objects_are_the_test_fixtures() {
        assert_eq!(node("n1"), testing::node("n1", "dc1"));
        let mut fixture = testing::service_job("bench", 7, 100, 64);
        fixture.spec.meta.clear();
        fixture.spec.groups[0].tasks[0].env.clear();
        assert_eq!(service_job("bench", 7, 100, 64), fixture);
        assert_eq!(eval_for("e", &fixture), testing::eval_for("e", &fixture));
    }

    #[test]
    fn bench_places_every_allocation_and_splits_the_time() {
        let measured = bench_service_placement(200, 100, 1);
        assert_eq!(measured.placed, 100);
        assert!(measured.applying > Duration::ZERO);
        assert!(measured.scheduling() > Duration::ZERO);
        assert!(measured.applying < measured.total);
    }
}
