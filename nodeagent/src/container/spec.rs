//! Building a container's OCI runtime spec (`config.json`): a pure function of the request and
//! of a few facts about the host and the root filesystem ([`HostFacts`]), so it is unit-tested
//! without root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, User, UserBuilder,
};

use super::{ContainerRoot, ImageConfig};
use crate::driver::TaskResources;

/// OCI runtime spec version written to `config.json`.
pub const OCI_VERSION: &str = "1.0.2";

/// `PATH` when neither the image nor the task sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host directories bind-mounted read-only into an `exec` (chroot) container, when they exist.
pub const CHROOT_DIRS: [&str; 6] = ["/bin", "/lib", "/lib64", "/usr", "/etc", "/sbin"];

/// Host files shared read-only with image containers, which use the host's network (DNS).
pub const NETWORK_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// runc's default masked paths.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The request's parts that go into the spec (the request without its file descriptors).
#[derive(Debug, Clone, Copy)]
pub struct SpecParams<'a> {
    pub root: &'a ContainerRoot,
    pub command: &'a [String],
    pub env: &'a BTreeMap<String, String>,
    pub cwd: Option<&'a str>,
    pub user: Option<&'a str>,
    pub resources: &'a TaskResources,
    pub mounts: &'a [(PathBuf, String, bool)],
    pub cgroups_path: &'a str,
    /// The network namespace to join; `None` shares the host's network.
    pub netns: Option<&'a Path>,
    /// The process's capabilities (bounding, effective, permitted).
    pub capabilities: &'a [Capability],
}

/// What [`build`] needs to know about the machine and the root filesystem; gathered by
/// `super::run` before building.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The root filesystem's `/etc/passwd` (the host's for a chroot), if readable.
    pub passwd: Option<String>,
    /// The root filesystem's `/etc/group`, if readable.
    pub group: Option<String>,
    /// Which of [`CHROOT_DIRS`] exist on the host.
    pub chroot_dirs: Vec<String>,
    /// Which of [`NETWORK_FILES`] to share with an image container (present on the host, and
    /// not a symbolic link in the image).
    pub network_files: Vec<String>,
    /// Whether the memory controller accounts swap (`memory.memsw.*` on cgroup v1), so that the
    /// memory+swap limit can be set.
    pub swap_limit: bool,
}

/// Builds the runtime spec of a container.
pub fn build(p: &SpecParams<'_>, host: &HostFacts) -> Result<Spec, String> {
    let image = match p.root {
        ContainerRoot::Rootfs { image, .. } => image.as_ref(),
        ContainerRoot::Chroot { .. } => None,
    };
    let (root_path, readonly) = match p.root {
        ContainerRoot::Chroot { task_dir } => (task_dir.clone(), false),
        ContainerRoot::Rootfs { path, readonly, .. } => (path.clone(), *readonly),
    };
    if !root_path.is_absolute() {
        return Err(format!(
            "the container's root {} is not an absolute path",
            root_path.display()
        ));
    }

    let args = command(p.command, image)?;
    let user_spec = p
        .user
        .map(str::to_owned)
        .or_else(|| image.and_then(|i| i.user.clone()))
        .filter(|u| !u.is_empty());
    let (user, home) = match &user_spec {
        Some(spec) => resolve_user(spec, host.passwd.as_deref(), host.group.as_deref())?,
        None => (
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(err)?,
            None,
        ),
    };
    let env = environment(image, p.env, home.as_deref());
    let cwd = p
        .cwd
        .map(str::to_owned)
        .or_else(|| image.and_then(|i| i.working_dir.clone()))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    if !cwd.starts_with('/') {
        return Err(format!(
            "the working directory {cwd:?} is not an absolute path"
        ));
    }

    let caps: Capabilities = p.capabilities.iter().copied().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities)
        .no_new_privileges(true)
        .build()
        .map_err(err)?;

    let root = RootBuilder::default()
        .path(root_path)
        .readonly(readonly)
        .build()
        .map_err(err)?;

    let mut namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<Result<Vec<_>, _>>()
    .map_err(err)?;
    if let Some(netns) = p.netns {
        if !netns.is_absolute() {
            return Err(format!(
                "the network namespace {} is not an absolute path",
                netns.display()
            ));
        }
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(netns.to_path_buf())
                .build()
                .map_err(err)?,
        );
    }
    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(p.cgroups_path))
        .resources(resources(p.resources, host.swap_limit)?)
        .masked_paths(MASKED_PATHS.map(str::to_owned).to_vec())
        .readonly_paths(READONLY_PATHS.map(str::to_owned).to_vec())
        .build()
        .map_err(err)?;

    SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .process(process)
        .mounts(mounts(p, host, readonly)?)
        .linux(linux)
        .build()
        .map_err(err)
}

