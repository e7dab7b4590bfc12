//! [`JobAntiAffinity`]: a penalty for putting another allocation of the same job and group on
//! a node that already has some.

/// Penalizes collisions with the group's own allocations.
#[derive(Clone, Copy, Debug)]
pub struct JobAntiAffinity {
    desired_count: u32,
}

impl JobAntiAffinity {
    /// A scorer for a group wanting `desired_count` allocations.
    pub fn new(desired_count: u32) -> Self {
        Self {
            desired_count: desired_count.max(1),
        }
    }

    /// `-(collisions + 1) / count` when the node already holds `collisions` allocations of the
    /// group, `None` (no score) otherwise.
    pub fn score(&self, collisions: u32) -> Option<f64> {
        (collisions > 0).then(|| -f64::from(collisions + 1) / f64::from(self.desired_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_grows_with_collisions() {
        let scorer = JobAntiAffinity::new(10);
        assert_eq!(scorer.score(0), None);
        assert_eq!(scorer.score(1), Some(-0.2));
        assert_eq!(scorer.score(4), Some(-0.5));
    }
}
