//! `caravan bench container`: the cost of one container, create → exit, through Caravan's `oci`
//! driver against `runc run` on the same bundle.
//!
//! Both sides run `/bin/sh -c 'exit 3'` in a busybox root filesystem built in a temporary
//! directory, with the same OCI runtime spec: the bench builds `config.json` with Caravan's own
//! spec builder ([`caravan_nodeagent::container::spec::build`]) and checks that it equals the
//! one the executor writes for its first task (apart from the cgroups path and the allocation
//! directory the mounts come from). Each run gets a fresh cgroups path on both sides.
//!
//! - Caravan: [`ExecutorDriver`] (`oci`) `start` → `wait` → `destroy`, with this binary as the
//!   executor (`caravan executor --task-dir …`): what a task costs on a node, from the driver
//!   call to the executor gone.
//! - runc: `runc --root R run --bundle B ID`, in the foreground (it deletes the container when
//!   the init exits; a state it leaves anyway is deleted with `runc delete -f`, timed too).
//!
//! Runs alternate (Caravan, runc, Caravan, …) so that a drift of the machine hits both sides;
//! warm-up runs come first and are not counted. Every run must end with exit code 3, or the
//! bench fails. Containers, state and cgroups are removed at the end, also after a failure.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail, ensure};
use caravan_nodeagent::container::spec::{self as oci_spec, SpecParams};
use caravan_nodeagent::container::{self, ContainerRoot};
use caravan_nodeagent::driver::executor::{ExecutorDriver, ExecutorSettings};
use caravan_nodeagent::driver::{Driver, LogLimits, TaskResources, TaskSpec};
use caravan_nodeagent::executor::DriverKind;
use caravan_nodeagent::executor::spec::{
    ContainerLaunch, ContainerSettings, DEFAULT_PATH, ExecutorSpec, Launch, RootLaunch,
    resolve_program,
};
use serde_json::{Value, json};

mod rootfs;
mod runc;

use self::rootfs::*;
use self::runc::*;
use super::ContainerBenchArgs;
use super::report::{Stats, ms, stats_line};

/// The container's program: exits with [`EXIT_CODE`].
const SCRIPT: &str = "exit 3";
const EXIT_CODE: i32 = 3;
/// The static busybox copied into the root filesystem.
const BUSYBOX: &str = "/bin/busybox";
/// Task name on the Caravan side; also the last part of both sides' cgroups paths.
const TASK: &str = "t";

/// One Caravan run: the driver's three calls.
#[derive(Debug, Clone, Copy)]
struct CaravanRun {
    start: Duration,
    wait: Duration,
    destroy: Duration,
}

impl CaravanRun {
    fn total(&self) -> Duration {
        self.start + self.wait + self.destroy
    }
}

/// One runc run; `delete` is the `runc delete -f` a leftover state needed, if any.
#[derive(Debug, Clone, Copy)]
struct RuncRun {
    run: Duration,
    delete: Option<Duration>,
}

impl RuncRun {
    fn total(&self) -> Duration {
        self.run + self.delete.unwrap_or_default()
    }
}

/// Where everything of one bench run lives.
struct Setup {
    /// The temporary directory holding the rest.
    dir: PathBuf,
    rootfs: PathBuf,
    /// runc's bundle: `config.json` (rewritten with a new cgroups path before each run).
    bundle: PathBuf,
    /// The allocation directory runc's container mounts `/alloc`, `/local`, `/secrets` from.
    runc_alloc: PathBuf,
    /// The Caravan side's container settings (state root, cgroup parent).
    containers_settings: ContainerSettings,
    runc: PathBuf,
    runc_root: PathBuf,
    /// libcontainer's state root of the Caravan side.
    containers: PathBuf,
    /// Parent of both sides' cgroups: `/caravan-bench-<pid>`.
    cgroup_parent: String,
    executor: Vec<std::ffi::OsString>,
}

