//! Control groups: `os.cgroups.version` and `unique.cgroup.mountpoint`.

use std::path::{Path, PathBuf};

use super::mounts::{Mount, parse_mounts};
use super::{Fingerprint, read_text};

/// The conventional cgroup root.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How cgroups are mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only v1 controller hierarchies.
    V1,
    /// v1 controllers plus a cgroup2 hierarchy aside (`/sys/fs/cgroup/unified`).
    Hybrid,
    /// The unified hierarchy only.
    V2,
}

impl CgroupMode {
    /// Value of `os.cgroups.version`: a hybrid system is reported as `1`, as Nomad does,
    /// since its controllers are v1 ones.
    pub fn attribute(self) -> &'static str {
        match self {
            CgroupMode::V1 | CgroupMode::Hybrid => "1",
            CgroupMode::V2 => "2",
        }
    }
}

/// Detected cgroup setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupInfo {
    /// v1, hybrid or v2.
    pub mode: CgroupMode,
    /// Root of the hierarchies: the cgroup2 mount for v2, the parent of the v1 controller
    /// mounts for v1 and hybrid.
    pub mountpoint: PathBuf,
}

/// Detects the cgroup setup from the text of `/proc/mounts`.
pub fn detect_cgroups(mounts: &str) -> Option<CgroupInfo> {
    let mounts = parse_mounts(mounts);
    let v2: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    let v1: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    if let Some(unified) = v2.iter().find(|m| m.target == Path::new(CGROUP_ROOT)) {
        return Some(CgroupInfo {
            mode: CgroupMode::V2,
            mountpoint: unified.target.clone(),
        });
    }
    if let Some(first) = v1.first() {
        let mountpoint = first
            .target
            .parent()
            .map_or_else(|| first.target.clone(), Path::to_path_buf);
        let mode = if v2.is_empty() {
            CgroupMode::V1
        } else {
            CgroupMode::Hybrid
        };
        return Some(CgroupInfo { mode, mountpoint });
    }
    v2.first().map(|m| CgroupInfo {
        mode: CgroupMode::V2,
        mountpoint: m.target.clone(),
    })
}

pub(super) fn collect(fp: &mut Fingerprint) {
    let detected = read_text("/proc/self/mounts")
        .or_else(|| read_text("/proc/mounts"))
        .and_then(|t| detect_cgroups(&t))
        .or_else(|| {
            // No mount table: a unified hierarchy still shows its root controllers file.
            Path::new(CGROUP_ROOT)
                .join("cgroup.controllers")
                .exists()
                .then(|| CgroupInfo {
                    mode: CgroupMode::V2,
                    mountpoint: PathBuf::from(CGROUP_ROOT),
                })
        });
    match detected {
        Some(info) => {
            fp.set("os.cgroups.version", info.mode.attribute());
            fp.set("unique.cgroup.mountpoint", info.mountpoint.display());
        }
        None => tracing::debug!("fingerprint: no cgroup hierarchy found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0\n\
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n\
cgroup /sys/fs/cgroup/systemd cgroup rw,nosuid,nodev,noexec,relatime,xattr,name=systemd 0 0\n\
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0\n\
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0\n";

    const V2: &str = "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n\
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0\n";

    const V1: &str = "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n\
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n\
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n";

    #[test]
    fn fingerprint_cgroup_hybrid_is_v1() {
        let info = detect_cgroups(HYBRID).unwrap();
        assert_eq!(info.mode, CgroupMode::Hybrid);
        assert_eq!(info.mode.attribute(), "1");
        assert_eq!(info.mountpoint, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn fingerprint_cgroup_v2() {
        let info = detect_cgroups(V2).unwrap();
        assert_eq!(info.mode, CgroupMode::V2);
        assert_eq!(info.mode.attribute(), "2");
        assert_eq!(info.mountpoint, Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn fingerprint_cgroup_v1_and_none() {
        let info = detect_cgroups(V1).unwrap();
        assert_eq!(info.mode, CgroupMode::V1);
        assert_eq!(info.mountpoint, Path::new("/sys/fs/cgroup"));
        assert_eq!(detect_cgroups("/dev/sda1 / ext4 rw 0 0\n"), None);
    }
}
