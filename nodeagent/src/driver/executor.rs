//! The `raw_exec`, `exec` and `oci` drivers: every task runs under its own executor process
//! (`caravan executor`, see [`crate::executor`]), which the agent spawns detached and then
//! reaches through files in the task directory and a Unix socket. Nothing here forks a
//! container or touches libcontainer: that happens in the executor only.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caravan_schemas::node::DriverInfo;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::OnceCell;
use tracing::{debug, warn};

use super::{Driver, DriverError, ExitResult, TaskHandle, TaskSpec, pidfd};
use crate::executor::DriverKind;
use crate::executor::client;
use crate::executor::procfs;
use crate::executor::protocol::{self, ExecutorState, Request, Response, TaskFiles};
use crate::executor::spec::{ContainerSettings, ExecutorSpec, ImageResolver};

/// How often files and processes are polled while starting and stopping.
const POLL: Duration = Duration::from_millis(2);
/// How long an exiting executor gets to go away before a new one starts in its directory.
const EXECUTOR_EXIT_GRACE: Duration = Duration::from_secs(5);

/// Settings of the executor drivers.
#[derive(Clone, Debug)]
pub struct ExecutorSettings {
    pub containers: ContainerSettings,
    /// How long `start` waits for the executor to report the task running.
    pub start_timeout: Duration,
    /// Finds `oci` images (the local image store).
    pub resolve_image: ImageResolver,
}

impl ExecutorSettings {
    /// libcontainer state in `container_root`, images from `image_dir`, cgroups under
    /// `/caravan`, a 30 s start timeout.
    pub fn new(container_root: impl Into<PathBuf>, image_dir: impl Into<PathBuf>) -> Self {
        Self {
            containers: ContainerSettings {
                state_root: container_root.into(),
                image_dir: image_dir.into(),
                cgroup_parent: "/caravan".into(),
                allowed_caps: crate::container::spec::DEFAULT_CAPABILITIES.to_vec(),
            },
            start_timeout: Duration::from_secs(30),
            resolve_image: crate::image::resolve,
        }
    }
}

/// The three executor drivers the agent offers, from its configuration.
pub fn all(config: &crate::agent::config::ClientConfig) -> Vec<Arc<dyn Driver>> {
    let mut settings = ExecutorSettings::new(config.container_root(), config.image_dir.clone());
    settings.containers.allowed_caps = config.allow_caps.clone();
    DriverKind::ALL
        .into_iter()
        .map(|kind| {
            Arc::new(ExecutorDriver::new(
                kind,
                config.executor_command.clone(),
                settings.clone(),
            )) as Arc<dyn Driver>
        })
        .collect()
}

/// `raw_exec`, `exec` or `oci`, after its `kind`.
#[derive(Clone, Debug)]
pub struct ExecutorDriver {
    kind: DriverKind,
    /// The executor's program and leading arguments, e.g. `[<caravan>, "executor"]`.
    executor_command: Vec<OsString>,
    settings: ExecutorSettings,
}

impl ExecutorDriver {
    pub fn new(
        kind: DriverKind,
        executor_command: Vec<OsString>,
        settings: ExecutorSettings,
    ) -> Self {
        assert!(
            !executor_command.is_empty(),
            "the executor command needs a program"
        );
        Self {
            kind,
            executor_command,
            settings,
        }
    }

    pub fn kind(&self) -> DriverKind {
        self.kind
    }

    async fn start_task(&self, spec: TaskSpec) -> Result<Box<dyn TaskHandle>, DriverError> {
        let kind = self.kind;
        let settings = self.settings.clone();
        let files = tokio::task::spawn_blocking(move || prepare(kind, spec, &settings))
            .await
            .map_err(|e| DriverError::Start(format!("preparing the task panicked: {e}")))??;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(files.log())
            .map_err(|e| DriverError::Start(format!("open {:?}: {e}", files.log())))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or_default();
        let mut command = tokio::process::Command::new(&self.executor_command[0]);
        command
            .args(&self.executor_command[1..])
            .arg("--task-dir")
            .arg(&files.dir)
            .stdin(Stdio::null())
            // A pipe on which the executor says that its state file is written; afterwards
            // its stdout is its log, as its stderr is.
            .stdout(Stdio::piped())
            .stderr(log)
            // Its own process group: a Ctrl-C or SIGTERM to the agent's group does not reach
            // it, and it outlives the agent.
            .process_group(0)
            // mimalloc's eager arena commit makes transparent huge pages resident: 9 MB of
            // anonymous memory per executor instead of 3.6 MB.
            .env("MIMALLOC_ARENA_EAGER_COMMIT", "0")
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .map_err(|e| DriverError::Start(format!("failed to spawn the executor: {e}")))?;
        let outcome = self.wait_started(&files, &mut child, log_start).await;
        // Reap the executor whenever it exits (it stays in the agent's children).
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let state = outcome?;
        Ok(Box::new(ExecutorHandle::new(self.kind, files, state, None)))
    }