impl Setup {
    fn caravan_alloc(&self, i: usize) -> PathBuf {
        self.dir.join("alloc").join(caravan_alloc_id(i))
    }

    fn runc_id(i: usize) -> String {
        format!("r-{i:04}-{TASK}")
    }

    fn runc_cgroup(&self, i: usize) -> String {
        format!("{}/r-{i:04}/{TASK}", self.cgroup_parent)
    }
}

fn caravan_alloc_id(i: usize) -> String {
    format!("c-{i:04}")
}

pub async fn run(args: ContainerBenchArgs) -> anyhow::Result<()> {
    ensure!(args.iterations > 0, "--iterations must be at least 1");
    ensure!(
        effective_uid()? == 0,
        "bench container needs root (containers, cgroups): run it as root"
    );
    let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.into());
    let runc = resolve_program("runc", Path::new("/"), &path)
        .map_err(|_| anyhow!("runc is not installed (not found in PATH {path:?})"))?;
    let exe = std::env::current_exe().context("finding the caravan binary")?;
    let tmp = tempfile::Builder::new()
        .prefix("caravan-bench-container-")
        .tempdir()
        .context("creating a temporary directory")?;
    let dir = tmp.path().to_path_buf();
    let cgroup_parent = format!("/caravan-bench-{}", std::process::id());
    let mut settings = ExecutorSettings::new(dir.join("containers"), dir.join("images"));
    settings.containers.cgroup_parent = cgroup_parent.clone();
    let setup = Setup {
        containers_settings: settings.containers.clone(),
        rootfs: dir.join("rootfs"),
        bundle: dir.join("bundle"),
        runc_alloc: dir.join("alloc").join("runc"),
        runc_root: dir.join("runc"),
        containers: dir.join("containers"),
        cgroup_parent,
        executor: vec![exe.clone().into_os_string(), "executor".into()],
        runc,
        dir,
    };
    let driver = ExecutorDriver::new(DriverKind::Oci, setup.executor.clone(), settings);
    let health = driver.fingerprint();
    ensure!(
        health.healthy,
        "the oci driver is not usable here: {}",
        health.health_description.unwrap_or_default()
    );

    let outcome = measure(&args, &setup, &driver).await;
    let cleaned = cleanup(&setup);
    // The temporary directory goes last, once nothing uses it.
    drop(tmp);
    let report = outcome?;
    println!("{}", cleaned?);
    println!("{report}");
    Ok(())
}

