//! The executor drivers with the real `caravan executor` binary: raw_exec tasks on a temporary
//! directory, their logs, signals, start errors and re-attaching after an agent restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use caravan_nodeagent::driver::executor::{ExecutorDriver, ExecutorSettings};
use caravan_nodeagent::driver::{
    Driver, DriverError, ExitResult, LogLimits, TaskHandle, TaskResources, TaskSpec, parse_signal,
};
use caravan_nodeagent::executor::DriverKind;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

fn driver(kind: DriverKind, root: &Path) -> ExecutorDriver {
    ExecutorDriver::new(
        kind,
        vec![env!("CARGO_BIN_EXE_caravan").into(), "executor".into()],
        ExecutorSettings::new(root.join("containers"), root.join("images")),
    )
}

fn spec(root: &Path, task: &str, config: Value) -> TaskSpec {
    let alloc_dir = root.join("alloc").join("a1");
    TaskSpec {
        alloc_id: "a1".into(),
        alloc_name: "job.g[0]".into(),
        namespace: "default".into(),
        job_name: "job".into(),
        group_name: "g".into(),
        task_name: task.into(),
        driver: "raw_exec".into(),
        config: config.as_object().cloned().unwrap_or_default(),
        env: BTreeMap::from([
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("CARAVAN_TASK_NAME".into(), task.into()),
        ]),
        user: None,
        task_dir: alloc_dir.join(task),
        log_dir: alloc_dir.join("alloc").join("logs"),
        alloc_dir,
        resources: TaskResources::default(),
        logs: LogLimits::default(),
        kill_signal: "SIGINT".into(),
        kill_timeout: Duration::from_secs(5),
        netns: None,
    }
}

fn sh(script: &str) -> Value {
    json!({"command": "sh", "args": ["-c", script]})
}

async fn wait(handle: &dyn TaskHandle) -> ExitResult {
    tokio::time::timeout(TIMEOUT, handle.wait())
        .await
        .expect("the task did not exit in time")
}

fn signal(name: &str) -> i32 {
    parse_signal(name).unwrap()
}

/// Polls `condition` until it holds, failing after [`TIMEOUT`].
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process exists and is not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].to_string();
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// The process group of `pid`.
fn pgid(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[tokio::test]
async fn executor_raw_exec_reports_the_exit_code_and_writes_logs() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let spec = spec(root.path(), "t", sh("echo out; echo err >&2; exit 3"));
    let handle = driver.start(spec.clone()).await.unwrap();
    assert!(handle.pid().is_some());
    let state = handle.state();
    assert_eq!(state["taskPid"], json!(handle.pid().unwrap()));
    assert_eq!(
        state["taskDir"],
        json!(caravan_nodeagent::executor::protocol::executor_dir(
            &spec.alloc_dir,
            &spec.task_name
        ))
    );

    let result = wait(handle.as_ref()).await;
    assert_eq!(result.exit_code, 3, "{result:?}");
    assert_eq!(result.signal, None);
    assert_eq!(result.error, None);
    // A second wait returns the same result at once.
    assert_eq!(wait(handle.as_ref()).await, result);
    assert_eq!(read(spec.log_dir.join("t.stdout.0")), "out\n");
    assert_eq!(read(spec.log_dir.join("t.stderr.0")), "err\n");
    for dir in ["local", "secrets", "tmp"] {
        assert!(spec.task_dir.join(dir).is_dir(), "{dir}");
    }

    handle.destroy().await;
    assert!(
        !caravan_nodeagent::executor::protocol::executor_dir(&spec.alloc_dir, &spec.task_name)
            .join("executor.sock")
            .exists()
    );
    assert!(
        !caravan_nodeagent::executor::protocol::executor_dir(&spec.alloc_dir, &spec.task_name)
            .join("executor.state.json")
            .exists()
    );
    assert!(spec.log_dir.join("t.stdout.0").exists(), "logs stay");
}

#[tokio::test]
async fn executor_raw_exec_task_stops_on_a_signal() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let handle = driver
        .start(spec(
            root.path(),
            "sleeper",
            json!({"command": "sleep", "args": ["30"]}),
        ))
        .await
        .unwrap();
    let pid = handle.pid().unwrap();
    assert!(running(pid));
    handle.signal(signal("SIGINT")).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.signal, Some(signal("SIGINT")), "{result:?}");
    assert!(!result.successful());
    // Signalling an exited task is not an error.
    handle.signal(signal("SIGKILL")).await.unwrap();
    handle.destroy().await;
}

#[tokio::test]
async fn executor_raw_exec_passes_env_and_runs_in_the_task_dir() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let mut spec = spec(
        root.path(),
        "envy",
        json!({
            "command": "/bin/sh",
            "args": ["-c", "echo \"$GREETING $CARAVAN_TASK_NAME $EXTRA\"; pwd"],
            "env": {"EXTRA": "from-config"}
        }),
    );
    spec.env.insert("GREETING".into(), "hello".into());
    let handle = driver.start(spec.clone()).await.unwrap();
    assert!(wait(handle.as_ref()).await.successful());
    let task_dir = spec.task_dir.canonicalize().unwrap();
    assert_eq!(
        read(spec.log_dir.join("envy.stdout.0")),
        format!("hello envy from-config\n{}\n", task_dir.display())
    );
}

