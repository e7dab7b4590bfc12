//! Small helpers shared by the schedulers: a stable hash, a seedable random number generator
//! and the deterministic node shuffle. Object accessors (name, namespace, job version,
//! allocation states, node datacenter/pool/class) are methods of the API types in
//! `caravan_schemas`.

use std::sync::Arc;

use caravan_schemas::Node;

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
