//! Searching the `(namespace, name)` maps with borrowed strings.
//!
//! A `BTreeMap<(String, String), _>` can only be searched with a `(String, String)`, which
//! costs two allocations per lookup. [`NsName`] is the usual way around it: the owned pair
//! borrows as `dyn NsName`, and so does a pair of `&str`, with the same order.

use std::borrow::Borrow;
use std::cmp::Ordering;

/// A `(namespace, name)` pair, owned or borrowed.
pub(crate) trait NsName {
    fn parts(&self) -> (&str, &str);
}

impl NsName for (String, String) {
    fn parts(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl NsName for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn NsName + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn NsName + 'a) {
        self
    }
}

impl PartialEq for dyn NsName + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn NsName + '_ {}

impl PartialOrd for dyn NsName + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The order of `(String, String)`: namespace first, then name.
impl Ord for dyn NsName + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// `(namespace, name)` as a key to search with.
pub(crate) fn ns_name<'a>(namespace: &'a str, name: &'a str) -> (&'a str, &'a str) {
    (namespace, name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn borrowed_pairs_find_what_owned_pairs_find() {
        let mut map = BTreeMap::new();
        for (ns, name) in [("a", "x"), ("a", "xy"), ("ab", ""), ("b", "a"), ("", "z")] {
            map.insert((ns.to_owned(), name.to_owned()), format!("{ns}/{name}"));
        }
        for (ns, name) in [("a", "x"), ("a", "xy"), ("ab", ""), ("b", "a"), ("", "z")] {
            let key = ns_name(ns, name);
            assert_eq!(map.get(&key as &dyn NsName), Some(&format!("{ns}/{name}")));
        }
        for (ns, name) in [("a", ""), ("a", "y"), ("abc", ""), ("", "")] {
            assert_eq!(map.get(&ns_name(ns, name) as &dyn NsName), None);
        }
    }
}
