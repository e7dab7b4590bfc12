//! Test support (`testsuite` feature): a [`Harness`] that implements [`Planner`] over a
//! [`MemState`], applying plans with the same fit re-check as the real plan applier, and
//! builders for clusters, jobs and evaluations (Nomad's `scheduler/tests/testing.go`).

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::evaluation::EvaluationType;
use caravan_schemas::fit;
use caravan_schemas::job::{JobType, Resources, defaults};
use caravan_schemas::node::NodeState;
use caravan_schemas::{Allocation, Evaluation, Job, Node, mock};

use super::config::SchedulerConfig;
use super::new_scheduler;
use super::state::{MemState, Planner, State};
use super::{Plan, PlanResult, SchedError};

/// Records plans and evaluations, and applies plans to its state.
#[derive(Debug)]
pub struct Harness {
    /// The cluster, updated by every committed plan.
    pub state: MemState,
    /// Every plan submitted, in order.
    pub plans: Vec<Plan>,
    /// What was committed of each plan.
    pub results: Vec<PlanResult>,
    /// Evaluation updates, in order.
    pub updated_evals: Vec<Evaluation>,
    /// Evaluations created, in order.
    pub created_evals: Vec<Evaluation>,
    /// Scheduler settings used by [`Harness::process`].
    pub config: SchedulerConfig,
    /// Whether `plans` and `results` are kept (true unless [`Harness::without_records`]).
    records: bool,
}

impl Harness {
    /// A harness over `state`.
    pub fn new(state: MemState) -> Self {
        Self {
            state,
            plans: Vec::new(),
            results: Vec::new(),
            updated_evals: Vec::new(),
            created_evals: Vec::new(),
            config: SchedulerConfig::default(),
            records: true,
        }
    }

    /// A harness that applies plans to its state without keeping them in `plans` and
    /// `results`: committed allocations move into the state instead of being copied, as the
    /// plan applier stores what it is sent. For measurements.
    pub fn without_records(state: MemState) -> Self {
        Self {
            records: false,
            ..Self::new(state)
        }
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Arc<dyn State> {
        Arc::new(self.state.clone())
    }

    /// Runs the scheduler for `eval`'s type on a fresh snapshot.
    pub fn process(&mut self, eval: &Evaluation) -> Result<(), SchedError> {
        let snapshot = self.snapshot();
        self.process_with(eval, snapshot)
    }

    /// Runs the scheduler for `eval`'s type on a given (possibly stale) snapshot.
    pub fn process_with(
        &mut self,
        eval: &Evaluation,
        snapshot: Arc<dyn State>,
    ) -> Result<(), SchedError> {
        let kind = eval.spec.r#type.unwrap_or_default();
        let config = self.config.clone();
        match new_scheduler(kind, snapshot, self, config) {
            Some(mut scheduler) => scheduler.process(eval),
            None => Err(SchedError::InvalidEval {
                eval: eval.metadata.name().to_string(),
                reason: "no scheduler for this type".into(),
            }),
        }
    }

    /// The in-memory state behind a snapshot taken by [`Harness::snapshot`], or the harness's
    /// current state when `snapshot` is another implementation.
    pub fn state_clone_of(&self, snapshot: &Arc<dyn State>) -> Arc<MemState> {
        let mut state = MemState::new();
        state.set_index(snapshot.index());
        for node in snapshot.nodes() {
            state.upsert_node(node);
        }
        for job in self.state.jobs() {
            for alloc in snapshot.allocs_by_job(job.metadata.namespace(), job.metadata.name()) {
                state.upsert_alloc(alloc);
            }
        }
        Arc::new(state)
    }

    /// The last evaluation update.
    pub fn last_eval(&self) -> Option<&Evaluation> {
        self.updated_evals.last()
    }

    /// Live (run-desired, not client-terminal) allocations of a job.
    pub fn live_allocs(&self, namespace: &str, job: &str) -> Vec<Arc<caravan_schemas::Allocation>> {
        self.state
            .allocs_by_job(namespace, job)
            .into_iter()
            .filter(|a| !a.is_terminal())
            .collect()
    }

    fn node_accepts(&self, node: Option<&Arc<Node>>, plan: &Plan, name: &str) -> bool {
        let placing = plan
            .node_allocation
            .get(name)
            .is_some_and(|a| !a.is_empty());
        let Some(node) = node else {
            return !placing;
        };
        if placing && node.status.as_ref().map(|s| s.status) != Some(NodeState::Ready) {
            return false;
        }
        let existing = self.state.allocs_by_node(name);
        // Only new allocations need an eligible node; in-place updates keep their node.
        let new_allocs = plan
            .node_allocation
            .get(name)
            .into_iter()
            .flatten()
            .any(|a| !existing.iter().any(|e| e.metadata.name == a.metadata.name));
        if new_allocs && fit::closed_reason(node).is_some() {
            return false;
        }
        fit::usage_fits(&fit::proposed_usage(node, &existing, plan)).is_ok()
    }
}

impl Planner for Harness {
    fn submit_plan(
        &mut self,
        mut plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), SchedError> {
        let index = self.state.index() + 1;
        self.state.set_index(index);
        let mut result = PlanResult {
            alloc_index: index,
            ..PlanResult::default()
        };
        let mut touched: Vec<&String> = plan
            .node_update
            .keys()
            .chain(plan.node_allocation.keys())
            .collect();
        touched.sort();
        touched.dedup();
        for name in touched {
            let node = self.state.node(name);
            if !self.node_accepts(node.as_ref(), &plan, name) {
                result.refresh_index = index;
                continue;
            }
            if let Some(stops) = plan.node_update.get(name) {
                for stop in stops {
                    if let Some(alloc) = self.state.alloc(&plan.namespace, &stop.alloc_name) {
                        let mut alloc = (*alloc).clone();
                        alloc.spec.desired_status = Some(stop.desired_status);
                        alloc.spec.desired_description = Some(stop.description.clone());
                        alloc.metadata.resource_version = Some(index.to_string());
                        self.state.upsert_alloc(alloc);
                    }
                }
                result.node_update.insert(name.clone(), stops.clone());
            }
            if let Some(allocs) = plan.node_allocation.get(name) {
                let names = allocs.iter().map(|a| a.metadata.name().to_string());
                result.node_allocation.insert(name.clone(), names.collect());
            }
        }
        let records = self.records;
        let placed: &mut dyn Iterator<Item = Allocation> = if records {
            &mut plan.node_allocation.values().flatten().cloned()
        } else {
            &mut std::mem::take(&mut plan.node_allocation)
                .into_values()
                .flatten()
        };
        for mut alloc in placed.filter(|a| result.node_allocation.contains_key(&a.spec.node_name)) {
            alloc.metadata.resource_version = Some(index.to_string());
            self.state.upsert_alloc(alloc);
        }
        if records {
            self.results.push(result.clone());
            self.plans.push(plan);
        }
        let refreshed = (result.refresh_index != 0).then(|| self.snapshot());
        Ok((result, refreshed))
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.updated_evals.push(eval);
        Ok(())
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), SchedError> {
        self.created_evals.push(eval);
        Ok(())
    }
}

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
