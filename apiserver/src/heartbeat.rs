//! Node heartbeats, as Nomad keeps them: they reach the leader and are held in its memory, not
//! written through Raft; only a change of a node's status is written.
//!
//! ```text
//! api::heartbeat (POST …/nodes/{name}/heartbeat) ─▶ HeartbeatTracker::beat(name, now) ─▶ TTL
//!                                                   deadline = now + ttl + grace
//! liveness.rs (while leading) ─▶ expired(now) ─▶ forget_expired(name) ─▶ mark down
//! leadership lost ─▶ clear()
//! ```
//!
//! The TTL follows Nomad's rule: `ttl = max(min_ttl, nodes / max_per_second)`, then
//! `ttl += random(0, ttl)` so that heartbeats of many nodes spread out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tunables of heartbeats.
#[derive(Clone, Debug, PartialEq)]
pub struct HeartbeatConfig {
    /// The shortest TTL handed to a node (Nomad's `min_heartbeat_ttl`).
    pub min_ttl: Duration,
    /// The heartbeat rate the servers aim for across all nodes (Nomad's
    /// `max_heartbeats_per_second`): with many nodes, TTLs grow so the total stays under it.
    pub max_per_second: f64,
    /// Extra time past the TTL before a node counts as missed (Nomad's `heartbeat_grace`).
    pub grace: Duration,
    /// The TTL every known node gets when a server becomes leader, before its first heartbeat
    /// to it (Nomad's `failover_heartbeat_ttl`), so that a leader change never marks healthy
    /// nodes down.
    pub failover_ttl: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            min_ttl: Duration::from_secs(10),
            max_per_second: 50.0,
            grace: Duration::from_secs(10),
            failover_ttl: Duration::from_secs(300),
        }
    }
}

/// The last heartbeat of every node, in the leader's memory.
#[derive(Debug)]
pub struct HeartbeatTracker {
    config: HeartbeatConfig,
    /// Node name → the instant after which it has missed its heartbeat (TTL + grace).
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl HeartbeatTracker {
    pub fn new(config: HeartbeatConfig) -> HeartbeatTracker {
        HeartbeatTracker {
            config,
            deadlines: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &HeartbeatConfig {
        &self.config
    }

    /// Records a heartbeat of `node` at `now` and returns the TTL the node must heartbeat
    /// within.
    pub fn beat(&self, node: &str, now: Instant) -> Duration {
        let mut deadlines = self.lock();
        let tracked = deadlines.len() + usize::from(!deadlines.contains_key(node));
        let ttl = ttl_for(&self.config, tracked, random_fraction());
        deadlines.insert(node.to_string(), now + ttl + self.config.grace);
        ttl
    }

    /// Nodes whose TTL and grace have passed at `now`, sorted by name. They stay listed until
    /// they heartbeat again or are [forgotten](HeartbeatTracker::forget).
    pub fn expired(&self, now: Instant) -> Vec<String> {
        let mut expired: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, deadline)| **deadline < now)
            .map(|(name, _)| name.clone())
            .collect();
        expired.sort();
        expired
    }

    /// Starts tracking `node`, without a heartbeat, with `deadline`; a node already tracked
    /// keeps its own. Used for the failover TTL of a new leader.
    pub fn expect(&self, node: &str, deadline: Instant) {
        self.lock().entry(node.to_string()).or_insert(deadline);
    }

    /// Stops tracking `node` when it is still past its deadline at `now` (no heartbeat came
    /// meanwhile); returns whether it did.
    pub fn forget_expired(&self, node: &str, now: Instant) -> bool {
        let mut deadlines = self.lock();
        match deadlines.get(node) {
            Some(deadline) if *deadline < now => {
                deadlines.remove(node);
                true
            }
            _ => false,
        }
    }

    /// Stops tracking `node` (it was marked down, or deleted).
    pub fn forget(&self, node: &str) {
        self.lock().remove(node);
    }

    /// Whether `node` has heartbeated since it was last forgotten.
    pub fn is_tracked(&self, node: &str) -> bool {
        self.lock().contains_key(node)
    }

    /// How many nodes are tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no node is tracked.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every node (leadership was lost or regained).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // The map stays consistent whatever a panicking holder did: every update is one insert
        // or remove.
        self.deadlines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Nomad's TTL: `max(min_ttl, nodes / max_per_second)` plus a stagger of `fraction` (in
/// `[0, 1)`) of it.
pub fn ttl_for(config: &HeartbeatConfig, nodes: usize, fraction: f64) -> Duration {
    let scaled = if config.max_per_second > 0.0 {
        Duration::try_from_secs_f64(nodes as f64 / config.max_per_second).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    };
    let ttl = scaled.max(config.min_ttl);
    ttl.saturating_add(ttl.mul_f64(fraction.clamp(0.0, 1.0)))
}

/// A random number in `[0, 1)` from a fresh v4 UUID's random bits.
fn random_fraction() -> f64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    // 53 random bits: exactly representable, strictly below 1.
    (u64::from_le_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_ms: u64, per_second: f64, grace_ms: u64) -> HeartbeatConfig {
        HeartbeatConfig {
            min_ttl: Duration::from_millis(min_ms),
            max_per_second: per_second,
            grace: Duration::from_millis(grace_ms),
            failover_ttl: Duration::from_millis(min_ms),
        }
    }

    #[test]
    fn ttl_is_the_minimum_until_the_rate_needs_more() {
        let c = HeartbeatConfig::default();
        assert_eq!(ttl_for(&c, 1, 0.0), Duration::from_secs(10));
        assert_eq!(ttl_for(&c, 500, 0.0), Duration::from_secs(10));
        assert_eq!(ttl_for(&c, 1000, 0.0), Duration::from_secs(20));
        assert_eq!(ttl_for(&c, 1000, 0.5), Duration::from_secs(30));
    }

    #[test]
    fn stagger_stays_below_the_ttl() {
        let c = HeartbeatConfig::default();
        for _ in 0..1000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f));
            let ttl = ttl_for(&c, 3, f);
            assert!(ttl >= c.min_ttl && ttl < 2 * c.min_ttl, "{ttl:?}");
        }
    }

    #[test]
    fn a_zero_rate_falls_back_to_the_minimum() {
        assert_eq!(
            ttl_for(&config(100, 0.0, 0), 10, 0.0),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn nodes_expire_after_ttl_and_grace_until_they_beat_again() {
        let t = HeartbeatTracker::new(config(100, 50.0, 50));
        let start = Instant::now();
        let ttl_a = t.beat("a", start);
        let ttl_b = t.beat("b", start + Duration::from_millis(150));
        assert!(ttl_a >= Duration::from_millis(100) && ttl_a < Duration::from_millis(200));
        assert!(t.expired(start).is_empty());
        let a_gone = start + ttl_a + Duration::from_millis(51);
        let b_gone = start + Duration::from_millis(150) + ttl_b + Duration::from_millis(51);
        assert!(t.expired(a_gone).contains(&"a".to_string()));
        assert_eq!(t.expired(b_gone.max(a_gone)), ["a", "b"]);
        t.beat("a", b_gone);
        assert_eq!(t.expired(b_gone), ["b"]);
        t.forget("b");
        assert!(t.expired(b_gone).is_empty());
        assert_eq!(t.len(), 1);
        assert!(t.is_tracked("a") && !t.is_tracked("b"));
    }
}