/// Builds the root filesystem and the bundle, runs both sides, and returns the summary.
async fn measure(
    args: &ContainerBenchArgs,
    setup: &Setup,
    driver: &ExecutorDriver,
) -> anyhow::Result<String> {
    let applets = build_rootfs(&setup.rootfs)?;
    let config = runc_config(setup)?;
    std::fs::create_dir_all(&setup.bundle)?;
    std::fs::create_dir_all(&setup.runc_root)?;
    let runc_version = Command::new(&setup.runc)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default();

    println!(
        "bench container: /bin/sh -c '{SCRIPT}' in a busybox root filesystem ({applets} applets, \
         read-only root), {} warm-up + {} measured runs per side, alternating",
        args.warmup, args.iterations
    );
    println!("  temporary directory: {}", setup.dir.display());
    println!(
        "  caravan: ExecutorDriver(oci) start → wait → destroy, task config \
         {{\"rootfs\": {:?}, \"command\": \"/bin/sh\", \"args\": [\"-c\", {SCRIPT:?}]}}, \
         spawning `{} executor --task-dir …` for allocation directory {}, cgroups \
         {}/c-NNNN/{TASK}",
        setup.rootfs.display().to_string(),
        setup.executor[0].to_string_lossy(),
        setup.dir.join("alloc/c-NNNN").display(),
        setup.cgroup_parent
    );
    println!(
        "  runc ({runc_version}): `{} --root {} run --bundle {} r-NNNN-{TASK}`, cgroups {}/r-NNNN/{TASK}",
        setup.runc.display(),
        setup.runc_root.display(),
        setup.bundle.display(),
        setup.cgroup_parent
    );

    let runc_paths = RuncPaths {
        runc: setup.runc.clone(),
        root: setup.runc_root.clone(),
        bundle: setup.bundle.clone(),
        dir: setup.dir.clone(),
    };
    let total = args.warmup + args.iterations;
    let mut caravan_runs = Vec::with_capacity(args.iterations);
    let mut runc_runs = Vec::with_capacity(args.iterations);
    for i in 0..total {
        let c = run_caravan(driver, setup, i).await?;
        if i == 0 {
            check_same_spec(setup, &config)?;
            println!(
                "check: the executor's config.json equals runc's (apart from the cgroups path \
                 and the allocation directory)"
            );
        }
        let r = {
            let (config, paths, cgroup) =
                (config.clone(), runc_paths.clone(), setup.runc_cgroup(i));
            tokio::task::spawn_blocking(move || {
                run_runc(&config, &paths, &cgroup, &Setup::runc_id(i))
            })
            .await
            .context("the runc run panicked")??
        };
        let measured = i >= args.warmup;
        println!(
            "{} {:>2}: caravan {} (start {}, wait {}, destroy {})  runc {}{}",
            if measured { "run   " } else { "warmup" },
            if measured { i - args.warmup + 1 } else { i + 1 },
            ms(c.total()),
            ms(c.start),
            ms(c.wait),
            ms(c.destroy),
            ms(r.total()),
            r.delete
                .map(|d| format!(" (incl. runc delete -f {})", ms(d)))
                .unwrap_or_default()
        );
        if measured {
            caravan_runs.push(c);
            runc_runs.push(r);
        }
    }
    let left_by_runc = runc_runs.iter().filter(|r| r.delete.is_some()).count();
    Ok(summary(&caravan_runs, &runc_runs, left_by_runc))
}

fn summary(caravan_runs: &[CaravanRun], runc_runs: &[RuncRun], left_by_runc: usize) -> String {
    let caravan = Stats::of(
        &caravan_runs
            .iter()
            .map(CaravanRun::total)
            .collect::<Vec<_>>(),
    );
    let runc = Stats::of(&runc_runs.iter().map(RuncRun::total).collect::<Vec<_>>());
    let part =
        |f: fn(&CaravanRun) -> Duration| Stats::of(&caravan_runs.iter().map(f).collect::<Vec<_>>());
    let (start, wait, destroy) = (part(|r| r.start), part(|r| r.wait), part(|r| r.destroy));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    let mean_ratio = ratio(caravan.mean, runc.mean);
    let p50_ratio = ratio(caravan.p50, runc.p50);
    let verdict = if mean_ratio <= 0.8 { "met" } else { "NOT met" };
    format!(
        "container create → exit, {} runs each:\n\
         \x20 caravan oci driver: {}\n\
         \x20   start (task files, executor, container started): mean {}  p50 {}\n\
         \x20   wait (→ exit status):                            mean {}  p50 {}\n\
         \x20   destroy (→ executor gone, its files removed):    mean {}  p50 {}\n\
         \x20 runc run:           {}\n\
         \x20 ratio caravan/runc: {mean_ratio:.2} (mean), {p50_ratio:.2} (p50); target ≤ 0.80 (mean): {verdict}\n\
         check: all {} runs exited with code {EXIT_CODE}; runc left {left_by_runc} container states",
        caravan.count,
        stats_line(&caravan),
        ms(start.mean),
        ms(start.p50),
        ms(wait.mean),
        ms(wait.p50),
        ms(destroy.mean),
        ms(destroy.p50),
        stats_line(&runc),
        caravan.count + runc.count,
    )
}

/// The environment both sides give the container.
fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())])
}

/// What the agent gives a task of 100 MHz and 64 MB (its default pids limit is 4096).
fn resources() -> TaskResources {
    TaskResources {
        cpu_mhz: 100,
        memory_mb: 64,
        memory_max_mb: None,
        pids_limit: 4096,
    }
}

