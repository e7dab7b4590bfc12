//! Parser of `/proc/mounts`, shared by the storage and cgroup fingerprints.

use std::path::{Path, PathBuf};

/// One line of `/proc/mounts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// What is mounted: a device (`/dev/sda1`) or a pseudo name (`overlay`, `cgroup`).
    pub source: String,
    /// Where it is mounted.
    pub target: PathBuf,
    /// File system type (`ext4`, `cgroup`, `cgroup2`, …).
    pub fstype: String,
    /// Mount options, comma-separated.
    pub options: String,
}

/// Parses `/proc/mounts` (or `/proc/self/mounts`), undoing the octal escapes (`\040` = space).
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Mount {
                source: unescape(fields.next()?),
                target: PathBuf::from(unescape(fields.next()?)),
                fstype: fields.next()?.to_string(),
                options: fields.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// The mount holding `path` (an absolute, canonical path): the last mount whose target is
/// the longest prefix of it, as later mounts shadow earlier ones.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.target))
        .max_by_key(|(i, m)| (m.target.components().count(), *i))
        .map(|(_, m)| m)
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
        {
            out.push(b);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "sysfs /sys sysfs rw,nosuid 0 0\n/dev/sda1 / ext4 rw,relatime 0 0\n/dev/sdb1 /var/lib ext4 rw 0 0\n/dev/sdc1 /var/lib xfs rw 0 0\n/dev/sdd1 /mnt/my\\040disk ext4 rw 0 0\n";

    #[test]
    fn fingerprint_mounts_parse_and_lookup() {
        let mounts = parse_mounts(MOUNTS);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[4].target, Path::new("/mnt/my disk"));
        let of = |p: &str| mount_of(&mounts, Path::new(p)).map(|m| m.source.as_str());
        assert_eq!(of("/home/x"), Some("/dev/sda1"));
        assert_eq!(of("/var/lib/caravan"), Some("/dev/sdc1"));
        assert_eq!(of("/var/library"), Some("/dev/sda1"));
        assert_eq!(of("/mnt/my disk/data"), Some("/dev/sdd1"));
    }
}
