//! Starting the task (a process group or a container), signalling it and collecting its exit,
//! inside the executor process.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Group, Pid, User};

use super::spec::{ContainerLaunch, Launch, ProcessLaunch, RootLaunch};
use crate::container::{self, ContainerRequest, ContainerRoot};
use crate::driver::ExitResult;

/// What kind of process the task is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `raw_exec`: the leader of its own process group.
    ProcessGroup,
    /// `exec`/`oci`: a container's init, a direct child of the executor.
    Container {
        state_root: std::path::PathBuf,
        id: String,
        cgroups_path: String,
    },
}

/// A started task and the read ends of its stdout and stderr.
#[derive(Debug)]
pub struct Started {
    pub pid: Pid,
    pub target: Target,
    pub stdout: File,
    pub stderr: File,
}

/// Starts the task. For containers this forks (libcontainer's `clone3`): call it while the
/// process has a single thread.
pub fn start(launch: &Launch) -> Result<Started, String> {
    match launch {
        Launch::Process(p) => start_process(p),
        Launch::Container(c) => start_container(c),
    }
}

fn start_process(p: &ProcessLaunch) -> Result<Started, String> {
    let mut command = Command::new(&p.program);
    command
        .args(&p.args)
        .current_dir(&p.cwd)
        .env_clear()
        .envs(&p.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(user) = &p.user {
        let (uid, gid) = resolve_user(user)?;
        command.uid(uid).gid(gid);
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("failed to start {:?}: {e}", p.program))?;
    let stdout = child.stdout.take().map(OwnedFd::from);
    let stderr = child.stderr.take().map(OwnedFd::from);
    let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
        unreachable!("stdout and stderr are piped");
    };
    // `Child` neither waits nor kills on drop: the pid is reaped by `wait_exit`.
    let pid = Pid::from_raw(child.id() as i32);
    Ok(Started {
        pid,
        target: Target::ProcessGroup,
        stdout: File::from(stdout),
        stderr: File::from(stderr),
    })
}

fn start_container(c: &ContainerLaunch) -> Result<Started, String> {
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
    let (stdout_read, stdout_write) = pipe()?;
    let (stderr_read, stderr_write) = pipe()?;
    let root = match &c.root {
        RootLaunch::Chroot { task_dir } => ContainerRoot::Chroot {
            task_dir: task_dir.clone(),
        },
        RootLaunch::Rootfs {
            path,
            image,
            readonly,
        } => ContainerRoot::Rootfs {
            path: path.clone(),
            image: image.clone(),
            readonly: *readonly,
        },
    };
    let request = ContainerRequest {
        id: c.id.clone(),
        state_root: c.state_root.clone(),
        bundle_dir: c.bundle_dir.clone(),
        cgroups_path: c.cgroups_path.clone(),
        root,
        command: c.command.clone(),
        env: c.env.clone(),
        cwd: c.cwd.clone(),
        user: c.user.clone(),
        resources: c.resources.clone(),
        mounts: c
            .mounts
            .iter()
            .map(|m| (m.source.clone(), m.destination.clone(), m.readonly))
            .collect(),
        netns: c.netns.clone(),
        capabilities: c.capabilities.clone(),
        stdout: stdout_write,
        stderr: stderr_write,
    };
    // The request (and the write ends with it) is dropped on return, so the pipes end when
    // the container's processes are gone.
    let started = container::create_and_start(request)
        .map_err(|e| format!("failed to start container {}: {e}", c.id))?;
    Ok(Started {
        pid: Pid::from_raw(started.pid),
        target: Target::Container {
            state_root: c.state_root.clone(),
            id: c.id.clone(),
            cgroups_path: c.cgroups_path.clone(),
        },
        stdout: File::from(stdout_read),
        stderr: File::from(stderr_read),
    })
}

/// `uid[:gid]` or `name[:group]`; a missing group is the user's primary group.
pub(crate) fn resolve_user(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let found = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(uid.into()).ok().flatten(),
        Err(_) => Some(
            User::from_name(user)
                .ok()
                .flatten()
                .ok_or_else(|| format!("unknown user {user:?}"))?,
        ),
    };
    let uid = found.as_ref().map_or_else(
        || user.parse::<u32>().unwrap_or_default(),
        |u| u.uid.as_raw(),
    );
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => Group::from_name(g)
                .ok()
                .flatten()
                .ok_or_else(|| format!("unknown group {g:?}"))?
                .gid
                .as_raw(),
        },
        None => found.map_or(uid, |u| u.gid.as_raw()),
    };
    Ok((uid, gid))
}

