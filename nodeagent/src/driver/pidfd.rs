//! Waiting for a process that is not (necessarily) a child to end, without polling: its pidfd
//! (Linux 5.3+) becomes readable when it exits; a blocking thread waits on it. Older kernels
//! fall back to polling `/proc`.

use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, PidfdFlags, pidfd_open};

use crate::executor::procfs;

/// How often `/proc` is polled where pidfds are missing.
const POLL: Duration = Duration::from_millis(2);

/// Waits until `pid`, the process that started at `start_ticks` (when known), is gone or a
/// zombie, for at most `timeout`. True when it is gone.
pub async fn wait_gone(pid: u32, start_ticks: Option<u64>, timeout: Duration) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return true;
    };
    let fd = match pidfd_open(raw, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return true,
        Err(_) => return poll_gone(pid, start_ticks, timeout).await,
    };
    // The pid may have been reused before the pidfd was opened: its start time tells.
    if !procfs::alive(pid, start_ticks) {
        return true;
    }
    let waited = tokio::task::spawn_blocking(move || {
        let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: i64::MAX,
            tv_nsec: 0,
        });
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        loop {
            match poll(&mut fds, Some(&timeout)) {
                Err(rustix::io::Errno::INTR) => continue,
                other => return other.map(|ready| ready > 0),
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(gone)) => gone || !procfs::alive(pid, start_ticks),
        _ => poll_gone(pid, start_ticks, timeout).await,
    }
}

async fn poll_gone(pid: u32, start_ticks: Option<u64>, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    while procfs::alive(pid, start_ticks) {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_child_that_exits_is_gone_and_a_live_one_is_not() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let ticks = procfs::start_ticks(pid);
        // Alive: the wait times out.
        assert!(!wait_gone(pid, ticks, Duration::from_millis(20)).await);
        // It exits (a zombie until reaped): the wait ends.
        assert!(wait_gone(pid, ticks, Duration::from_secs(10)).await);
        child.wait().await.unwrap();
        // Reaped: gone at once.
        assert!(wait_gone(pid, ticks, Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_reused_pid_counts_as_gone() {
        let me = std::process::id();
        let ticks = procfs::start_ticks(me).unwrap();
        assert!(wait_gone(me, Some(ticks + 1), Duration::from_secs(10)).await);
        assert!(!wait_gone(me, Some(ticks), Duration::from_millis(10)).await);
    }
}
