//! The per-task executor process, `caravan executor --task-dir DIR`, as Nomad's executor: it
//! starts the task (a process group or a container), copies its output into rotated log files,
//! answers signal and wait requests on a Unix socket and records the task's exit. It outlives
//! the agent, so a restarted agent re-attaches to running tasks.
//!
//! ```text
//! agent (driver::executor)                     executor (this module: std threads, no runtime)
//!   write DIR/executor.json ─────────────────▶ read spec, bind DIR/executor.sock
//!   spawn `caravan executor` (own pgrp)        task::start (still single-threaded: clone3)
//!   read DIR/executor.state.json ◀──────────── write state (pids, start time) or the error,
//!     when stdout (a pipe) says so               then a line on stdout
//!                                              threads: stdout/stderr → RotatingWriter,
//!   {"signal": 2} / {"wait": true} ──────────▶ socket server
//!                                              waitid → kill leftovers → reap → OOM, delete
//!   read DIR/exit.json ◀───────────────────── write exit.json, answer waiters, exit
//! ```
//!
//! The agent-side half (driver, socket client) lives in [`crate::driver::executor`] and
//! [`client`].

pub mod capabilities;
pub mod client;
pub mod config;
pub mod logs;
pub mod procfs;
pub mod protocol;
mod server;
pub mod spec;
pub(crate) mod task;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

pub use config::{DriverKind, TaskConfig};
pub use logs::RotatingWriter;
pub use protocol::{ExecutorState, Request, Response, TaskFiles};
pub use spec::ExecutorSpec;

/// How long the output of exited tasks may still be copied (processes that left the process
/// group can hold the pipes open).
const LOG_DRAIN: Duration = Duration::from_secs(5);
/// How long waiting connections get to receive the exit result before the executor exits.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// `caravan executor`: runs one task; started by the agent, not by people.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecutorArgs {
    /// The task directory: holds executor.json and receives the executor's files.
    #[arg(long)]
    pub task_dir: PathBuf,
}

/// Runs the task described by `DIR/executor.json` until it exits; returns the executor's exit
/// code (0 once the exit is recorded, 1 when the task could not start).
pub fn run(args: ExecutorArgs) -> i32 {
    let files = TaskFiles::new(args.task_dir);
    match execute(&files) {
        Ok(()) => 0,
        Err(error) => {
            log(&error);
            let state = ExecutorState {
                executor_pid: std::process::id(),
                executor_start_ticks: procfs::start_ticks(std::process::id()).unwrap_or_default(),
                error: Some(error),
                ..Default::default()
            };
            if let Err(e) = protocol::write_json_atomic(&files.state(), &state) {
                log(&format!("cannot write {:?}: {e}", files.state()));
            }
            let _ = std::fs::remove_file(files.socket());
            report_state_written();
            1
        }
    }
}

