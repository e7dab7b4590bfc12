//! Orphaned containers at agent start (youki trap 4): an executor that died between creating
//! and starting its container leaves an init blocked forever, with its cgroups and state. A
//! container is kept while some process still runs an executor for its task directory (the
//! bundle's parent); every other one is deleted.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Task directories named by running executors' command lines (`--task-dir DIR`).
fn live_executor_task_dirs() -> HashSet<PathBuf> {
    let mut dirs = HashSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return dirs;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        dirs.extend(task_dir_of(&cmdline));
    }
    dirs
}

/// The `--task-dir` of an executor's NUL-separated command line.
fn task_dir_of(cmdline: &[u8]) -> Option<PathBuf> {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    if !args.iter().any(|a| *a == b"executor") {
        return None;
    }
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == b"--task-dir" {
            args.get(i + 1)
                .map(|d| PathBuf::from(String::from_utf8_lossy(d).as_ref()))
        } else {
            arg.strip_prefix(b"--task-dir=")
                .map(|d| PathBuf::from(String::from_utf8_lossy(d).as_ref()))
        }
    })
}

/// The task directory of a container: the parent of the bundle its state records.
fn container_task_dir(state_root: &Path, id: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(state_root.join(id).join("state.json")).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    let bundle = PathBuf::from(state["bundle"].as_str()?);
    bundle.parent().map(Path::to_path_buf)
}

/// Deletes the containers under `state_root` that no running executor owns; returns their
/// ids. Call before any new task starts.
pub fn cleanup(state_root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_root) else {
        return Vec::new();
    };
    let live = live_executor_task_dirs();
    let keep: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| container_task_dir(state_root, id).is_some_and(|dir| live.contains(&dir)))
        .collect();
    crate::container::cleanup_orphans(state_root, &keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_dirs_come_from_executor_command_lines() {
        let cmd = b"/usr/bin/caravan\0executor\0--task-dir\0/data/alloc/u1/web\0";
        assert_eq!(task_dir_of(cmd), Some(PathBuf::from("/data/alloc/u1/web")));
        let cmd = b"/usr/bin/caravan\0executor\0--task-dir=/d/t\0";
        assert_eq!(task_dir_of(cmd), Some(PathBuf::from("/d/t")));
        assert_eq!(task_dir_of(b"/bin/sleep\0--task-dir\0/x\0"), None);
    }

    #[test]
    fn containers_map_to_the_parent_of_their_bundle() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("c1")).unwrap();
        std::fs::write(
            root.path().join("c1/state.json"),
            r#"{"id":"c1","bundle":"/data/alloc/u1/web/bundle"}"#,
        )
        .unwrap();
        assert_eq!(
            container_task_dir(root.path(), "c1"),
            Some(PathBuf::from("/data/alloc/u1/web"))
        );
        assert_eq!(container_task_dir(root.path(), "missing"), None);
    }
}
