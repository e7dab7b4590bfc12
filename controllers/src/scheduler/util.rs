//! Small helpers shared by the schedulers: object accessors, allocation states, a stable hash
//! and a seedable random number generator.

use std::sync::Arc;

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::{Allocation, Job, Node, ObjectMeta};

/// Name of an object, empty when unset.
pub fn name(meta: &ObjectMeta) -> &str {
    meta.name()
}

/// Namespace of an object, `default` when unset.
pub fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace()
}

/// Version of a job: its spec generation minus one (the server bumps `generation` on every spec
/// change, so versions start at 0 like Nomad's); `status.version` for objects without one.
pub fn job_version(job: &Job) -> i64 {
    job.version()
}

/// Priority of a job.
pub fn job_priority(job: &Job) -> i32 {
    job.priority()
}

/// What the servers want of an allocation, `run` when unset.
pub fn desired_status(alloc: &Allocation) -> DesiredStatus {
    alloc.desired_status()
}

/// What the node reports of an allocation, `pending` when unset.
pub fn client_status(alloc: &Allocation) -> ClientStatus {
    alloc.client_status()
}

/// Whether the node reports the allocation as finished: complete, failed or lost.
pub fn is_client_terminal(alloc: &Allocation) -> bool {
    alloc.is_client_terminal()
}

/// Whether the servers asked the allocation to stop or be evicted.
pub fn is_server_terminal(alloc: &Allocation) -> bool {
    alloc.is_server_terminal()
}

/// Whether the allocation holds no resources any more (Nomad's `TerminalStatus`).
pub fn is_terminal(alloc: &Allocation) -> bool {
    alloc.is_terminal()
}

/// Datacenter of a node, `dc1` when unset.
pub fn node_datacenter(node: &Node) -> &str {
    node.datacenter()
}

/// Node pool of a node, `default` when unset.
pub fn node_pool(node: &Node) -> &str {
    node.pool()
}

/// Class of a node, empty when unset.
pub fn node_class(node: &Node) -> &str {
    node.class()
}

/// Stable across runs and platforms: allocation names and shuffle seeds are made from it.
pub use caravan_schemas::stable_hash::stable_hash;

/// SplitMix64: a tiny, fast, seedable generator; plenty for shuffling candidate nodes.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), by Lemire's multiply-shift.
    pub fn below(&mut self, bound: usize) -> usize {
        let product = u128::from(self.next_u64()) * bound as u128;
        (product >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Shuffles nodes deterministically for one evaluation and snapshot, as Nomad's `ShuffleNodes`
/// does with the plan's eval id and the state index.
pub fn shuffle_nodes(nodes: &mut [Arc<Node>], eval_name: &str, index: u64) {
    let seed = stable_hash([eval_name]) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Rng::new(seed).shuffle(nodes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_shuffle_is_deterministic_and_a_permutation() {
        let mut a: Vec<u32> = (0..100).collect();
        let mut b = a.clone();
        Rng::new(7).shuffle(&mut a);
        Rng::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..100).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }
}
