//! The allocation runner: prepares the allocation directory, runs its tasks in lifecycle order
//! (prestart hooks, main tasks, poststart hooks, then poststop hooks once the main tasks are
//! dead), stops everything when the servers ask, and reports the allocation's status.
//!
//! ```text
//!  Prestart ──(hooks done)──▶ Main ──(main tasks dead | task failed | leader dead | stop)──▶
//!  Stopping (kill the rest) ──▶ Poststop ──▶ Done
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use caravan_schemas::allocation::{DesiredStatus, TaskLifecycleState, TaskState};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, Job, NameMap};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};

use super::events;
use super::spec::{Phase, SpecSettings, restart_policy, task_spec_capped};
use super::status::{StatusBatcher, alloc_status};
use super::task::{TaskRunner, TaskUpdate};
use crate::driver::Driver;
use crate::state::{LocalState, LocalTask};

/// Drivers by name.
pub type Drivers = Arc<BTreeMap<String, Arc<dyn Driver>>>;

/// Everything an allocation runner needs.
pub struct AllocRunner {
    /// Allocation uid.
    pub alloc_id: String,
    /// Updates of the Allocation object (the runner reacts to `desiredStatus`).
    pub alloc: watch::Receiver<Allocation>,
    pub job: Job,
    pub drivers: Drivers,
    pub settings: SpecSettings,
    /// The longest a task gets between its kill signal and SIGKILL, whatever its
    /// `killTimeout` (the agent's `max_kill_timeout`).
    pub max_kill_timeout: Duration,
    pub local: LocalState,
    /// Task states saved by an earlier agent process.
    pub recovered: BTreeMap<String, LocalTask>,
    pub status: StatusBatcher,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Prestart,
    Main,
    Stopping,
    Poststop,
    Done,
}

struct Running {
    kill: watch::Sender<Option<String>>,
}

impl AllocRunner {
    /// Runs the allocation until every task is dead; returns the final task states.
    pub async fn run(mut self) -> NameMap<TaskState> {
        let alloc = self.alloc.borrow().clone();
        let namespace = alloc
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = alloc.metadata.name.clone().unwrap_or_default();
        let job_type = self.job.spec.job_type();
        let Some(group) = self
            .job
            .spec
            .groups
            .iter()
            .find(|g| g.name == alloc.spec.group)
            .cloned()
        else {
            let mut status = alloc_status(&NameMap::new());
            status.client_status = caravan_schemas::allocation::ClientStatus::Failed;
            status.client_description = Some(format!(
                "job {} has no group {}",
                alloc.spec.job_name, alloc.spec.group
            ));
            self.status.update(&namespace, &name, status);
            return NameMap::new();
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
                self.status.update(&namespace, &name, status);
                return states;
            }
        };
        if let Err(e) = prepare_alloc_dir(&alloc_dir, group.tasks.iter().map(|t| t.name.as_str())) {
            tracing::error!(alloc = %name, error = %e, "failed to prepare the allocation directory");
        }
        let phases: BTreeMap<String, Phase> = group
            .tasks
            .iter()
            .map(|t| (t.name.clone(), Phase::of(t)))
            .collect();
        let mut states: NameMap<TaskState> = group
            .tasks
            .iter()
            .map(|t| {
                let state = self
                    .recovered
                    .get(&t.name)
                    .map(|l| l.state.clone())
                    .unwrap_or_default();
                (t.name.clone(), state)
            })
            .collect();
        let (updates_tx, mut updates) = mpsc::unbounded_channel::<TaskUpdate>();
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut finished: BTreeSet<String> = BTreeSet::new();
        let mut joins: JoinSet<(String, TaskState)> = JoinSet::new();
        // The task of each runner, to know whose runner a failed join was.
        let mut runner_ids: BTreeMap<tokio::task::Id, String> = BTreeMap::new();
        let mut started_main: BTreeSet<String> = BTreeSet::new();
        let mut poststart_started = false;
        let mut stage = Stage::Prestart;
        let mut stop_reason: Option<String> = None;
        let mut entered = false;

