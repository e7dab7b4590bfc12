//! Reading a container's cgroup: OOM-kill detection on cgroup v1 (`memory.oom_control`) and v2
//! (`memory.events`), and the swap accounting fact the spec needs.

use std::path::{Path, PathBuf};

/// Where the cgroup hierarchy holding the memory controller is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryHierarchy {
    /// A cgroup v1 hierarchy with the `memory` controller (which libcgroups uses, also on a
    /// hybrid host).
    V1(PathBuf),
    /// The unified (v2) hierarchy.
    V2(PathBuf),
}

/// Where the cgroup v1 hierarchy of `controller` is mounted, if there is one.
pub fn v1_hierarchy(controller: &str) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    v1_hierarchy_from(&mountinfo, controller)
}

/// Parses mountinfo for a v1 `cgroup` mount whose super options name `controller`.
pub fn v1_hierarchy_from(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1)?;
        (fstype == "cgroup" && super_options.split(',').any(|o| o == controller))
            .then(|| unescape(mount_point).into())
    })
}

/// Devices libcgroups 0.7 always allows on cgroup v1, after the spec's rules, that a task
/// does not need: tun/tap (`/dev/net/tun`).
pub const REVOKED_DEVICES: [&str; 1] = ["c 10:200 rwm"];

/// Denies [`REVOKED_DEVICES`] in the container's v1 devices cgroup; call after the container
/// is created and before it starts. A no-op on cgroup v2.
pub fn revoke_default_devices(cgroups_path: &str) -> Result<(), String> {
    let Some(root) = v1_hierarchy("devices") else {
        return Ok(());
    };
    let file = dir(&root, cgroups_path).join("devices.deny");
    for rule in REVOKED_DEVICES {
        std::fs::write(&file, rule).map_err(|e| format!("writing {}: {e}", file.display()))?;
    }
    Ok(())
}

/// Finds the memory hierarchy from `/proc/self/mountinfo`.
pub fn memory_hierarchy() -> Option<MemoryHierarchy> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    memory_hierarchy_from(&mountinfo)
}

/// Parses mountinfo: a v1 `cgroup` mount whose super options name `memory` wins over a
/// `cgroup2` mount (the v2 one on a hybrid host has no controllers).
pub fn memory_hierarchy_from(mountinfo: &str) -> Option<MemoryHierarchy> {
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let super_options = right.nth(1).unwrap_or_default();
        match fstype {
            "cgroup" if super_options.split(',').any(|o| o == "memory") => {
                return Some(MemoryHierarchy::V1(unescape(mount_point).into()));
            }
            "cgroup2" if v2.is_none() => v2 = Some(unescape(mount_point).into()),
            _ => {}
        }
    }
    v2.map(MemoryHierarchy::V2)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a flat keyed cgroup file (`key value` per line).
pub fn flat_keyed(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The directory of `cgroups_path` in `hierarchy`.
fn dir(hierarchy: &Path, cgroups_path: &str) -> PathBuf {
    hierarchy.join(cgroups_path.trim_start_matches('/'))
}

/// Whether the OOM killer killed a process of the cgroup: `oom_kill N` with N > 0 in v1's
/// `memory.oom_control` (kernel ≥ 4.13) or v2's `memory.events`.
pub fn oom_killed(cgroups_path: &str) -> bool {
    let file = match memory_hierarchy() {
        Some(MemoryHierarchy::V1(root)) => dir(&root, cgroups_path).join("memory.oom_control"),
        Some(MemoryHierarchy::V2(root)) => dir(&root, cgroups_path).join("memory.events"),
        None => return false,
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|c| flat_keyed(&c, "oom_kill"))
        .is_some_and(|n| n > 0)
}

/// Whether a memory+swap limit can be set: v1 needs swap accounting (`memory.memsw.*`); v2
/// always has `memory.swap.max` when the memory controller is enabled.
pub fn swap_limit_supported() -> bool {
    match memory_hierarchy() {
        Some(MemoryHierarchy::V1(root)) => root.join("memory.memsw.limit_in_bytes").exists(),
        Some(MemoryHierarchy::V2(_)) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_memory_hierarchy() {
        assert_eq!(
            memory_hierarchy_from(HYBRID),
            Some(MemoryHierarchy::V1("/sys/fs/cgroup/memory".into()))
        );
        let unified = "25 20 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            memory_hierarchy_from(unified),
            Some(MemoryHierarchy::V2("/sys/fs/cgroup".into()))
        );
        let escaped = "35 31 0:32 / /mnt/cg\\040mem rw - cgroup cgroup rw,memory,cpu\n";
        assert_eq!(
            memory_hierarchy_from(escaped),
            Some(MemoryHierarchy::V1("/mnt/cg mem".into()))
        );
        assert_eq!(
            memory_hierarchy_from("1 0 0:1 / / rw - ext4 /dev/sda rw\n"),
            None
        );
        assert_eq!(
            v1_hierarchy_from(HYBRID, "cpu"),
            Some("/sys/fs/cgroup/cpu".into())
        );
        assert_eq!(v1_hierarchy_from(HYBRID, "devices"), None);
    }

    #[test]
    fn parses_flat_keyed_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(flat_keyed(v1, "oom_kill"), Some(2));
        assert_eq!(flat_keyed(v1, "oom_kill_disable"), Some(0));
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(flat_keyed(v2, "oom_kill"), Some(1));
        assert_eq!(flat_keyed("", "oom_kill"), None);
    }

    #[test]
    fn absent_cgroup_is_not_oom_killed() {
        assert!(!oom_killed("/caravan-test-does-not-exist/x"));
    }
}
