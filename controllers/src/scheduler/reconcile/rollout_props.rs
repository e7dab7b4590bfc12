//! Property: for random sequences of job updates (each with its own canaries), health reports and promotions, the reconciler never has more than `maxParallel`
//! replacements not yet healthy at once, never leaves fewer than `count − maxParallel` healthy
//! allocations serving, and converges to `count` allocations of the latest version.

use std::collections::HashMap;
use std::sync::Arc;

use caravan_schemas::allocation::{AllocDeploymentStatus, ClientStatus};
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::job::{UpdateStrategy, defaults};
use caravan_schemas::naming::alloc_object_name;
use caravan_schemas::{Allocation, Deployment, Job, mock};

use super::*;
use crate::evaluator::deployment::new_deployment;
use crate::scheduler::util::Rng;

const COUNT: u32 = 6;

struct World {
    versions: Vec<Arc<Job>>,
    deployment: Option<Deployment>,
    allocs: Vec<Arc<Allocation>>,
    serial: u64,
}

impl World {
    fn job(&self) -> &Job {
        self.versions.last().expect("a version")
    }

    fn register(&mut self, max_parallel: u32, canary: u32, now: i64) {
        let version = i64::try_from(self.versions.len()).unwrap_or(i64::MAX);
        let mut job = mock::job("web");
        job.status.get_or_insert_default().version = version;
        let group = &mut job.spec.groups[0];
        group.count = Some(COUNT);
        group.update = Some(UpdateStrategy {
            max_parallel: Some(max_parallel),
            canary: Some(canary),
            ..defaults::update_strategy()
        });
        group.tasks[0]
            .env
            .insert("VERSION".into(), version.to_string());
        let allocs: Vec<Arc<Allocation>> = self.allocs.clone();
        let versions = self.versions.clone();
        let lookup = move |v: i64| versions.iter().find(|j| j.version() == v).cloned();
        self.deployment = Some(new_deployment(&job, &allocs, &lookup, now));
        self.versions.push(Arc::new(job));
    }

    /// Runs the reconciler and applies what it decided, as the plan applier would.
    fn reconcile(&mut self, now: i64) {
        let versions = self.versions.clone();
        let lookup = move |v: i64| versions.iter().find(|j| j.version() == v).cloned();
        let job = self.job().clone();
        let results = AllocReconciler {
            job: Some(&job),
            batch: false,
            allocs: &self.allocs,
            tainted: &HashMap::new(),
            job_version: &lookup,
            deployment: self.deployment.as_ref(),
            now_unix: now,
        }
        .compute();
        let stopped: Vec<String> = results
            .stop
            .iter()
            .map(|s| s.alloc.metadata.name().to_owned())
            .chain(
                results
                    .destructive_update
                    .iter()
                    .filter_map(|p| p.previous.as_ref().map(|a| a.metadata.name().to_owned())),
            )
            .collect();
        self.allocs
            .retain(|a| !stopped.contains(&a.metadata.name().to_owned()));
        for alloc in &results.inplace_update {
            let mut moved = (**alloc).clone();
            moved.spec.job_version = job.version();
            self.allocs
                .retain(|a| a.metadata.name() != alloc.metadata.name());
            self.allocs.push(Arc::new(moved));
        }
        for request in results.destructive_update.iter().chain(&results.place) {
            self.serial += 1;
            let name = alloc_object_name("web", "web", request.index, &[&self.serial.to_string()]);
            let mut alloc = mock::allocation(&name, &job, &mock::node("n1"));
            alloc.spec.job_version = job.version();
            alloc.spec.deployment_name = self
                .deployment
                .as_ref()
                .and_then(|d| d.metadata.name.clone());
            let status = alloc.status.get_or_insert_default();
            status.client_status = ClientStatus::Running;
            status.deployment_status = Some(AllocDeploymentStatus {
                canary: request.canary,
                ..AllocDeploymentStatus::default()
            });
            self.allocs.push(Arc::new(alloc));
        }
    }

