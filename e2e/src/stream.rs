//! A long-running client process (a watch) whose output is read while it runs.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use anyhow::Context;

use crate::command::describe;
use crate::wait::wait_until;

type Buffer = Arc<Mutex<Vec<u8>>>;

fn pump(mut pipe: impl Read + Send + 'static, buf: Buffer) {
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    });
}

/// A child process whose stdout and stderr accumulate in memory as it runs. Killed on drop.
#[derive(Debug)]
pub struct StreamingChild {
    command: String,
    child: Child,
    stdout: Buffer,
    stderr: Buffer,
}

impl StreamingChild {
    /// Spawns `cmd` with stdin closed and both outputs captured.
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Self> {
        let command = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("failed to spawn `{command}`"))?;
        let stdout = Buffer::default();
        let stderr = Buffer::default();
        pump(child.stdout.take().expect("piped stdout"), stdout.clone());
        pump(child.stderr.take().expect("piped stderr"), stderr.clone());
        Ok(StreamingChild {
            command,
            child,
            stdout,
            stderr,
        })
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until `pred(stdout)` holds; the error carries both outputs.
    pub fn wait_for_stdout(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pred: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<()> {
        let stdout = self.stdout.clone();
        wait_until(timeout, what, || {
            pred(&String::from_utf8_lossy(&stdout.lock().unwrap()))
        })
        .with_context(|| format!("`{}`\n{}", self.command, self.report()))
    }

    /// Waits until the process exits and returns its status; the error carries both outputs.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "`{}` did not exit within {timeout:?}\n{}",
                    self.command,
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Both outputs, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
            self.stdout(),
            self.stderr()
        )
    }

    /// Kills the process and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for StreamingChild {
    fn drop(&mut self) {
        self.kill();
    }
}
