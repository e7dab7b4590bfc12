//! A single-node `caravan agent --dev` running as a child process on a free loopback port.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::command::{self, DEFAULT_COMMAND_TIMEOUT, Output};
use crate::paths;
use crate::stream::StreamingChild;

/// How many times `start` picks a new port when the server exits before it is ready.
const START_ATTEMPTS: usize = 3;

/// The cluster secret every server a test starts shares (`CARAVAN_CLUSTER_SECRET`), so that
/// sandboxes can join one another.
pub const TEST_CLUSTER_SECRET: &str = "caravan-e2e-cluster-secret";

/// Builds a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    name: String,
    ready_timeout: Duration,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    client: bool,
    ready_path: String,
    /// Run the server as this uid and gid instead of the test's user.
    user: Option<(u32, u32)>,
    /// Run the server in this network namespace, on this address.
    netns: Option<(String, Ipv4Addr)>,
    /// Serve HTTPS with these certificates (mutual TLS); the CLI, kubectl and `http()` follow.
    tls: Option<crate::tls::Certs>,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            name: "sandbox".to_owned(),
            ready_timeout: Duration::from_secs(30),
            extra_args: Vec::new(),
            env: Vec::new(),
            client: false,
            ready_path: "/readyz".to_owned(),
            user: None,
            netns: None,
            tls: None,
        }
    }
}

impl SandboxBuilder {
    /// A label for the temp dir and messages (the test's name).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// How long to wait for `/readyz` (default 30 s).
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// Run `caravan agent --dev`: the server and a node agent (client) in one process, so
    /// jobs really run on this machine. Without it the sandbox is `caravan agent --server`
    /// and nodes are whatever the test registers.
    pub fn client(mut self) -> Self {
        self.client = true;
        self
    }

    /// The path that answers 200 once the server counts as started (default `/readyz`: a
    /// leader is known). Servers of a cluster use `/healthz`: they have no leader until their
    /// peers start too.
    pub fn ready_path(mut self, path: &str) -> Self {
        self.ready_path = path.to_owned();
        self
    }

    /// Run the server as `uid`:`gid` (the sandbox directory is handed to them).
    pub fn user(mut self, uid: u32, gid: u32) -> Self {
        self.user = Some((uid, gid));
        self
    }

    /// Run the server in network namespace `netns` (see [`crate::netns::Lan`]), listening on
    /// `ip`.
    pub fn netns(mut self, netns: &str, ip: Ipv4Addr) -> Self {
        self.netns = Some((netns.to_owned(), ip));
        self
    }

    /// An extra argument for `caravan agent`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.extra_args.push(arg.to_owned());
        self
    }

    /// An environment variable for the server process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the server and waits until it is ready.
    /// Serve HTTPS with `certs` (the server certificate, mutual TLS, server names checked).
    pub fn tls(mut self, certs: &crate::tls::Certs) -> Self {
        self.tls = Some(certs.clone());
        self
    }

    pub fn start(self) -> anyhow::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("caravan-e2e-{}-", self.name))
            .tempdir()
            .context("failed to create the sandbox temp dir")?;
        let data_dir = dir.path().join("data");
        fs::create_dir_all(&data_dir)?;
        fs::create_dir_all(dir.path().join("kube-cache"))?;
        if let Some((uid, gid)) = self.user {
            for path in [dir.path(), data_dir.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .with_context(|| format!("failed to hand {} to {uid}", path.display()))?;
            }
        }
        let mut sandbox = Sandbox {
            bin: paths::caravan_bin(),
            port: 0,
            dir,
            data_dir,
            child: None,
            process_groups: Vec::new(),
            builder: self,
            starts: 0,
        };
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            sandbox.port = free_port()?;
            sandbox.write_kubeconfig()?;
            match sandbox.spawn_and_wait_ready() {
                Ok(()) => return Ok(sandbox),
                // Another process took the port between the probe and the server's bind.
                Err(e) if sandbox.child.is_none() && sandbox.last_start_lost_port() => {
                    last_err = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }
}

/// A running `caravan agent --dev` with its own port, data dir, logs and kubeconfig.
///
/// Killed on drop; if the thread is panicking, its logs are printed first.
#[derive(Debug)]
pub struct Sandbox {
    bin: PathBuf,
    port: u16,
    dir: TempDir,
    data_dir: PathBuf,
    child: Option<Child>,
    /// Process groups of every server started, killed on drop with whatever they spawned.
    process_groups: Vec<u32>,
    builder: SandboxBuilder,
    starts: usize,
}