        let start_task = |task_name: &str,
                          running: &mut BTreeMap<String, Running>,
                          joins: &mut JoinSet<(String, TaskState)>,
                          runner_ids: &mut BTreeMap<tokio::task::Id, String>,
                          recovered: &mut BTreeMap<String, LocalTask>| {
            let Some(task) = group.tasks.iter().find(|t| t.name == task_name) else {
                return;
            };
            let spec = task_spec_capped(
                &alloc,
                &self.alloc_id,
                &group,
                task,
                &self.settings,
                self.max_kill_timeout,
            );
            let Some(driver) = self.drivers.get(&task.driver).cloned() else {
                let mut state = TaskState::default();
                super::events::push(
                    &mut state,
                    super::events::event(
                        super::events::DRIVER_FAILURE,
                        format!("driver {:?} is not available on this node", task.driver),
                        std::time::SystemTime::now(),
                    ),
                );
                state.state = TaskLifecycleState::Dead;
                state.failed = true;
                let name = task.name.clone();
                let id = joins.spawn(async move { (name, state) }).id();
                runner_ids.insert(id, task.name.clone());
                return;
            };
            let (kill_tx, kill_rx) = watch::channel(None);
            let runner = TaskRunner {
                spec,
                driver,
                policy: restart_policy(job_type, &group, task),
                local: self.local.clone(),
                recovered: recovered.remove(task_name),
                updates: updates_tx.clone(),
                kill: kill_rx,
            };
            let name = task.name.clone();
            let id = joins.spawn(async move { (name, runner.run().await) }).id();
            runner_ids.insert(id, task.name.clone());
            running.insert(task.name.clone(), Running { kill: kill_tx });
        };

