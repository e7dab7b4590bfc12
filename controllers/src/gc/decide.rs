//! The pure decision of what a garbage collection pass deletes, after Nomad's
//! `nomad/core_sched.go` (`jobGC`, `evalGC`, `gcEval`, `allocGCEligible`, `nodeGC`): the cached
//! objects, the thresholds and `now` in, [`Garbage`] out.
//!
//! - A job goes when its status is `dead`, it is batch or sysbatch or stopped (periodic and
//!   parameterized jobs only when stopped), it changed longer than the job threshold ago, and
//!   every evaluation and allocation of it may go at that threshold; they go with it.
//! - A terminal evaluation goes after the evaluation threshold (batch and sysbatch: the batch
//!   threshold) when every allocation it created may go; those that may go, go even when it
//!   stays. An evaluation of a batch or sysbatch job that still exists and is not both stopped
//!   and dead keeps its allocations of the job's current version (deleting them would make the
//!   scheduler run them again; Nomad protects batch jobs only). The newest evaluation of a job that exists and is not stopped stays: the
//!   job's status is computed from its evaluations.
//! - An allocation may go when it is terminal and not running on its node, changed longer than
//!   the threshold ago and, when its job lives on, is not a failed allocation still waiting to
//!   be rescheduled. Allocations whose evaluation is gone follow the same rules.
//! - A node goes when it has been `down` longer than the node threshold and none of its
//!   allocations is non-terminal.
//! - A deployment goes when it is terminal, changed longer than the deployment threshold ago,
//!   no allocation that is not terminal names it, and it is not the newest deployment of a
//!   job that exists (`gc/deployments.rs`, Nomad's `deploymentGC`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::evaluation::{EvaluationState, EvaluationType};
use caravan_schemas::job::{JobState, JobType, defaults};
use caravan_schemas::node::NodeState;
use caravan_schemas::{Allocation, Deployment, Evaluation, Job, Node, ObjectMeta};

use super::GcThresholds;
use super::age::{alloc_changed_at, down_since, eval_changed_at, job_changed_at, older, time};
use super::deployments::deployment_garbage;

/// The objects a decision reads: the leader's caches.
#[derive(Clone, Copy, Debug)]
pub struct Objects<'a> {
    pub nodes: &'a [Arc<Node>],
    pub jobs: &'a [Arc<Job>],
    pub evaluations: &'a [Arc<Evaluation>],
    pub allocations: &'a [Arc<Allocation>],
    /// Every deployment, of jobs that exist and of jobs that are gone.
    pub deployments: &'a [Arc<Deployment>],
}

/// One object to delete, as it was when the decision was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// Empty for nodes.
    pub namespace: String,
    pub name: String,
    /// The object is deleted only while it still has this version.
    pub resource_version: Option<String>,
}

impl Target {
    pub(super) fn namespaced(meta: &ObjectMeta) -> Target {
        Target {
            namespace: meta.namespace().to_string(),
            name: meta.name().to_string(),
            resource_version: meta.resource_version.clone(),
        }
    }

    fn cluster(meta: &ObjectMeta) -> Target {
        Target {
            namespace: String::new(),
            ..Target::namespaced(meta)
        }
    }

    /// `namespace/name`, or `name` for a cluster-scoped object.
    pub fn display(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// A job with its evaluations and allocations, which go only once the job is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobGarbage {
    pub job: Target,
    pub evaluations: Vec<Target>,
    pub allocations: Vec<Target>,
}

/// What one pass deletes, in order: jobs with what belongs to them, then allocations,
/// evaluations, deployments and nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Garbage {
    pub jobs: Vec<JobGarbage>,
    pub allocations: Vec<Target>,
    pub evaluations: Vec<Target>,
    /// Terminal deployments past the deployment threshold that nothing needs.
    pub deployments: Vec<Target>,
    pub nodes: Vec<Target>,
}

impl Garbage {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
            && self.allocations.is_empty()
            && self.evaluations.is_empty()
            && self.deployments.is_empty()
            && self.nodes.is_empty()
    }
}

/// (namespace, name) of a namespaced object.
pub(super) type Key<'a> = (&'a str, &'a str);

