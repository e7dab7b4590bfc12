//! The per-group index bookkeeping of the reconciler (Nomad's `allocNameIndex`): which
//! `<index>` of `<job>.<group>[<index>]` each allocation holds. The names themselves are made
//! and read by [`caravan_schemas::naming`].

use std::collections::BTreeSet;

/// The indexes in use in one group (Nomad's `allocNameIndex`).
#[derive(Clone, Debug, Default)]
pub struct NameIndex {
    used: BTreeSet<u32>,
}

impl NameIndex {
    /// An index with `used` taken.
    pub fn new(used: impl IntoIterator<Item = u32>) -> Self {
        Self {
            used: used.into_iter().collect(),
        }
    }

    /// Marks `index` used; false when it already was.
    pub fn take(&mut self, index: u32) -> bool {
        self.used.insert(index)
    }

    /// Frees `index`.
    pub fn release(&mut self, index: u32) {
        self.used.remove(&index);
    }

    /// Whether `index` is in use.
    pub fn contains(&self, index: u32) -> bool {
        self.used.contains(&index)
    }

    /// Takes and returns the `n` lowest free indexes.
    pub fn next(&mut self, n: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(n);
        let mut candidate = 0u32;
        while out.len() < n {
            if self.used.insert(candidate) {
                out.push(candidate);
            }
            candidate += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_index_reuses_the_lowest_free_indexes() {
        let mut index = NameIndex::new([0, 2, 5]);
        assert_eq!(index.next(3), vec![1, 3, 4]);
        index.release(2);
        assert_eq!(index.next(2), vec![2, 6]);
    }
}
