//! The allocation runner: prepares the allocation directory, runs its tasks in lifecycle order
//! (prestart hooks, main tasks, poststart hooks, then poststop hooks once the main tasks are
//! dead), stops everything when the servers ask, and reports the allocation's status.
//!
//! ```text
//!  Prestart ──(hooks done)──▶ Main ──(main tasks dead | task failed | leader dead | stop)──▶
//!  Stopping (kill the rest) ──▶ Poststop ──▶ Done
//! ```
//!
//! The stages and their transitions are in `lifecycle.rs`; this file sets the allocation up
//! and drives them. While the allocation runs within a deployment, its health is tracked
//! (`health.rs`) and reported with its status, once. Its services are registered while their
//! tasks run (`services.rs`).

mod health;
mod lifecycle;
mod lost;
mod network;
mod services;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::{ClientStatus, TaskLifecycleState, TaskState};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, Job, NameMap};
use tokio::sync::watch;

use super::events;
use super::spec::{Phase, SpecSettings};
use super::status::{StatusBatcher, alloc_status};
use crate::driver::Driver;
use crate::services::{AllocKey, Services};
use crate::state::{LocalHealth, LocalState, LocalTask};
use lifecycle::Lifecycle;

/// Drivers by name.
pub type Drivers = Arc<BTreeMap<String, Arc<dyn Driver>>>;

/// Everything an allocation runner needs.
pub struct AllocRunner {
    /// Allocation uid.
    pub alloc_id: String,
    /// Updates of the Allocation object (the runner reacts to `desiredStatus`).
    pub alloc: watch::Receiver<Allocation>,
    /// The job the tasks are built from (the version the allocation started with).
    pub job: Job,
    /// The job at the version the allocation runs now: `job` at first, a newer version after an
    /// update in place (sent before the Allocation that says so). Health is tracked with its
    /// group's `update` block.
    pub running_job: watch::Receiver<Arc<Job>>,
    pub drivers: Drivers,
    pub settings: SpecSettings,
    /// The longest a task gets between its kill signal and SIGKILL, whatever its
    /// `killTimeout` (the agent's `max_kill_timeout`).
    pub max_kill_timeout: Duration,
    pub local: LocalState,
    /// Task states saved by an earlier agent process.
    pub recovered: BTreeMap<String, LocalTask>,
    /// The health an earlier agent process decided (sent again, once, in case it was not).
    pub health: Option<LocalHealth>,
    pub status: StatusBatcher,
    /// The node's service registrations.
    pub services: Services,
}

impl AllocRunner {
    /// Runs the allocation until every task is dead; returns the final task states.
    pub async fn run(mut self) -> NameMap<TaskState> {
        let alloc = self.alloc.borrow().clone();
        let close = |runner: &AllocRunner| {
            runner.services.close_alloc(&AllocKey {
                namespace: alloc.metadata.namespace().to_string(),
                name: alloc.metadata.name().to_string(),
            });
        };
        let group = match self.setup(&alloc) {
            Ok(group) => group,
            Err(states) => {
                close(&self);
                return states;
            }
        };
        let netns = match self.network_up(&alloc, &group).await {
            Ok(netns) => netns,
            Err(states) => {
                close(&self);
                return states;
            }
        };
        let mut lifecycle = Lifecycle::new(self, alloc, group, netns);
        loop {
            if lifecycle.enter_stage().is_break() {
                break;
            }
            if lifecycle.transition() {
                continue;
            }
            lifecycle.wait().await;
        }
        let (runner, states) = lifecycle.finish();
        runner.network_down(&states).await;
        states
    }

