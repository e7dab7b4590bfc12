//! The task runner: starts one task through its driver (or re-attaches to it), waits for it,
//! applies the restart policy, stops it with its kill signal then SIGKILL after the kill
//! timeout, and reports every state change and event to its allocation runner. A restart asked
//! while the task runs (a service check's `checkRestart`) kills it the same way and counts as
//! a failure against the restart policy, as Nomad does.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use caravan_schemas::allocation::{TaskLifecycleState, TaskState};
use tokio::sync::{mpsc, watch};

use super::events;
use super::restart::{Decision, Outcome, Policy, Tracker};
use crate::driver::{Driver, DriverError, ExitResult, TaskHandle, TaskSpec};
use crate::state::{LocalState, LocalTask};

/// A task's state change, sent to its allocation runner.
#[derive(Clone, Debug)]
pub struct TaskUpdate {
    pub task: String,
    pub state: TaskState,
}

/// Why a task is being stopped (becomes the `Killing` event's message).
pub type KillRequest = watch::Receiver<Option<String>>;

/// Why the running task is to restart (becomes the `Restart Signaled` event's message).
pub type RestartRequests = mpsc::UnboundedReceiver<String>;

/// One task of an allocation.
pub struct TaskRunner {
    pub spec: TaskSpec,
    pub driver: Arc<dyn Driver>,
    pub policy: Policy,
    pub local: LocalState,
    /// What the local state says about this task (from an earlier agent process).
    pub recovered: Option<LocalTask>,
    pub updates: mpsc::UnboundedSender<TaskUpdate>,
    pub kill: KillRequest,
    pub restart: RestartRequests,
}

impl TaskRunner {
    /// Runs the task until it is dead (finished, given up, or killed); returns its last state.
    pub async fn run(mut self) -> TaskState {
        let now = SystemTime::now();
        let mut tracker = Tracker::new(self.policy, Instant::now());
        let (mut state, mut handle) = match self.recovered.take() {
            Some(local) if local.state.state == TaskLifecycleState::Dead => {
                self.report(&local.state);
                return local.state;
            }
            Some(local) => {
                let state = local.state;
                let handle = match local.handle {
                    Some(h) => match self.driver.recover(self.spec.clone(), h).await {
                        Ok(handle) => Some(handle),
                        Err(e) => {
                            tracing::warn!(task = %self.spec.task_name, alloc = %self.spec.alloc_id, error = %e, "could not re-attach to the task; starting it again");
                            None
                        }
                    },
                    None => None,
                };
                (state, handle)
            }
            None => {
                let mut state = TaskState::default();
                events::push(
                    &mut state,
                    events::event(events::RECEIVED, "Task received by client", now),
                );
                (state, None)
            }
        };
        if handle.is_none() && state.events.iter().all(|e| e.r#type != events::TASK_SETUP) {
            events::push(
                &mut state,
                events::event(events::TASK_SETUP, "Building Task Directory", now),
            );
        }
        self.save(&state, None);
        loop {
            if handle.is_none() {
                let requested = self.kill.borrow().clone();
                if let Some(reason) = requested {
                    return self.finish_killed(state, None, &reason).await;
                }
                // Asked of a run that is over.
                while self.restart.try_recv().is_ok() {}
                match self.driver.start(self.spec.clone()).await {
                    Ok(h) => {
                        let now = SystemTime::now();
                        state.state = TaskLifecycleState::Running;
                        state.started_at = Some(events::timestamp(now));
                        state.finished_at = None;
                        events::push(
                            &mut state,
                            events::event(events::STARTED, "Task started by client", now),
                        );
                        self.save(&state, Some(h.as_ref()));
                        handle = Some(h);
                    }
                    Err(e) => {
                        let outcome = match e {
                            DriverError::InvalidConfig(_) => Outcome::Unrecoverable,
                            _ => Outcome::StartFailed,
                        };
                        events::push(
                            &mut state,
                            events::event(events::DRIVER_FAILURE, e.to_string(), SystemTime::now()),
                        );
                        match self.decide(&mut tracker, &mut state, outcome).await {
                            Some(done) => return done,
                            None => continue,
                        }
                    }
                }
            } else if state.state != TaskLifecycleState::Running {
                state.state = TaskLifecycleState::Running;
                self.save(&state, handle.as_deref());
            }
            let Some(h) = handle.take() else { continue };
            let (exit, signaled) = tokio::select! {
                exit = h.wait() => (exit, false),
                reason = wait_kill(&mut self.kill) => {
                    return self.finish_killed(state, Some(h), &reason).await;
                }
                reason = wait_restart(&mut self.restart) => {
                    events::push(
                        &mut state,
                        events::event(events::RESTART_SIGNALED, reason, SystemTime::now()),
                    );
                    self.report(&state);
                    (kill(h.as_ref(), &self.spec).await, true)
                }
            };
            h.destroy().await;
            events::push(&mut state, events::terminated(&exit, SystemTime::now()));
            let outcome = if exit.successful() && !signaled {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            };
            match self.decide(&mut tracker, &mut state, outcome).await {
                Some(done) => return done,
                None => continue,
            }
        }
    }