fn command() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()]
}

/// The task the Caravan side runs in iteration `i`.
fn task_spec(setup: &Setup, i: usize) -> TaskSpec {
    let alloc_id = caravan_alloc_id(i);
    let alloc_dir = setup.caravan_alloc(i);
    let config = json!({
        "rootfs": setup.rootfs,
        "command": command()[0],
        "args": command()[1..],
    });
    TaskSpec {
        alloc_name: format!("bench.g[{i}]"),
        alloc_id,
        namespace: "default".into(),
        job_name: "bench".into(),
        group_name: "g".into(),
        task_name: TASK.into(),
        driver: "oci".into(),
        config: config.as_object().cloned().unwrap_or_default(),
        env: env(),
        user: None,
        task_dir: alloc_dir.join(TASK),
        log_dir: alloc_dir.join("alloc/logs"),
        alloc_dir,
        resources: resources(),
        logs: LogLimits::default(),
        kill_signal: "SIGINT".into(),
        kill_timeout: Duration::from_secs(5),
        netns: None,
    }
}

/// The container part of the executor's spec for `task` (what the executor hands to
/// libcontainer), decided by the driver's own [`ExecutorSpec::build`].
fn container_launch(setup: &Setup, task: TaskSpec) -> anyhow::Result<ContainerLaunch> {
    let spec = ExecutorSpec::build(
        DriverKind::Oci,
        task,
        &setup.containers_settings,
        caravan_nodeagent::image::resolve,
    )
    .map_err(|e| anyhow!("the oci task is invalid: {e}"))?;
    match spec.launch {
        Launch::Container(c) => Ok(*c),
        Launch::Process(_) => bail!("the oci driver did not plan a container"),
    }
}

/// One Caravan run: start → wait → destroy, checking the exit code.
async fn run_caravan(
    driver: &ExecutorDriver,
    setup: &Setup,
    i: usize,
) -> anyhow::Result<CaravanRun> {
    let spec = task_spec(setup, i);
    let t0 = Instant::now();
    let handle = driver
        .start(spec)
        .await
        .map_err(|e| anyhow!("caravan run {i}: {e}"))?;
    let started = t0.elapsed();
    let result = handle.wait().await;
    let waited = t0.elapsed();
    handle.destroy().await;
    let done = t0.elapsed();
    ensure!(
        result.exit_code == EXIT_CODE
            && result.signal.is_none()
            && result.error.is_none()
            && !result.oom_killed,
        "caravan run {i}: the container ended with {result:?}, not exit code {EXIT_CODE} \
         (the executor's log is under {})",
        setup.caravan_alloc(i).display()
    );
    Ok(CaravanRun {
        start: started,
        wait: waited - started,
        destroy: done - waited,
    })
}

/// The mount points of every cgroup (v1) and cgroup2 hierarchy.
fn cgroup_mounts() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            matches!(right.split(' ').next()?, "cgroup" | "cgroup2").then(|| mount_point.into())
        })
        .collect()
}

/// Removes `dir` and the cgroups below it, deepest first; returns how many it removed.
fn remove_cgroup_tree(dir: &Path) -> Result<usize, String> {
    let mut removed = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed += remove_cgroup_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir).map_err(|e| format!("rmdir {}: {e}", dir.display()))?;
    Ok(removed + 1)
}