#[tokio::test]
async fn executor_driver_refuses_invalid_configs() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    for config in [
        json!({"args": ["x"]}),
        json!({"command": "sleep", "args": [30]}),
        json!({"command": "no-such-program-for-caravan"}),
        json!({"command": "./missing-artifact"}),
        json!({"command": "sleep", "image": "busybox"}),
    ] {
        let spec = spec(root.path(), "bad", config.clone());
        match driver.start(spec.clone()).await {
            Err(DriverError::InvalidConfig(_)) => {}
            Err(other) => panic!("{config}: {other:?}"),
            Ok(_) => panic!("{config}: started"),
        }
        assert!(
            !caravan_nodeagent::executor::protocol::executor_dir(&spec.alloc_dir, &spec.task_name)
                .join("executor.json")
                .exists()
        );
    }
}

#[tokio::test]
async fn executor_driver_reports_start_errors() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let spec = spec(
        root.path(),
        "nowhere",
        json!({"command": "true", "workDir": "does/not/exist"}),
    );
    match driver.start(spec).await {
        Err(DriverError::Start(message)) => {
            assert!(message.contains("failed to start"), "{message}")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("started"),
    }
}

#[tokio::test]
async fn executor_driver_reports_an_executor_that_dies_or_hangs() {
    let root = tempfile::tempdir().unwrap();
    let task = spec(root.path(), "t", json!({"command": "true"}));
    let dying = ExecutorDriver::new(
        DriverKind::RawExec,
        vec!["sh".into(), "-c".into(), "echo broken >&2; exit 1".into()],
        ExecutorSettings::new(root.path().join("c"), root.path().join("i")),
    );
    match dying.start(task.clone()).await {
        Err(DriverError::Start(message)) => assert!(
            message.contains("exited") && message.contains("broken"),
            "{message}"
        ),
        other => panic!("{:?}", other.map(|h| h.state())),
    }

    let mut settings = ExecutorSettings::new(root.path().join("c"), root.path().join("i"));
    settings.start_timeout = Duration::from_millis(300);
    let hanging = ExecutorDriver::new(
        DriverKind::RawExec,
        vec!["sh".into(), "-c".into(), "sleep 30".into()],
        settings,
    );
    match hanging.start(task).await {
        Err(DriverError::Start(message)) => {
            assert!(message.contains("did not start"), "{message}")
        }
        other => panic!("{:?}", other.map(|h| h.state())),
    }
}

#[tokio::test]
async fn executor_driver_recovers_a_running_task() {
    let root = tempfile::tempdir().unwrap();
    let spec = spec(
        root.path(),
        "long",
        json!({"command": "sleep", "args": ["30"]}),
    );
    let (state, pid) = {
        let driver = driver(DriverKind::RawExec, root.path());
        let handle = driver.start(spec.clone()).await.unwrap();
        (handle.state(), handle.pid().unwrap())
    };
    // The executor and the task live in their own process groups, away from the "agent".
    let executor_pid = state["executorPid"].as_u64().unwrap() as u32;
    let me = pgid(std::process::id());
    assert_eq!(pgid(executor_pid), executor_pid);
    assert_ne!(pgid(executor_pid), me);
    assert_eq!(pgid(pid), pid);

    let driver = driver(DriverKind::RawExec, root.path());
    let handle = driver.recover(spec, state).await.unwrap();
    assert_eq!(handle.pid(), Some(pid));
    assert!(running(pid));
    handle.signal(signal("SIGTERM")).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.signal, Some(signal("SIGTERM")), "{result:?}");
    eventually("the executor to exit", || !running(executor_pid)).await;
}

#[tokio::test]
async fn executor_driver_recovers_a_task_that_exited_meanwhile() {
    let root = tempfile::tempdir().unwrap();
    let spec = spec(
        root.path(),
        "quick",
        sh("while [ ! -e go ]; do sleep 0.02; done; echo bye; exit 7"),
    );
    let state = {
        let driver = driver(DriverKind::RawExec, root.path());
        let handle = driver.start(spec.clone()).await.unwrap();
        handle.state()
    };
    // While "the agent is away", the task ends.
    std::fs::write(spec.task_dir.join("go"), "").unwrap();
    let exit_file =
        caravan_nodeagent::executor::protocol::executor_dir(&spec.alloc_dir, &spec.task_name)
            .join("exit.json");
    eventually("exit.json", || exit_file.exists()).await;
    let executor_pid = state["executorPid"].as_u64().unwrap() as u32;
    eventually("the executor to exit", || !running(executor_pid)).await;

    let driver = driver(DriverKind::RawExec, root.path());
    let handle = driver.recover(spec.clone(), state).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.exit_code, 7, "{result:?}");
    assert_eq!(read(spec.log_dir.join("quick.stdout.0")), "bye\n");

    // Restarted in the same directory, it writes new log files.
    let handle = driver
        .start(TaskSpec {
            config: sh("echo again").as_object().cloned().unwrap(),
            ..spec.clone()
        })
        .await
        .unwrap();
    assert!(wait(handle.as_ref()).await.successful());
    assert_eq!(read(spec.log_dir.join("quick.stdout.1")), "again\n");
}

