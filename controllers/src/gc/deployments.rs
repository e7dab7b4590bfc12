//! Which deployments a pass deletes, after Nomad's `deploymentGC` (`nomad/core_sched.go`).
//!
//! A deployment goes when it is terminal (successful, failed or cancelled), its last change
//! is older than the deployment threshold, no allocation that is not terminal names it
//! (`spec.deploymentName`), and it is not the newest deployment (highest `spec.jobVersion`)
//! of a job that still exists: `caravan job status` shows that one. Deployments of jobs that
//! are gone (or of an earlier job of the same name, by `spec.jobUid`) go at the threshold too.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use caravan_schemas::{Deployment, Job};

use super::age::{deployment_changed_at, older};
use super::decide::{Key, Objects, Target, key, sorted};

/// The deployments that may go, sorted.
pub(super) fn deployment_garbage(
    objects: Objects<'_>,
    threshold: Duration,
    now: SystemTime,
) -> Vec<Target> {
    let kept = newest_of_living_jobs(objects);
    let named: HashSet<Key<'_>> = objects
        .allocations
        .iter()
        .filter(|a| !a.is_terminal())
        .filter_map(|a| {
            let name = a.spec.deployment_name.as_deref()?;
            Some((a.metadata.namespace(), name))
        })
        .collect();
    sorted(
        objects
            .deployments
            .iter()
            .filter(|d| !d.is_active())
            .filter(|d| {
                let k = key(&d.metadata);
                !kept.contains(&k) && !named.contains(&k)
            })
            .filter(|d| older(deployment_changed_at(d), threshold, now))
            .map(|d| Target::namespaced(&d.metadata)),
    )
}

/// Whether `deployment` is of this job, and not of an earlier job of the same name (a uid
/// missing on either side matches).
fn belongs_to(deployment: &Deployment, job: &Job) -> bool {
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let own = deployment.spec.job_uid.as_str();
    uid.is_empty() || own.is_empty() || own == uid
}

/// The newest deployment of every job that exists.
fn newest_of_living_jobs<'a>(objects: Objects<'a>) -> HashSet<Key<'a>> {
    let jobs: HashMap<Key<'a>, &'a Job> = objects
        .jobs
        .iter()
        .map(|j| (key(&j.metadata), j.as_ref()))
        .collect();
    let mut newest: HashMap<Key<'a>, &'a Deployment> = HashMap::new();
    for deployment in objects.deployments {
        let job_key = (
            deployment.metadata.namespace(),
            deployment.spec.job_name.as_str(),
        );
        let Some(job) = jobs.get(&job_key) else {
            continue;
        };
        if !belongs_to(deployment, job) {
            continue;
        }
        let rank = |d: &'a Deployment| (d.spec.job_version, d.metadata.name());
        newest
            .entry(job_key)
            .and_modify(|n| {
                if rank(deployment) > rank(n) {
                    *n = deployment;
                }
            })
            .or_insert(deployment);
    }
    newest.values().map(|d| key(&d.metadata)).collect()
}
