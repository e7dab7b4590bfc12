//! [`DriverChecker`]: every driver the task group uses is detected and healthy on the node.

use caravan_schemas::Node;

use super::FeasibilityChecker;

/// Keeps nodes where all of a group's drivers are detected and healthy.
#[derive(Clone, Debug, Default)]
pub struct DriverChecker {
    drivers: Vec<String>,
}

impl DriverChecker {
    /// A checker for the distinct `drivers` of a group.
    pub fn new(drivers: impl IntoIterator<Item = String>) -> Self {
        let mut drivers: Vec<String> = drivers.into_iter().collect();
        drivers.sort();
        drivers.dedup();
        Self { drivers }
    }

    fn healthy(node: &Node, driver: &str) -> bool {
        let Some(status) = node.status.as_ref() else {
            return false;
        };
        match status.drivers.get(driver) {
            Some(info) => info.detected && info.healthy,
            // Nodes that only fingerprint `driver.<name>` attributes (Nomad's legacy form).
            None => status
                .attributes
                .get(&format!("driver.{driver}"))
                .is_some_and(|v| matches!(v.as_str(), "1" | "true")),
        }
    }
}

impl FeasibilityChecker for DriverChecker {
    fn check(&self, node: &Node) -> Result<(), &str> {
        if self.drivers.iter().all(|d| Self::healthy(node, d)) {
            Ok(())
        } else {
            Err("missing drivers")
        }
    }
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    #[test]
    fn driver_must_be_detected_and_healthy() {
        let mut node = mock::node("n1");
        assert!(DriverChecker::new(["mock".into()]).check(&node).is_ok());
        assert!(DriverChecker::new(["oci".into()]).check(&node).is_err());
        if let Some(status) = node.status.as_mut()
            && let Some(info) = status.drivers.get_mut("mock")
        {
            info.healthy = false;
        }
        assert_eq!(
            DriverChecker::new(["mock".into(), "raw_exec".into()]).check(&node),
            Err("missing drivers")
        );
    }
}
