//! Test support (`testsuite` feature): builders for clusters, jobs and evaluations (Nomad's
//! `scheduler/tests/testing.go`), and checks over the [`Harness`] they run in.

use std::collections::BTreeMap;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::evaluation::EvaluationType;
use caravan_schemas::fit;
use caravan_schemas::job::{JobType, Resources, defaults};
use caravan_schemas::{Evaluation, Job, Node, mock};

use super::Plan;
pub use super::harness::Harness;
use super::state::{MemState, State};

/// A ready Linux node `name` in `datacenter` with 4000 MHz, 8192 MB, nothing reserved,
/// `cpu.arch=amd64` and the healthy `mock` and `raw_exec` drivers.
pub fn node(name: &str, datacenter: &str) -> Node {
    let mut node = mock::node(name);
    node.spec.datacenter = Some(datacenter.to_string());
    if let Some(status) = node.status.as_mut() {
        status.reserved = None;
    }
    node
}

/// A cluster of `count` nodes named `node-0000`…, spread round-robin over `datacenters`.
pub fn cluster(count: usize, datacenters: &[&str]) -> MemState {
    let mut state = MemState::new();
    for i in 0..count {
        let dc = datacenters
            .get(i % datacenters.len().max(1))
            .copied()
            .unwrap_or("dc1");
        state.upsert_node(node(&format!("node-{i:04}"), dc));
    }
    state.set_index(1);
    state
}

/// A service job `name` of one group `web` with `count` allocations of one `mock` task asking
/// `cpu` MHz and `memory_mb` MB, in every datacenter.
pub fn service_job(name: &str, count: u32, cpu: u64, memory_mb: u64) -> Job {
    let mut job = mock::job(name);
    job.spec.datacenters = vec!["*".into()];
    let group = &mut job.spec.groups[0];
    group.count = Some(count);
    group.tasks[0].resources = Some(Resources {
        cpu: Some(cpu),
        memory_mb: Some(memory_mb),
        ..Resources::default()
    });
    job
}

/// Like [`service_job`], of type `job_type` with the type's defaults.
pub fn job_of_type(name: &str, job_type: JobType, count: u32) -> Job {
    let mut job = service_job(name, count, 500, 256);
    job.spec.r#type = Some(job_type);
    job.spec.update = None;
    job.spec.reschedule = None;
    job.spec.migrate = None;
    for group in &mut job.spec.groups {
        group.update = None;
        group.reschedule = None;
        group.migrate = None;
        group.restart = None;
    }
    defaults::apply(&mut job.spec);
    job
}

/// A new version of `job` (version + 1) after `edit`.
pub fn next_version(job: &Job, edit: impl FnOnce(&mut Job)) -> Job {
    let mut next = job.clone();
    edit(&mut next);
    let version = job.version() + 1;
    next.status.get_or_insert_default().version = version;
    if next.metadata.generation.is_some() {
        next.metadata.generation = Some(version + 1);
    }
    next
}

/// A pending `job-register` evaluation of `job` named `name`.
pub fn eval_for(name: &str, job: &Job) -> Evaluation {
    let mut eval = mock::evaluation(name, job);
    eval.spec.r#type = Some(match job.spec.job_type() {
        JobType::Service => EvaluationType::Service,
        JobType::Batch => EvaluationType::Batch,
        JobType::System => EvaluationType::System,
        JobType::Sysbatch => EvaluationType::Sysbatch,
    });
    eval
}

/// Allocation count per node of a job's live allocations.
pub fn allocs_per_node(harness: &Harness, job: &Job) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for alloc in harness.live_allocs(job.metadata.namespace(), job.metadata.name()) {
        *counts.entry(alloc.spec.node_name.clone()).or_default() += 1;
    }
    counts
}

/// Whether every node's live allocations fit its capacity.
pub fn no_node_oversubscribed(state: &MemState) -> Result<(), String> {
    for node in state.nodes() {
        let name = node.metadata.name();
        let usage = fit::proposed_usage(&node, &state.allocs_by_node(name), &Plan::default());
        if let Err(dimension) = fit::usage_fits(&usage) {
            return Err(format!("node {name} oversubscribed in {dimension}"));
        }
    }
    Ok(())
}

/// Marks an allocation's client status (as a node would report it).
pub fn set_client_status(
    state: &mut MemState,
    namespace: &str,
    name: &str,
    status: caravan_schemas::allocation::ClientStatus,
) {
    if let Some(alloc) = state.alloc(namespace, name) {
        let mut alloc = (*alloc).clone();
        alloc.status.get_or_insert_default().client_status = status;
        state.upsert_alloc(alloc);
    }
}

/// Desired status of an allocation.
pub fn desired(alloc: &caravan_schemas::Allocation) -> DesiredStatus {
    alloc.desired_status()
}