pub(super) fn key(meta: &ObjectMeta) -> Key<'_> {
    (meta.namespace(), meta.name())
}

/// The objects, indexed the ways the rules read them.
struct Index<'a> {
    jobs: HashMap<Key<'a>, &'a Job>,
    evals_by_job: HashMap<Key<'a>, Vec<&'a Evaluation>>,
    evals: HashSet<Key<'a>>,
    allocs_by_job: HashMap<Key<'a>, Vec<&'a Allocation>>,
    allocs_by_eval: HashMap<Key<'a>, Vec<&'a Allocation>>,
    /// Nodes with an allocation that is not terminal.
    busy_nodes: HashSet<&'a str>,
}

impl<'a> Index<'a> {
    fn new(objects: Objects<'a>) -> Index<'a> {
        let mut index = Index {
            jobs: objects
                .jobs
                .iter()
                .map(|j| (key(&j.metadata), j.as_ref()))
                .collect(),
            evals_by_job: HashMap::new(),
            evals: HashSet::new(),
            allocs_by_job: HashMap::new(),
            allocs_by_eval: HashMap::new(),
            busy_nodes: HashSet::new(),
        };
        for eval in objects.evaluations {
            let ns = eval.metadata.namespace();
            index.evals.insert(key(&eval.metadata));
            index
                .evals_by_job
                .entry((ns, eval.spec.job_name.as_str()))
                .or_default()
                .push(eval);
        }
        for alloc in objects.allocations {
            let ns = alloc.metadata.namespace();
            index
                .allocs_by_job
                .entry((ns, alloc.spec.job_name.as_str()))
                .or_default()
                .push(alloc);
            if let Some(eval) = alloc.spec.eval_name.as_deref() {
                index
                    .allocs_by_eval
                    .entry((ns, eval))
                    .or_default()
                    .push(alloc);
            }
            if !alloc.is_terminal() {
                index.busy_nodes.insert(alloc.spec.node_name.as_str());
            }
        }
        index
    }

    fn job(&self, ns: &'a str, job_name: &'a str) -> Option<&'a Job> {
        self.jobs.get(&(ns, job_name)).copied()
    }
}

/// Decides what a pass deletes.
pub fn decide(objects: Objects<'_>, thresholds: &GcThresholds, now: SystemTime) -> Garbage {
    let index = Index::new(objects);
    let mut garbage = Garbage::default();
    // Evaluations and allocations that go with their job.
    let mut taken_evals: HashSet<Key<'_>> = HashSet::new();
    let mut taken_allocs: HashSet<Key<'_>> = HashSet::new();

    for job in objects.jobs {
        if let Some((evals, allocs)) = job_garbage(job, &index, thresholds.job, now) {
            taken_evals.extend(evals.iter().map(|e| key(&e.metadata)));
            taken_allocs.extend(allocs.iter().map(|a| key(&a.metadata)));
            garbage.jobs.push(JobGarbage {
                job: Target::namespaced(&job.metadata),
                evaluations: sorted(evals.iter().map(|e| Target::namespaced(&e.metadata))),
                allocations: sorted(allocs.iter().map(|a| Target::namespaced(&a.metadata))),
            });
        }
    }

    let kept = newest_evals(&index);
    let mut allocs: Vec<&Allocation> = Vec::new();
    for eval in objects.evaluations {
        let eval_key = key(&eval.metadata);
        if taken_evals.contains(&eval_key) {
            continue;
        }
        let (all, eligible) = eval_garbage(eval, &index, thresholds, now);
        if all && !kept.contains(&eval_key) {
            garbage.evaluations.push(Target::namespaced(&eval.metadata));
        }
        allocs.extend(eligible);
    }
    // Allocations whose evaluation is gone (or never named).
    for alloc in objects.allocations {
        let ns = alloc.metadata.namespace();
        let orphan = alloc
            .spec
            .eval_name
            .as_deref()
            .is_none_or(|e| !index.evals.contains(&(ns, e)));
        if orphan && orphan_may_go(alloc, &index, thresholds, now) {
            allocs.push(alloc);
        }
    }
    garbage.allocations = sorted(
        allocs
            .into_iter()
            .filter(|a| !taken_allocs.contains(&key(&a.metadata)))
            .map(|a| Target::namespaced(&a.metadata)),
    );
    garbage.evaluations.sort();

    garbage.deployments = deployment_garbage(objects, thresholds.deployment, now);
    garbage.nodes = sorted(
        objects
            .nodes
            .iter()
            .filter(|n| node_may_go(n, &index, thresholds.node, now))
            .map(|n| Target::cluster(&n.metadata)),
    );
    garbage
}

