//! The lifecycle state machine of an allocation's tasks (the diagram is in [`super::alloc`]):
//! which tasks each stage starts, when the allocation moves to the next stage, and what the
//! runner does when a task reports, a task runner ends, the servers change the allocation, a
//! service check asks something, or its deployment health is due to be decided. Health is
//! tracked while the tasks run (prestart and main stages), and goes out with the next status
//! report once decided. Services are registered while their tasks run (`services.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::SystemTime;

use caravan_schemas::allocation::{DesiredStatus, TaskLifecycleState, TaskState};
use caravan_schemas::job::TaskGroup;
use caravan_schemas::{Allocation, NameMap};
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinError, JoinSet};

use super::lost::lost_runner;
use super::services::{ServiceHooks, restart_targets};
use super::{AllocRunner, health};
use crate::runner::events;
use crate::runner::health::tracker::Tracker;
use crate::runner::spec::{Phase, restart_policy, task_spec_capped};
use crate::runner::status::alloc_status;
use crate::runner::task::{TaskRunner, TaskUpdate};
use crate::services::ServiceEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Prestart,
    Main,
    Stopping,
    Poststop,
    Done,
}

/// A task whose runner is running: how to kill it, how to have it restart.
struct Running {
    kill: watch::Sender<Option<String>>,
    restart: mpsc::UnboundedSender<String>,
}

/// An allocation's tasks on their way through the lifecycle, with everything the loop of
/// [`AllocRunner::run`] keeps between its steps.
pub(super) struct Lifecycle {
    /// Drivers, settings, local state, status batcher and the Allocation's updates.
    runner: AllocRunner,
    /// The Allocation when the runner started (task specs and status keys come from it).
    alloc: Allocation,
    group: TaskGroup,
    phases: BTreeMap<String, Phase>,
    states: NameMap<TaskState>,
    updates_tx: mpsc::UnboundedSender<TaskUpdate>,
    updates: mpsc::UnboundedReceiver<TaskUpdate>,
    running: BTreeMap<String, Running>,
    finished: BTreeSet<String>,
    joins: JoinSet<(String, TaskState)>,
    /// The task of each runner, to know whose runner a failed join was.
    runner_ids: BTreeMap<Id, String>,
    started_main: BTreeSet<String>,
    poststart_started: bool,
    stage: Stage,
    stop_reason: Option<String>,
    /// Whether the stage has started what it runs.
    entered: bool,
    /// The allocation's health within its deployment.
    health: Tracker,
    /// The allocation's services and their checks.
    services: ServiceHooks,
    /// The allocation's network namespace, which its tasks join (bridge and `none` modes).
    netns: Option<PathBuf>,
}

impl Lifecycle {
    /// The allocation at the start of its prestart stage, task states as an earlier agent
    /// process saved them.
    pub(super) fn new(
        mut runner: AllocRunner,
        alloc: Allocation,
        group: TaskGroup,
        netns: Option<PathBuf>,
    ) -> Lifecycle {
        let phases = group
            .tasks
            .iter()
            .map(|t| (t.name.clone(), Phase::of(t)))
            .collect();
        let states = group
            .tasks
            .iter()
            .map(|t| {
                let state = runner
                    .recovered
                    .get(&t.name)
                    .map(|l| l.state.clone())
                    .unwrap_or_default();
                (t.name.clone(), state)
            })
            .collect();
        let (updates_tx, updates) = mpsc::unbounded_channel();
        let health = health::tracker(&mut runner, &alloc, &group.name, &states);
        let services = ServiceHooks::new(runner.services.clone(), &alloc);
        Lifecycle {
            runner,
            alloc,
            group,
            phases,
            states,
            updates_tx,
            updates,
            running: BTreeMap::new(),
            finished: BTreeSet::new(),
            joins: JoinSet::new(),
            runner_ids: BTreeMap::new(),
            started_main: BTreeSet::new(),
            poststart_started: false,
            stage: Stage::Prestart,
            stop_reason: None,
            entered: false,
            health,
            services,
            netns,
        }
    }

    /// Enters the stage unless it already was: starts what it runs (on `Stopping`, kills what
    /// runs) and reports. `Break` once the allocation is done.
    pub(super) fn enter_stage(&mut self) -> ControlFlow<()> {
        if self.entered {
            return ControlFlow::Continue(());
        }
        self.entered = true;
        let names = match self.stage {
            Stage::Prestart => self.tasks_in(|p| matches!(p, Phase::Prestart { .. })),
            Stage::Main => self.tasks_in(|p| matches!(p, Phase::Main { .. })),
            Stage::Stopping => {
                let reason = self.stop_reason.clone().unwrap_or_default();
                for r in self.running.values() {
                    let _ = r.kill.send(Some(reason.clone()));
                }
                Vec::new()
            }
            Stage::Poststop => self.tasks_in(|p| matches!(p, Phase::Poststop)),
            Stage::Done => return ControlFlow::Break(()),
        };
        self.start(names);
        self.report();
        ControlFlow::Continue(())
    }

