//! The log entries appended and not yet applied, kept decoded for the state machine.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use openraft::Entry;

use crate::raft::type_config::TypeConfig;

/// Encoded size of the entries the tail keeps at most; beyond it the oldest are dropped (and
/// read from the database when needed).
const TAIL_BYTES: usize = 32 * 1024 * 1024;

/// The log entries appended and not yet applied, decoded. The state machine reads each entry
/// once, right after it is committed; keeping it here spares the read and the JSON decoding
/// that were a tenth of a busy server's CPU. Every entry in the tail is also in the database
/// (or being written to it by the same `append`), so dropping any of them is always safe.
#[derive(Default)]
pub(super) struct Tail {
    entries: BTreeMap<u64, (Entry<TypeConfig>, usize)>,
    bytes: usize,
}

impl Tail {
    pub(super) fn insert(&mut self, index: u64, entry: Entry<TypeConfig>, size: usize) {
        if let Some((_, old)) = self.entries.insert(index, (entry, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.bytes > TAIL_BYTES {
            let Some((_, (_, size))) = self.entries.pop_first() else {
                break;
            };
            self.bytes -= size;
        }
    }

    /// Drops the entries in `range`.
    pub(super) fn remove(&mut self, range: (Bound<u64>, Bound<u64>)) {
        let doomed: Vec<u64> = self.entries.range(range).map(|(i, _)| *i).collect();
        for index in doomed {
            if let Some((_, size)) = self.entries.remove(&index) {
                self.bytes -= size;
            }
        }
    }

    /// The entries `start..end` when the tail holds every one of them: taken out of the tail
    /// when `take`, cloned otherwise.
    pub(super) fn get(
        &mut self,
        start: u64,
        end: u64,
        take: bool,
    ) -> Option<Vec<Entry<TypeConfig>>> {
        if end <= start || self.entries.range(start..end).count() as u64 != end - start {
            return None;
        }
        if !take {
            return Some(
                self.entries
                    .range(start..end)
                    .map(|(_, (e, _))| e.clone())
                    .collect(),
            );
        }
        let mut out = Vec::with_capacity((end - start) as usize);
        for index in start..end {
            let (entry, size) = self.entries.remove(&index)?;
            self.bytes -= size;
            out.push(entry);
        }
        Some(out)
    }
}

/// The bounded `[start, end)` of a range of indexes, when it has an end.
pub(super) fn bounded<RB: RangeBounds<u64>>(range: &RB) -> Option<(u64, u64)> {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => e.checked_add(1)?,
        Bound::Excluded(e) => *e,
        Bound::Unbounded => return None,
    };
    Some((start, end))
}

#[cfg(test)]
pub(super) mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;

    pub(crate) fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Blank,
        }
    }

    pub(crate) fn indexes(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn the_tail_serves_a_range_only_when_it_holds_all_of_it() {
        let mut tail = Tail::default();
        for i in [3, 4, 5, 7] {
            tail.insert(i, entry(i), 10);
        }
        assert_eq!(
            tail.get(3, 6, false).as_deref().map(indexes),
            Some(vec![3, 4, 5])
        );
        assert!(tail.get(5, 8, false).is_none(), "6 is missing");
        assert!(tail.get(2, 4, false).is_none(), "2 is missing");
        // Taking empties what was read; cloning did not.
        assert_eq!(
            tail.get(3, 5, true).as_deref().map(indexes),
            Some(vec![3, 4])
        );
        assert!(tail.get(3, 4, true).is_none());
        assert_eq!(tail.bytes, 20);
    }

    #[test]
    fn the_tail_drops_its_oldest_entries_beyond_its_budget() {
        let mut tail = Tail::default();
        let size = TAIL_BYTES / 4;
        for i in 1..=6 {
            tail.insert(i, entry(i), size);
        }
        assert_eq!(
            tail.entries.keys().copied().collect::<Vec<_>>(),
            vec![3, 4, 5, 6]
        );
        assert_eq!(tail.bytes, TAIL_BYTES);
        tail.remove((Bound::Included(5), Bound::Unbounded));
        assert_eq!(tail.entries.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(tail.bytes, 2 * size);
    }

    #[test]
    fn ranges_are_bounded_or_not() {
        assert_eq!(bounded(&(3..7)), Some((3, 7)));
        assert_eq!(bounded(&(3..=7)), Some((3, 8)));
        assert_eq!(bounded(&(3..)), None);
    }
}