/// Sends signal number `signal` to the task.
pub fn signal(pid: Pid, target: &Target, signal: i32) -> Result<(), String> {
    let sig = Signal::try_from(signal).map_err(|_| format!("unknown signal {signal}"))?;
    let sent = match target {
        Target::ProcessGroup => killpg(pid, sig),
        Target::Container { .. } => kill(pid, sig),
    };
    sent.map_err(|e| format!("failed to send {sig} to {pid}: {e}"))
}

/// Blocks until the task's process exited, without reaping it: its pid (and process group)
/// cannot be reused until [`reap`].
pub fn wait_exit(pid: Pid) {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(Errno::EINTR) => continue,
            _ => return,
        }
    }
}

/// Reaps the exited task and describes its end.
pub fn reap(pid: Pid) -> ExitResult {
    loop {
        match waitpid(pid, None) {
            Err(Errno::EINTR) => continue,
            Ok(status) => return exit_result(status),
            Err(e) => {
                return ExitResult {
                    exit_code: -1,
                    error: Some(format!("waitpid({pid}): {e}")),
                    ..Default::default()
                };
            }
        }
    }
}

/// Reaps whatever other children exited (e.g. a process libcontainer forked); never blocks.
pub fn reap_strays() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
    }
}

/// Exit code and signal; a signal death reports `128 + signal` as the code, as shells do.
pub fn exit_result(status: WaitStatus) -> ExitResult {
    match status {
        WaitStatus::Exited(_, code) => ExitResult {
            exit_code: code,
            ..Default::default()
        },
        WaitStatus::Signaled(_, sig, _) => ExitResult {
            exit_code: 128 + sig as i32,
            signal: Some(sig as i32),
            ..Default::default()
        },
        other => ExitResult {
            exit_code: -1,
            error: Some(format!("unexpected wait status {other:?}")),
            ..Default::default()
        },
    }
}

/// Kills what is left of a raw_exec task's process group once its leader exited (as Nomad's
/// executor does). Call before [`reap`], while the group id cannot be reused.
pub fn kill_group(pid: Pid, target: &Target) -> Option<String> {
    if *target != Target::ProcessGroup {
        return None;
    }
    match killpg(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => None,
        Err(e) => Some(format!("failed to kill process group {pid}: {e}")),
    }
}

/// The container's deletion, prepared in a thread while the task runs (see
/// [`container::prepare_delete`]); nothing for a process group.
#[derive(Debug, Default)]
pub struct Cleanup(Option<std::thread::JoinHandle<Result<container::PreparedDelete, String>>>);

/// Starts preparing the deletion of a container task. Call after the task started (the
/// executor may have threads from then on).
pub fn prepare_cleanup(target: &Target, stack_size: usize) -> Cleanup {
    let Target::Container {
        state_root,
        id,
        cgroups_path,
    } = target.clone()
    else {
        return Cleanup(None);
    };
    let prepared = std::thread::Builder::new()
        .name("cleanup".into())
        .stack_size(stack_size)
        .spawn(move || container::prepare_delete(&state_root, &id, &cgroups_path));
    Cleanup(prepared.ok())
}

/// After the container's init was reaped: records an OOM kill and deletes the container,
/// through the prepared deletion when there is one, else through libcontainer's.
pub fn delete_container(
    target: &Target,
    cleanup: Cleanup,
    result: &mut ExitResult,
) -> Option<String> {
    let Target::Container {
        state_root,
        id,
        cgroups_path,
    } = target
    else {
        return None;
    };
    result.oom_killed = container::oom_killed(cgroups_path);
    let prepared = cleanup.0.and_then(|thread| thread.join().ok());
    let deleted = match prepared {
        Some(Ok(prepared)) => prepared.delete(),
        Some(Err(_)) | None => container::delete(state_root, id),
    };
    deleted
        .err()
        .map(|e| format!("failed to delete container {id}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_results_report_codes_and_signals() {
        let pid = Pid::from_raw(1);
        assert_eq!(exit_result(WaitStatus::Exited(pid, 3)).exit_code, 3);
        let killed = exit_result(WaitStatus::Signaled(pid, Signal::SIGINT, false));
        assert_eq!(killed.signal, Some(2));
        assert_eq!(killed.exit_code, 130);
        assert!(!killed.successful());
    }

    #[test]
    fn users_resolve_by_number_and_name() {
        assert_eq!(resolve_user("0").unwrap(), (0, 0));
        assert_eq!(resolve_user("root").unwrap(), (0, 0));
        assert_eq!(resolve_user("1234:5678").unwrap(), (1234, 5678));
        assert!(resolve_user("no-such-user-xyz").is_err());
    }
}