    /// Moves to the next stage if the current one is over; whether it did. In `Main`, starts
    /// the poststart hooks once every main task has started.
    pub(super) fn transition(&mut self) -> bool {
        let next = match self.stage {
            Stage::Prestart => self.after_prestart(),
            Stage::Main => {
                self.start_poststart_hooks();
                self.after_main()
            }
            Stage::Stopping => self.running.is_empty().then_some(Stage::Poststop),
            Stage::Poststop => self.running.is_empty().then_some(Stage::Done),
            Stage::Done => None,
        };
        let Some(next) = next else {
            return false;
        };
        self.go_to(next);
        true
    }

    /// Waits for something to happen: a task's update, a task runner's end, (while the tasks
    /// run) a change of the Allocation, or the time to decide its health again.
    pub(super) async fn wait(&mut self) {
        // Once stopping, what the servers want no longer matters (and the watch of a dropped
        // allocation would be ready forever).
        let watch_alloc =
            self.stop_reason.is_none() || matches!(self.stage, Stage::Prestart | Stage::Main);
        let recheck = health::recheck_deadline(&self.health);
        let recheck_at = recheck.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            Some(update) = self.updates.recv() => self.on_update(update),
            Some(joined) = self.joins.join_next_with_id() => self.on_joined(joined),
            changed = self.runner.alloc.changed(), if watch_alloc => self.on_alloc_change(changed),
            Some(event) = self.services.events.recv() => self.on_service_event(event),
            () = tokio::time::sleep_until(recheck_at), if recheck.is_some() => self.report_health(),
        }
    }

    /// Reports the final status; the runner back, with the final task states.
    pub(super) fn finish(mut self) -> (AllocRunner, NameMap<TaskState>) {
        self.report();
        self.services.close();
        (self.runner, self.states)
    }

    fn on_update(&mut self, update: TaskUpdate) {
        // A finished task's last state is the one its runner ended with (a panicked runner's
        // updates may still be queued).
        for update in
            std::iter::once(update).chain(std::iter::from_fn(|| self.updates.try_recv().ok()))
        {
            if !self.finished.contains(&update.task) {
                self.states.insert(update.task, update.state);
            }
        }
        self.report();
    }

    fn on_joined(&mut self, joined: Result<(Id, (String, TaskState)), JoinError>) {
        let ended = match joined {
            Ok((id, (task, state))) => {
                self.runner_ids.remove(&id);
                Some((task, state))
            }
            Err(e) => self.runner_ids.remove(&e.id()).and_then(|task| {
                let last = self.states.get(&task).cloned().unwrap_or_default();
                lost_runner(
                    self.alloc.metadata.name(),
                    &task,
                    last,
                    &e,
                    SystemTime::now(),
                )
                .map(|state| (task, state))
            }),
        };
        if let Some((task, state)) = ended {
            self.running.remove(&task);
            self.finished.insert(task.clone());
            self.states.insert(task, state);
        }
        self.report();
    }

    fn on_alloc_change(&mut self, changed: Result<(), watch::error::RecvError>) {
        let stop = match changed {
            Ok(()) => {
                health::follow(&self.runner, &mut self.health, &self.group.name);
                // A new job version may bring other services.
                self.sync_services();
                self.report_health();
                self.runner.alloc.borrow().desired_status() != DesiredStatus::Run
            }
            // The agent dropped the allocation: stop it.
            Err(_) => true,
        };
        if stop && matches!(self.stage, Stage::Prestart | Stage::Main) {
            self.stop_reason = Some("Allocation stopped by the servers".into());
            self.go_to(Stage::Stopping);
        }
    }

    /// The next stage once the blocking prestart hooks are done or one failed.
    fn after_prestart(&mut self) -> Option<Stage> {
        let blocking = self.tasks_in(|p| matches!(p, Phase::Prestart { sidecar: false }));
        if blocking.iter().any(|n| self.states[n].failed) {
            self.stop("Prestart task failed")
        } else if blocking.iter().all(|n| self.finished.contains(n)) {
            Some(Stage::Main)
        } else {
            None
        }
    }

    /// Starts the poststart hooks, once, when every main task has been seen running (or is
    /// already dead).
    fn start_poststart_hooks(&mut self) {
        for (n, p) in &self.phases {
            if matches!(p, Phase::Main { .. })
                && self.states[n].state == TaskLifecycleState::Running
            {
                self.started_main.insert(n.clone());
            }
        }
        let mains = self.tasks_in(|p| matches!(p, Phase::Main { .. }));
        if !self.poststart_started
            && mains
                .iter()
                .all(|n| self.started_main.contains(n) || self.finished.contains(n))
        {
            self.poststart_started = true;
            let hooks = self.tasks_in(|p| matches!(p, Phase::Poststart { .. }));
            self.start(hooks);
        }
    }

    /// `Stopping` when a main task failed, the leader died or every main task is dead.
    fn after_main(&mut self) -> Option<Stage> {
        let mains = self.tasks_in(|p| matches!(p, Phase::Main { .. }));
        let failed_main = mains
            .iter()
            .any(|n| self.finished.contains(n) && self.states[n].failed);
        let leader_dead = self
            .phases
            .iter()
            .any(|(n, p)| matches!(p, Phase::Main { leader: true }) && self.finished.contains(n));
        if failed_main {
            self.stop("Sibling task failed")
        } else if leader_dead {
            self.stop("Leader task dead")
        } else if mains.iter().all(|n| self.finished.contains(n)) {
            self.stop("Main tasks dead")
        } else {
            None
        }
    }

    /// `Stopping`, for `reason`.
    fn stop(&mut self, reason: &str) -> Option<Stage> {
        self.stop_reason = Some(reason.into());
        Some(Stage::Stopping)
    }

    fn go_to(&mut self, stage: Stage) {
        if stage == Stage::Stopping {
            // Health only matters while the allocation runs.
            self.health.stop();
        }
        self.stage = stage;
        self.entered = false;
        // Deregistered before the tasks are killed.
        self.sync_services();
    }

    /// Registers the services of what runs now.
    fn sync_services(&mut self) {
        let runs = matches!(self.stage, Stage::Prestart | Stage::Main);
        self.services
            .sync(&self.runner, &self.group, runs, &self.phases, &self.states);
    }

    /// A service check's request: decide health again when a check's status changed; restart
    /// the task (every running task for a group service) a check restarts, if it still runs
    /// the run the check was for.
    fn on_service_event(&mut self, event: ServiceEvent) {
        match event {
            ServiceEvent::ChecksChanged => self.report_health(),
            ServiceEvent::Restart { task, run, reason } => {
                if !matches!(self.stage, Stage::Prestart | Stage::Main) {
                    return;
                }
                let running = self.running.keys().map(String::as_str);
                for name in restart_targets(task.as_deref(), run.as_deref(), &self.states, running)
                {
                    let _ = self.running[name].restart.send(reason.clone());
                }
            }
        }
    }

    /// The tasks whose phase matches, by name.
    fn tasks_in(&self, phase: impl Fn(&Phase) -> bool) -> Vec<String> {
        self.phases
            .iter()
            .filter(|(_, p)| phase(p))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Starts the runners of the tasks that are neither running nor finished.
    fn start(&mut self, names: Vec<String>) {
        for n in names {
            if !self.finished.contains(&n) && !self.running.contains_key(&n) {
                self.start_task(&n);
            }
        }
    }

    fn start_task(&mut self, task_name: &str) {
        let Some(task) = self.group.tasks.iter().find(|t| t.name == task_name) else {
            return;
        };
        let runner = &mut self.runner;
        let mut spec = task_spec_capped(
            &runner.job,
            &self.alloc,
            &runner.alloc_id,
            &self.group,
            task,
            &runner.settings,
            runner.max_kill_timeout,
        );
        spec.netns.clone_from(&self.netns);
        let Some(driver) = runner.drivers.get(&task.driver).cloned() else {
            let mut state = TaskState::default();
            events::push(
                &mut state,
                events::event(
                    events::DRIVER_FAILURE,
                    format!("driver {:?} is not available on this node", task.driver),
                    SystemTime::now(),
                ),
            );
            state.state = TaskLifecycleState::Dead;
            state.failed = true;
            let name = task.name.clone();
            let id = self.joins.spawn(async move { (name, state) }).id();
            self.runner_ids.insert(id, task.name.clone());
            return;
        };
        let (kill_tx, kill_rx) = watch::channel(None);
        let (restart_tx, restart_rx) = mpsc::unbounded_channel();
        let task_runner = TaskRunner {
            spec,
            driver,
            policy: restart_policy(runner.job.spec.job_type(), &self.group, task),
            local: runner.local.clone(),
            recovered: runner.recovered.remove(task_name),
            updates: self.updates_tx.clone(),
            kill: kill_rx,
            restart: restart_rx,
        };
        let name = task.name.clone();
        let id = self
            .joins
            .spawn(async move { (name, task_runner.run().await) })
            .id();
        self.runner_ids.insert(id, task.name.clone());
        self.running.insert(
            task.name.clone(),
            Running {
                kill: kill_tx,
                restart: restart_tx,
            },
        );
    }

    /// Decides health if it is due, then queues the allocation's status (with a health
    /// decision not sent yet).
    fn report(&mut self) {
        self.sync_services();
        self.check_health();
        let mut status = alloc_status(&self.states);
        status.deployment_status = self.health.take_unsent();
        let meta = &self.alloc.metadata;
        self.runner
            .status
            .update(meta.namespace(), meta.name(), status);
    }

    /// Reports the status if health is decided now (or a decision waits to be sent).
    fn report_health(&mut self) {
        self.check_health();
        if self.health.has_unsent() {
            self.report();
        }
    }

    fn check_health(&mut self) {
        let checks = if self.health.uses_checks() {
            self.services
                .check_views(&self.runner, &self.group, &self.phases)
        } else {
            Vec::new()
        };
        health::check(
            &self.runner,
            self.alloc.metadata.name(),
            &mut self.health,
            &self.phases,
            &self.states,
            &checks,
        );
    }
}
