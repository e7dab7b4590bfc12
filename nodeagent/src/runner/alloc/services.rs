//! The allocation runner's side of services: which of the allocation's services are wanted
//! while its tasks run, their registrations built when that changes (a task starts, restarts or
//! stops, the allocation moves to a new job version), the checks its deployment health waits
//! for, and where a check's restart request goes.
//!
//! ```text
//!  a task running (in the prestart or main stage) ──▶ its services, for that run
//!  a main task seen running, until the allocation stops ──▶ the group's services
//!  stopping, or the runner done ──▶ none
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use caravan_schemas::allocation::{TaskLifecycleState, TaskState};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, Job, NameMap};
use tokio::sync::mpsc;

use super::AllocRunner;
use crate::driver::TaskSpec;
use crate::runner::health::TaskRole;
use crate::runner::health::checks::{CheckView, views};
use crate::runner::spec::{Phase, task_spec_capped};
use crate::services::build::{Owner, ScriptContext, wanted};
use crate::services::{AllocKey, ServiceEvent, Services, Wanted};

/// Whose services are wanted (a task, or `None` for the group) and the task's run (its start).
pub(super) type Owners = BTreeMap<Option<String>, Option<String>>;

/// The owners whose services are wanted: every task running while the allocation runs, the
/// group once a main task has run (`group_on`, kept until the allocation stops). The new
/// `group_on` comes back with them.
pub(super) fn owners(
    runs: bool,
    group_on: bool,
    phases: &BTreeMap<String, Phase>,
    states: &NameMap<TaskState>,
) -> (Owners, bool) {
    let mut owners = Owners::new();
    if !runs {
        return (owners, false);
    }
    let mut group_on = group_on;
    for (name, phase) in phases {
        let Some(state) = states.get(name) else {
            continue;
        };
        if state.state == TaskLifecycleState::Running {
            owners.insert(Some(name.clone()), state.started_at.clone());
            group_on |= matches!(phase, Phase::Main { .. });
        }
    }
    if group_on {
        owners.insert(None, None);
    }
    (owners, group_on)
}

/// The number of checks each owner's services have, for the tasks the health rules want
/// running (main tasks and sidecars) and the group.
pub(super) fn expected_checks(
    group: &TaskGroup,
    phases: &BTreeMap<String, Phase>,
) -> BTreeMap<Option<String>, usize> {
    let count = |services: &[caravan_schemas::job::Service]| -> usize {
        services.iter().map(|s| s.checks.len()).sum()
    };
    let mut expected = BTreeMap::new();
    if count(&group.services) > 0 {
        expected.insert(None, count(&group.services));
    }
    for task in &group.tasks {
        let role = phases.get(&task.name).map(|p| TaskRole::of(*p));
        if role == Some(TaskRole::Running) && count(&task.services) > 0 {
            expected.insert(Some(task.name.clone()), count(&task.services));
        }
    }
    expected
}

/// The tasks a check's restart request goes to: `task` if it still runs `run`, every running
/// task for a group service (`task` is `None`), among the tasks whose runners run.
pub(super) fn restart_targets<'a>(
    task: Option<&str>,
    run: Option<&str>,
    states: &NameMap<TaskState>,
    running: impl Iterator<Item = &'a str>,
) -> Vec<&'a str> {
    running
        .filter(|name| {
            let Some(state) = states.get(name) else {
                return false;
            };
            let targeted = match task {
                Some(task) => task == *name && state.started_at.as_deref() == run,
                None => true,
            };
            targeted && state.state == TaskLifecycleState::Running
        })
        .collect()
}

/// The services of one allocation, as its runner sees them.
pub(super) struct ServiceHooks {
    services: Services,
    key: AllocKey,
    tx: mpsc::UnboundedSender<ServiceEvent>,
    /// What the check tasks ask (status changes, restarts).
    pub(super) events: mpsc::UnboundedReceiver<ServiceEvent>,
    /// The owners last registered, and the job their services came from.
    synced: Option<(Owners, Arc<Job>)>,
    group_on: bool,
}

impl ServiceHooks {
    pub(super) fn new(services: Services, alloc: &Allocation) -> ServiceHooks {
        let (tx, events) = mpsc::unbounded_channel();
        ServiceHooks {
            services,
            key: AllocKey {
                namespace: alloc.metadata.namespace().to_string(),
                name: alloc.metadata.name().to_string(),
            },
            tx,
            events,
            synced: None,
            group_on: false,
        }
    }

