//! Allocation names: Nomad's `<job>.<group>[<index>]` identity, encoded in a DNS-1123 object
//! name `<job>-<group>-<index>-<8 hex>`, and the per-group index bookkeeping of the reconciler.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::util::stable_hash;

/// Longest object name the API accepts.
const MAX_NAME: usize = 253;

/// Lower-cases `part` and replaces every character outside `[a-z0-9-]` with `-`.
fn push_dns_part(out: &mut String, part: &str) {
    for c in part.chars() {
        let c = c.to_ascii_lowercase();
        out.push(
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '-'
            },
        );
    }
}

/// The object name of a new allocation: `<job>-<group>-<index>-<8 hex>`, where the hex is a
/// stable hash of `salt` (eval name, previous allocation, node …) so that names are unique and
/// deterministic. Always a valid DNS-1123 subdomain.
pub fn alloc_object_name(job: &str, group: &str, index: u32, salt: &[&str]) -> String {
    let hash = stable_hash(
        [job, group]
            .into_iter()
            .chain(salt.iter().copied())
            .chain(std::iter::once(index.to_string().as_str())),
    );
    let mut prefix = String::with_capacity(job.len() + group.len() + 2);
    push_dns_part(&mut prefix, job);
    prefix.push('-');
    push_dns_part(&mut prefix, group);
    let prefix = prefix.trim_matches('-');
    let suffix_len = 1 + 10 + 1 + 8;
    let keep = prefix.len().min(MAX_NAME - suffix_len);
    let mut name = String::with_capacity(keep + suffix_len);
    name.push_str(prefix[..keep].trim_end_matches('-'));
    if name.is_empty() {
        name.push('a');
    }
    // Writing to a String cannot fail.
    let _ = write!(name, "-{index}-{:08x}", hash as u32);
    name
}

/// The group index encoded in an allocation's object name by [`alloc_object_name`].
pub fn parse_index(name: &str) -> Option<u32> {
    let mut parts = name.rsplitn(3, '-');
    let hash = parts.next()?;
    let index = parts.next()?;
    parts.next()?;
    let hex = hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| index.parse().ok()).flatten()
}

/// Nomad's display name of an allocation, `<job>.<group>[<index>]`.
pub fn display_name(job: &str, group: &str, index: u32) -> String {
    format!("{job}.{group}[{index}]")
}

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
    fn alloc_names_are_dns_safe_and_carry_their_index() {
        let name = alloc_object_name("web", "Front_End", 12, &["eval-1"]);
        assert!(name.starts_with("web-front-end-12-"), "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        assert_eq!(parse_index(&name), Some(12));
        assert_ne!(name, alloc_object_name("web", "Front_End", 12, &["eval-2"]));
        assert_eq!(parse_index("not-an-alloc"), None);
        assert_eq!(parse_index("a1"), None);
        let long = "x".repeat(400);
        assert!(alloc_object_name(&long, "g", 1, &[]).len() <= MAX_NAME);
    }

    #[test]
    fn name_index_reuses_the_lowest_free_indexes() {
        let mut index = NameIndex::new([0, 2, 5]);
        assert_eq!(index.next(3), vec![1, 3, 4]);
        index.release(2);
        assert_eq!(index.next(2), vec![2, 6]);
        assert_eq!(display_name("web", "api", 3), "web.api[3]");
    }
}