    /// Finds the allocation's group and prepares the allocation directory. `Err` with the
    /// final task states (none without a group) when the allocation cannot run, its failed
    /// status reported.
    fn setup(&mut self, alloc: &Allocation) -> Result<TaskGroup, NameMap<TaskState>> {
        let namespace = alloc.metadata.namespace();
        let name = alloc.metadata.name();
        let Some(group) = self
            .job
            .spec
            .groups
            .iter()
            .find(|g| g.name == alloc.spec.group)
            .cloned()
        else {
            let mut status = alloc_status(&NameMap::new());
            status.client_status = ClientStatus::Failed;
            status.client_description = Some(format!(
                "job {} has no group {}",
                alloc.spec.job_name, alloc.spec.group
            ));
            self.status.update(namespace, name, status);
            return Err(NameMap::new());
        };
        // The uid and the names become paths: refuse the allocation before anything is created
        // rather than trust the servers' admission.
        let alloc_dir = check_names(&self.alloc_id, &group).and_then(|()| {
            crate::paths::alloc_dir(&self.settings.alloc_root, &self.alloc_id)
                .map_err(|e| e.to_string())
        });
        let alloc_dir = match alloc_dir {
            Ok(dir) => dir,
            Err(message) => {
                tracing::error!(alloc = %name, error = %message, "refusing an allocation whose names are unsafe as paths");
                let states = refused(&group, &message, SystemTime::now());
                let mut status = alloc_status(&states);
                status.client_description = Some(format!("invalid allocation: {message}"));
                status.deployment_status = self.refused_health(alloc, &group, &states);
                self.status.update(namespace, name, status);
                return Err(states);
            }
        };
        if let Err(e) = prepare_alloc_dir(&alloc_dir, group.tasks.iter().map(|t| t.name.as_str())) {
            tracing::error!(alloc = %name, error = %e, "failed to prepare the allocation directory");
        }
        Ok(group)
    }

    /// The deployment health of a refused allocation: unhealthy at once when tracked.
    fn refused_health(
        &mut self,
        alloc: &Allocation,
        group: &TaskGroup,
        states: &NameMap<TaskState>,
    ) -> Option<caravan_schemas::allocation::AllocDeploymentStatus> {
        let mut tracker = health::tracker(self, alloc, &group.name, states);
        let phases = group
            .tasks
            .iter()
            .map(|t| (t.name.clone(), Phase::of(t)))
            .collect();
        health::check(
            self,
            alloc.metadata.name(),
            &mut tracker,
            &phases,
            states,
            &[],
        );
        tracker.take_unsent()
    }
}

/// Checks every name of the allocation that becomes a path; the error lists the problems.
fn check_names(alloc_id: &str, group: &TaskGroup) -> Result<(), String> {
    crate::paths::check_alloc(
        alloc_id,
        &group.name,
        group.tasks.iter().map(|t| t.name.as_str()),
    )
    .map_err(|problems| {
        problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The states of the tasks of a refused allocation: dead and failed, with a `Setup Failure`
/// event saying why. No task is started.
fn refused(group: &TaskGroup, message: &str, now: SystemTime) -> NameMap<TaskState> {
    group
        .tasks
        .iter()
        .map(|t| {
            let mut state = TaskState::default();
            events::push(
                &mut state,
                events::event(events::SETUP_FAILURE, message, now),
            );
            state.state = TaskLifecycleState::Dead;
            state.failed = true;
            state.finished_at = Some(events::timestamp(now));
            (t.name.clone(), state)
        })
        .collect()
}

/// Creates `<alloc>/alloc/{logs,data,tmp}` and `<alloc>/<task>/{local,secrets,tmp}`, `secrets`
/// private (0700). Task names are checked: none may leave the allocation directory.
pub fn prepare_alloc_dir<'a>(
    alloc_dir: &Path,
    tasks: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    let tasks: Vec<&str> = tasks
        .map(|task| crate::paths::component("task name", task))
        .collect::<Result<_, _>>()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    for sub in ["logs", "data", "tmp"] {
        std::fs::create_dir_all(alloc_dir.join("alloc").join(sub))?;
    }
    for task in tasks {
        let task_dir = alloc_dir.join(task);
        for sub in ["local", "tmp"] {
            std::fs::create_dir_all(task_dir.join(sub))?;
        }
        crate::paths::create_private_dir(&task_dir.join("secrets"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_directories_keep_secrets_private_and_stay_inside() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let alloc_dir = root.path().join("alloc").join("u");
        prepare_alloc_dir(&alloc_dir, ["web"].into_iter()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&alloc_dir.join("web/secrets")), 0o700);
        assert!(alloc_dir.join("web/local").is_dir());
        assert!(alloc_dir.join("alloc/logs").is_dir());
        let outside = root.path().join("abs").display().to_string();
        for bad in ["../x", outside.as_str(), "..", ""] {
            let err = prepare_alloc_dir(&alloc_dir, ["ok", bad].into_iter()).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(
            !alloc_dir.join("ok").exists(),
            "nothing created for a refused list"
        );
        assert!(!root.path().join("alloc/x").exists());
        assert!(!root.path().join("abs").exists());
    }
}