    /// Waits until the executor wrote its state file (it says so on its stdout), exited, or
    /// overran the start timeout (then it is killed).
    async fn wait_started(
        &self,
        files: &TaskFiles,
        child: &mut tokio::process::Child,
        log_start: u64,
    ) -> Result<ExecutorState, DriverError> {
        let deadline = tokio::time::Instant::now() + self.settings.start_timeout;
        let mut said = child.stdout.take().map(BufReader::new);
        loop {
            if let Some(state) = files.read_state() {
                return match state.error {
                    Some(error) => Err(DriverError::Start(error)),
                    None => Ok(state),
                };
            }
            let mut line = String::new();
            let next_line = async {
                match said.as_mut() {
                    Some(reader) => reader.read_line(&mut line).await.unwrap_or(0),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = next_line => {
                    if read == 0 {
                        // Closed without a word: only its exit or the timeout is left.
                        said = None;
                    }
                }
                status = child.wait() => {
                    if files.read_state().is_some() {
                        continue; // written just before it exited: read above
                    }
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    return Err(DriverError::Start(format!(
                        "the executor exited ({status}) before the task started: {}",
                        log_tail(&files.log(), log_start)
                    )));
                }
                () = tokio::time::sleep_until(deadline) => {
                    if let Some(pid) = child.id() {
                        kill_group(pid as i32, nix::sys::signal::Signal::SIGKILL);
                    }
                    return Err(DriverError::Start(format!(
                        "the executor did not start the task within {:?}: {}",
                        self.settings.start_timeout,
                        log_tail(&files.log(), log_start)
                    )));
                }
            }
        }
    }

    async fn recover_task(&self, state: Value) -> Result<Box<dyn TaskHandle>, DriverError> {
        let saved: HandleState = serde_json::from_value(state)
            .map_err(|e| DriverError::Gone(format!("unreadable driver state: {e}")))?;
        let files = TaskFiles::new(saved.task_dir);
        let executor = saved.executor;
        if let Some(result) = files.read_exit() {
            return Ok(Box::new(ExecutorHandle::new(
                self.kind,
                files,
                executor,
                Some(result),
            )));
        }
        let handle = ExecutorHandle::new(self.kind, files, executor, None);
        if handle.executor_alive() || handle.task_alive() {
            return Ok(Box::new(handle));
        }
        // It may have written exit.json just before dying.
        if let Some(result) = handle.files.read_exit() {
            let _ = handle.result.set(result);
            return Ok(Box::new(handle));
        }
        Err(DriverError::Gone(format!(
            "executor {} and task {:?} are gone and left no exit status in {:?}",
            handle.state.executor_pid, handle.state.task_pid, handle.files.dir
        )))
    }
}

impl Driver for ExecutorDriver {
    fn name(&self) -> &'static str {
        self.kind.name()
    }

    fn fingerprint(&self) -> DriverInfo {
        let problem = if !cfg!(target_os = "linux") {
            Some(format!("{} needs Linux", self.kind))
        } else if !self.kind.contained() {
            None
        } else if !nix::unistd::geteuid().is_root() {
            Some(format!("{} needs the agent to run as root", self.kind))
        } else if !cgroups_mounted() {
            Some(format!("{} needs cgroups at /sys/fs/cgroup", self.kind))
        } else {
            None
        };
        DriverInfo {
            detected: cfg!(target_os = "linux"),
            healthy: problem.is_none(),
            health_description: Some(problem.unwrap_or_else(|| "Healthy".into())),
            attributes: Default::default(),
        }
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(self.start_task(spec))
    }

    fn recover(
        &self,
        _spec: TaskSpec,
        state: Value,
    ) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        Box::pin(self.recover_task(state))
    }
}

