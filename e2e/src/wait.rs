//! Polling on conditions with a deadline: the only way tests wait.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// Interval between polls: short at first, backing off to at most 200 ms.
fn next_interval(current: Duration) -> Duration {
    (current * 2).min(Duration::from_millis(200))
}

/// Polls `cond` until it returns true, failing with `what` after `timeout`.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(10);
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(interval);
        interval = next_interval(interval);
    }
}

/// Async version of [`wait_until`].
pub async fn wait_until_async<F, Fut>(
    timeout: Duration,
    what: &str,
    mut cond: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(10);
    loop {
        if cond().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(interval).await;
        interval = next_interval(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_once_the_condition_holds() {
        let mut calls = 0;
        wait_until(Duration::from_secs(5), "three calls", || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);
    }

    #[test]
    fn wait_until_fails_after_the_deadline() {
        let err = wait_until(Duration::from_millis(50), "never", || false).unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }
}