pub(super) fn sorted(targets: impl Iterator<Item = Target>) -> Vec<Target> {
    let mut targets: Vec<Target> = targets.collect();
    targets.sort();
    targets.dedup();
    targets
}

fn is_dead(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| s.status == JobState::Dead)
}

/// Nomad's `jobIsGCable`: dead, and either stopped or a batch or sysbatch job; periodic and
/// parameterized jobs only when stopped.
fn job_gc_able(job: &Job) -> bool {
    if !is_dead(job) {
        return false;
    }
    if job.spec.periodic.is_some() || job.spec.parameterized.is_some() {
        return job.spec.stop;
    }
    job.spec.stop || matches!(job.spec.job_type(), JobType::Batch | JobType::Sysbatch)
}

fn is_terminal_eval(eval: &Evaluation) -> bool {
    matches!(
        eval.status.as_ref().map(|s| s.status),
        Some(EvaluationState::Complete | EvaluationState::Failed | EvaluationState::Canceled)
    )
}

/// The evaluations and allocations of `job` when the job may go with them.
fn job_garbage<'a>(
    job: &'a Job,
    index: &Index<'a>,
    threshold: Duration,
    now: SystemTime,
) -> Option<(Vec<&'a Evaluation>, Vec<&'a Allocation>)> {
    if !job_gc_able(job) || !older(job_changed_at(job), threshold, now) {
        return None;
    }
    let job_key = key(&job.metadata);
    let evals = index
        .evals_by_job
        .get(&job_key)
        .cloned()
        .unwrap_or_default();
    let evals_go = evals
        .iter()
        .all(|e| is_terminal_eval(e) && older(eval_changed_at(e), threshold, now));
    let allocs = index
        .allocs_by_job
        .get(&job_key)
        .cloned()
        .unwrap_or_default();
    let allocs_go = allocs
        .iter()
        .all(|a| alloc_may_go(a, Some(job), threshold, now));
    (evals_go && allocs_go).then_some((evals, allocs))
}

/// The newest evaluation of every job that exists and is not stopped.
fn newest_evals<'a>(index: &Index<'a>) -> HashSet<Key<'a>> {
    index
        .evals_by_job
        .iter()
        .filter(|(job, _)| index.jobs.get(*job).is_some_and(|j| !j.spec.stop))
        .filter_map(|(_, evals)| {
            evals
                .iter()
                .max_by_key(|e| {
                    let rv = e.metadata.resource_version.as_deref();
                    (
                        rv.and_then(|rv| rv.parse::<u64>().ok()).unwrap_or(0),
                        eval_changed_at(e),
                        e.metadata.name(),
                    )
                })
                .map(|e| key(&e.metadata))
        })
        .collect()
}

fn eval_threshold(batch: bool, thresholds: &GcThresholds) -> Duration {
    if batch {
        thresholds.batch_eval
    } else {
        thresholds.eval
    }
}

/// Nomad's `gcEval`: whether every allocation of `eval` may go, and those that may.
fn eval_garbage<'a>(
    eval: &'a Evaluation,
    index: &Index<'a>,
    thresholds: &GcThresholds,
    now: SystemTime,
) -> (bool, Vec<&'a Allocation>) {
    let batch = matches!(
        eval.spec.r#type,
        Some(EvaluationType::Batch | EvaluationType::Sysbatch)
    );
    let threshold = eval_threshold(batch, thresholds);
    if !is_terminal_eval(eval) || !older(eval_changed_at(eval), threshold, now) {
        return (false, Vec::new());
    }
    let (ns, eval_name) = key(&eval.metadata);
    let job = index.job(ns, &eval.spec.job_name);
    let allocs = index
        .allocs_by_eval
        .get(&(ns, eval_name))
        .map(Vec::as_slice)
        .unwrap_or_default();
    allocs_garbage(allocs, job, batch, threshold, now)
}