#[tokio::test]
async fn executor_survives_interrupt_terminate_and_hangup_signals() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let spec = spec(
        root.path(),
        "steady",
        json!({"command": "sleep", "args": ["30"]}),
    );
    let handle = driver.start(spec.clone()).await.unwrap();
    let executor_pid = handle.state()["executorPid"].as_u64().unwrap() as u32;
    let sent = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "kill -INT {executor_pid}; kill -TERM {executor_pid}; kill -HUP {executor_pid}"
            ),
        ])
        .status()
        .unwrap();
    assert!(sent.success());
    let log = caravan_nodeagent::executor::protocol::executor_dir(&spec.alloc_dir, &spec.task_name)
        .join("executor.log");
    eventually("the executor to note the signals", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.matches("ignoring").count() == 3)
    })
    .await;
    assert!(running(executor_pid));
    assert!(running(handle.pid().unwrap()));
    handle.signal(signal("SIGTERM")).await.unwrap();
    assert_eq!(wait(handle.as_ref()).await.signal, Some(signal("SIGTERM")));
}

#[tokio::test]
async fn executor_driver_reports_a_lost_executor_and_signals_the_task_itself() {
    let root = tempfile::tempdir().unwrap();
    let driver = driver(DriverKind::RawExec, root.path());
    let handle = driver
        .start(spec(
            root.path(),
            "orphan",
            json!({"command": "sleep", "args": ["30"]}),
        ))
        .await
        .unwrap();
    let pid = handle.pid().unwrap();
    let executor_pid = handle.state()["executorPid"].as_u64().unwrap();
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -9 {executor_pid}")])
        .status()
        .unwrap();
    assert!(killed.success());
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.error.as_deref(), Some("executor lost"), "{result:?}");
    assert!(running(pid), "the task outlives its executor");
    handle.signal(signal("SIGKILL")).await.unwrap();
    eventually("the orphaned task to die", || !running(pid)).await;
    handle.destroy().await;
}

/// The exec or oci driver, or `None` (and why) where containers do not work here (not root,
/// no cgroups).
fn container_driver(kind: DriverKind, root: &Path) -> Option<ExecutorDriver> {
    let driver = driver(kind, root);
    let info = driver.fingerprint();
    if info.healthy {
        Some(driver)
    } else {
        eprintln!("skipped: {:?}", info.health_description);
        None
    }
}

#[tokio::test]
async fn executor_exec_task_runs_chrooted_with_the_alloc_dir() {
    let root = tempfile::tempdir().unwrap();
    let Some(driver) = container_driver(DriverKind::Exec, root.path()) else {
        return;
    };
    let mut spec = spec(
        root.path(),
        "boxed",
        sh(
            "echo inside; grep SigIgn /proc/self/status; test -d /local && test -d /alloc/logs && exit 4",
        ),
    );
    spec.driver = "exec".into();
    let handle = driver.start(spec.clone()).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.exit_code, 4, "{result:?}");
    let stdout = read(spec.log_dir.join("boxed.stdout.0"));
    assert!(stdout.starts_with("inside\n"), "{stdout}");
    // SIGPIPE (bit 12) is not inherited as ignored from the (Rust) executor.
    let ignored = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
        .unwrap();
    assert_eq!(ignored & (1 << (signal("SIGPIPE") - 1)), 0, "{stdout}");
    handle.destroy().await;
}

#[tokio::test]
async fn executor_oci_task_runs_on_a_rootfs_and_stops_on_sigkill() {
    let root = tempfile::tempdir().unwrap();
    let Some(driver) = container_driver(DriverKind::Oci, root.path()) else {
        return;
    };
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        eprintln!("skipped: no /bin/busybox");
        return;
    }
    let rootfs = root.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "sleep", "test", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let mut spec = spec(
        root.path(),
        "oci",
        json!({
            "rootfs": rootfs,
            "command": "/bin/sh",
            "args": ["-c", "echo \"$FROM_CONFIG\"; test -d /local && test -d /alloc && exit 5"],
            "env": {"FROM_CONFIG": "oci-env"}
        }),
    );
    spec.driver = "oci".into();
    let handle = driver.start(spec.clone()).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.exit_code, 5, "{result:?}");
    assert_eq!(read(spec.log_dir.join("oci.stdout.0")), "oci-env\n");
    handle.destroy().await;

    spec.config = json!({"rootfs": rootfs, "command": "/bin/sleep", "args": ["30"]})
        .as_object()
        .cloned()
        .unwrap();
    let handle = driver.start(spec).await.unwrap();
    let pid = handle.pid().unwrap();
    assert!(running(pid));
    // A container's init ignores signals it has no handler for, except SIGKILL.
    handle.signal(signal("SIGKILL")).await.unwrap();
    let result = wait(handle.as_ref()).await;
    assert_eq!(result.signal, Some(signal("SIGKILL")), "{result:?}");
    handle.destroy().await;
}
