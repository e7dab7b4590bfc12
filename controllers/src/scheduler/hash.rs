//! The scheduler's hash maps: keyed by node, job and allocation names on every node it
//! looks at, so they use foldhash (several times faster than std's SipHash on short strings)
//! with a per-map random seed.

/// A std hash map with foldhash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A persistent (`imbl`) hash map with foldhash.
pub type PersistentMap<K, V> =
    imbl::GenericHashMap<K, V, foldhash::fast::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// A std hash set with foldhash.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
