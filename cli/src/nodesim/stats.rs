//! What the simulated nodes did, counted across all of them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every simulated node.
#[derive(Debug, Default)]
pub struct SimStats {
    /// Set when the simulator stops: its nodes' last requests may fail as the servers go
    /// away, which is not worth a warning.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Nodes registered at least once.
    pub registered: AtomicU64,
    /// Registration attempts that failed (each is retried).
    pub register_errors: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeat_errors: AtomicU64,
    /// Nodes whose allocation watch listed its allocations at least once.
    pub watching: AtomicU64,
    /// Lists of a node's allocations after its first (a 410 or a failed watch re-lists).
    pub relists: AtomicU64,
    pub watch_errors: AtomicU64,
    /// Allocations a node started a runner for.
    pub allocs_started: AtomicU64,
    /// `GET` of a Job (each node caches the jobs it has read, as an agent does).
    pub job_gets: AtomicU64,
    /// Acknowledged `PATCH …/allocations/{name}/status`.
    pub status_patches: AtomicU64,
    pub status_errors: AtomicU64,
    /// Allocations whose `running` status the servers acknowledged (each counted once).
    pub running: AtomicU64,
    /// Allocations whose `complete` status the servers acknowledged.
    pub complete: AtomicU64,
    /// Allocations whose `failed` status the servers acknowledged.
    pub failed: AtomicU64,
}

/// One reading of every counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub registered: u64,
    pub register_errors: u64,
    pub heartbeats: u64,
    pub heartbeat_errors: u64,
    pub watching: u64,
    pub relists: u64,
    pub watch_errors: u64,
    pub allocs_started: u64,
    pub job_gets: u64,
    pub status_patches: u64,
    pub status_errors: u64,
    pub running: u64,
    pub complete: u64,
    pub failed: u64,
}

impl SimStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            registered: get(&self.registered),
            register_errors: get(&self.register_errors),
            heartbeats: get(&self.heartbeats),
            heartbeat_errors: get(&self.heartbeat_errors),
            watching: get(&self.watching),
            relists: get(&self.relists),
            watch_errors: get(&self.watch_errors),
            allocs_started: get(&self.allocs_started),
            job_gets: get(&self.job_gets),
            status_patches: get(&self.status_patches),
            status_errors: get(&self.status_errors),
            running: get(&self.running),
            complete: get(&self.complete),
            failed: get(&self.failed),
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes {} registered ({} errors), {} watching ({} re-lists, {} watch errors); \
             heartbeats {} ({} errors); allocations {} started, {} running, {} complete, {} \
             failed; {} job GETs; {} status PATCHes ({} errors)",
            self.registered,
            self.register_errors,
            self.watching,
            self.relists,
            self.watch_errors,
            self.heartbeats,
            self.heartbeat_errors,
            self.allocs_started,
            self.running,
            self.complete,
            self.failed,
            self.job_gets,
            self.status_patches,
            self.status_errors,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_the_counters() {
        let stats = SimStats::default();
        SimStats::inc(&stats.registered);
        SimStats::add(&stats.running, 5);
        let s = stats.snapshot();
        assert_eq!((s.registered, s.running, s.failed), (1, 5, 0));
        let line = s.to_string();
        assert!(line.starts_with("nodes 1 registered (0 errors)"), "{line}");
        assert!(line.contains("5 running"), "{line}");
    }
}
