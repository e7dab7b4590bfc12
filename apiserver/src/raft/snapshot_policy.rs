//! When to snapshot: after `snapshot_threshold` entries, once the log since the last snapshot
//! is worth replacing.
//!
//! Counting entries alone (openraft's `LogsSinceLast`) snapshots a growing state ever more
//! often for the bytes it saves: with a few hundred megabytes of objects and ten thousand
//! writes a second, a snapshot of the whole state every few seconds. A snapshot is due here
//! once `threshold` entries were applied since the last one **and** the objects those entries
//! wrote add up to at least half the last snapshot's size. The log then stays within about
//! the size of the state, and writing snapshots costs at most about twice what the log does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use openraft::Raft;

use super::type_config::TypeConfig;

/// How often the policy looks at the applied log.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Bytes written since the last snapshot and the size of that snapshot, shared by the state
/// machine (which counts) and the policy task (which decides).
#[derive(Debug, Default)]
pub struct SnapshotGauge {
    written: AtomicU64,
    last_size: AtomicU64,
    /// A snapshot is being built: none is due until it is done.
    building: AtomicBool,
}

impl SnapshotGauge {
    /// A gauge after loading a snapshot of `size` bytes (0 when there was none).
    pub fn new(size: usize) -> Arc<SnapshotGauge> {
        Arc::new(SnapshotGauge {
            written: AtomicU64::new(0),
            last_size: AtomicU64::new(size as u64),
            building: AtomicBool::new(false),
        })
    }

    /// Counts `bytes` of objects written by an applied entry.
    pub fn written(&self, bytes: usize) {
        self.written.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A snapshot of the state as of now is being built.
    pub fn snapshot_started(&self) {
        self.written.store(0, Ordering::Relaxed);
        self.building.store(true, Ordering::Relaxed);
    }

    /// The snapshot was written (`Some` of its size in bytes) or could not be (`None`).
    pub fn snapshot_done(&self, size: Option<u64>) {
        if let Some(size) = size {
            self.last_size.store(size, Ordering::Relaxed);
        }
        self.building.store(false, Ordering::Relaxed);
    }

    /// A snapshot of `size` bytes received from the leader replaced the state.
    pub fn installed(&self, size: usize) {
        self.written.store(0, Ordering::Relaxed);
        self.last_size.store(size as u64, Ordering::Relaxed);
    }

    fn due(&self, entries_since: u64, threshold: u64) -> bool {
        !self.building.load(Ordering::Relaxed)
            && due(
                entries_since,
                threshold,
                self.written.load(Ordering::Relaxed),
                self.last_size.load(Ordering::Relaxed),
            )
    }
}

/// Whether a snapshot is due, `entries_since` entries and `written` bytes of objects after a
/// snapshot of `last_size` bytes.
fn due(entries_since: u64, threshold: u64, written: u64, last_size: u64) -> bool {
    entries_since >= threshold.max(1) && written.saturating_mul(2) >= last_size
}

/// Triggers snapshots of `raft` as [`due`] says, until Raft shuts down.
pub fn spawn(raft: Raft<TypeConfig>, gauge: Arc<SnapshotGauge>, threshold: u64) {
    tokio::spawn(async move {
        let mut metrics = raft.metrics();
        loop {
            // Checked as entries are applied (a few atomic loads), so a snapshot starts as soon
            // as it is due; and at least every CHECK_EVERY.
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let entries_since = {
                let m = metrics.borrow_and_update();
                let applied = m.last_applied.map_or(0, |id| id.index);
                let snapshot = m.snapshot.map_or(0, |id| id.index);
                applied.saturating_sub(snapshot)
            };
            if gauge.due(entries_since, threshold) && raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_waits_for_the_entry_threshold() {
        assert!(!due(99, 100, 1_000_000, 0));
        assert!(due(100, 100, 0, 0), "the first snapshot needs entries only");
    }

    #[test]
    fn a_snapshot_waits_until_the_log_is_worth_half_the_last_one() {
        assert!(!due(10_000, 100, 49, 100));
        assert!(due(10_000, 100, 50, 100));
    }

    #[test]
    fn the_gauge_counts_from_the_snapshot_that_started_last() {
        let gauge = SnapshotGauge::new(1000);
        gauge.written(600);
        assert!(gauge.due(10, 10));
        gauge.snapshot_started();
        assert!(!gauge.due(10, 10), "none is due while one is being built");
        gauge.written(100);
        gauge.snapshot_done(Some(2000));
        assert!(!gauge.due(10, 10));
        gauge.written(900);
        assert!(gauge.due(10, 10));
        gauge.snapshot_started();
        gauge.snapshot_done(None);
        assert!(
            !gauge.due(10, 10),
            "a failed build leaves the count since it started"
        );
        gauge.written(1000);
        assert!(gauge.due(10, 10));
    }
}
