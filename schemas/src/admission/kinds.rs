//! Per-kind semantic checks and defaults, behind one trait.

use serde_json::Value;

use crate::admission::checks::{Checks, NameRule, dns1123_label};
use crate::job::{defaults, validate};
use crate::limits::{MAX_CPU_MHZ, MAX_DISK_MB, MAX_MEMORY_MB};
use crate::meta::ObjectMeta;
use crate::node::{SchedulingEligibility, valid_http_addr};
use crate::{
    AclPolicy, AclToken, Allocation, Deployment, Evaluation, Job, JobVersion, Namespace, Node,
    ServiceRegistration,
};

/// A kind's typed admission steps: semantic checks on what the user wrote, then defaults.
pub(crate) trait Admissible:
    serde::de::DeserializeOwned + serde::Serialize + PartialEq
{
    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's metadata, to stamp the server's fields on.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// What `metadata.name` must be: a DNS-1123 subdomain unless the kind says otherwise.
    const NAME_RULE: NameRule = NameRule::Subdomain;
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

/// [`Admissible::same_spec`] and the status methods of a kind with a spec and no status: a
/// status write changes nothing.
macro_rules! spec_without_status {
    () => {
        fn same_spec(&self, other: &Self) -> bool {
            self.spec == other.spec
        }
        fn keep_status(&mut self, _from: &Self) {}
        fn status_value(&self) -> serde_json::Result<Value> {
            Ok(Value::Null)
        }
        fn set_status(&mut self, _status: Value) -> serde_json::Result<()> {
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
    /// The name is the value of the `caravan.dev/job` label of the job's evaluations.
    const NAME_RULE: NameRule = NameRule::LabelValue;
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
    const NAME_RULE: NameRule = NameRule::Label;
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
        if let Some(addr) = &self.spec.http_addr
            && let Err(problem) = valid_http_addr(addr)
        {
            checks.invalid("spec.httpAddr", problem);
        }
        if let Some(hash) = &self.spec.secret_id_hash
            && !crate::acl::checks::is_sha256_hex(hash)
        {
            checks.invalid(
                "spec.secretIdHash",
                "must be the lowercase hex SHA-256 of the node's secret id",
            );
        }
        if let Some(status) = &self.status {
            checks.duration("status.heartbeatTTL", status.heartbeat_ttl.as_deref());
            if let Some(resources) = &status.resources {
                checks.at_most("status.resources.cpu", Some(resources.cpu), MAX_CPU_MHZ);
                checks.at_most(
                    "status.resources.memoryMB",
                    Some(resources.memory_mb),
                    MAX_MEMORY_MB,
                );
                checks.at_most(
                    "status.resources.diskMB",
                    Some(resources.disk_mb),
                    MAX_DISK_MB,
                );
                node_networks(checks, resources);
            }
            if let Some(reserved) = &status.reserved {
                checks.at_most("status.reserved.cpu", Some(reserved.cpu), MAX_CPU_MHZ);
                checks.at_most(
                    "status.reserved.memoryMB",
                    Some(reserved.memory_mb),
                    MAX_MEMORY_MB,
                );
                checks.at_most(
                    "status.reserved.diskMB",
                    Some(reserved.disk_mb),
                    MAX_DISK_MB,
                );
                port_list(
                    checks,
                    "status.reserved.reservedPorts",
                    reserved.reserved_ports.as_deref(),
                );
            }
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
    /// The group and task names (clients make directories of them, as of a job's) and the
    /// allocated amounts (the scheduler and the plan applier add them up), as a job's are
    /// checked: allocations are written by the schedulers' plans and by clients, not only
    /// from admitted jobs.
    fn check(&self, checks: &mut Checks) {
        checks.task_name("spec.group", &self.spec.group);
        if let Some(resources) = &self.spec.allocated_resources {
            for (name, task) in resources.tasks.iter() {
                let base = format!("spec.allocatedResources.tasks[{name}]");
                checks.task_name(base.clone(), name);
                checks.at_most(format!("{base}.cpu"), Some(task.cpu), MAX_CPU_MHZ);
                checks.at_most(
                    format!("{base}.memoryMB"),
                    Some(task.memory_mb),
                    MAX_MEMORY_MB,
                );
                checks.at_most(
                    format!("{base}.memoryMaxMB"),
                    task.memory_max_mb,
                    MAX_MEMORY_MB,
                );
            }
            checks.at_most(
                "spec.allocatedResources.shared.diskMB",
                Some(resources.shared.disk_mb),
                MAX_DISK_MB,
            );
        }
        if let Some(status) = &self.status {
            for name in status.task_states.keys() {
                checks.task_name(format!("status.taskStates[{name}]"), name);
            }
        }
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

impl Admissible for ServiceRegistration {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        let spec = &self.spec;
        if let Some(problem) = dns1123_label(&spec.service_name) {
            checks.invalid("spec.serviceName", problem);
        }
        if spec.address.parse::<std::net::IpAddr>().is_err() {
            checks.invalid(
                "spec.address",
                format!("{:?} is not an IP address", spec.address),
            );
        }
        checks.range("spec.port", Some(i64::from(spec.port)), 0, 65535);
        checks.max_items(
            "spec.tags",
            spec.tags.len(),
            crate::limits::MAX_SERVICE_TAGS,
        );
        if let Some(status) = &self.status {
            checks.max_items(
                "status.checks",
                status.checks.len(),
                crate::limits::MAX_CHECKS_PER_SERVICE,
            );
        }
    }
    fn apply_defaults(&mut self) {}
}

impl Admissible for JobVersion {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    /// The spec is a job's spec that passed admission when the job was written.
    fn check(&self, _checks: &mut Checks) {}
    fn apply_defaults(&mut self) {}
}

impl Admissible for Namespace {
    const NAME_RULE: NameRule = NameRule::Label;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, _checks: &mut Checks) {}
    fn apply_defaults(&mut self) {}
    spec_without_status!();
}

impl Admissible for AclPolicy {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        crate::acl::checks::policy(checks, &self.spec);
    }
    fn apply_defaults(&mut self) {}
    spec_without_status!();
}

impl Admissible for AclToken {
    spec_and_status!();
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn check(&self, checks: &mut Checks) {
        crate::acl::checks::token(checks, self);
    }
    fn apply_defaults(&mut self) {}
}

/// Checks a node's addresses and dynamic port range.
fn node_networks(checks: &mut Checks, resources: &crate::node::NodeResources) {
    checks.max_items(
        "status.resources.networks",
        resources.networks.len(),
        crate::limits::MAX_NODE_NETWORKS,
    );
    for (i, network) in resources.networks.iter().enumerate() {
        let at = format!("status.resources.networks[{i}]");
        if let Some(problem) = network.host_network.as_deref().and_then(dns1123_label) {
            checks.invalid(format!("{at}.hostNetwork"), problem);
        }
        if !network.ip.is_empty() && network.ip.parse::<std::net::IpAddr>().is_err() {
            checks.invalid(
                format!("{at}.ip"),
                format!("{:?} is not an IP address", network.ip),
            );
        }
        port_list(
            checks,
            &format!("{at}.reservedPorts"),
            network.reserved_ports.as_deref(),
        );
    }
    if let (Some(min), Some(max)) = (resources.min_dynamic_port, resources.max_dynamic_port)
        && min > max
    {
        checks.invalid(
            "status.resources.maxDynamicPort",
            format!("the dynamic port range ends ({max}) before it starts ({min})"),
        );
    }
}

/// Checks a reserved port list (`22,80,8000-8100`).
fn port_list(checks: &mut Checks, field: &str, list: Option<&str>) {
    if let Some(Err(problem)) = list.map(crate::ports::parse_port_list) {
        checks.invalid(field, problem);
    }
}
