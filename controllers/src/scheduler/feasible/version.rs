//! Version constraints for the `version` and `semver` operators: `>= 1.2, < 2.0`, `~> 1.4`,
//! `= 1.2.3-beta`. `version` follows Nomad's go-version rules (a pre-release only matches a
//! constraint with a pre-release on the same segments); `semver` orders pre-releases by
//! Semantic Versioning 2.0 and does not exclude them.

use std::cmp::Ordering;

/// A parsed version: numeric segments and an optional pre-release.
#[derive(Clone, Debug)]
pub struct Version {
    segments: Vec<u64>,
    /// Segments written, before padding to three.
    written: usize,
    pre: Vec<String>,
}

impl Version {
    /// Parses `1`, `1.2`, `v1.2.3`, `1.2.3-beta.1` or `1.2.3+build` (build metadata ignored).
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let raw = raw.strip_prefix('v').unwrap_or(raw);
        let raw = raw.split('+').next().unwrap_or(raw);
        let (core, pre) = match raw.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => {
                (core, pre.split('.').map(String::from).collect())
            }
            Some(_) => return None,
            None => (raw, Vec::new()),
        };
        let mut segments = core
            .split('.')
            .map(|s| s.parse::<u64>().ok())
            .collect::<Option<Vec<u64>>>()?;
        let written = segments.len();
        if written == 0 {
            return None;
        }
        while segments.len() < 3 {
            segments.push(0);
        }
        Some(Self {
            segments,
            written,
            pre,
        })
    }

    fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            (false, false) => {}
        }
        for (x, y) in a.iter().zip(b) {
            let ordering = match (x.parse::<u64>(), y.parse::<u64>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                (Ok(_), Err(_)) => Ordering::Less,
                (Err(_), Ok(_)) => Ordering::Greater,
                (Err(_), Err(_)) => x.cmp(y),
            };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.len().cmp(&b.len())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.segments.len().max(other.segments.len());
        for i in 0..width {
            let a = self.segments.get(i).copied().unwrap_or(0);
            let b = other.segments.get(i).copied().unwrap_or(0);
            if a != b {
                return a.cmp(&b);
            }
        }
        Self::cmp_pre(&self.pre, &other.pre)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Pessimistic,
}

/// Which rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Nomad's `version` operator (go-version).
    Version,
    /// Nomad's `semver` operator.
    Semver,
}

/// A comma-separated list of version comparisons, all of which must hold.
#[derive(Clone, Debug)]
pub struct VersionConstraints {
    flavor: Flavor,
    parts: Vec<(Op, Version)>,
}

impl VersionConstraints {
    /// Parses `>= 1.2, < 2.0`; `None` when malformed.
    pub fn parse(raw: &str, flavor: Flavor) -> Option<Self> {
        let mut parts = Vec::new();
        for part in raw.split(',') {
            let part = part.trim();
            let (op, rest) = [
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("!=", Op::Ne),
                ("~>", Op::Pessimistic),
                ("==", Op::Eq),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .iter()
            .find_map(|(prefix, op)| part.strip_prefix(prefix).map(|rest| (*op, rest)))
            .unwrap_or((Op::Eq, part));
            if flavor == Flavor::Semver && op == Op::Pessimistic {
                return None;
            }
            parts.push((op, Version::parse(rest)?));
        }
        Some(Self { flavor, parts })
    }

    /// Whether `version` satisfies every comparison.
    pub fn matches(&self, version: &Version) -> bool {
        self.parts.iter().all(|(op, c)| {
            if self.flavor == Flavor::Version && !Self::prerelease_allowed(*op, version, c) {
                return false;
            }
            match op {
                Op::Eq => version == c,
                Op::Ne => version != c,
                Op::Gt => version > c,
                Op::Ge => version >= c,
                Op::Lt => version < c,
                Op::Le => version <= c,
                Op::Pessimistic => {
                    // `~> 1.2` allows 1.x from 1.2; `~> 1.2.3` allows 1.2.x from 1.2.3.
                    let fixed = c.written.saturating_sub(1).max(1);
                    version >= c && version.segments[..fixed] == c.segments[..fixed]
                }
            }
        })
    }

    fn prerelease_allowed(op: Op, version: &Version, c: &Version) -> bool {
        match (version.pre.is_empty(), c.pre.is_empty()) {
            (false, false) => version.segments == c.segments,
            (false, true) => false,
            (true, false) => op != Op::Pessimistic,
            (true, true) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(constraint: &str, version: &str, flavor: Flavor) -> bool {
        let c = VersionConstraints::parse(constraint, flavor);
        let v = Version::parse(version);
        matches!((c, v), (Some(c), Some(v)) if c.matches(&v))
    }

    #[test]
    fn version_ranges_and_pessimistic() {
        let v = Flavor::Version;
        assert!(check(">= 1.2, < 2.0", "1.5.3", v));
        assert!(!check(">= 1.2, < 2.0", "2.0.0", v));
        assert!(check("~> 1.2", "1.9", v));
        assert!(!check("~> 1.2", "2.0", v));
        assert!(check("~> 1.2.3", "1.2.9", v));
        assert!(!check("~> 1.2.3", "1.3.0", v));
        assert!(check("= 1.2", "v1.2.0", v));
        assert!(check("!= 1.2", "1.3", v));
        assert!(!check(">= 1.0", "garbage", v));
    }

    #[test]
    fn prereleases_differ_between_version_and_semver() {
        assert!(!check(">= 1.0", "1.2.0-beta", Flavor::Version));
        assert!(check(">= 1.2.0-alpha", "1.2.0-beta", Flavor::Version));
        assert!(check(">= 1.0", "1.2.0-beta", Flavor::Semver));
        assert!(check("< 1.2.0", "1.2.0-rc.1", Flavor::Semver));
        assert!(check("> 1.2.0-rc.2", "1.2.0-rc.10", Flavor::Semver));
        assert!(VersionConstraints::parse("~> 1.2", Flavor::Semver).is_none());
    }
}
