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
}

/// What [`build`] needs to know about the machine and the root filesystem; gathered by
/// [`super::run`] before building.
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

    let caps: Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
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

    let linux = LinuxBuilder::default()
        .namespaces(
            [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Mount,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
            ]
            .into_iter()
            .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?,
        )
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
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nnogroup:x:65534:\n";

    fn params<'a>(
        root: &'a ContainerRoot,
        command: &'a [String],
        env: &'a BTreeMap<String, String>,
        resources: &'a TaskResources,
        mounts: &'a [(PathBuf, String, bool)],
    ) -> SpecParams<'a> {
        SpecParams {
            root,
            command,
            env,
            cwd: None,
            user: None,
            resources,
            mounts,
            cgroups_path: "/caravan/a1/web",
        }
    }

    fn host() -> HostFacts {
        HostFacts {
            passwd: Some(PASSWD.to_owned()),
            group: Some(GROUP.to_owned()),
            chroot_dirs: vec!["/bin".into(), "/usr".into(), "/etc".into()],
            network_files: vec!["/etc/resolv.conf".into()],
            swap_limit: true,
        }
    }

    fn image_root(readonly: bool) -> ContainerRoot {
        ContainerRoot::Rootfs {
            path: "/var/lib/caravan/images/busybox/abc/rootfs".into(),
            image: Some(ImageConfig {
                entrypoint: vec!["/bin/entry".into()],
                cmd: vec!["serve".into(), "--port=80".into()],
                env: vec!["PATH=/bin:/usr/bin".into(), "LANG=C".into()],
                working_dir: Some("/srv".into()),
                user: Some("app".into()),
            }),
            readonly,
        }
    }

    fn destinations(spec: &Spec) -> Vec<String> {
        spec.mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect()
    }

    #[test]
    fn chroot_spec() {
        let root = ContainerRoot::Chroot {
            task_dir: "/data/alloc/a1/web".into(),
        };
        let command = vec!["/bin/sh".to_owned(), "-c".to_owned(), "echo hi".to_owned()];
        let env = BTreeMap::from([("FOO".to_owned(), "bar".to_owned())]);
        let resources = TaskResources {
            cpu_mhz: 500,
            memory_mb: 64,
            memory_max_mb: Some(128),
            pids_limit: 100,
        };
        let mounts = vec![(
            PathBuf::from("/data/alloc/a1/alloc"),
            "/alloc".to_owned(),
            false,
        )];
        let spec = build(&params(&root, &command, &env, &resources, &mounts), &host()).unwrap();

        let root = spec.root().as_ref().unwrap();
        assert_eq!(root.path(), Path::new("/data/alloc/a1/web"));
        assert_eq!(root.readonly(), Some(false));

        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &command);
        assert_eq!(process.cwd(), Path::new("/"));
        assert_eq!(process.user().uid(), 0);
        assert_eq!(process.no_new_privileges(), Some(true));
        assert_eq!(process.oom_score_adj(), None);
        let env = process.env().as_ref().unwrap();
        assert!(env.contains(&format!("PATH={DEFAULT_PATH}")));
        assert!(env.contains(&"FOO=bar".to_owned()));
        assert!(env.contains(&"HOME=/".to_owned()));
        let caps = process.capabilities().as_ref().unwrap();
        assert!(
            caps.bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::Chown)
        );
        assert!(
            !caps
                .bounding()
                .as_ref()
                .unwrap()
                .contains(&Capability::SysAdmin)
        );

        let dest = destinations(&spec);
        for d in [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
        ] {
            assert!(dest.contains(&d.to_owned()), "{d} missing in {dest:?}");
        }
        assert!(!dest.iter().any(|d| d.starts_with("/sys/fs/cgroup")));
        for d in ["/bin", "/usr", "/etc", "/alloc"] {
            assert!(dest.contains(&d.to_owned()), "{d} missing in {dest:?}");
        }
        assert!(!dest.contains(&"/etc/resolv.conf".to_owned()));
        assert!(!dest.contains(&"/tmp".to_owned()));
        let usr = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/usr"))
            .unwrap();
        assert_eq!(usr.source().as_deref(), Some(Path::new("/usr")));
        assert!(usr.options().as_ref().unwrap().contains(&"ro".to_owned()));
        let alloc = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/alloc"))
            .unwrap();
        assert!(alloc.options().as_ref().unwrap().contains(&"rw".to_owned()));

        let linux = spec.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/caravan/a1/web"))
        );
        let ns: Vec<_> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        assert_eq!(ns.len(), 4);
        assert!(!ns.contains(&LinuxNamespaceType::Network));
        assert!(!ns.contains(&LinuxNamespaceType::Cgroup));
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_owned())
        );
        assert!(
            linux
                .readonly_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/sys".to_owned())
        );

        let res = linux.resources().as_ref().unwrap();
        let devices = res.devices().as_ref().unwrap();
        assert!(!devices[0].allow());
        assert_eq!(devices[0].to_string(), "a *:* rwm");
        assert!(devices[1..].iter().all(|d| d.allow()));
        assert!(devices.iter().any(|d| d.to_string() == "c 1:3 rwm"));
        assert!(devices.iter().any(|d| d.to_string() == "c 136:* rwm"));
        let memory = res.memory().as_ref().unwrap();
        assert_eq!(memory.limit(), Some(128 * MB));
        assert_eq!(memory.reservation(), Some(64 * MB));
        assert_eq!(memory.swap(), Some(128 * MB));
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(500));
        assert_eq!(res.pids().as_ref().unwrap().limit(), 100);

        // And it serialises as runtimes expect.
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["ociVersion"], OCI_VERSION);
        assert_eq!(json["linux"]["cgroupsPath"], "/caravan/a1/web");
        assert!(json["process"].get("oomScoreAdj").is_none());
    }

    #[test]
    fn image_spec_uses_the_image_config() {
        let root = image_root(true);
        let env = BTreeMap::from([("LANG".to_owned(), "C.UTF-8".to_owned())]);
        let resources = TaskResources {
            cpu_mhz: 0,
            memory_mb: 16,
            memory_max_mb: None,
            pids_limit: 0,
        };
        let mut h = host();
        h.swap_limit = false;
        let spec = build(&params(&root, &[], &env, &resources, &[]), &h).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(
            process.args().as_ref().unwrap(),
            &["/bin/entry", "serve", "--port=80"]
        );
        assert_eq!(process.cwd(), Path::new("/srv"));
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.user().gid(), 1000);
        assert_eq!(process.user().additional_gids().as_deref(), Some(&[10][..]));
        assert_eq!(
            process.env().as_ref().unwrap(),
            &["PATH=/bin:/usr/bin", "LANG=C.UTF-8", "HOME=/home/app"]
        );
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let dest = destinations(&spec);
        assert!(dest.contains(&"/etc/resolv.conf".to_owned()));
        assert!(dest.contains(&"/tmp".to_owned()));
        assert!(!dest.contains(&"/usr".to_owned()));
        let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        let memory = res.memory().as_ref().unwrap();
        assert_eq!(memory.limit(), Some(16 * MB));
        assert_eq!(memory.reservation(), None);
        assert_eq!(memory.swap(), None);
        assert_eq!(res.cpu().as_ref().unwrap().shares(), Some(2));
        assert!(res.pids().is_none());
    }

    #[test]
    fn task_settings_override_the_image() {
        let root = image_root(false);
        let command = vec!["sleep".to_owned(), "5".to_owned()];
        let env = BTreeMap::new();
        let resources = TaskResources::default();
        let mut p = params(&root, &command, &env, &resources, &[]);
        p.cwd = Some("/work");
        p.user = Some("65534:0");
        let spec = build(&p, &host()).unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &command);
        assert_eq!(process.cwd(), Path::new("/work"));
        assert_eq!(process.user().uid(), 65534);
        assert_eq!(process.user().gid(), 0);
        assert!(!destinations(&spec).contains(&"/tmp".to_owned()));
        let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert!(res.memory().is_none());
    }

    #[test]
    fn errors() {
        let root = ContainerRoot::Rootfs {
            path: "/images/x/rootfs".into(),
            image: None,
            readonly: true,
        };
        let env = BTreeMap::new();
        let resources = TaskResources::default();
        let e = build(&params(&root, &[], &env, &resources, &[]), &host()).unwrap_err();
        assert!(e.contains("no command"), "{e}");

        let command = vec!["sh".to_owned()];
        let mut p = params(&root, &command, &env, &resources, &[]);
        p.user = Some("ghost");
        let e = build(&p, &host()).unwrap_err();
        assert!(e.contains("\"ghost\" not found"), "{e}");

        let bad = vec![(PathBuf::from("/x"), "/a/../etc".to_owned(), true)];
        let e = build(&params(&root, &command, &env, &resources, &bad), &host()).unwrap_err();
        assert!(e.contains(".."), "{e}");
        let bad = vec![(PathBuf::from("relative"), "/a".to_owned(), true)];
        assert!(build(&params(&root, &command, &env, &resources, &bad), &host()).is_err());

        let relative = ContainerRoot::Chroot {
            task_dir: "task".into(),
        };
        assert!(build(&params(&relative, &command, &env, &resources, &[]), &host()).is_err());
    }

    #[test]
    fn users() {
        let (u, home) = resolve_user("root", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid(), u.gid()), (0, 0));
        assert_eq!(home.as_deref(), Some("/root"));
        let (u, _) = resolve_user("1000", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid(), u.gid()), (1000, 1000));
        assert_eq!(u.username().as_deref(), Some("app"));
        let (u, home) = resolve_user("4242", None, None).unwrap();
        assert_eq!((u.uid(), u.gid(), home), (4242, 0, None));
        let (u, _) = resolve_user("app:nogroup", Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid(), u.gid()), (1000, 65534));
        assert_eq!(u.additional_gids().as_deref(), Some(&[10][..]));
        assert!(resolve_user("app:nope", Some(PASSWD), Some(GROUP)).is_err());
        assert!(resolve_user(":1", Some(PASSWD), Some(GROUP)).is_err());
        assert!(resolve_user("nobody", None, None).is_err());
    }
}