fn err(e: impl std::fmt::Display) -> String {
    format!("building the container spec: {e}")
}

/// argv: the task's command, or for an image without one, its entrypoint and cmd.
fn command(command: &[String], image: Option<&ImageConfig>) -> Result<Vec<String>, String> {
    let args: Vec<String> = if command.is_empty() {
        image
            .map(|i| i.entrypoint.iter().chain(&i.cmd).cloned().collect())
            .unwrap_or_default()
    } else {
        command.to_vec()
    };
    match args.first() {
        None => Err("no command to run (and the image has no entrypoint or cmd)".to_owned()),
        Some(a) if a.is_empty() => Err("the command is empty".to_owned()),
        Some(_) => Ok(args),
    }
}

/// The image's environment, overridden by the task's; `PATH` and `HOME` get defaults.
fn environment(
    image: Option<&ImageConfig>,
    task: &BTreeMap<String, String>,
    home: Option<&str>,
) -> Vec<String> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, key: &str, value: &str| match vars
        .iter_mut()
        .find(|(k, _)| k == key)
    {
        Some(slot) => slot.1 = value.to_owned(),
        None => vars.push((key.to_owned(), value.to_owned())),
    };
    for entry in image.map(|i| i.env.as_slice()).unwrap_or_default() {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        if !key.is_empty() {
            set(&mut vars, key, value);
        }
    }
    for (key, value) in task {
        set(&mut vars, key, value);
    }
    if !vars.iter().any(|(k, _)| k == "PATH") {
        vars.insert(0, ("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    if !vars.iter().any(|(k, _)| k == "HOME") {
        vars.push(("HOME".to_owned(), home.unwrap_or("/").to_owned()));
    }
    vars.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Resolves `uid[:gid]`, `name[:group]` (and mixes) against the root filesystem's
/// `/etc/passwd` and `/etc/group`. Returns the user and its home directory, when known.
pub fn resolve_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<(User, Option<String>), String> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(format!("invalid user {spec:?}"));
    }
    let passwd_entries: Vec<Vec<&str>> = passwd
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries
            .iter()
            .find(|f| f[2].parse::<u32>().ok() == Some(uid)),
        Err(_) => passwd_entries.iter().find(|f| f[0] == user_part),
    };
    let uid = match (user_part.parse::<u32>(), entry) {
        (Ok(uid), _) => uid,
        (Err(_), Some(f)) => f[2]
            .parse::<u32>()
            .map_err(|_| format!("invalid uid for user {user_part:?} in /etc/passwd"))?,
        (Err(_), None) => {
            return Err(format!(
                "user {user_part:?} not found in the container's /etc/passwd"
            ));
        }
    };
    let username = entry.map(|f| f[0].to_owned());
    let home = entry.map(|f| f[5].to_owned()).filter(|h| !h.is_empty());

    let group_entries: Vec<Vec<&str>> = group
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let gid = match group_part {
        Some("") => return Err(format!("invalid user {spec:?}")),
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse::<u32>().ok())
                .ok_or_else(|| format!("group {g:?} not found in the container's /etc/group"))?,
        },
        None => entry.and_then(|f| f[3].parse::<u32>().ok()).unwrap_or(0),
    };
    let mut additional: Vec<u32> = match &username {
        Some(name) => group_entries
            .iter()
            .filter(|f| f[3].split(',').any(|m| m.trim() == name))
            .filter_map(|f| f[2].parse::<u32>().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    additional.sort_unstable();
    additional.dedup();

    let mut builder = UserBuilder::default().uid(uid).gid(gid);
    if !additional.is_empty() {
        builder = builder.additional_gids(additional);
    }
    if let Some(name) = username {
        builder = builder.username(name);
    }
    Ok((builder.build().map_err(err)?, home))
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, String> {
    MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ(typ)
        .source(PathBuf::from(source))
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

fn bind(source: &Path, destination: &str, readonly: bool) -> Result<Mount, String> {
    let mode = if readonly { "ro" } else { "rw" };
    MountBuilder::default()
        .destination(PathBuf::from(destination))
        .typ("bind")
        .source(source.to_path_buf())
        .options(vec!["rbind".to_owned(), mode.to_owned()])
        .build()
        .map_err(err)
}

/// /proc, /dev (+ pts, shm, mqueue), a read-only /sys WITHOUT /sys/fs/cgroup (youki 0.7 would
/// mount the v1 hierarchies writable), the chroot's host directories, the host's network files,
/// a /tmp when the root is read-only, and the request's bind mounts.
fn mounts(p: &SpecParams<'_>, host: &HostFacts, readonly_root: bool) -> Result<Vec<Mount>, String> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
    ];
    let destinations: Vec<String> = p
        .mounts
        .iter()
        .map(|(_, d, _)| normalize(d))
        .collect::<Result<_, _>>()?;
    match p.root {
        ContainerRoot::Chroot { .. } => {
            for dir in &host.chroot_dirs {
                if !destinations.contains(dir) {
                    mounts.push(bind(Path::new(dir), dir, true)?);
                }
            }
        }
        ContainerRoot::Rootfs { .. } => {
            for file in &host.network_files {
                if !destinations.contains(file) {
                    mounts.push(bind(Path::new(file), file, true)?);
                }
            }
            if readonly_root && !destinations.iter().any(|d| d == "/tmp") {
                mounts.push(mount(
                    "/tmp",
                    "tmpfs",
                    "tmpfs",
                    &["nosuid", "nodev", "mode=1777"],
                )?);
            }
        }
    }
    for ((source, _, readonly), destination) in p.mounts.iter().zip(&destinations) {
        if !source.is_absolute() {
            return Err(format!(
                "mount source {} is not an absolute path",
                source.display()
            ));
        }
        mounts.push(bind(source, destination, *readonly)?);
    }
    Ok(mounts)
}

/// An absolute mount destination without `..`, `.` or repeated slashes.
fn normalize(destination: &str) -> Result<String, String> {
    if !destination.starts_with('/') {
        return Err(format!(
            "mount destination {destination:?} is not an absolute path"
        ));
    }
    let mut parts = Vec::new();
    for part in destination.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!("mount destination {destination:?} contains `..`"));
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("a mount cannot replace the container's root".to_owned());
    }
    Ok(format!("/{}", parts.join("/")))
}

