//! Deleting a stopped container with its cgroup manager built beforehand.
//!
//! libcontainer's `delete` builds a cgroup manager first, and on a cgroup v1 host that parses
//! `/proc/self/mountinfo` once per hierarchy: milliseconds spent after the task exited, before
//! its end can be reported. The executor builds the manager while the task runs and, once the
//! init has exited and been reaped, does what libcontainer's `delete` does for a stopped
//! container without hooks: kill what is left in its cgroups, remove them, remove its state
//! directory.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use libcgroups::common::{AnyCgroupManager, CgroupConfig, CgroupManager, create_cgroup_manager};

use super::run::valid_id;

/// A container's cgroup manager and state directory, ready to be removed.
pub struct PreparedDelete {
    id: String,
    manager: AnyCgroupManager,
    state_dir: PathBuf,
}

impl std::fmt::Debug for PreparedDelete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedDelete")
            .field("id", &self.id)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl PreparedDelete {
    /// Builds the cgroup manager of the container `id` (state under `state_root`) whose spec
    /// put it at `cgroups_path`.
    pub fn new(state_root: &Path, id: &str, cgroups_path: &str) -> Result<Self, String> {
        valid_id(id)?;
        let manager = create_cgroup_manager(CgroupConfig {
            cgroup_path: PathBuf::from(cgroups_path),
            systemd_cgroup: false,
            container_name: id.to_string(),
        })
        .map_err(|e| format!("cgroup manager of container {id}: {e}"))?;
        Ok(Self {
            id: id.to_string(),
            manager,
            state_dir: state_root.join(id),
        })
    }

    /// Kills what is left in the container's cgroups, removes them (the leaf only) and its
    /// state. Call once its init has exited and been reaped.
    pub fn delete(self) -> Result<(), String> {
        self.manager
            .remove()
            .map_err(|e| format!("removing the cgroups of container {}: {e}", self.id))?;
        match std::fs::remove_dir_all(&self.state_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("removing {}: {e}", self.state_dir.display())),
        }
    }
}