/// Checks the configuration, lays out the task directory and writes `executor.json`.
fn prepare(
    kind: DriverKind,
    spec: TaskSpec,
    settings: &ExecutorSettings,
) -> Result<TaskFiles, DriverError> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        DriverError::Start(format!("{what} {}: {e}", path.display()))
    };
    // The names become paths below: nothing is created for a spec that would leave its
    // allocation directory.
    crate::paths::check_task_spec(&spec).map_err(|e| DriverError::InvalidConfig(e.to_string()))?;
    let executor_dir = protocol::executor_dir(&spec.alloc_dir, &spec.task_name);
    let dirs = [
        executor_dir.clone(),
        spec.task_dir.join("local"),
        spec.task_dir.join("tmp"),
        spec.alloc_dir.join("alloc"),
        spec.log_dir.clone(),
    ];
    let secrets = spec.task_dir.join("secrets");
    let executor_spec =
        ExecutorSpec::build(kind, spec, &settings.containers, settings.resolve_image)
            .map_err(DriverError::InvalidConfig)?;
    for dir in dirs {
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
    }
    crate::paths::create_private_dir(&secrets).map_err(|e| io("create", &secrets, e))?;
    let files = TaskFiles::new(executor_dir);
    wait_for_previous_executor(&files)?;
    for stale in [files.state(), files.exit(), files.socket()] {
        match std::fs::remove_file(&stale) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &stale, e)),
        }
    }
    protocol::write_json_atomic(&files.spec(), &executor_spec)
        .map_err(|e| io("write", &files.spec(), e))?;
    Ok(files)
}