impl Sandbox {
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox named `name` with default settings, panicking on failure.
    #[track_caller]
    pub fn start(name: &str) -> Sandbox {
        match Sandbox::builder().name(name).start() {
            Ok(sandbox) => sandbox,
            Err(e) => panic!("failed to start the caravan sandbox: {e:#}"),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        let ip = self
            .builder
            .netns
            .as_ref()
            .map_or(Ipv4Addr::LOCALHOST, |(_, ip)| *ip);
        SocketAddr::from((ip, self.port))
    }

    /// `http://127.0.0.1:PORT` (the namespace's address with [`SandboxBuilder::netns`];
    /// `https://` with [`SandboxBuilder::tls`]).
    pub fn base_url(&self) -> String {
        let scheme = if self.builder.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr())
    }

    /// The certificates this sandbox serves with, if any.
    pub fn certs(&self) -> Option<&crate::tls::Certs> {
        self.builder.tls.as_ref()
    }

    /// A reqwest client for this sandbox: plain, or presenting the CLI certificate over TLS.
    pub fn http(&self) -> reqwest::Client {
        match &self.builder.tls {
            Some(certs) => certs.reqwest(Some("cli")),
            None => crate::http::client(),
        }
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The sandbox's own temp dir (logs, kubeconfig, scratch files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir().join("kubeconfig.yaml")
    }

    fn stdout_log(&self) -> PathBuf {
        self.dir().join("caravan.stdout.log")
    }

    fn stderr_log(&self) -> PathBuf {
        self.dir().join("caravan.stderr.log")
    }

    fn write_kubeconfig(&self) -> anyhow::Result<()> {
        self.write_kubeconfig_with_token(None)
    }

