//! `executor.json`: the task's spec plus what the driver decided (program resolved, container
//! request parts), built in the agent and read by the executor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{DriverKind, TaskConfig};
use crate::container::ImageConfig;
use crate::driver::{TaskResources, TaskSpec};

/// `PATH` of `exec` tasks (and of program lookups) when the task's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The content of `executor.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutorSpec {
    /// The task as the agent built it (log directory and limits, names).
    pub task: TaskSpec,
    pub launch: Launch,
}

/// How the executor starts the task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Launch {
    /// `raw_exec`: a plain process in its own process group.
    Process(ProcessLaunch),
    /// `exec` and `oci`: a container through [`crate::container::create_and_start`].
    Container(Box<ContainerLaunch>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessLaunch {
    /// Absolute path of the program.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// The whole environment of the process.
    pub env: BTreeMap<String, String>,
    /// `uid[:gid]` or a user name; `None` runs as the executor's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The serializable parts of a [`crate::container::ContainerRequest`] (the executor adds the
/// stdout and stderr pipes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLaunch {
    pub id: String,
    pub state_root: PathBuf,
    pub bundle_dir: PathBuf,
    pub cgroups_path: String,
    pub root: RootLaunch,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub resources: TaskResources,
    pub mounts: Vec<MountLaunch>,
    /// The allocation's network namespace to join; `None` shares the host's network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
    /// The container's capabilities (bounding, effective, permitted).
    #[serde(default = "default_capabilities")]
    pub capabilities: Vec<oci_spec::runtime::Capability>,
}

fn default_capabilities() -> Vec<oci_spec::runtime::Capability> {
    crate::container::spec::DEFAULT_CAPABILITIES.to_vec()
}

/// A serializable [`crate::container::ContainerRoot`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum RootLaunch {
    #[serde(rename_all = "camelCase")]
    Chroot { task_dir: PathBuf },
    #[serde(rename_all = "camelCase")]
    Rootfs {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<ImageConfig>,
        readonly: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MountLaunch {
    pub source: PathBuf,
    pub destination: String,
    pub readonly: bool,
}

/// Where container-related things go on the node.
#[derive(Clone, Debug)]
pub struct ContainerSettings {
    /// libcontainer's state root (absolute), `<data>/containers`.
    pub state_root: PathBuf,
    /// The local OCI image store.
    pub image_dir: PathBuf,
    /// Parent of the tasks' cgroups: `<cgroup_parent>/<alloc-id>/<task>`.
    pub cgroup_parent: String,
    /// The capabilities a task may hold (Nomad's `allow_caps`); Docker's default set unless
    /// the operator widens or narrows it.
    pub allowed_caps: Vec<oci_spec::runtime::Capability>,
}

/// Finds an image of the local store: its root filesystem and configuration.
pub type ImageResolver = fn(&Path, &str) -> Result<(PathBuf, ImageConfig), String>;

impl ExecutorSpec {
    /// Decides how to run `task` with `kind`; the error describes a configuration that can
    /// never start.
    pub fn build(
        kind: DriverKind,
        task: TaskSpec,
        settings: &ContainerSettings,
        resolve_image: ImageResolver,
    ) -> Result<ExecutorSpec, String> {
        // The allocation id and task name become the executor directory, bundle, container id
        // and cgroup below.
        crate::paths::check_task_spec(&task).map_err(|e| e.to_string())?;
        let config = TaskConfig::parse(kind, &task.config)?;
        let mut env = task.env.clone();
        env.extend(config.env.clone());
        let user = config.user.clone().or_else(|| task.user.clone());
        let launch = match kind {
            DriverKind::RawExec if task.netns.is_some() => {
                return Err(
                    "raw_exec tasks run on the host's network and cannot join the allocation's network namespace"
                        .into(),
                );
            }
            DriverKind::RawExec => {
                let command = config.command.as_deref().unwrap_or_default();
                let path = env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
                let program = resolve_program(command, &task.task_dir, path)?;
                let cwd = match &config.work_dir {
                    Some(dir) => task.task_dir.join(dir),
                    None => task.task_dir.clone(),
                };
                Launch::Process(ProcessLaunch {
                    program,
                    args: config.args.clone(),
                    cwd,
                    env,
                    user,
                })
            }
            DriverKind::Exec | DriverKind::Oci => {
                let id = container_id(&task.alloc_id, &task.task_name);
                let mut mounts = vec![MountLaunch {
                    source: task.alloc_dir.join("alloc"),
                    destination: "/alloc".into(),
                    readonly: false,
                }];
                let (root, command) = if kind == DriverKind::Exec {
                    env.entry("PATH".into())
                        .or_insert_with(|| DEFAULT_PATH.into());
                    let mut command = vec![config.command.clone().unwrap_or_default()];
                    command.extend(config.args.iter().cloned());
                    let root = RootLaunch::Chroot {
                        task_dir: task.task_dir.clone(),
                    };
                    (root, command)
                } else {
                    for dir in ["local", "secrets"] {
                        mounts.push(MountLaunch {
                            source: task.task_dir.join(dir),
                            destination: format!("/{dir}"),
                            readonly: false,
                        });
                    }
                    let (path, image) = match (&config.image, &config.rootfs) {
                        (Some(reference), _) => {
                            let (path, image) = resolve_image(&settings.image_dir, reference)?;
                            (path, Some(image))
                        }
                        (None, Some(rootfs)) if rootfs.is_dir() => (rootfs.clone(), None),
                        (None, Some(rootfs)) => {
                            return Err(format!("rootfs {rootfs:?} is not a directory"));
                        }
                        (None, None) => unreachable!("checked by TaskConfig::parse"),
                    };
                    let command = oci_command(&config, image.as_ref());
                    let root = RootLaunch::Rootfs {
                        path,
                        image,
                        readonly: true,
                    };
                    (root, command)
                };
                Launch::Container(Box::new(ContainerLaunch {
                    state_root: settings.state_root.clone(),
                    bundle_dir: super::protocol::executor_dir(&task.alloc_dir, &task.task_name)
                        .join("bundle"),
                    cgroups_path: format!(
                        "{}/{}/{}",
                        settings.cgroup_parent.trim_end_matches('/'),
                        sanitize(&task.alloc_id),
                        sanitize(&task.task_name)
                    ),
                    id,
                    root,
                    command,
                    env,
                    cwd: config.work_dir.clone(),
                    user,
                    resources: task.resources.clone(),
                    mounts,
                    netns: task.netns.clone(),
                    capabilities: super::capabilities::task_set(
                        &config.cap_add,
                        &config.cap_drop,
                        &settings.allowed_caps,
                    )?,
                }))
            }
        };
        Ok(ExecutorSpec { task, launch })
    }
}

/// `command` alone replaces the image's entrypoint and cmd; `args` alone replace its cmd
/// (Docker's rule); neither keeps both (an empty command).
fn oci_command(config: &TaskConfig, image: Option<&ImageConfig>) -> Vec<String> {
    match (&config.command, config.args.is_empty()) {
        (Some(command), _) => std::iter::once(command.clone())
            .chain(config.args.iter().cloned())
            .collect(),
        (None, true) => Vec::new(),
        (None, false) => image
            .map(|i| i.entrypoint.clone())
            .unwrap_or_default()
            .into_iter()
            .chain(config.args.iter().cloned())
            .collect(),
    }
}

/// An absolute program path: absolute as given, relative to the task directory when it has a
/// `/`, else looked up in `path`.
pub fn resolve_program(command: &str, task_dir: &Path, path: &str) -> Result<PathBuf, String> {
    let candidate = Path::new(command);
    if command.contains('/') {
        let program = if candidate.is_absolute() {
            candidate.to_path_buf()
        } else {
            task_dir.join(candidate)
        };
        return if program.is_file() {
            Ok(program)
        } else {
            Err(format!("command {command:?} not found ({program:?})"))
        };
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(command))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("command {command:?} not found in PATH {path:?}"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `<alloc-id>-<task>`, with characters libcontainer refuses replaced.
pub fn container_id(alloc_id: &str, task: &str) -> String {
    format!("{}-{}", sanitize(alloc_id), sanitize(task))
}

fn sanitize(part: &str) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::driver::LogLimits;

    fn task(driver: &str, config: serde_json::Value) -> TaskSpec {
        TaskSpec {
            alloc_id: "a1b2".into(),
            alloc_name: "web.web[0]".into(),
            namespace: "default".into(),
            job_name: "web".into(),
            group_name: "web".into(),
            task_name: "srv".into(),
            driver: driver.into(),
            config: config.as_object().unwrap().clone(),
            env: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
            user: None,
            alloc_dir: "/data/alloc/a1b2".into(),
            task_dir: "/data/alloc/a1b2/srv".into(),
            log_dir: "/data/alloc/a1b2/alloc/logs".into(),
            resources: TaskResources::default(),
            logs: LogLimits::default(),
            kill_signal: "SIGINT".into(),
            kill_timeout: Duration::from_secs(5),
            netns: None,
        }
    }

    fn settings() -> ContainerSettings {
        ContainerSettings {
            state_root: "/data/containers".into(),
            image_dir: "/data/images".into(),
            allowed_caps: crate::container::spec::DEFAULT_CAPABILITIES.to_vec(),
            cgroup_parent: "/caravan".into(),
        }
    }

    fn busybox(_: &Path, reference: &str) -> Result<(PathBuf, ImageConfig), String> {
        match reference {
            "busybox" => Ok((
                "/data/images/busybox/rootfs".into(),
                ImageConfig {
                    entrypoint: vec!["/bin/sh".into(), "-c".into()],
                    cmd: vec!["echo hi".into()],
                    ..Default::default()
                },
            )),
            other => Err(format!("image {other:?} not found")),
        }
    }

    #[test]
    fn raw_exec_spec_resolves_the_program_in_path() {
        let spec = ExecutorSpec::build(
            DriverKind::RawExec,
            task("raw_exec", json!({"command": "sh", "args": ["-c", "true"]})),
            &settings(),
            busybox,
        )
        .unwrap();
        let Launch::Process(process) = &spec.launch else {
            panic!("{spec:?}")
        };
        assert!(process.program.is_absolute(), "{process:?}");
        assert!(process.program.ends_with("sh"));
        assert_eq!(process.cwd, PathBuf::from("/data/alloc/a1b2/srv"));
        // The spec survives executor.json.
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ExecutorSpec>(&text).unwrap(), spec);
    }

    #[test]
    fn containers_join_the_allocation_network_and_raw_exec_is_refused_one() {
        let netns = PathBuf::from("/run/caravan/netns/a1b2");
        let mut oci = task("oci", json!({"image": "busybox"}));
        oci.netns = Some(netns.clone());
        let spec = ExecutorSpec::build(DriverKind::Oci, oci, &settings(), busybox).unwrap();
        let Launch::Container(c) = &spec.launch else {
            panic!("{spec:?}")
        };
        assert_eq!(c.netns.as_ref(), Some(&netns));
        let mut raw = task("raw_exec", json!({"command": "sh"}));
        raw.netns = Some(netns);
        let err = ExecutorSpec::build(DriverKind::RawExec, raw, &settings(), busybox).unwrap_err();
        assert!(err.contains("network namespace"), "{err}");
    }

    #[test]
    fn raw_exec_spec_refuses_an_unknown_program() {
        let err = ExecutorSpec::build(
            DriverKind::RawExec,
            task("raw_exec", json!({"command": "no-such-program-xyz"})),
            &settings(),
            busybox,
        )
        .unwrap_err();
        assert!(err.contains("not found in PATH"), "{err}");
    }

    #[test]
    fn exec_spec_chroots_into_the_task_dir_and_mounts_alloc() {
        let spec = ExecutorSpec::build(
            DriverKind::Exec,
            task("exec", json!({"command": "/bin/echo", "args": ["x"]})),
            &settings(),
            busybox,
        )
        .unwrap();
        let Launch::Container(c) = &spec.launch else {
            panic!("{spec:?}")
        };
        assert_eq!(c.id, "a1b2-srv");
        assert_eq!(c.cgroups_path, "/caravan/a1b2/srv");
        assert_eq!(c.command, ["/bin/echo", "x"]);
        assert_eq!(
            c.root,
            RootLaunch::Chroot {
                task_dir: "/data/alloc/a1b2/srv".into()
            }
        );
        assert_eq!(c.mounts[0].destination, "/alloc");
        assert_eq!(c.mounts[0].source, PathBuf::from("/data/alloc/a1b2/alloc"));
    }

    #[test]
    fn oci_spec_uses_the_image_and_mounts_local() {
        let spec = ExecutorSpec::build(
            DriverKind::Oci,
            task("oci", json!({"image": "busybox", "args": ["echo a"]})),
            &settings(),
            busybox,
        )
        .unwrap();
        let Launch::Container(c) = &spec.launch else {
            panic!("{spec:?}")
        };
        assert_eq!(c.command, ["/bin/sh", "-c", "echo a"]);
        assert!(matches!(
            &c.root,
            RootLaunch::Rootfs {
                image: Some(_),
                readonly: true,
                ..
            }
        ));
        let destinations: Vec<_> = c.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(destinations, ["/alloc", "/local", "/secrets"]);

        let err = ExecutorSpec::build(
            DriverKind::Oci,
            task("oci", json!({"image": "nope"})),
            &settings(),
            busybox,
        )
        .unwrap_err();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn specs_with_unsafe_names_are_refused() {
        let mut absolute = task("exec", json!({"command": "/bin/echo"}));
        absolute.task_name = "/etc".into();
        // What `alloc_dir.join(name)` makes of an absolute name: the name itself.
        absolute.task_dir = "/etc".into();
        let mut parent = task("raw_exec", json!({"command": "sh"}));
        parent.task_name = "../x".into();
        parent.task_dir = parent.alloc_dir.join("../x");
        let mut alloc = task("raw_exec", json!({"command": "sh"}));
        alloc.alloc_id = "..".into();
        let mut elsewhere = task("exec", json!({"command": "/bin/echo"}));
        elsewhere.task_dir = "/".into();
        for (kind, spec) in [
            (DriverKind::Exec, absolute),
            (DriverKind::RawExec, parent),
            (DriverKind::RawExec, alloc),
            (DriverKind::Exec, elsewhere),
        ] {
            let err = ExecutorSpec::build(kind, spec.clone(), &settings(), busybox).unwrap_err();
            assert!(err.starts_with("invalid "), "{spec:?}: {err}");
        }
    }

    #[test]
    fn container_ids_keep_only_safe_characters() {
        assert_eq!(container_id("a/b", "t.x"), "a_b-t_x");
        assert_eq!(container_id("", "t"), "_-t");
    }
}
