//! The allocation runner: prepares the allocation directory, runs its tasks in lifecycle order
//! (prestart hooks, main tasks, poststart hooks, then poststop hooks once the main tasks are
//! dead), stops everything when the servers ask, and reports the allocation's status.
//!
//! ```text
//!  Prestart ──(hooks done)──▶ Main ──(main tasks dead | task failed | leader dead | stop)──▶
//!  Stopping (kill the rest) ──▶ Poststop ──▶ Done
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use caravan_schemas::allocation::{DesiredStatus, TaskLifecycleState, TaskState};
use caravan_schemas::{Allocation, Job, NameMap};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::spec::{Phase, SpecSettings, restart_policy, task_spec};
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
        let alloc_dir = super::spec::alloc_dir(&self.settings.alloc_root, &self.alloc_id);
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
        let mut started_main: BTreeSet<String> = BTreeSet::new();
        let mut poststart_started = false;
        let mut stage = Stage::Prestart;
        let mut stop_reason: Option<String> = None;
        let mut entered = false;

        let start_task = |task_name: &str,
                          running: &mut BTreeMap<String, Running>,
                          joins: &mut JoinSet<(String, TaskState)>,
                          recovered: &mut BTreeMap<String, LocalTask>| {
            let Some(task) = group.tasks.iter().find(|t| t.name == task_name) else {
                return;
            };
            let spec = task_spec(&alloc, &self.alloc_id, &group, task, &self.settings);
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
                joins.spawn(async move { (name, state) });
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
            joins.spawn(async move { (name, runner.run().await) });
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
                        start_task(&n, &mut running, &mut joins, &mut self.recovered);
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
                                start_task(&n, &mut running, &mut joins, &mut self.recovered);
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
                    states.insert(update.task, update.state);
                    while let Ok(update) = updates.try_recv() {
                        states.insert(update.task, update.state);
                    }
                    self.status.update(&namespace, &name, alloc_status(&states));
                }
                Some(joined) = joins.join_next() => {
                    match joined {
                        Ok((task, state)) => {
                            running.remove(&task);
                            finished.insert(task.clone());
                            states.insert(task, state);
                        }
                        Err(e) => tracing::error!(alloc = %name, error = %e, "a task runner panicked"),
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

/// Creates `<alloc>/alloc/{logs,data,tmp}` and `<alloc>/<task>/{local,secrets,tmp}`.
pub fn prepare_alloc_dir<'a>(
    alloc_dir: &std::path::Path,
    tasks: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    for sub in ["logs", "data", "tmp"] {
        std::fs::create_dir_all(alloc_dir.join("alloc").join(sub))?;
    }
    for task in tasks {
        for sub in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(alloc_dir.join(task).join(sub))?;
        }
    }
    Ok(())
}
