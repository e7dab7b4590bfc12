//! Clean-up of the tasks a sandbox's node agent started. Tasks are owned by executor processes
//! in their own process groups (so that they survive an agent restart); killing the agent
//! leaves them running, so a sandbox kills them itself when it is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn kill(target: &str) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", target])
        .stderr(Stdio::null())
        .status();
}

/// Whether process `pid` runs (exists and is not a zombie).
pub fn pid_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            // The state follows the parenthesised command name.
            s.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

/// Every `executor.state.json` below `<data_dir>/alloc` (`<alloc>/executor/<task>/`).
fn executor_states(data_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(allocs) = fs::read_dir(data_dir.join("alloc")) else {
        return out;
    };
    for alloc in allocs.flatten() {
        let Ok(tasks) = fs::read_dir(alloc.path().join("executor")) else {
            continue;
        };
        for task in tasks.flatten() {
            let state = task.path().join("executor.state.json");
            if state.exists() {
                out.push(state);
            }
        }
    }
    out
}

/// Pids of processes whose command line mentions `needle` (executors name their task dir).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Kills every executor and task started under `data_dir`, and removes the tasks' (empty)
/// cgroups. Best effort; never panics.
pub fn kill_tasks_under(data_dir: &Path) {
    let needle = data_dir.join("alloc").display().to_string();
    for pid in processes_mentioning(&needle) {
        kill(&pid.to_string());
    }
    for state in executor_states(data_dir) {
        let Ok(text) = fs::read_to_string(&state) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if let Some(pid) = value["taskPid"].as_u64().filter(|p| *p > 1) {
            // raw_exec tasks lead their own process group; a container's init takes its pid
            // namespace with it.
            kill(&format!("-{pid}"));
            kill(&pid.to_string());
        }
    }
    let Ok(allocs) = fs::read_dir(data_dir.join("alloc")) else {
        return;
    };
    let alloc_ids: Vec<String> = allocs
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let Ok(controllers) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for controller in controllers.flatten() {
        for id in &alloc_ids {
            let dir = controller.path().join("caravan").join(id);
            if let Ok(tasks) = fs::read_dir(&dir) {
                for task in tasks.flatten() {
                    if task.path().is_dir() {
                        let _ = fs::remove_dir(task.path());
                    }
                }
                let _ = fs::remove_dir(&dir);
            }
        }
    }
}

/// Sends `signal` (e.g. `INT`) to `child` and waits for it to exit.
pub fn signal_and_wait(
    child: &mut std::process::Child,
    signal: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()?;
    Ok(child.wait()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(pid_alive(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