    /// Applies the restart policy after a run ended. `Some(state)`: the task is dead.
    async fn decide(
        &mut self,
        tracker: &mut Tracker,
        state: &mut TaskState,
        outcome: Outcome,
    ) -> Option<TaskState> {
        let now = SystemTime::now();
        match tracker.next(outcome, Instant::now(), jitter()) {
            Decision::Terminated => {
                state.state = TaskLifecycleState::Dead;
                state.finished_at = Some(events::timestamp(now));
                self.save(state, None);
                Some(state.clone())
            }
            Decision::NotRestarting { reason } => {
                state.state = TaskLifecycleState::Dead;
                state.failed = true;
                state.finished_at = Some(events::timestamp(now));
                events::push(state, events::event(events::NOT_RESTARTING, reason, now));
                self.save(state, None);
                Some(state.clone())
            }
            Decision::Restart { delay, reason } => {
                state.state = TaskLifecycleState::Pending;
                state.restarts += 1;
                state.last_restart = Some(events::timestamp(now));
                events::push(state, events::restarting(delay, &reason, now));
                self.save(state, None);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => None,
                    reason = wait_kill(&mut self.kill) => {
                        Some(self.finish_killed(state.clone(), None, &reason).await)
                    }
                }
            }
        }
    }

    /// Stops the task: its kill signal, then SIGKILL after the kill timeout.
    async fn finish_killed(
        &mut self,
        mut state: TaskState,
        handle: Option<Box<dyn TaskHandle>>,
        reason: &str,
    ) -> TaskState {
        let now = SystemTime::now();
        if let Some(h) = handle {
            events::push(
                &mut state,
                events::event(events::KILLING, reason.to_string(), now),
            );
            self.report(&state);
            let exit = kill(h.as_ref(), &self.spec).await;
            h.destroy().await;
            let mut killed = events::event(
                events::KILLED,
                "Task successfully killed",
                SystemTime::now(),
            );
            killed.exit_code = Some(exit.exit_code);
            killed.signal = exit.signal;
            events::push(&mut state, killed);
        }
        state.state = TaskLifecycleState::Dead;
        state.finished_at = Some(events::timestamp(SystemTime::now()));
        self.save(&state, None);
        state
    }

    fn report(&self, state: &TaskState) {
        let _ = self.updates.send(TaskUpdate {
            task: self.spec.task_name.clone(),
            state: state.clone(),
        });
    }

    /// Persists the task (its handle first: a task that runs must be found again) and
    /// reports it.
    fn save(&self, state: &TaskState, handle: Option<&dyn TaskHandle>) {
        let local = LocalTask {
            handle: handle.map(|h| h.state()),
            state: state.clone(),
        };
        if let Err(e) = self
            .local
            .put_task(&self.spec.alloc_id, &self.spec.task_name, &local)
        {
            tracing::error!(task = %self.spec.task_name, alloc = %self.spec.alloc_id, error = %e, "failed to save the task state");
        }
        self.report(state);
    }
}

/// Sends the task's kill signal, waits up to its kill timeout, then SIGKILLs it.
pub async fn kill(handle: &dyn TaskHandle, spec: &TaskSpec) -> ExitResult {
    let signal = crate::driver::parse_signal(&spec.kill_signal).unwrap_or(libc_sigint());
    if let Err(e) = handle.signal(signal).await {
        tracing::debug!(task = %spec.task_name, error = %e, "kill signal not delivered");
    }
    match tokio::time::timeout(spec.kill_timeout, handle.wait()).await {
        Ok(exit) => exit,
        Err(_) => {
            let _ = handle
                .signal(nix::sys::signal::Signal::SIGKILL as i32)
                .await;
            handle.wait().await
        }
    }
}

fn libc_sigint() -> i32 {
    nix::sys::signal::Signal::SIGINT as i32
}

/// Resolves when a kill is requested, with its reason.
async fn wait_kill(kill: &mut KillRequest) -> String {
    loop {
        if let Some(reason) = kill.borrow_and_update().clone() {
            return reason;
        }
        if kill.changed().await.is_err() {
            // The allocation runner is gone: nobody can ask any more.
            futures::future::pending::<()>().await;
        }
    }
}

/// Resolves when a restart of the running task is asked, with its reason.
async fn wait_restart(requests: &mut RestartRequests) -> String {
    match requests.recv().await {
        Some(reason) => reason,
        // Nobody can ask any more.
        None => futures::future::pending().await,
    }
}

/// A draw in `[0, 1)` for the restart delay's jitter.
fn jitter() -> f64 {
    let bytes = uuid::Uuid::new_v4().as_u128();
    (bytes >> 75) as f64 / (1u64 << 53) as f64
}
