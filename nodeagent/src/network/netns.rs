//! Named network namespaces: a new namespace kept alive by a bind mount of its
//! `/proc/thread-self/ns/net` on a file (as `ip netns add` does), and its removal. Blocking.

use std::io;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

/// Whether `path` is a mounted namespace.
pub fn exists(path: &Path) -> bool {
    use nix::sys::statfs::{NSFS_MAGIC, statfs};
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Creates a network namespace at `path` (its parent directory created if needed); a namespace
/// already there is kept.
pub fn create(path: &Path) -> io::Result<()> {
    if exists(path) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let target = path.to_path_buf();
    // `unshare` moves only the calling thread: a thread of its own, which ends right after.
    let made = std::thread::spawn(move || -> io::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(io::Error::from)
    })
    .join()
    .map_err(|_| io::Error::other("the namespace thread panicked"))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Removes the namespace at `path` (lazily: processes still inside keep it until they end) and
/// its file. Nothing there is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    if exists(path) {
        umount2(path, MntFlags::MNT_DETACH).map_err(io::Error::from)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
