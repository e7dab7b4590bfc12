//! The executor's Unix socket: line-delimited JSON [`Request`]s answered with [`Response`]s,
//! one thread per connection.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use nix::unistd::Pid;

use super::protocol::{Request, Response};
use super::task::{self, Target};
use crate::driver::ExitResult;

/// Stack size of the executor's threads: they only copy bytes and answer short requests.
pub const THREAD_STACK: usize = 128 * 1024;

/// The task as the connections see it.
#[derive(Debug)]
pub struct Shared {
    pid: Pid,
    target: Target,
    state: Mutex<TaskState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TaskState {
    /// The main process exited: signals are no longer sent (its pid may be reaped).
    exited: bool,
    result: Option<ExitResult>,
    /// Connections waiting for `result` that have not answered yet.
    waiting: usize,
}

impl Shared {
    pub fn new(pid: Pid, target: Target) -> Arc<Shared> {
        Arc::new(Shared {
            pid,
            target,
            state: Mutex::new(TaskState::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, TaskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The main process exited; from now on signals are not sent.
    pub fn mark_exited(&self) {
        self.lock().exited = true;
    }

    /// Publishes the result and waits (at most `grace`) until every waiting connection has
    /// been answered.
    pub fn publish(&self, result: ExitResult, grace: Duration) {
        let mut state = self.lock();
        state.exited = true;
        state.result = Some(result);
        self.changed.notify_all();
        let _ = self
            .changed
            .wait_timeout_while(state, grace, |s| s.waiting > 0);
    }

    /// `None` once the task exited: the answer is then its exit result.
    fn signal(&self, signal: i32) -> Option<Response> {
        let state = self.lock();
        if state.exited {
            return None;
        }
        // Sent under the lock: the pid cannot be reaped meanwhile.
        Some(match task::signal(self.pid, &self.target, signal) {
            Ok(()) => Response::Signaled(signal),
            Err(e) => Response::Error(e),
        })
    }

    fn wait(&self) -> ExitResult {
        let mut state = self.lock();
        state.waiting += 1;
        self.changed
            .wait_while(state, |s| s.result.is_none())
            .unwrap_or_else(|e| e.into_inner())
            .result
            .clone()
            .unwrap_or_default()
    }

    /// The answer to a `wait` was written (or the connection failed).
    fn answered(&self) {
        let mut state = self.lock();
        state.waiting = state.waiting.saturating_sub(1);
        self.changed.notify_all();
    }
}

/// Accepts connections until the process exits.
pub fn serve(listener: UnixListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .stack_size(THREAD_STACK)
            .spawn(move || handle(stream, &shared));
        if let Err(e) = spawned {
            super::log(&format!("cannot serve a connection: {e}"));
        }
    }
}

fn handle(stream: UnixStream, shared: &Shared) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let (response, waited) = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Signal(n)) => match shared.signal(n) {
                Some(response) => (response, false),
                None => (Response::Exited(shared.wait()), true),
            },
            Ok(Request::Wait(_)) => (Response::Exited(shared.wait()), true),
            Err(e) => (Response::Error(format!("bad request {line:?}: {e}")), false),
        };
        let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
        bytes.push(b'\n');
        let written = writer.write_all(&bytes).and_then(|()| writer.flush());
        if waited {
            shared.answered();
        }
        if written.is_err() {
            return;
        }
    }
}