/// An allocation whose evaluation is gone, judged as if that evaluation were terminal and old.
fn orphan_may_go(
    alloc: &Allocation,
    index: &Index<'_>,
    thresholds: &GcThresholds,
    now: SystemTime,
) -> bool {
    let job = index.job(alloc.metadata.namespace(), &alloc.spec.job_name);
    let batch =
        job.is_some_and(|j| matches!(j.spec.job_type(), JobType::Batch | JobType::Sysbatch));
    let threshold = eval_threshold(batch, thresholds);
    allocs_garbage(&[alloc], job, batch, threshold, now).0
}

/// Whether all of `allocs` (of one evaluation, `batch` for batch and sysbatch ones) may go,
/// and those that may.
fn allocs_garbage<'a>(
    allocs: &[&'a Allocation],
    job: Option<&Job>,
    batch: bool,
    threshold: Duration,
    now: SystemTime,
) -> (bool, Vec<&'a Allocation>) {
    let eligible: Vec<&Allocation> = match job {
        // A batch or sysbatch job that lives on keeps the allocations of its current version.
        Some(job) if batch && !(is_dead(job) && job.spec.stop) => allocs
            .iter()
            .copied()
            .filter(|a| a.spec.job_version < job.version())
            .filter(|a| finished(a) && older(alloc_changed_at(a), threshold, now))
            .collect(),
        _ => allocs
            .iter()
            .copied()
            .filter(|a| alloc_may_go(a, job, threshold, now))
            .collect(),
    };
    (eligible.len() == allocs.len(), eligible)
}

/// Terminal, and not running on its node (a stop the node has not carried out yet).
fn finished(alloc: &Allocation) -> bool {
    alloc.is_terminal()
        && !matches!(
            alloc.client_status(),
            ClientStatus::Running | ClientStatus::Unknown
        )
}

/// Nomad's `allocGCEligible`.
fn alloc_may_go(
    alloc: &Allocation,
    job: Option<&Job>,
    threshold: Duration,
    now: SystemTime,
) -> bool {
    if !finished(alloc) || !older(alloc_changed_at(alloc), threshold, now) {
        return false;
    }
    let Some(job) = job else {
        return true;
    };
    if job.spec.stop || is_dead(job) || alloc.desired_status() == DesiredStatus::Stop {
        return true;
    }
    // A failed allocation carries the reschedule history its replacement needs.
    if alloc.client_status() != ClientStatus::Failed || alloc.spec.next_allocation.is_some() {
        return true;
    }
    let Some(group) = job.spec.groups.iter().find(|g| g.name == alloc.spec.group) else {
        return true;
    };
    let default = defaults::reschedule_policy(job.spec.job_type());
    let Some(policy) = group.reschedule.as_ref().or(default.as_ref()) else {
        return true;
    };
    let unlimited = policy.unlimited.unwrap_or(false);
    if !unlimited && policy.attempts.unwrap_or(0) == 0 {
        return true;
    }
    if unlimited {
        return false;
    }
    let last = alloc
        .spec
        .reschedule_tracker
        .as_ref()
        .and_then(|t| t.events.last());
    let Some(last) = last else {
        return false;
    };
    let interval = policy
        .interval
        .as_deref()
        .and_then(|i| caravan_schemas::duration::parse_duration(i).ok())
        .unwrap_or_default();
    time(Some(&last.reschedule_time))
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|since| since > interval)
}

/// Nomad's `nodeGC`: down longer than the threshold, with no allocation still to stop.
fn node_may_go(node: &Node, index: &Index<'_>, threshold: Duration, now: SystemTime) -> bool {
    let down = node
        .status
        .as_ref()
        .is_some_and(|s| s.status == NodeState::Down);
    down && !index.busy_nodes.contains(node.metadata.name())
        && older(down_since(node), threshold, now)
}
