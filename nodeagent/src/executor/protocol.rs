//! What the agent and an executor exchange: the files in the task directory and the messages
//! on the executor's Unix socket.
//!
//! ```text
//! DIR/executor.json        agent → executor   what to run (ExecutorSpec)
//! DIR/executor.log         executor's own stdout/stderr
//! DIR/executor.state.json  executor → agent   once the task runs, or why it did not start
//! DIR/executor.sock        line-delimited JSON: Request ⇄ Response
//! DIR/exit.json            executor → agent   how the task ended (ExitResult), before the
//!                                             socket closes
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::driver::ExitResult;

pub const SPEC_FILE: &str = "executor.json";
pub const STATE_FILE: &str = "executor.state.json";
pub const SOCKET_FILE: &str = "executor.sock";
pub const EXIT_FILE: &str = "exit.json";
pub const LOG_FILE: &str = "executor.log";

/// The directory of a task's executor files (`executor.json`, its state, socket, log, exit
/// status and the container bundle): `<alloc_dir>/executor/<task>`, outside the task
/// directory, so that an `exec` task (rooted in its task directory) cannot see or change them.
pub fn executor_dir(alloc_dir: &Path, task: &str) -> PathBuf {
    alloc_dir.join("executor").join(task)
}

/// Unix socket paths are limited to 107 bytes. A longer `socket` is reached through the
/// directory's file descriptor instead (`/proc/self/fd/<fd>/<name>`); keep the returned
/// directory handle open until the bind or connect is done.
pub fn reachable_socket_path(socket: &Path) -> std::io::Result<(Option<std::fs::File>, PathBuf)> {
    use std::os::fd::AsRawFd;
    if socket.as_os_str().len() < 100 {
        return Ok((None, socket.to_path_buf()));
    }
    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Ok((None, socket.to_path_buf()));
    };
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd())).join(name);
    Ok((Some(handle), short))
}

/// The executor's files of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFiles {
    pub dir: PathBuf,
}

impl TaskFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn spec(&self) -> PathBuf {
        self.dir.join(SPEC_FILE)
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET_FILE)
    }
    pub fn exit(&self) -> PathBuf {
        self.dir.join(EXIT_FILE)
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// `exit.json`, when the executor wrote it.
    pub fn read_exit(&self) -> Option<ExitResult> {
        read_json(&self.exit())
    }

    /// `executor.state.json`, when the executor wrote it.
    pub fn read_state(&self) -> Option<ExecutorState> {
        read_json(&self.state())
    }
}

/// `executor.state.json`: written once, when the task runs or failed to start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorState {
    pub executor_pid: u32,
    /// The executor's start time in clock ticks since boot (`/proc/<pid>/stat`), which tells
    /// it apart from a later process that reuses its pid.
    pub executor_start_ticks: u64,
    /// The task's process (raw_exec, also its process group) or the container's init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_start_ticks: Option<u64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Why the task did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A line sent to the executor's socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// `{"signal": 2}`: send a signal to the task.
    Signal(i32),
    /// `{"wait": true}`: answer with the exit result once the task exited.
    Wait(bool),
}

/// A line the executor answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    /// `{"signaled": 2}`: the signal was delivered.
    Signaled(i32),
    /// `{"exited": {...}}`: the task ended (the answer to `wait`, and to `signal` after the
    /// exit).
    Exited(ExitResult),
    /// `{"error": "..."}`.
    Error(String),
}

/// Parses a JSON file; `None` when it is missing or not (yet) valid.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so readers see the
/// old file or the whole new one; the file is readable by its owner only (0600: `executor.json`
/// holds the task's environment). Not synced to disk: these files hand a task over between
/// the agent and its executor, which matters only while the machine is up; a reboot ends
/// every executor and task, and the agent then reports the tasks it cannot re-attach to as
/// lost (as Nomad's client does).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path without a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?
    };
    file.write_all(&bytes)?;
    file.write_all(b"\n")?;
    drop(file);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_in_deep_directories_still_bind_and_connect() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a".repeat(60)).join("b".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let socket = deep.join(SOCKET_FILE);
        assert!(socket.as_os_str().len() > 108);
        let (_dir, path) = reachable_socket_path(&socket).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(socket.exists(), "the socket is where it belongs");
        let (_dir2, path2) = reachable_socket_path(&socket).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(&path2).unwrap();
        listener.accept().unwrap();
    }

    #[test]
    fn requests_and_responses_are_single_key_objects() {
        assert_eq!(
            serde_json::to_string(&Request::Signal(2)).unwrap(),
            r#"{"signal":2}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"wait":true}"#).unwrap(),
            Request::Wait(true)
        );
        let exited = Response::Exited(ExitResult {
            exit_code: 3,
            ..Default::default()
        });
        let line = serde_json::to_string(&exited).unwrap();
        assert!(line.starts_with(r#"{"exited":{"exitCode":3"#), "{line}");
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), exited);
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exit.json");
        let result = ExitResult {
            exit_code: 1,
            signal: Some(9),
            ..Default::default()
        };
        write_json_atomic(&path, &result).unwrap();
        assert_eq!(read_json::<ExitResult>(&path), Some(result));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("exit.json")]);
    }
}