/// A restarted task reuses its directory: the executor of the previous run must be gone (it
/// may still be answering its last waiters), and must not be running a task.
fn wait_for_previous_executor(files: &TaskFiles) -> Result<(), DriverError> {
    let Some(previous) = files.read_state() else {
        return Ok(());
    };
    let deadline = Instant::now() + EXECUTOR_EXIT_GRACE;
    while executor_alive(&previous) {
        if files.read_exit().is_none() && previous.error.is_none() {
            return Err(DriverError::Start(format!(
                "executor {} still runs a task in {:?}",
                previous.executor_pid, files.dir
            )));
        }
        if Instant::now() > deadline {
            return Err(DriverError::Start(format!(
                "executor {} of the previous run in {:?} does not exit",
                previous.executor_pid, files.dir
            )));
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn executor_alive(state: &ExecutorState) -> bool {
    let ticks = Some(state.executor_start_ticks).filter(|t| *t != 0);
    procfs::alive(state.executor_pid, ticks)
}

/// What [`TaskHandle::state`] saves: where the task's files are and the executor's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandleState {
    task_dir: PathBuf,
    driver: String,
    #[serde(flatten)]
    executor: ExecutorState,
}

/// A task run by an executor.
#[derive(Debug)]
pub struct ExecutorHandle {
    kind: DriverKind,
    files: TaskFiles,
    state: ExecutorState,
    result: OnceCell<ExitResult>,
}

impl ExecutorHandle {
    fn new(
        kind: DriverKind,
        files: TaskFiles,
        state: ExecutorState,
        result: Option<ExitResult>,
    ) -> Self {
        Self {
            kind,
            files,
            state,
            result: OnceCell::new_with(result),
        }
    }

    fn executor_alive(&self) -> bool {
        executor_alive(&self.state)
    }

    fn task_alive(&self) -> bool {
        self.state
            .task_pid
            .is_some_and(|pid| procfs::alive(pid, self.state.task_start_ticks))
    }

    async fn wait_exit(&self) -> ExitResult {
        let socket = self.files.socket();
        loop {
            if let Some(result) = self.files.read_exit() {
                return result;
            }
            match client::request(&socket, &Request::Wait(true)).await {
                Ok(Response::Exited(result)) => return result,
                Ok(other) => warn!(dir = ?self.files.dir, ?other, "unexpected executor answer"),
                Err(e) if !self.executor_alive() => {
                    debug!(dir = ?self.files.dir, error = %e, "executor gone");
                    return self.files.read_exit().unwrap_or_else(|| ExitResult {
                        exit_code: -1,
                        error: Some("executor lost".into()),
                        ..Default::default()
                    });
                }
                // Alive but not answering: it is between writing exit.json and exiting.
                Err(_) => {}
            }
            tokio::time::sleep(POLL * 5).await;
        }
    }

    async fn send_signal(&self, signal: i32) -> Result<(), DriverError> {
        // A known end (not a lost executor, whose task may still run): nothing to signal.
        let ended = self.result.get().is_some_and(|r| r.error.is_none());
        if ended || self.files.read_exit().is_some() {
            return Ok(());
        }
        let mut last_error = None;
        for _ in 0..3 {
            match client::request(&self.files.socket(), &Request::Signal(signal)).await {
                Ok(Response::Signaled(_)) => return Ok(()),
                Ok(Response::Exited(result)) => {
                    let _ = self.result.set(result);
                    return Ok(());
                }
                Ok(Response::Error(e)) => return Err(DriverError::Start(e)),
                Err(e) => last_error = Some(e),
            }
            if !self.executor_alive() || self.files.read_exit().is_some() {
                break;
            }
            tokio::time::sleep(POLL * 2).await;
        }
        if self.files.read_exit().is_some() {
            return Ok(());
        }
        if self.executor_alive() {
            return Err(DriverError::Start(format!(
                "executor {} does not answer: {}",
                self.state.executor_pid,
                last_error.map(|e| e.to_string()).unwrap_or_default()
            )));
        }
        // The executor is gone: signal the task directly, if it is still there.
        match self.state.task_pid {
            Some(pid) if self.task_alive() => {
                let sig = nix::sys::signal::Signal::try_from(signal)
                    .map_err(|_| DriverError::Start(format!("unknown signal {signal}")))?;
                warn!(pid, signal, "executor lost; signalling the task directly");
                let target = nix::unistd::Pid::from_raw(pid as i32);
                let sent = if self.kind.contained() {
                    nix::sys::signal::kill(target, sig)
                } else {
                    nix::sys::signal::killpg(target, sig)
                };
                sent.map_err(|e| DriverError::Start(format!("signal {pid}: {e}")))
            }
            _ => Ok(()),
        }
    }

    async fn destroy_files(&self) {
        let exited = self.result.initialized() || self.files.read_exit().is_some();
        if exited {
            // Let the exiting executor finish (it removes its socket last).
            let ticks = Some(self.state.executor_start_ticks).filter(|t| *t != 0);
            pidfd::wait_gone(self.state.executor_pid, ticks, EXECUTOR_EXIT_GRACE).await;
        }
        if self.executor_alive() {
            warn!(
                dir = ?self.files.dir,
                pid = self.state.executor_pid,
                "destroying a task whose executor still runs"
            );
        } else if !exited {
            warn!(
                dir = ?self.files.dir,
                task_pid = ?self.state.task_pid,
                "the executor died before the task ended; its process or container is left \
                 for orphan cleanup"
            );
        }
        for path in [
            self.files.socket(),
            self.files.state(),
            self.files.exit(),
            self.files.spec(),
        ] {
            let _ = tokio::fs::remove_file(path).await;
        }
    }
}

impl TaskHandle for ExecutorHandle {
    fn pid(&self) -> Option<u32> {
        self.state.task_pid
    }

    fn state(&self) -> Value {
        serde_json::to_value(HandleState {
            task_dir: self.files.dir.clone(),
            driver: self.kind.name().into(),
            executor: self.state.clone(),
        })
        .unwrap_or_default()
    }

    fn wait(&self) -> BoxFuture<'_, ExitResult> {
        Box::pin(async move { self.result.get_or_init(|| self.wait_exit()).await.clone() })
    }

    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>> {
        Box::pin(self.send_signal(signal))
    }

    fn destroy(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.destroy_files())
    }
}

fn kill_group(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
}

/// The end of the executor's log written since `from`, for error messages.
fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or_default();
        let start = from.max(len.saturating_sub(2048));
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_string(&mut text);
        }
    }
    let text = text.trim();
    if text.is_empty() {
        "no output".into()
    } else {
        text.to_string()
    }
}

/// Whether a cgroup (v1 or v2) filesystem is mounted under /sys/fs/cgroup.
fn cgroups_mounted() -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo.lines().any(|line| {
        let mount_point = line.split(' ').nth(4).unwrap_or_default();
        let fs_type = line
            .split_once(" - ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .unwrap_or_default();
        mount_point.starts_with("/sys/fs/cgroup") && matches!(fs_type, "cgroup" | "cgroup2")
    })
}

#[cfg(test)]
mod tests;
