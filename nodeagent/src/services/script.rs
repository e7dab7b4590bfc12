//! One run of a `script` check: the command in its task's context (the task's environment,
//! its task directory as the working directory, its user), in a process group of its own that
//! is killed when the timeout passes or the check is cancelled. Exit 0 passes, 1 warns,
//! anything else (a signal, a command that cannot start, the timeout) is critical. The output
//! is stdout then stderr, cut to [`MAX_OUTPUT`] bytes each while the rest is drained.

use std::process::Stdio;
use std::time::Duration;

use caravan_schemas::job::CheckStatus;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::build::ScriptContext;
use super::probe::{MAX_OUTPUT, Outcome};
use crate::executor::spec::{DEFAULT_PATH, resolve_program};

/// The status an exit code gives.
pub fn exit_status(code: Option<i32>) -> CheckStatus {
    match code {
        Some(0) => CheckStatus::Passing,
        Some(1) => CheckStatus::Warning,
        _ => CheckStatus::Critical,
    }
}

/// Kills a process group when dropped, unless disarmed.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

/// Runs `command args` in `context`, for at most `timeout`.
pub async fn run(
    command: &str,
    args: &[String],
    context: &ScriptContext,
    timeout: Duration,
) -> Outcome {
    let path = context.env.get("PATH").map_or(DEFAULT_PATH, String::as_str);
    let program = match resolve_program(command, &context.dir, path) {
        Ok(program) => program,
        Err(e) => return Outcome::new(CheckStatus::Critical, e),
    };
    let mut cmd = Command::new(&program);
    cmd.args(args)
        .current_dir(&context.dir)
        .env_clear()
        .envs(&context.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(user) = &context.user {
        match crate::executor::task::resolve_user(user) {
            Ok((uid, gid)) => {
                cmd.uid(uid).gid(gid);
            }
            Err(e) => return Outcome::new(CheckStatus::Critical, e),
        }
    }
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Outcome::new(
                CheckStatus::Critical,
                format!("failed to run {}: {e}", program.display()),
            );
        }
    };
    let mut group = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let finished = tokio::time::timeout(timeout, async {
        let (out, err, exit) = tokio::join!(capped(stdout), capped(stderr), child.wait());
        (out, err, exit)
    })
    .await;
    let Ok((out, err, exit)) = finished else {
        drop(group);
        let _ = child.wait().await;
        return Outcome::new(
            CheckStatus::Critical,
            format!("timed out after {}", humantime::format_duration(timeout)),
        );
    };
    // Done, its pipes closed: nothing of its group is left to kill (and once reaped, its
    // group id may name another group).
    group.0 = None;
    let mut output = String::from_utf8_lossy(&out).into_owned();
    output.push_str(&String::from_utf8_lossy(&err));
    match exit {
        Ok(exit) => Outcome::new(exit_status(exit.code()), output),
        Err(e) => Outcome::new(
            CheckStatus::Critical,
            format!("waiting for the command: {e}"),
        ),
    }
}

/// The first [`MAX_OUTPUT`] bytes of a pipe, read to its end.
async fn capped(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn context(dir: &std::path::Path) -> ScriptContext {
        ScriptContext {
            env: BTreeMap::from([
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("GREETING".to_string(), "hello".to_string()),
            ]),
            dir: dir.to_path_buf(),
            user: None,
        }
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn exit_codes_map_to_statuses() {
        assert_eq!(exit_status(Some(0)), CheckStatus::Passing);
        assert_eq!(exit_status(Some(1)), CheckStatus::Warning);
        assert_eq!(exit_status(Some(2)), CheckStatus::Critical);
        assert_eq!(
            exit_status(None),
            CheckStatus::Critical,
            "killed by a signal"
        );
    }

    #[tokio::test]
    async fn scripts_run_in_the_tasks_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let secs = Duration::from_secs(5);
        let ok = run("sh", &sh("echo $GREETING; pwd; echo err >&2"), &ctx, secs).await;
        assert_eq!(ok.status, CheckStatus::Passing, "{ok:?}");
        let here = dir.path().canonicalize().unwrap();
        assert_eq!(ok.output, format!("hello\n{}\nerr\n", here.display()));
        assert_eq!(
            run("sh", &sh("exit 1"), &ctx, secs).await.status,
            CheckStatus::Warning
        );
        assert_eq!(
            run("sh", &sh("exit 3"), &ctx, secs).await.status,
            CheckStatus::Critical
        );
        let missing = run("no-such-command-xyz", &[], &ctx, secs).await;
        assert_eq!(missing.status, CheckStatus::Critical);
        assert!(missing.output.contains("not found"), "{missing:?}");
    }

    #[tokio::test]
    async fn long_output_is_cut_and_slow_scripts_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let long = run(
            "sh",
            &sh("head -c 100000 /dev/zero | tr '\\0' a"),
            &ctx,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(long.status, CheckStatus::Passing);
        assert_eq!(long.output.len(), MAX_OUTPUT);
        let started = std::time::Instant::now();
        let slow = run(
            "sh",
            &sh("sleep 30 & sleep 30"),
            &ctx,
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(slow.status, CheckStatus::Critical);
        assert!(slow.output.contains("timed out after 300ms"), "{slow:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the group was killed"
        );
    }
}
