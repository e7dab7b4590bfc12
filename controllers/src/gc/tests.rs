//! Tests of garbage collection's decision, one rule per test ([`decide`]); the fixtures here serve
//! the loop's tests too (`leader::gc`).

mod decide;
mod deployments;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::condition::{Condition, ConditionStatus};
use caravan_schemas::deployment::{DeploymentState, name_for};
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::JobState;
use caravan_schemas::node::NodeState;
use caravan_schemas::{
    Allocation, Deployment, DeploymentSpec, DeploymentStatus, Evaluation, EvaluationStatus, Job,
    JobStatus, Kind, Node, mock,
};

use super::GcThresholds;
use super::decide::{Garbage, Objects, Target, decide};
use crate::scheduler::time::format_rfc3339;

pub(crate) const HOUR: u64 = 3600;
pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The RFC 3339 time `secs` before [`now`].
pub(crate) fn ago(secs: u64) -> String {
    format_rfc3339(i64::try_from(NOW - secs).unwrap())
}

/// A job with status `state`, created `age` seconds ago.
pub(crate) fn job_in(name: &str, mut job: Job, state: JobState, age: u64) -> Job {
    job.metadata.name = Some(name.into());
    job.metadata.creation_timestamp = Some(ago(age));
    job.status = Some(JobStatus {
        status: state,
        ..JobStatus::default()
    });
    job
}

pub(crate) fn dead_batch(name: &str, age: u64) -> Job {
    job_in(name, mock::batch_job(name), JobState::Dead, age)
}

pub(crate) fn eval(name: &str, job: &Job, state: EvaluationState, age: u64) -> Evaluation {
    let mut eval = mock::evaluation(name, job);
    eval.metadata.creation_timestamp = Some(ago(age));
    eval.status = Some(EvaluationStatus {
        status: state,
        ..EvaluationStatus::default()
    });
    eval
}

/// An allocation of `job` created by `eval` on node `n1`, last reported `age` seconds ago.
pub(crate) fn alloc(
    name: &str,
    eval: &Evaluation,
    job: &Job,
    client: ClientStatus,
    desired: DesiredStatus,
    age: u64,
) -> Allocation {
    let mut alloc = mock::allocation(name, job, &mock::node("n1"));
    alloc.metadata.creation_timestamp = Some(ago(age + 60));
    alloc.spec.eval_name = eval.metadata.name.clone();
    alloc.spec.desired_status = Some(desired);
    let status = alloc.status.get_or_insert_default();
    status.client_status = client;
    status.modify_time = Some(ago(age));
    alloc
}

/// A node marked down by the liveness loop `marked` seconds ago (`None`: no time written),
/// that last became ready `heartbeat` seconds ago.
pub(crate) fn down_node(name: &str, marked: Option<u64>, heartbeat: Option<u64>) -> Node {
    let mut node = mock::node(name);
    node.metadata.creation_timestamp = Some(ago(100 * HOUR));
    let status = node.status.get_or_insert_default();
    status.status = NodeState::Down;
    status.status_description =
        marked.map(|m| format!("missed its heartbeat TTL (last checked {})", ago(m)));
    status.last_heartbeat = heartbeat.map(ago);
    node
}

/// The deployment of version `version` of `job`, created two days ago, whose `Progressing`
/// condition last moved `age` seconds ago, when it reached `state`.
pub(crate) fn deployment(job: &Job, version: i64, state: DeploymentState, age: u64) -> Deployment {
    let job_name = job.metadata.name();
    Deployment {
        api_version: "caravan.dev/v1".into(),
        kind: Kind::Deployment.name().into(),
        metadata: caravan_schemas::ObjectMeta {
            name: Some(name_for(job_name, version)),
            namespace: job.metadata.namespace.clone(),
            creation_timestamp: Some(ago(48 * HOUR)),
            ..Default::default()
        },
        spec: DeploymentSpec {
            job_name: job_name.into(),
            job_uid: job.metadata.uid.clone().unwrap_or_default(),
            job_version: version,
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            status: state,
            conditions: vec![Condition {
                r#type: "Progressing".into(),
                status: ConditionStatus::True,
                last_transition_time: Some(ago(age)),
                ..Condition::default()
            }],
            ..DeploymentStatus::default()
        }),
    }
}

/// The objects of a test.
#[derive(Default)]
pub(crate) struct World {
    nodes: Vec<Arc<Node>>,
    jobs: Vec<Arc<Job>>,
    evals: Vec<Arc<Evaluation>>,
    allocs: Vec<Arc<Allocation>>,
    deployments: Vec<Arc<Deployment>>,
}

impl World {
    fn node(mut self, node: Node) -> World {
        self.nodes.push(Arc::new(node));
        self
    }

    fn job(mut self, job: &Job) -> World {
        self.jobs.push(Arc::new(job.clone()));
        self
    }

    fn eval(mut self, eval: &Evaluation) -> World {
        self.evals.push(Arc::new(eval.clone()));
        self
    }

    fn alloc(mut self, alloc: Allocation) -> World {
        self.allocs.push(Arc::new(alloc));
        self
    }

    fn deployment(mut self, deployment: Deployment) -> World {
        self.deployments.push(Arc::new(deployment));
        self
    }

    fn decide_with(&self, thresholds: &GcThresholds) -> Garbage {
        let objects = Objects {
            nodes: &self.nodes,
            jobs: &self.jobs,
            evaluations: &self.evals,
            allocations: &self.allocs,
            deployments: &self.deployments,
        };
        decide(objects, thresholds, now())
    }

    /// The decision with Nomad's default thresholds.
    fn decide(&self) -> Garbage {
        self.decide_with(&GcThresholds::default())
    }
}

pub(crate) fn names(targets: &[Target]) -> Vec<String> {
    targets.iter().map(Target::display).collect()
}
