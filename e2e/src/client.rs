//! A node agent (`caravan agent --client`) as its own process, joined to a [`Sandbox`]
//! server, with its own data dir; it can be killed with SIGKILL and restarted on the same
//! data dir, as an operator's machine would be.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use tempfile::TempDir;

use crate::Sandbox;
use crate::paths;

/// A running client agent. Killed on drop with every task it started.
#[derive(Debug)]
pub struct ClientAgent {
    name: String,
    servers: String,
    dir: TempDir,
    extra_args: Vec<String>,
    child: Option<Child>,
    starts: usize,
}

impl ClientAgent {
    /// Starts a client named `name` that joins `server`.
    pub fn start(server: &Sandbox, name: &str, extra_args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("caravan-e2e-client-{name}-"))
            .tempdir()
            .context("failed to create the client's temp dir")?;
        let mut client = ClientAgent {
            name: name.to_string(),
            servers: server.addr().to_string(),
            dir,
            // A server with TLS has clients with their own certificates.
            extra_args: server
                .certs()
                .map(|c| c.agent_args("client"))
                .unwrap_or_default()
                .into_iter()
                .chain(extra_args.iter().map(|s| s.to_string()))
                .collect(),
            child: None,
            starts: 0,
        };
        client.spawn()?;
        Ok(client)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("client.log")
    }

    /// The pid of the agent process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        writeln!(log, "===== client start #{} =====", self.starts)?;
        let mut cmd = Command::new(paths::caravan_bin());
        cmd.args([
            "agent",
            "--client",
            "--servers",
            &self.servers,
            "--name",
            &self.name,
        ])
        .arg("--data-dir")
        .arg(self.data_dir())
        .args(["--client-http-addr", "127.0.0.1:0"])
        .args(&self.extra_args)
        // The tests run raw_exec tasks, which a client enables only when asked.
        .args(
            (!self.extra_args.iter().any(|a| a == "--drivers"))
                .then_some(["--drivers", "raw_exec,exec,oci,mock"])
                .into_iter()
                .flatten(),
        )
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        self.child = Some(cmd.spawn().context("failed to spawn the client agent")?);
        Ok(())
    }

    /// Kills the agent with SIGKILL: its tasks keep running, as on a real machine.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. `INT`) to the agent and waits for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("the client is not running")?;
        let status = crate::tasks::signal_and_wait(child, signal)?;
        self.child = None;
        Ok(status)
    }

    /// Starts the agent again on the same data dir.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill_9();
        self.spawn()
    }

    /// The agent's log.
    pub fn logs(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The task directory root, `<data>/alloc`.
    pub fn alloc_root(&self) -> PathBuf {
        self.data_dir().join("alloc")
    }
}

impl Drop for ClientAgent {
    fn drop(&mut self) {
        self.kill_9();
        crate::tasks::kill_tasks_under(Path::new(&self.data_dir()));
        if std::thread::panicking() {
            eprintln!("\n----- client {} log -----\n{}", self.name, self.logs());
        }
    }
}