/// Removes what the runs left: container states (there should be none) and the cgroups under
/// the bench's parent in every hierarchy. Says what it found.
fn cleanup(setup: &Setup) -> anyhow::Result<String> {
    let mut problems = Vec::new();
    let mut states = 0;
    if let Ok(entries) = std::fs::read_dir(&setup.containers) {
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            states += 1;
            if let Err(e) = container::delete(&setup.containers, &id) {
                problems.push(e);
            }
        }
    }
    let mut runc_states = 0;
    if let Ok(entries) = std::fs::read_dir(&setup.runc_root) {
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            runc_states += 1;
            let deleted = Command::new(&setup.runc)
                .arg("--root")
                .arg(&setup.runc_root)
                .args(["delete", "-f", &id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !deleted.is_ok_and(|s| s.success()) {
                problems.push(format!("runc delete -f {id} failed"));
            }
        }
    }
    // Leaf cgroups (`…/<run>/t`) left by either side, then every directory under the parent.
    let (mut caravan_leaves, mut runc_leaves, mut removed, mut hierarchies) = (0, 0, 0, 0);
    let parent = setup.cgroup_parent.trim_start_matches('/');
    for mount in cgroup_mounts() {
        let base = mount.join(parent);
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        hierarchies += 1;
        for entry in entries.flatten() {
            if entry.path().join(TASK).is_dir() {
                match entry.file_name().to_string_lossy().chars().next() {
                    Some('c') => caravan_leaves += 1,
                    _ => runc_leaves += 1,
                }
            }
        }
        match remove_cgroup_tree(&base) {
            Ok(n) => removed += n,
            Err(e) => problems.push(e),
        }
    }
    ensure!(
        problems.is_empty(),
        "cleanup failed: {}",
        problems.join("; ")
    );
    Ok(format!(
        "cleanup: {states} libcontainer states and {runc_states} runc states were left; leaf \
         cgroups left: caravan {caravan_leaves}, runc {runc_leaves}; removed {removed} cgroup \
         directories under /{parent} in {hierarchies} hierarchies (the per-run parents, which \
         neither runtime removes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_summary_reports_the_ratio_and_the_verdict() {
        let caravan = [CaravanRun {
            start: ms_(20),
            wait: ms_(5),
            destroy: ms_(5),
        }];
        let runc = [RuncRun {
            run: ms_(50),
            delete: None,
        }];
        let text = summary(&caravan, &runc, 0);
        assert!(
            text.contains("ratio caravan/runc: 0.60 (mean), 0.60 (p50); target ≤ 0.80 (mean): met"),
            "{text}"
        );
        assert!(text.contains("all 2 runs exited with code 3"), "{text}");
        let slow = [RuncRun {
            run: ms_(20),
            delete: Some(ms_(10)),
        }];
        assert!(
            summary(&caravan, &slow, 1)
                .contains("1.00 (mean), 1.00 (p50); target ≤ 0.80 (mean): NOT met")
        );
    }

    #[test]
    fn static_elf_detection() {
        let mut elf = vec![0u8; 0x40 + 2 * 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        assert_eq!(elf_is_static(&elf), Some(true));
        elf[0x40 + 56..0x40 + 60].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        assert_eq!(elf_is_static(&elf), Some(false));
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
        // Program headers past the end: not decidable.
        assert_eq!(elf_is_static(&elf[..0x50]), None);
    }

    #[test]
    fn cgroup_paths_have_the_same_depth_on_both_sides() {
        let setup = Setup {
            dir: "/tmp/b".into(),
            rootfs: "/tmp/b/rootfs".into(),
            bundle: "/tmp/b/bundle".into(),
            runc_alloc: "/tmp/b/alloc/runc".into(),
            containers_settings: ExecutorSettings::new("/tmp/b/containers", "/tmp/b/images")
                .containers,
            runc: "/usr/sbin/runc".into(),
            runc_root: "/tmp/b/runc".into(),
            containers: "/tmp/b/containers".into(),
            cgroup_parent: "/caravan-bench-1".into(),
            executor: vec!["caravan".into(), "executor".into()],
        };
        assert_eq!(setup.runc_cgroup(3), "/caravan-bench-1/r-0003/t");
        assert_eq!(Setup::runc_id(3), "r-0003-t");
        let spec = task_spec(&setup, 3);
        assert_eq!(spec.alloc_id, "c-0003");
        assert_eq!(spec.task_dir, PathBuf::from("/tmp/b/alloc/c-0003/t"));
        assert_eq!(spec.config["args"], json!(["-c", "exit 3"]));
    }
}
