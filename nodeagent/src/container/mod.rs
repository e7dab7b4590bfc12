//! Containers through youki `libcontainer`, for the `exec` and `oci` drivers. Runs inside the
//! per-task executor process only (never in the agent: see the traps in ARCHITECTURE.md).
//!
//! CONTRACT: the executor calls these functions; change their signatures only together.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::driver::TaskResources;

pub mod cgroup;
mod delete;
mod orphans;
mod run;
pub mod seccomp;
pub mod spec;
mod workload;

pub use delete::PreparedDelete;
pub use run::host_facts;

/// What to run in a container.
#[derive(Debug)]
pub struct ContainerRequest {
    /// Container id, unique on the node (`<alloc-id>-<task>`), valid for libcontainer.
    pub id: String,
    /// libcontainer's state root (absolute), e.g. `<data>/containers`.
    pub state_root: PathBuf,
    /// Directory the bundle (`config.json`) is written to, e.g. `<task_dir>/bundle`.
    pub bundle_dir: PathBuf,
    /// Absolute cgroups path, e.g. `/caravan/<alloc-id>/<task>`.
    pub cgroups_path: String,
    pub root: ContainerRoot,
    /// `argv[0]` and the arguments; for `oci`, empty means the image's entrypoint + cmd.
    pub command: Vec<String>,
    /// Environment (added to the image's for `oci`).
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container; `None` means the image's or `/`.
    pub cwd: Option<String>,
    /// `uid[:gid]` or a user name known to the root filesystem's /etc/passwd; `None` means the
    /// image's user or root.
    pub user: Option<String>,
    pub resources: TaskResources,
    /// Host directories mounted into the container (source, destination inside, read-only).
    pub mounts: Vec<(PathBuf, String, bool)>,
    /// A network namespace (a bind-mounted `/proc/<pid>/ns/net`) to join; `None` shares the
    /// host's network.
    pub netns: Option<PathBuf>,
    /// The capabilities of its process (bounding, effective, permitted).
    pub capabilities: Vec<oci_spec::runtime::Capability>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The root filesystem of a container.
#[derive(Debug, Clone)]
pub enum ContainerRoot {
    /// `exec`: the task directory becomes `/`, with the host's `/bin`, `/lib`, `/lib64`,
    /// `/usr`, `/etc`, `/sbin` bind-mounted read-only (those that exist).
    Chroot { task_dir: PathBuf },
    /// `oci`: an unpacked root filesystem (shared read-only by every container of the image
    /// unless `readonly` is false) and the image's config, when there is one.
    Rootfs {
        path: PathBuf,
        image: Option<ImageConfig>,
        readonly: bool,
    },
}

/// The parts of an OCI image configuration a container uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// A created and started container.
#[derive(Debug)]
pub struct Started {
    /// Pid of the container's init, a direct child of the calling process.
    pub pid: i32,
}

/// Creates and starts a container. Serialised process-wide (libcontainer is not thread-safe).
///
/// Writes `bundle_dir/config.json` from [`spec::build`], then creates and starts the container
/// (stdin is `/dev/null`); its init installs the [`seccomp`] filter for the spec's capabilities
/// right before executing the command. A leftover state directory with the same id whose init
/// is gone is deleted first. On failure nothing is left behind (state, cgroups, init).
///
/// Side effects on the caller (libcontainer's): it becomes non-dumpable, and its working
/// directory changes during the call (restored before returning). Call it from one thread of a
/// small process (the executor), never from an async worker thread.
pub fn create_and_start(req: ContainerRequest) -> Result<Started, String> {
    run::create_and_start(req)
}

/// Whether the kernel's OOM killer killed a process of the container's cgroup. Call after the
/// init exited and before [`delete`].
pub fn oom_killed(cgroups_path: &str) -> bool {
    cgroup::oom_killed(cgroups_path)
}

/// Deletes the container's state and cgroups (after its init exited or to clean up); kills
/// what still runs in it. An absent container is Ok. Only the cgroup leaf is removed.
pub fn delete(state_root: &Path, id: &str) -> Result<(), String> {
    run::delete(state_root, id)
}

/// Prepares deleting the container `id` once its init has exited: builds its cgroup manager
/// now (a few milliseconds on cgroup v1), so that [`PreparedDelete::delete`] only removes.
pub fn prepare_delete(
    state_root: &Path,
    id: &str,
    cgroups_path: &str,
) -> Result<PreparedDelete, String> {
    PreparedDelete::new(state_root, id, cgroups_path)
}

/// Deletes every container under `state_root` whose id is not in `keep` (left over by an
/// executor that died between create and start), killing what still runs in them. Returns the
/// ids deleted; failures are logged and skipped.
pub fn cleanup_orphans(state_root: &Path, keep: &[String]) -> Vec<String> {
    orphans::cleanup_orphans(state_root, keep)
}
