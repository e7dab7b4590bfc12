//! Storage of the data dir: `unique.storage.volume`, `unique.storage.bytestotal`,
//! `unique.storage.bytesfree` and the node's `disk_mb`.

use std::path::{Path, PathBuf};

use nix::sys::statvfs::statvfs;

use super::mounts::{mount_of, parse_mounts};
use super::{Fingerprint, read_text};

/// The nearest existing ancestor of `path` (itself included), canonicalized.
fn existing_ancestor(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    absolute.ancestors().find_map(|p| p.canonicalize().ok())
}

/// `statvfs` counters are `c_ulong`/`fsblkcnt_t`, whose width depends on the target.
fn widen<T: TryInto<u64>>(value: T) -> u64 {
    value.try_into().unwrap_or(u64::MAX)
}

pub(super) fn collect(fp: &mut Fingerprint, data_dir: &Path) {
    let Some(dir) = existing_ancestor(data_dir) else {
        tracing::debug!(data_dir = %data_dir.display(), "fingerprint: no existing ancestor of the data dir");
        return;
    };
    match read_text("/proc/self/mounts").or_else(|| read_text("/proc/mounts")) {
        Some(text) => match mount_of(&parse_mounts(&text), &dir) {
            Some(mount) => fp.set("unique.storage.volume", &mount.source),
            None => tracing::debug!(dir = %dir.display(), "fingerprint: data dir mount not found"),
        },
        None => tracing::debug!("fingerprint: mounts unreadable, no storage volume"),
    }
    match statvfs(&dir) {
        Ok(st) => {
            let fragment = widen(st.fragment_size());
            let total = widen(st.blocks()).saturating_mul(fragment);
            let free = widen(st.blocks_available()).saturating_mul(fragment);
            fp.set("unique.storage.bytestotal", total);
            fp.set("unique.storage.bytesfree", free);
            fp.resources.disk_mb = free / (1024 * 1024);
        }
        Err(err) => tracing::debug!(dir = %dir.display(), %err, "fingerprint: statvfs failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_storage_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let found = existing_ancestor(&dir.path().join("a/b/c")).unwrap();
        assert_eq!(found, dir.path().canonicalize().unwrap());
    }
}