    /// Writes the kubeconfig again, its user carrying `token` (kubectl sends a token only
    /// over TLS).
    pub fn write_kubeconfig_with_token(&self, token: Option<&str>) -> anyhow::Result<()> {
        let (cluster_tls, user) = match &self.builder.tls {
            Some(certs) => {
                let (cert, key) = certs.pair("cli");
                (
                    format!(
                        "    certificate-authority: {}\n    tls-server-name: server.global.caravan\n",
                        certs.ca().display()
                    ),
                    format!(
                        "    client-certificate: {}\n    client-key: {}\n",
                        cert.display(),
                        key.display()
                    ),
                )
            }
            None => (String::new(), String::new()),
        };
        let token = token
            .map(|t| format!("    token: {t}\n"))
            .unwrap_or_default();
        let user = if user.is_empty() && token.is_empty() {
            "  user: {}\n".to_string()
        } else {
            format!("  user:\n{user}{token}")
        };
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: caravan\n  cluster:\n    server: {}\n\
             {cluster_tls}contexts:\n- name: caravan\n  context:\n    cluster: caravan\n    user: caravan\n    \
             namespace: default\ncurrent-context: caravan\nusers:\n- name: caravan\n{user}",
            self.base_url()
        );
        fs::write(self.kubeconfig_path(), config).context("failed to write the kubeconfig")
    }

    fn open_log(&self, path: &Path) -> anyhow::Result<File> {
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        writeln!(
            f,
            "===== caravan start #{} on port {} =====",
            self.starts, self.port
        )?;
        Ok(f)
    }

    /// Spawns the server; on failure `self.child` is `None` if it exited, `Some` if it hung.
    fn spawn_and_wait_ready(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let mut cmd = match &self.builder.netns {
            Some((netns, _)) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", netns]).arg(&self.bin);
                cmd
            }
            None => Command::new(&self.bin),
        };
        cmd.arg("agent")
            .arg(if self.builder.client {
                "--dev"
            } else {
                "--server"
            })
            .arg("--http-addr")
            .arg(self.addr().to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(
                self.builder
                    .tls
                    .as_ref()
                    .map(|c| c.agent_args("server"))
                    .unwrap_or_default(),
            )
            .args(&self.builder.extra_args)
            .env("RUST_BACKTRACE", "1")
            // Its own process group, so that drop also ends the processes it started (tasks).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(self.open_log(&self.stdout_log())?)
            .stderr(self.open_log(&self.stderr_log())?);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.env("CARAVAN_CLUSTER_SECRET", TEST_CLUSTER_SECRET);
        for (k, v) in &self.builder.env {
            cmd.env(k, v);
        }
        if let Some((uid, gid)) = self.builder.user {
            cmd.uid(uid).gid(gid);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to spawn {}", command::describe(&cmd)))?;
        self.process_groups.push(child.id());
        self.child = Some(child);
        self.wait_ready(self.builder.ready_timeout)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(10);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "caravan exited with {status} before becoming ready on port {}\n{}",
                    self.port,
                    self.logs()
                );
            }
            let status = match &self.builder.tls {
                Some(certs) => {
                    crate::tls::https_status(certs, self.addr(), &self.builder.ready_path)
                }
                None => http_status(self.addr(), &self.builder.ready_path),
            };
            if status == Some(200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "caravan on port {} was not ready within {timeout:?}\n{}",
                    self.port,
                    self.logs()
                );
            }
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_millis(100));
        }
    }

    /// Whether the last start failed because its port was taken.
    fn last_start_lost_port(&self) -> bool {
        let stderr = fs::read_to_string(self.stderr_log()).unwrap_or_default();
        let last = stderr
            .rsplit("===== caravan start #")
            .next()
            .unwrap_or_default();
        last.contains("in use") || last.contains("AddrInUse")
    }

    /// The server's stdout and stderr (the last 400 lines of each).
    pub fn logs(&self) -> String {
        let tail = |path: PathBuf| {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(400)..].join("\n")
        };
        format!(
            "----- caravan stdout ({}) -----\n{}\n----- caravan stderr -----\n{}\n-----",
            self.dir().display(),
            tail(self.stdout_log()),
            tail(self.stderr_log())
        )
    }

    /// The pid of the server process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` (e.g. `INT`) to the server and waits for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> anyhow::Result<std::process::ExitStatus> {
        let child = self.child.as_mut().context("the server is not running")?;
        let status = crate::tasks::signal_and_wait(child, signal)?;
        self.child = None;
        Ok(status)
    }

    /// Kills the server with SIGKILL and reaps it: no shutdown code runs.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL on Unix
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same data dir; waits until ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill_9();
        self.spawn_and_wait_ready()
    }

    /// A `caravan` CLI command pointed at this server (`--address` set), not yet run.
    pub fn caravan_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--address").arg(self.base_url());
        if let Some(certs) = &self.builder.tls {
            cmd.args(certs.cli_args());
        }
        cmd.args(args);
        cmd
    }

    /// Runs the `caravan` CLI against this server.
    #[track_caller]
    pub fn caravan(&self, args: &[&str]) -> Output {
        match command::run(self.caravan_command(args), DEFAULT_COMMAND_TIMEOUT) {
            Ok(out) => out,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// A real `kubectl` command with this sandbox's kubeconfig and its own discovery cache.
    ///
    /// Panics when kubectl is missing (run `scripts/install-test-deps.sh`).
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(paths::kubectl_bin());
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .arg("--cache-dir")
            .arg(self.dir().join("kube-cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir());
        cmd
    }

    /// Runs the real `kubectl` against this server.
    #[track_caller]
    pub fn kubectl(&self, args: &[&str]) -> Output {
        match command::run(self.kubectl_command(args), DEFAULT_COMMAND_TIMEOUT) {
            Ok(out) => out,
            Err(e) => panic!("{e:#}"),
        }
    }

    /// Starts a long-running `kubectl` (a watch) whose output is read as it arrives.
    #[track_caller]
    pub fn spawn_kubectl(&self, args: &[&str]) -> StreamingChild {
        StreamingChild::spawn(self.kubectl_command(args)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts a long-running `caravan` command (a watch) whose output is read as it arrives.
    #[track_caller]
    pub fn spawn_caravan(&self, args: &[&str]) -> StreamingChild {
        StreamingChild::spawn(self.caravan_command(args)).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Writes `contents` to a file in the sandbox dir and returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir().join(name);
        fs::write(&path, contents).expect("failed to write a sandbox file");
        path
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_9();
        crate::tasks::kill_tasks_under(&self.data_dir);
        for pgid in self.process_groups.drain(..) {
            // Best effort: the group is usually empty by now.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        }
        if std::thread::panicking() {
            eprintln!("\n{}", self.logs());
        }
    }
}

/// Asks the OS for a free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("failed to bind port 0")?;
    Ok(listener.local_addr()?.port())
}

/// `GET path` over a fresh connection; the status code, or `None` if the server did not answer.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(2);
    let stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    get_status(stream, addr, path)
}

/// Sends `GET path` on `stream` and reads the status code of the answer.
pub(crate) fn get_status(
    mut stream: impl Read + Write,
    addr: SocketAddr,
    path: &str,
) -> Option<u16> {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(&head[..len])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}