    /// Some allocations whose health is unknown report healthy.
    fn report_health(&mut self, rng: &mut Rng) {
        for alloc in &mut self.allocs {
            let unknown = alloc
                .status
                .as_ref()
                .and_then(|s| s.deployment_status.as_ref())
                .is_some_and(|d| d.healthy.is_none());
            if unknown && rng.below(2) == 0 {
                let mut healthy = (**alloc).clone();
                if let Some(d) = healthy
                    .status
                    .as_mut()
                    .and_then(|s| s.deployment_status.as_mut())
                {
                    d.healthy = Some(true);
                }
                *alloc = Arc::new(healthy);
            }
        }
    }

    /// Promotes the deployment once every canary is healthy.
    fn promote_when_ready(&mut self) {
        let healthy_canaries = self.allocs.iter().filter(|a| {
            a.spec.job_version == self.job().version()
                && a.status
                    .as_ref()
                    .and_then(|s| s.deployment_status.as_ref())
                    .is_some_and(|d| d.canary && d.healthy == Some(true))
        });
        let healthy_canaries = healthy_canaries.count();
        if let Some(group) = self
            .deployment
            .as_mut()
            .and_then(|d| d.status.as_mut())
            .and_then(|s| s.groups.get_mut("web"))
            && group.desired_canaries as usize <= healthy_canaries
        {
            group.promoted = true;
        }
    }

    fn healthy(alloc: &Allocation) -> bool {
        alloc
            .status
            .as_ref()
            .and_then(|s| s.deployment_status.as_ref())
            .is_none_or(|d| d.healthy == Some(true))
    }

    fn check(&self, seed: u64) {
        let job = self.job();
        let max_parallel = job.spec.groups[0]
            .update
            .as_ref()
            .and_then(|u| u.max_parallel)
            .unwrap_or(1) as usize;
        let replacing = self
            .allocs
            .iter()
            .filter(|a| a.spec.job_version == job.version() && !Self::healthy(a))
            .filter(|a| {
                !a.status
                    .as_ref()
                    .and_then(|s| s.deployment_status.as_ref())
                    .is_some_and(|d| d.canary)
            })
            .count();
        assert!(
            replacing <= max_parallel,
            "seed {seed}: {replacing} replacements in flight, maxParallel {max_parallel}"
        );
        let serving = self.allocs.iter().filter(|a| Self::healthy(a)).count();
        assert!(
            serving + max_parallel >= COUNT as usize,
            "seed {seed}: only {serving} healthy allocations serve (maxParallel {max_parallel})"
        );
    }
}

#[test]
fn rolling_updates_respect_max_parallel_and_converge_to_the_latest_version() {
    for seed in 0..300u64 {
        let mut rng = Rng::new(seed);
        let mut world = World {
            versions: Vec::new(),
            deployment: None,
            allocs: Vec::new(),
            serial: 0,
        };
        let max_parallel = 1 + rng.below(3) as u32;
        world.register(max_parallel, 0, 0);
        // The first version: placed and healthy.
        world.reconcile(0);
        world.report_health(&mut Rng::new(0));
        while world.allocs.iter().any(|a| !World::healthy(a)) {
            world.report_health(&mut rng);
        }
        for step in 0..40 {
            match rng.below(6) {
                0 => {
                    let canary = rng.below(3) as u32;
                    world.register(max_parallel, canary, step);
                }
                1 => world.report_health(&mut rng),
                2 => world.promote_when_ready(),
                _ => {}
            }
            world.reconcile(step);
            world.check(seed);
        }
        // Everything turns healthy and canaries are promoted: the job converges.
        for _ in 0..200 {
            world.report_health(&mut rng);
            world.promote_when_ready();
            world.reconcile(1_000);
            world.check(seed);
        }
        let latest = world.job().version();
        assert_eq!(world.allocs.len(), COUNT as usize, "seed {seed}");
        assert!(
            world.allocs.iter().all(|a| a.spec.job_version == latest),
            "seed {seed}: not all at version {latest}"
        );
        if let Some(d) = &world.deployment {
            assert_eq!(d.state(), DeploymentState::Running);
        }
    }
}
