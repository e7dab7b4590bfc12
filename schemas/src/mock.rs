//! Fixture builders for tests (`testsuite` feature), after Nomad's `nomad/mock` package.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::allocation::{AllocatedResources, AllocatedTaskResources, ClientStatus, DesiredStatus};
use crate::evaluation::{EvaluationState, EvaluationType, TriggeredBy};
use crate::job::{Constraint, JobType, Operator, Resources, Task, TaskGroup, defaults};
use crate::meta::ObjectMeta;
use crate::node::{
    DriverInfo, NodeAddress, NodeNetwork, NodeReservedResources, NodeResources, NodeState,
};
use crate::{
    API_VERSION, Allocation, AllocationSpec, AllocationStatus, Evaluation, EvaluationSpec,
    EvaluationStatus, Job, JobSpec, Kind, Namespace, NamespaceSpec, Node, NodeSpec, NodeStatus,
};

fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(Into::into),
        ..ObjectMeta::default()
    }
}

/// A service job in namespace `default` with defaults applied: group `web` of 10 allocations,
/// task `web` on the `mock` driver with 500 MHz and 256 MB, on Linux nodes.
pub fn job(name: &str) -> Job {
    let task = Task {
        name: "web".into(),
        driver: "mock".into(),
        config: json!({"run_for": "10m"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        env: BTreeMap::from([("FOO".into(), "bar".into())]),
        resources: Some(Resources {
            cpu: Some(500),
            memory_mb: Some(256),
            ..Resources::default()
        }),
        ..Task::default()
    };
    let mut spec = JobSpec {
        r#type: Some(JobType::Service),
        datacenters: vec!["dc1".into()],
        constraints: vec![Constraint {
            attribute: "${attr.kernel.name}".into(),
            operator: Some(Operator::Equal),
            value: "linux".into(),
        }],
        meta: BTreeMap::from([("owner".into(), "armon".into())]),
        groups: vec![TaskGroup {
            name: "web".into(),
            count: Some(10),
            tasks: vec![task],
            ..TaskGroup::default()
        }],
        ..JobSpec::default()
    };
    defaults::apply(&mut spec);
    Job {
        api_version: API_VERSION.into(),
        kind: Kind::Job.name().into(),
        metadata: metadata(name, Some("default")),
        spec,
        status: None,
    }
}

/// A batch job like [`job`], whose task runs for 500ms.
pub fn batch_job(name: &str) -> Job {
    let mut job = job(name);
    let spec = &mut job.spec;
    spec.r#type = Some(JobType::Batch);
    spec.update = None;
    spec.reschedule = None;
    spec.migrate = None;
    for group in &mut spec.groups {
        group.update = None;
        group.reschedule = None;
        group.migrate = None;
        group.restart = None;
        for task in &mut group.tasks {
            task.config = json!({"run_for": "500ms"})
                .as_object()
                .cloned()
                .unwrap_or_default();
        }
    }
    defaults::apply(spec);
    job
}

/// A ready Linux node in `dc1` with 4 cores (4000 MHz), 8 GiB of memory and the `mock` and
/// `raw_exec` drivers, carrying its computed class as the server stores it.
pub fn node(name: &str) -> Node {
    let attributes = BTreeMap::from([
        ("kernel.name".to_string(), "linux".to_string()),
        ("os.name".into(), "debian".into()),
        ("cpu.arch".into(), "amd64".into()),
        ("cpu.numcores".into(), "4".into()),
        ("unique.hostname".into(), name.into()),
        ("driver.mock".into(), "1".into()),
        ("driver.raw_exec".into(), "1".into()),
    ]);
    let driver = DriverInfo {
        detected: true,
        healthy: true,
        health_description: Some("healthy".into()),
        attributes: BTreeMap::new(),
    };
    let mut node = Node {
        api_version: API_VERSION.into(),
        kind: Kind::Node.name().into(),
        metadata: metadata(name, None),
        spec: NodeSpec {
            datacenter: Some("dc1".into()),
            node_pool: Some(defaults::NODE_POOL.into()),
            node_class: Some("linux-medium-pci".into()),
            scheduling_eligibility: Some(Default::default()),
            http_addr: Some("192.168.0.100:4646".into()),
            ..NodeSpec::default()
        },
        status: Some(NodeStatus {
            status: NodeState::Ready,
            attributes,
            resources: Some(NodeResources {
                cpu: 4000,
                cores: 4,
                memory_mb: 8192,
                disk_mb: 100 * 1024,
                networks: vec![NodeNetwork {
                    device: "eth0".into(),
                    cidr: "192.168.0.100/32".into(),
                    ip: "192.168.0.100".into(),
                    ..NodeNetwork::default()
                }],
                ..NodeResources::default()
            }),
            reserved: Some(NodeReservedResources {
                cpu: 100,
                memory_mb: 256,
                disk_mb: 4 * 1024,
                ..NodeReservedResources::default()
            }),
            drivers: BTreeMap::from([("mock".into(), driver.clone()), ("raw_exec".into(), driver)]),
            addresses: vec![NodeAddress {
                r#type: "InternalIP".into(),
                address: "192.168.0.100".into(),
            }],
            heartbeat_ttl: Some("10s".into()),
            ..NodeStatus::default()
        }),
    };
    node.compute_class();
    node
}

/// A pending allocation of the first group of `job` on `node`, with the group's resources.
pub fn allocation(name: &str, job: &Job, node: &Node) -> Allocation {
    let group = job.spec.groups.first();
    let tasks = group
        .map(|g| {
            g.tasks
                .iter()
                .map(|t| {
                    let r = t.resources.clone().unwrap_or_default();
                    let resources = AllocatedTaskResources {
                        cpu: r.cpu.unwrap_or(defaults::CPU_MHZ),
                        memory_mb: r.memory_mb.unwrap_or(defaults::MEMORY_MB),
                        memory_max_mb: r.memory_max_mb,
                        ..AllocatedTaskResources::default()
                    };
                    (t.name.clone(), resources)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut allocated = AllocatedResources {
        tasks,
        ..AllocatedResources::default()
    };
    allocated.shared.disk_mb = group
        .and_then(|g| g.ephemeral_disk.as_ref())
        .and_then(|d| d.size_mb)
        .unwrap_or(defaults::DISK_MB);
    Allocation {
        api_version: API_VERSION.into(),
        kind: Kind::Allocation.name().into(),
        metadata: metadata(name, job.metadata.namespace.as_deref()),
        spec: AllocationSpec {
            job_name: job.metadata.name().to_string(),
            job_version: job.status.as_ref().map_or(0, |s| s.version),
            group: group.map(|g| g.name.clone()).unwrap_or_default(),
            node_name: node.metadata.name().to_string(),
            desired_status: Some(DesiredStatus::Run),
            allocated_resources: Some(allocated),
            ..AllocationSpec::default()
        },
        status: Some(AllocationStatus {
            client_status: ClientStatus::Pending,
            ..AllocationStatus::default()
        }),
    }
}

/// A pending `job-register` evaluation of `job`.
pub fn evaluation(name: &str, job: &Job) -> Evaluation {
    let r#type = match job.spec.job_type() {
        JobType::Service => EvaluationType::Service,
        JobType::Batch => EvaluationType::Batch,
        JobType::System => EvaluationType::System,
        JobType::Sysbatch => EvaluationType::Sysbatch,
    };
    Evaluation {
        api_version: API_VERSION.into(),
        kind: Kind::Evaluation.name().into(),
        metadata: metadata(name, job.metadata.namespace.as_deref()),
        spec: EvaluationSpec {
            job_name: job.metadata.name().to_string(),
            job_version: job.status.as_ref().map_or(0, |s| s.version),
            triggered_by: TriggeredBy::JobRegister,
            priority: Some(job.spec.priority.unwrap_or(defaults::PRIORITY)),
            r#type: Some(r#type),
            ..EvaluationSpec::default()
        },
        status: Some(EvaluationStatus {
            status: EvaluationState::Pending,
            ..EvaluationStatus::default()
        }),
    }
}

/// A namespace with a description.
pub fn namespace(name: &str) -> Namespace {
    Namespace {
        api_version: API_VERSION.into(),
        kind: Kind::Namespace.name().into(),
        metadata: metadata(name, None),
        spec: NamespaceSpec {
            description: Some(format!("the {name} namespace")),
            quota: None,
        },
    }
}

/// A valid service job as written by a user (no defaults filled in), about 1 KiB of JSON.
pub fn job_value(name: &str) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": name, "tier": "frontend"},
            "annotations": {"caravan.dev/owner": "platform-team"},
        },
        "spec": {
            "type": "service",
            "priority": 60,
            "datacenters": ["dc1", "dc2"],
            "constraints": [
                {"attribute": "${attr.kernel.name}", "operator": "=", "value": "linux"}
            ],
            "affinities": [
                {"attribute": "${node.class}", "operator": "=", "value": "fast", "weight": 30}
            ],
            "update": {"maxParallel": 2, "minHealthyTime": "15s", "healthyDeadline": "3m"},
            "meta": {"team": "web"},
            "groups": [{
                "name": "frontend",
                "count": 3,
                "network": {"mode": "host", "ports": [{"label": "http"}]},
                "restart": {"attempts": 3, "interval": "10m", "delay": "10s", "mode": "delay"},
                "tasks": [{
                    "name": "server",
                    "driver": "raw_exec",
                    "config": {
                        "command": "/bin/sh",
                        "args": ["-c", "while true; do echo hello; sleep 5; done"]
                    },
                    "env": {"PORT": "${NOMAD_PORT_http}", "GREETING": "hello"},
                    "resources": {"cpu": 200, "memoryMB": 128},
                    "killTimeout": "10s",
                    "logs": {"maxFiles": 5, "maxFileSizeMB": 20}
                }]
            }]
        }
    })
}