fn device(typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access("rwm");
    if let Some(major) = major {
        b = b.major(major);
    }
    if let Some(minor) = minor {
        b = b.minor(minor);
    }
    b.build().expect("a device rule always builds")
}

/// Deny every device first, then allow the standard character devices.
pub fn device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::C;
    vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .expect("a device rule always builds"),
        device(C, Some(1), Some(3)), // null
        device(C, Some(1), Some(5)), // zero
        device(C, Some(1), Some(7)), // full
        device(C, Some(1), Some(8)), // random
        device(C, Some(1), Some(9)), // urandom
        device(C, Some(5), Some(0)), // tty
        device(C, Some(5), Some(2)), // ptmx
        device(C, Some(136), None),  // pts/*
    ]
}

const MB: i64 = 1024 * 1024;

fn resources(
    r: &TaskResources,
    swap_limit: bool,
) -> Result<oci_spec::runtime::LinuxResources, String> {
    let mut builder = LinuxResourcesBuilder::default().devices(device_rules());
    let soft = r.memory_mb as i64;
    let hard = r.memory_max_mb.map(|m| m as i64).unwrap_or(0).max(soft);
    if hard > 0 {
        let mut memory = LinuxMemoryBuilder::default().limit(hard * MB);
        if soft > 0 && hard > soft {
            memory = memory.reservation(soft * MB);
        }
        if swap_limit {
            memory = memory.swap(hard * MB);
        }
        builder = builder.memory(memory.build().map_err(err)?);
    }
    builder = builder.cpu(
        LinuxCpuBuilder::default()
            .shares(r.cpu_mhz.max(2))
            .build()
            .map_err(err)?,
    );
    if r.pids_limit > 0 {
        builder = builder.pids(
            LinuxPidsBuilder::default()
                .limit(r.pids_limit as i64)
                .build()
                .map_err(err)?,
        );
    }
    builder.build().map_err(err)
}

#[cfg(test)]
mod tests;
