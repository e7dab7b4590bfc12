//! The `runc` side of the container benchmark: the same bundle, run by `runc run`.

use super::*;

/// runc's `config.json`: Caravan's spec builder on the parameters the executor would use for
/// the same task in the allocation directory [`Setup::runc_alloc`]; `linux.cgroupsPath` is set
/// per run.
pub(super) fn runc_config(setup: &Setup) -> anyhow::Result<Value> {
    let mut task = task_spec(setup, 0);
    task.alloc_id = "runc".into();
    task.alloc_dir = setup.runc_alloc.clone();
    task.task_dir = setup.runc_alloc.join(TASK);
    task.log_dir = setup.runc_alloc.join("alloc/logs");
    let c = container_launch(setup, task)?;
    for m in &c.mounts {
        std::fs::create_dir_all(&m.source)
            .with_context(|| format!("creating {}", m.source.display()))?;
    }
    let root = match c.root {
        RootLaunch::Rootfs {
            path,
            image,
            readonly,
        } => ContainerRoot::Rootfs {
            path,
            image,
            readonly,
        },
        RootLaunch::Chroot { .. } => bail!("the oci driver planned a chroot"),
    };
    let mounts: Vec<(PathBuf, String, bool)> = c
        .mounts
        .iter()
        .map(|m| (m.source.clone(), m.destination.clone(), m.readonly))
        .collect();
    let params = SpecParams {
        root: &root,
        command: &c.command,
        env: &c.env,
        cwd: c.cwd.as_deref(),
        user: c.user.as_deref(),
        resources: &c.resources,
        mounts: &mounts,
        cgroups_path: &setup.runc_cgroup(0),
        netns: None,
        capabilities: &c.capabilities,
    };
    let spec = oci_spec::build(&params, &container::host_facts(&root))
        .map_err(|e| anyhow!("building runc's config.json: {e}"))?;
    Ok(serde_json::to_value(&spec)?)
}

/// Compares runc's spec with the `config.json` the executor wrote for run 0.
pub(super) fn check_same_spec(setup: &Setup, runc: &Value) -> anyhow::Result<()> {
    let path = container_launch(setup, task_spec(setup, 0))?
        .bundle_dir
        .join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the executor's {}", path.display()))?;
    // The mounts' sources: the executor's allocation directory stands for runc's.
    let ours = format!("{}/", setup.caravan_alloc(0).display());
    let theirs = format!("{}/", setup.runc_alloc.display());
    let mut executor: Value = serde_json::from_str(&text.replace(&ours, &theirs))?;
    let mut runc = runc.clone();
    for spec in [&mut executor, &mut runc] {
        spec["linux"]["cgroupsPath"] = Value::Null;
        // Capability sets serialise in hash order.
        if let Some(sets) = spec
            .pointer_mut("/process/capabilities")
            .and_then(Value::as_object_mut)
        {
            for set in sets.values_mut().filter_map(Value::as_array_mut) {
                set.sort_by_key(Value::to_string);
            }
        }
    }
    if executor != runc {
        let differing: Vec<String> = match (executor.as_object(), runc.as_object()) {
            (Some(a), Some(b)) => a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(*k)))
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "{k}: executor {} vs runc {}",
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null)
                    )
                })
                .collect(),
            _ => vec!["(not objects)".into()],
        };
        bail!(
            "the executor's {} differs from runc's config.json (the bench would not compare the \
             same container): {}",
            path.display(),
            differing.join("; ")
        );
    }
    Ok(())
}

/// runc's binary, state root and bundle, and where its output goes.
#[derive(Clone, Debug)]
pub(super) struct RuncPaths {
    pub(super) runc: PathBuf,
    pub(super) root: PathBuf,
    pub(super) bundle: PathBuf,
    pub(super) dir: PathBuf,
}

/// One runc run with a fresh cgroups path: `runc run` in the foreground, checking the exit
/// code; `runc delete -f` (timed) when it left a state.
pub(super) fn run_runc(
    config: &Value,
    p: &RuncPaths,
    cgroup: &str,
    id: &str,
) -> anyhow::Result<RuncRun> {
    let mut config = config.clone();
    config["linux"]["cgroupsPath"] = Value::String(cgroup.to_owned());
    let config_path = p.bundle.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let out_path = p.dir.join("runc.out");
    let err_path = p.dir.join("runc.err");
    let out = File::create(&out_path)?;
    let err = File::create(&err_path)?;
    let t0 = Instant::now();
    let status = Command::new(&p.runc)
        .arg("--root")
        .arg(&p.root)
        .arg("run")
        .arg("--bundle")
        .arg(&p.bundle)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("running {}", p.runc.display()))?;
    let run = t0.elapsed();
    let delete = if p.root.join(id).exists() {
        let t1 = Instant::now();
        let deleted = Command::new(&p.runc)
            .arg("--root")
            .arg(&p.root)
            .args(["delete", "-f", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        ensure!(deleted.success(), "runc delete -f {id}: {deleted}");
        Some(t1.elapsed())
    } else {
        None
    };
    if status.code() != Some(EXIT_CODE) {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        bail!(
            "runc run {id} ended with {status}, not exit code {EXIT_CODE}: {}",
            stderr.trim()
        );
    }
    Ok(RuncRun { run, delete })
}
