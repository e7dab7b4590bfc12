//! The [`Harness`]: a [`Planner`] over a [`MemState`] that applies plans with the same fit
//! re-check as the real plan applier and records what the scheduler did. Scheduler tests run
//! against it, and `caravan bench scheduler` measures the scheduler with it.

use std::sync::Arc;

use caravan_schemas::fit;
use caravan_schemas::node::NodeState;
use caravan_schemas::{Allocation, Evaluation, Node};

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
            // As the plan applier: an update in place into another deployment starts its
            // health over.
            if let Some(existing) = self.state.alloc(&plan.namespace, alloc.metadata.name())
                && existing.spec.deployment_name != alloc.spec.deployment_name
                && let Some(status) = alloc.status.as_mut()
            {
                status.deployment_status = None;
            }
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
