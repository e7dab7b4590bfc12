//! Per-kind semantic checks and defaults, behind one trait.

use serde_json::Value;

use crate::admission::checks::Checks;
use crate::job::{defaults, validate};
use crate::meta::ObjectMeta;
use crate::node::SchedulingEligibility;
use crate::{Allocation, Deployment, Evaluation, Job, Namespace, Node};

/// A kind's typed admission steps: semantic checks on what the user wrote, then defaults.
pub(crate) trait Admissible:
    serde::de::DeserializeOwned + serde::Serialize + PartialEq
{
    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's metadata, to stamp the server's fields on.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Whether `metadata.name` must be a DNS-1123 label rather than a subdomain.
    const NAME_IS_LABEL: bool = false;
    /// Adds every semantic problem of the spec and status to `checks`.
    fn check(&self, checks: &mut Checks);
    /// Fills in the defaults.
    fn apply_defaults(&mut self);
    /// Whether `self` and `other` have the same spec (a change bumps `generation`).
    fn same_spec(&self, other: &Self) -> bool;
    /// Copies the status of `from`: a replacement through the main resource keeps it.
    fn keep_status(&mut self, from: &Self);
    /// The status as a JSON value; `Null` when there is none.
    fn status_value(&self) -> serde_json::Result<Value>;
    /// Replaces the status with `status` (`Null`: none), as a status write does.
    fn set_status(&mut self, status: Value) -> serde_json::Result<()>;
}

/// [`Admissible::status_value`] and [`Admissible::set_status`] of a kind with an optional
/// status.
macro_rules! status_as_value {
    () => {
        fn status_value(&self) -> serde_json::Result<Value> {
            serde_json::to_value(&self.status)
        }
        fn set_status(&mut self, status: Value) -> serde_json::Result<()> {
            self.status = serde_json::from_value(status)?;
            Ok(())
        }
    };
}

/// [`Admissible::same_spec`] and [`Admissible::keep_status`] of a kind with a spec and an
/// optional status.
macro_rules! spec_and_status {
    () => {
        fn same_spec(&self, other: &Self) -> bool {
            self.spec == other.spec
        }
        fn keep_status(&mut self, from: &Self) {
            self.status.clone_from(&from.status);
        }
        status_as_value!();
    };
}

impl Admissible for Job {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        validate::job_spec(checks, &self.spec);
    }
    fn apply_defaults(&mut self) {
        defaults::apply(&mut self.spec);
    }
}

impl Admissible for Node {
    const NAME_IS_LABEL: bool = true;
    status_as_value!();
    fn same_spec(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
    /// Keeps the status and works its computed class out again: it depends on the spec.
    fn keep_status(&mut self, from: &Self) {
        self.status.clone_from(&from.status);
        self.compute_class();
    }
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        if let Some(drain) = &self.spec.drain {
            checks.duration("spec.drain.deadline", drain.deadline.as_deref());
        }
        if let Some(status) = &self.status {
            checks.duration("status.heartbeatTTL", status.heartbeat_ttl.as_deref());
        }
    }
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        spec.datacenter.get_or_insert_with(|| "dc1".into());
        spec.node_pool
            .get_or_insert_with(|| defaults::NODE_POOL.into());
        spec.scheduling_eligibility
            .get_or_insert(SchedulingEligibility::Eligible);
        if let Some(drain) = &mut spec.drain {
            drain.ignore_system_jobs.get_or_insert(false);
            drain.force.get_or_insert(false);
        }
        self.compute_class();
    }
}

impl Admissible for Evaluation {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        checks.range("spec.priority", self.spec.priority.map(i64::from), 1, 100);
    }
    fn apply_defaults(&mut self) {
        self.spec.priority.get_or_insert(defaults::PRIORITY);
        self.spec.r#type.get_or_insert_default();
    }
}

impl Admissible for Allocation {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        if let Some(tracker) = &self.spec.reschedule_tracker {
            for (i, event) in tracker.events.iter().enumerate() {
                let field = format!("spec.rescheduleTracker.events[{i}].delay");
                checks.duration(field, event.delay.as_deref());
            }
        }
    }
    fn apply_defaults(&mut self) {
        self.spec.desired_status.get_or_insert_default();
    }
}

impl Admissible for Deployment {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        for (group, update) in &self.spec.groups {
            let base = format!("spec.groups[{group}]");
            checks.duration(
                format!("{base}.minHealthyTime"),
                update.min_healthy_time.as_deref(),
            );
            checks.duration(
                format!("{base}.healthyDeadline"),
                update.healthy_deadline.as_deref(),
            );
            checks.duration(
                format!("{base}.progressDeadline"),
                update.progress_deadline.as_deref(),
            );
            checks.duration(format!("{base}.stagger"), update.stagger.as_deref());
        }
    }
    fn apply_defaults(&mut self) {}
}

impl Admissible for Namespace {
    const NAME_IS_LABEL: bool = true;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, _checks: &mut Checks) {}
    fn apply_defaults(&mut self) {}
    fn same_spec(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
    fn keep_status(&mut self, _from: &Self) {}
    fn status_value(&self) -> serde_json::Result<Value> {
        Ok(Value::Null)
    }
    /// A Namespace has no status: a status write changes nothing.
    fn set_status(&mut self, _status: Value) -> serde_json::Result<()> {
        Ok(())
    }
}
