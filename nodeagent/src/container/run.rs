//! Creating, starting and deleting containers through libcontainer (the side-effecting half of
//! [`super`]; the spec itself is built by [`super::spec`]).

use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;

use super::seccomp::{self, Arch};
use super::spec::{self, CHROOT_DIRS, HostFacts, NETWORK_FILES, SpecParams};
use super::workload::Filtered;
use super::{ContainerRequest, ContainerRoot, Started, cgroup};

/// libcontainer's `build()` and `start()` `chdir()` the whole process (trap 1): one at a time.
static LIBCONTAINER: Mutex<()> = Mutex::new(());

/// Reads `<root>/<rel>` unless a component of it is a symbolic link (an image could point
/// `/etc/passwd` anywhere on the host).
fn read_in_root(root: &Path, rel: &[&str]) -> Option<String> {
    let mut path = root.to_path_buf();
    for part in rel {
        path.push(part);
        if path.symlink_metadata().ok()?.file_type().is_symlink() {
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// Whether `<root>/<rel>` may serve as a mount point: absent, or not a symbolic link.
fn plain_or_absent(root: &Path, rel: &[&str]) -> bool {
    let mut path = root.to_path_buf();
    for part in rel {
        path.push(part);
        match path.symlink_metadata() {
            Ok(m) if m.file_type().is_symlink() => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    true
}

/// Gathers the [`HostFacts`] the spec needs for this root.
pub fn host_facts(root: &ContainerRoot) -> HostFacts {
    let (passwd, group, network_files) = match root {
        ContainerRoot::Chroot { .. } => (
            std::fs::read_to_string("/etc/passwd").ok(),
            std::fs::read_to_string("/etc/group").ok(),
            Vec::new(),
        ),
        ContainerRoot::Rootfs { path, .. } => (
            read_in_root(path, &["etc", "passwd"]),
            read_in_root(path, &["etc", "group"]),
            NETWORK_FILES
                .iter()
                .filter(|f| Path::new(f).is_file())
                .filter(|f| {
                    let rel: Vec<&str> = f.trim_start_matches('/').split('/').collect();
                    plain_or_absent(path, &rel)
                })
                .map(|f| (*f).to_owned())
                .collect(),
        ),
    };
    HostFacts {
        passwd,
        group,
        chroot_dirs: CHROOT_DIRS
            .iter()
            .filter(|d| Path::new(d).is_dir())
            .map(|d| (*d).to_owned())
            .collect(),
        network_files,
        swap_limit: cgroup::swap_limit_supported(),
    }
}

/// Creates the chroot's mount points (`bin`, `usr`, …) in the task directory.
fn prepare_chroot(task_dir: &Path, host: &HostFacts) -> Result<(), String> {
    for dir in &host.chroot_dirs {
        let path = task_dir.join(dir.trim_start_matches('/'));
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a directory: cannot mount {dir} there",
                    path.display()
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir(&path)
                .map_err(|e| format!("creating {}: {e}", path.display()))?,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(())
}

fn absolute(what: &str, path: &Path) -> Result<(), String> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(format!("{what} {} is not an absolute path", path.display()))
    }
}

pub fn create_and_start(req: ContainerRequest) -> Result<Started, String> {
    absolute("the state root", &req.state_root)?;
    absolute("the bundle directory", &req.bundle_dir)?;
    if !req.cgroups_path.starts_with('/') {
        return Err(format!(
            "the cgroups path {:?} is not absolute",
            req.cgroups_path
        ));
    }
    let host = host_facts(&req.root);
    let params = SpecParams {
        root: &req.root,
        command: &req.command,
        env: &req.env,
        cwd: req.cwd.as_deref(),
        user: req.user.as_deref(),
        resources: &req.resources,
        mounts: &req.mounts,
        cgroups_path: &req.cgroups_path,
        netns: req.netns.as_deref(),
        capabilities: &req.capabilities,
    };
    let spec = spec::build(&params, &host)?;
    let filter = seccomp_program(&spec)?;
    if let ContainerRoot::Chroot { task_dir } = &req.root {
        prepare_chroot(task_dir, &host)?;
    }
    std::fs::create_dir_all(&req.bundle_dir)
        .map_err(|e| format!("creating {}: {e}", req.bundle_dir.display()))?;
    let config = req.bundle_dir.join("config.json");
    spec.save(&config)
        .map_err(|e| format!("writing {}: {e}", config.display()))?;
    std::fs::create_dir_all(&req.state_root)
        .map_err(|e| format!("creating {}: {e}", req.state_root.display()))?;
    remove_stopped_leftover(&req.state_root, &req.id)?;
    let stdin = File::open("/dev/null").map_err(|e| format!("opening /dev/null: {e}"))?;

    let _serial = LIBCONTAINER.lock().unwrap_or_else(|e| e.into_inner());
    let cwd = std::env::current_dir().ok();
    let mut created: Option<Container> = None;
    let result = (|| {
        let container = ContainerBuilder::new(req.id.clone(), SyscallType::default())
            .with_root_path(&req.state_root)
            .map_err(|e| e.to_string())?
            .with_stdin(stdin)
            .with_stdout(req.stdout)
            .with_stderr(req.stderr)
            .with_executor(Filtered::new(filter))
            .validate_id()
            .map_err(|e| e.to_string())?
            .as_init(&req.bundle_dir)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| format!("creating container {}: {e}", req.id))?;
        let container = created.insert(container);
        let pid = container
            .pid()
            .ok_or_else(|| format!("container {} has no init pid", req.id))?;
        cgroup::revoke_default_devices(&req.cgroups_path)?;
        container
            .start()
            .map_err(|e| format!("starting container {}: {e}", req.id))?;
        Ok(pid)
    })();
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    drop(_serial);

    match result {
        Ok(pid) => Ok(Started { pid: pid.as_raw() }),
        Err(e) => {
            // Kill and reap a created init, then remove the state and the cgroups.
            let pid = created.as_ref().and_then(Container::pid);
            let _ = delete(&req.state_root, &req.id);
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
            Err(e)
        }
    }
}

/// The seccomp filter for the capabilities the spec grants (its bounding set).
fn seccomp_program(spec: &oci_spec::runtime::Spec) -> Result<seccompiler::BpfProgram, String> {
    let arch = Arch::host().ok_or_else(|| {
        format!(
            "no seccomp filter for {}: containers need x86_64 or aarch64",
            std::env::consts::ARCH
        )
    })?;
    let caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().clone())
        .unwrap_or_default();
    seccomp::program(arch, &caps)
}

/// A state directory left with the same id by an earlier run (a restarted task reuses its id)
/// is removed when its init is gone; a live one is an error.
fn remove_stopped_leftover(state_root: &Path, id: &str) -> Result<(), String> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    match Container::load(dir.clone()) {
        Ok(c) if c.status() != ContainerStatus::Stopped => Err(format!(
            "container {id} already exists ({:?}) in {}",
            c.status(),
            state_root.display()
        )),
        _ => delete(state_root, id),
    }
}

/// A container id that names one directory under the state root.
pub fn valid_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(format!("invalid container id {id:?}"));
    }
    Ok(())
}

pub fn delete(state_root: &Path, id: &str) -> Result<(), String> {
    valid_id(id)?;
    let dir: PathBuf = state_root.join(id);
    match dir.symlink_metadata() {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
        Ok(_) => {}
    }
    match Container::load(dir.clone()) {
        Ok(mut container) => container
            .delete(true)
            .map_err(|e| format!("deleting container {id}: {e}")),
        // No readable state (died while being created): nothing libcontainer can clean.
        Err(load_err) => std::fs::remove_dir_all(&dir).map_err(|e| {
            format!(
                "container {id}: unreadable state ({load_err}), and removing {}: {e}",
                dir.display()
            )
        }),
    }
}
