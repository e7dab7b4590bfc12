//! The controller's delay queue: keys that become due at a deadline, at most one entry per key
//! (scheduling a key again keeps the earlier deadline).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

/// Pending keys by deadline, de-duplicated.
#[derive(Debug)]
pub(crate) struct DelayQueue<K> {
    /// `(deadline, sequence)` → key; the sequence keeps equal deadlines first-in, first-out.
    by_deadline: BTreeMap<(Instant, u64), K>,
    entries: HashMap<K, (Instant, u64)>,
    sequence: u64,
}

impl<K> Default for DelayQueue<K> {
    fn default() -> Self {
        DelayQueue {
            by_deadline: BTreeMap::new(),
            entries: HashMap::new(),
            sequence: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> DelayQueue<K> {
    /// Makes `key` due at `at`, unless it is already due earlier.
    pub(crate) fn schedule(&mut self, key: K, at: Instant) {
        if let Some(&(deadline, sequence)) = self.entries.get(&key) {
            if deadline <= at {
                return;
            }
            self.by_deadline.remove(&(deadline, sequence));
        }
        self.sequence += 1;
        self.by_deadline.insert((at, self.sequence), key.clone());
        self.entries.insert(key, (at, self.sequence));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The deadline of `key`, if it is pending.
    #[cfg(test)]
    pub(crate) fn deadline(&self, key: &K) -> Option<Instant> {
        self.entries.get(key).map(|&(deadline, _)| deadline)
    }

    /// Removes and returns the earliest key whose deadline has passed.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (&(deadline, _), _) = self.by_deadline.first_key_value()?;
        if deadline > now {
            return None;
        }
        let (_, key) = self.by_deadline.pop_first()?;
        self.entries.remove(&key);
        Some(key)
    }

    /// Waits for the earliest deadline and returns its key; pending forever when empty.
    /// Cancel-safe: nothing is removed until the returned future completes.
    pub(crate) async fn next_due(&mut self) -> K {
        loop {
            match self.by_deadline.first_key_value() {
                None => std::future::pending::<()>().await,
                Some((&(deadline, _), _)) => tokio::time::sleep_until(deadline).await,
            }
            if let Some(key) = self.pop_due(Instant::now()) {
                return key;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn keys_are_deduplicated_and_the_earliest_deadline_wins() {
        let now = Instant::now();
        let mut queue = DelayQueue::default();
        queue.schedule("a", now + Duration::from_secs(10));
        queue.schedule("b", now + Duration::from_secs(5));
        queue.schedule("a", now + Duration::from_secs(1));
        queue.schedule("b", now + Duration::from_secs(60));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.deadline(&"b"), Some(now + Duration::from_secs(5)));
        assert_eq!(queue.pop_due(now), None);

        assert_eq!(queue.next_due().await, "a");
        assert_eq!(Instant::now() - now, Duration::from_secs(1));
        assert_eq!(queue.next_due().await, "b");
        assert_eq!(Instant::now() - now, Duration::from_secs(5));
        assert!(queue.is_empty());
    }
}