/// Starts the task; once it runs, never fails: the end is recorded in `exit.json`.
fn execute(files: &TaskFiles) -> Result<(), String> {
    let text = std::fs::read(files.spec()).map_err(|e| format!("read {:?}: {e}", files.spec()))?;
    let spec: ExecutorSpec =
        serde_json::from_slice(&text).map_err(|e| format!("parse {:?}: {e}", files.spec()))?;
    let task = &spec.task;
    let limit = u64::from(task.logs.max_file_size_mb) * 1024 * 1024;
    let open_log = |stream: &str| {
        let prefix = format!("{}.{stream}", task.task_name);
        RotatingWriter::open(&task.log_dir, &prefix, task.logs.max_files, limit)
            .map_err(|e| format!("open log files {:?}/{prefix}.*: {e}", task.log_dir))
    };
    let stdout_log = open_log("stdout")?;
    let stderr_log = open_log("stderr")?;

    let socket = files.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = protocol::reachable_socket_path(&socket)
        .and_then(|(_dir, path)| UnixListener::bind(path))
        .map_err(|e| format!("bind {socket:?}: {e}"))?;
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));

    restore_default_sigpipe_for_children()?;
    // A server agent turns transparent huge pages off for itself, and the flag is inherited:
    // the task gets the machine's default.
    let _ = nix::sys::prctl::set_thp_disable(false);
    // No thread may exist before this call: libcontainer forks with clone3.
    let started = task::start(&spec.launch)?;
    let pid = started.pid;
    // Before the agent hears of the task: from then on it may be signalled with the agent.
    shield_from_signals();
    let me = std::process::id();
    let state = ExecutorState {
        executor_pid: me,
        executor_start_ticks: procfs::start_ticks(me).unwrap_or_default(),
        task_pid: Some(pid.as_raw() as u32),
        task_start_ticks: procfs::start_ticks(pid.as_raw() as u32),
        started_at: Some(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
        error: None,
    };
    if let Err(e) = protocol::write_json_atomic(&files.state(), &state) {
        // The agent cannot find the task without the state: do not leave it unsupervised.
        let _ = task::signal(pid, &started.target, nix::libc::SIGKILL);
        task::wait_exit(pid);
        let _ = task::kill_group(pid, &started.target);
        let mut result = task::reap(pid);
        let _ = task::delete_container(&started.target, task::Cleanup::default(), &mut result);
        return Err(format!("write {:?}: {e}", files.state()));
    }
    report_state_written();
    log(&format!("task {} started, pid {pid}", task.task_name));

    let cleanup = task::prepare_cleanup(&started.target, server::THREAD_STACK);
    let shared = server::Shared::new(pid, started.target.clone());
    let server_shared = shared.clone();
    spawn("server", move || server::serve(listener, server_shared));
    let (drained, drains) = mpsc::channel();
    let copies = [
        ("stdout", stdout_log, started.stdout),
        ("stderr", stderr_log, started.stderr),
    ];
    for (name, mut writer, reader) in copies {
        let drained = drained.clone();
        spawn(name, move || {
            let mut failures = 0u64;
            let copied = writer.copy_from(reader, |e| {
                // The first failure, then every 1000th: a full disk fails every write.
                if failures.is_multiple_of(1000) {
                    log(&format!("dropping {name} output: {e}"));
                }
                failures += 1;
            });
            if let Err(e) = copied {
                log(&format!("reading {name}: {e}"));
            }
            let _ = drained.send(());
        });
    }
    drop(drained);

    task::wait_exit(pid);
    shared.mark_exited();
    if let Some(e) = task::kill_group(pid, &started.target) {
        log(&e);
    }
    let mut result = task::reap(pid);
    task::reap_strays();
    let deadline = Instant::now() + LOG_DRAIN;
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match drains.recv_timeout(left) {
            Ok(()) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                log("the task's output is still open; not waiting for it any longer");
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if let Some(e) = task::delete_container(&started.target, cleanup, &mut result) {
        log(&e);
    }
    log(&format!("task {} exited: {result:?}", task.task_name));
    if let Err(e) = protocol::write_json_atomic(&files.exit(), &result) {
        log(&format!("cannot write {:?}: {e}", files.exit()));
    }
    shared.publish(result, ANSWER_GRACE);
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Tells the agent that `executor.state.json` is written, so that it need not poll for it: a
/// line on stdout, a pipe the agent reads while it waits. Then stdout becomes the executor's
/// log, as stderr is, which closes the pipe.
fn report_state_written() {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(b"state written\n")
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = nix::unistd::dup2(2, 1) {
        log(&format!("cannot point stdout at the log: {e}"));
    }
}

/// Rust programs start with SIGPIPE ignored, and an ignored signal stays ignored across
/// `execve`: the processes of a container (forked by libcontainer, which does not reset it)
/// would not die on a broken pipe. A *handled* signal is reset to its default by `execve`, and
/// the one way to install a handler without `unsafe` is tokio's signal driver: a
/// current-thread runtime (it starts no thread) registers one and is dropped at once; the
/// handler stays and only notes the signal. The executor itself still gets `EPIPE`.
fn restore_default_sigpipe_for_children() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot set up signal handling: {e}"))?;
    runtime
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::pipe()).map(drop)
        })
        .map_err(|e| format!("cannot handle SIGPIPE: {e}"))
}

/// Keeps SIGINT, SIGTERM and SIGHUP (a terminal's Ctrl-C or hangup, a `kill` of the agent's
/// group) from ending the executor: blocked in this thread, inherited by the threads started
/// after it, and consumed by one of them. Called after the task started, so the task keeps
/// the default signal mask.
fn shield_from_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    if let Err(e) = set.thread_block() {
        log(&format!("cannot block signals: {e}"));
        return;
    }
    spawn("signals", move || {
        loop {
            match set.wait() {
                Ok(signal) => log(&format!(
                    "ignoring {signal}; signal the task through the agent"
                )),
                Err(e) => {
                    log(&format!("sigwait: {e}"));
                    return;
                }
            }
        }
    });
}

/// Starts a small thread; a failure is logged (the task runs on, less supervised).
fn spawn(name: &str, f: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .stack_size(server::THREAD_STACK)
        .spawn(f);
    if let Err(e) = spawned {
        log(&format!("cannot start the {name} thread: {e}"));
    }
}

/// A line in `executor.log` (the executor's stderr).
fn log(message: &str) {
    eprintln!(
        "{} caravan executor[{}]: {message}",
        humantime::format_rfc3339_millis(SystemTime::now()),
        std::process::id()
    );
}