        loop {
            // Enter the stage: start what it runs.
            if !entered {
                entered = true;
                let names: Vec<String> = match stage {
                    Stage::Prestart => phases
                        .iter()
                        .filter(|(_, p)| matches!(p, Phase::Prestart { .. }))
                        .map(|(n, _)| n.clone())
                        .collect(),
                    Stage::Main => phases
                        .iter()
                        .filter(|(_, p)| matches!(p, Phase::Main { .. }))
                        .map(|(n, _)| n.clone())
                        .collect(),
                    Stage::Stopping => {
                        let reason = stop_reason.clone().unwrap_or_default();
                        for r in running.values() {
                            let _ = r.kill.send(Some(reason.clone()));
                        }
                        Vec::new()
                    }
                    Stage::Poststop => phases
                        .iter()
                        .filter(|(_, p)| matches!(p, Phase::Poststop))
                        .map(|(n, _)| n.clone())
                        .collect(),
                    Stage::Done => break,
                };
                for n in names {
                    if !finished.contains(&n) && !running.contains_key(&n) {
                        start_task(
                            &n,
                            &mut running,
                            &mut joins,
                            &mut runner_ids,
                            &mut self.recovered,
                        );
                    }
                }
                self.status.update(&namespace, &name, alloc_status(&states));
            }
            // Transitions.
            let next = match stage {
                Stage::Prestart => {
                    let blocking: Vec<&String> = phases
                        .iter()
                        .filter(|(_, p)| matches!(p, Phase::Prestart { sidecar: false }))
                        .map(|(n, _)| n)
                        .collect();
                    if blocking.iter().any(|n| states[*n].failed) {
                        stop_reason = Some("Prestart task failed".into());
                        Some(Stage::Stopping)
                    } else if blocking.iter().all(|n| finished.contains(*n)) {
                        Some(Stage::Main)
                    } else {
                        None
                    }
                }
                Stage::Main => {
                    for (n, p) in &phases {
                        if matches!(p, Phase::Main { .. })
                            && states[n].state == TaskLifecycleState::Running
                        {
                            started_main.insert(n.clone());
                        }
                    }
                    let mains: Vec<&String> = phases
                        .iter()
                        .filter(|(_, p)| matches!(p, Phase::Main { .. }))
                        .map(|(n, _)| n)
                        .collect();
                    if !poststart_started
                        && mains
                            .iter()
                            .all(|n| started_main.contains(*n) || finished.contains(*n))
                    {
                        poststart_started = true;
                        let hooks: Vec<String> = phases
                            .iter()
                            .filter(|(_, p)| matches!(p, Phase::Poststart { .. }))
                            .map(|(n, _)| n.clone())
                            .collect();
                        for n in hooks {
                            if !finished.contains(&n) && !running.contains_key(&n) {
                                start_task(
                                    &n,
                                    &mut running,
                                    &mut joins,
                                    &mut runner_ids,
                                    &mut self.recovered,
                                );
                            }
                        }
                    }
                    let failed_main = mains
                        .iter()
                        .any(|n| finished.contains(*n) && states[*n].failed);
                    let leader_dead = phases.iter().any(|(n, p)| {
                        matches!(p, Phase::Main { leader: true }) && finished.contains(n)
                    });
                    if failed_main {
                        stop_reason = Some("Sibling task failed".into());
                        Some(Stage::Stopping)
                    } else if leader_dead {
                        stop_reason = Some("Leader task dead".into());
                        Some(Stage::Stopping)
                    } else if mains.iter().all(|n| finished.contains(*n)) {
                        stop_reason = Some("Main tasks dead".into());
                        Some(Stage::Stopping)
                    } else {
                        None
                    }
                }
                Stage::Stopping => running.is_empty().then_some(Stage::Poststop),
                Stage::Poststop => running.is_empty().then_some(Stage::Done),
                Stage::Done => None,
            };
            if let Some(next) = next {
                stage = next;
                entered = false;
                continue;
            }
            // Wait for something to happen.
            tokio::select! {
                Some(update) = updates.recv() => {
                    // A finished task's last state is the one its runner ended with (a
                    // panicked runner's updates may still be queued).
                    for update in std::iter::once(update)
                        .chain(std::iter::from_fn(|| updates.try_recv().ok()))
                    {
                        if !finished.contains(&update.task) {
                            states.insert(update.task, update.state);
                        }
                    }
                    self.status.update(&namespace, &name, alloc_status(&states));
                }
                Some(joined) = joins.join_next_with_id() => {
                    let ended = match joined {
                        Ok((id, (task, state))) => {
                            runner_ids.remove(&id);
                            Some((task, state))
                        }
                        Err(e) => runner_ids.remove(&e.id()).and_then(|task| {
                            let last = states.get(&task).cloned().unwrap_or_default();
                            lost_runner(&name, &task, last, &e, SystemTime::now())
                                .map(|state| (task, state))
                        }),
                    };
                    if let Some((task, state)) = ended {
                        running.remove(&task);
                        finished.insert(task.clone());
                        states.insert(task, state);
                    }
                    self.status.update(&namespace, &name, alloc_status(&states));
                }
                changed = self.alloc.changed(), if stop_reason.is_none() || matches!(stage, Stage::Prestart | Stage::Main) => {
                    let stop = match changed {
                        Ok(()) => {
                            let desired = self.alloc.borrow().spec.desired_status.unwrap_or_default();
                            desired != DesiredStatus::Run
                        }
                        // The agent dropped the allocation: stop it.
                        Err(_) => true,
                    };
                    if stop && matches!(stage, Stage::Prestart | Stage::Main) {
                        stop_reason = Some("Allocation stopped by the servers".into());
                        stage = Stage::Stopping;
                        entered = false;
                    }
                }
            }
        }
        self.status.update(&namespace, &name, alloc_status(&states));
        states
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

/// A task runner whose join failed. Cancelled (the runtime is shutting down with the agent,
/// and the task lives on for the next agent to re-attach): `None`, nothing to record, and no
/// alarm. Panicked: the task is dead and failed, so the allocation does not wait for it.
fn lost_runner(
    alloc: &str,
    task: &str,
    mut state: TaskState,
    error: &JoinError,
    now: SystemTime,
) -> Option<TaskState> {
    if error.is_cancelled() {
        tracing::debug!(alloc = %alloc, task = %task, "a task runner was cancelled");
        return None;
    }
    tracing::error!(alloc = %alloc, task = %task, error = %error, "a task runner panicked");
    events::push(
        &mut state,
        events::event(
            events::DRIVER_FAILURE,
            format!("the task runner failed: {error}"),
            now,
        ),
    );
    state.state = TaskLifecycleState::Dead;
    state.failed = true;
    state.finished_at = Some(events::timestamp(now));
    Some(state)
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

    #[tokio::test]
    async fn a_cancelled_task_runner_is_not_a_panic() {
        let now = SystemTime::now();
        let running = TaskState {
            state: TaskLifecycleState::Running,
            ..Default::default()
        };
        // Aborted, as the runtime does to every task when the agent shuts down.
        let aborted = tokio::spawn(futures::future::pending::<()>());
        aborted.abort();
        let cancelled = aborted.await.unwrap_err();
        assert!(cancelled.is_cancelled());
        assert_eq!(
            lost_runner("a", "web", running.clone(), &cancelled, now),
            None,
            "nothing recorded: the task lives on for the next agent"
        );
        let panicked = tokio::spawn(async { panic!("bug") }).await.unwrap_err();
        let state = lost_runner("a", "web", running, &panicked, now).expect("a dead task");
        assert_eq!(state.state, TaskLifecycleState::Dead);
        assert!(state.failed);
        assert!(state.events[0].message.contains("panicked"), "{state:?}");
    }
}