    /// Registers what is wanted now (`runs`: whether the allocation is in its prestart or main
    /// stage), if that changed since the last time.
    pub(super) fn sync(
        &mut self,
        runner: &AllocRunner,
        group: &TaskGroup,
        runs: bool,
        phases: &BTreeMap<String, Phase>,
        states: &NameMap<TaskState>,
    ) {
        let (owners, group_on) = owners(runs, self.group_on, phases, states);
        self.group_on = group_on;
        let job = runner.running_job.borrow().clone();
        if let Some((last, built_from)) = &self.synced
            && *last == owners
            && Arc::ptr_eq(built_from, &job)
        {
            return;
        }
        let wanted = if owners.is_empty() {
            Vec::new()
        } else {
            let alloc = runner.alloc.borrow().clone();
            let group = running_group(&job, group);
            build(runner, &job, &alloc, group, &owners)
        };
        self.services.sync_alloc(&self.key, wanted, &self.tx);
        self.synced = Some((owners, job));
    }

    /// The checks the allocation's deployment health waits for.
    pub(super) fn check_views(
        &self,
        runner: &AllocRunner,
        group: &TaskGroup,
        phases: &BTreeMap<String, Phase>,
    ) -> Vec<CheckView> {
        let job = runner.running_job.borrow().clone();
        let expected = expected_checks(running_group(&job, group), phases);
        if expected.is_empty() {
            return Vec::new();
        }
        views(&expected, &self.services.alloc_checks(&self.key))
    }

    /// The runner is done: nothing stays registered.
    pub(super) fn close(&self) {
        self.services.close_alloc(&self.key);
    }
}

/// The group as the job version the allocation runs has it.
fn running_group<'a>(job: &'a Job, group: &'a TaskGroup) -> &'a TaskGroup {
    job.spec
        .groups
        .iter()
        .find(|g| g.name == group.name)
        .unwrap_or(group)
}

/// The registrations of every owner's services.
fn build(
    runner: &AllocRunner,
    job: &Job,
    alloc: &Allocation,
    group: &TaskGroup,
    owners: &Owners,
) -> Vec<Wanted> {
    let has_services =
        !group.services.is_empty() || group.tasks.iter().any(|t| !t.services.is_empty());
    if !has_services {
        return Vec::new();
    }
    // The specs of the tasks whose environment the services read: the owners, the first main
    // task (the group's scope), the tasks group script checks run in.
    let first_main = group
        .tasks
        .iter()
        .find(|t| matches!(Phase::of(t), Phase::Main { .. }))
        .map(|t| t.name.as_str());
    let script_tasks = group
        .services
        .iter()
        .flat_map(|s| &s.checks)
        .filter_map(|c| c.task.as_deref());
    let names = owners
        .keys()
        .flatten()
        .map(String::as_str)
        .chain(first_main)
        .chain(script_tasks);
    let mut specs: BTreeMap<&str, TaskSpec> = BTreeMap::new();
    for name in names {
        if specs.contains_key(name) {
            continue;
        }
        if let Some(task) = group.tasks.iter().find(|t| t.name == name) {
            let spec = task_spec_capped(
                job,
                alloc,
                &runner.alloc_id,
                group,
                task,
                &runner.settings,
                runner.max_kill_timeout,
            );
            specs.insert(task.name.as_str(), spec);
        }
    }
    let empty = BTreeMap::new();
    let mut script = |task: &str| specs.get(task).map(|s| Arc::new(ScriptContext::of(s)));
    let mut out = Vec::new();
    for (owner, run) in owners {
        let (services, scope) = match owner {
            None => (&group.services, first_main),
            Some(task) => match group.tasks.iter().find(|t| &t.name == task) {
                Some(t) => (&t.services, Some(task.as_str())),
                None => continue,
            },
        };
        if services.is_empty() {
            continue;
        }
        let env = scope.and_then(|t| specs.get(t)).map_or(&empty, |s| &s.env);
        let owner = Owner {
            alloc,
            node: &runner.settings.node,
            task: owner.as_deref(),
            run: run.as_deref(),
            env,
        };
        out.extend(wanted(&owner, services, &mut script));
    }
    out
}

#[cfg(test)]
#[path = "services/tests.rs"]
mod tests;
