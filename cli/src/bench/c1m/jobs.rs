//! The C1M jobs: service jobs of one group of `count` mock tasks that run until stopped, and
//! the variants with constraints and with a spread.

use serde_json::{Value, json};

/// The group every job has (allocation names are `<job>-g-<index>-<hash>`).
pub const GROUP: &str = "g";
/// Jobs go to this namespace.
pub const NAMESPACE: &str = "default";
/// Label carrying the bench run's id on every job.
pub const RUN_LABEL: &str = "bench.caravan.dev/run";

/// What the jobs ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobShape {
    pub count: usize,
    pub task_cpu: u64,
    pub task_memory_mb: u64,
    pub datacenters: Vec<String>,
    /// Hard constraints: `${attr.kernel.name} = linux` on the job and, on the group,
    /// `${meta.rack} != r<i mod 10>` (a tenth of the nodes excluded, a different tenth per job).
    pub constraints: bool,
    /// A spread over `${meta.rack}` (the scheduler then scores every feasible node).
    pub spread: bool,
}

impl JobShape {
    /// `plain`, `constraints`, `spread` or `constraints+spread`.
    pub fn variant(&self) -> &'static str {
        match (self.constraints, self.spread) {
            (false, false) => "plain",
            (true, false) => "constraints",
            (false, true) => "spread",
            (true, true) => "constraints+spread",
        }
    }
}

/// The name of the `index`-th job of run `run_id`.
pub fn job_name(run_id: &str, index: usize) -> String {
    format!("c1m-{run_id}-{index}")
}

/// The `index`-th job of run `run_id`.
pub fn job(run_id: &str, index: usize, shape: &JobShape) -> Value {
    let mut group = json!({
        "name": GROUP,
        "count": shape.count,
        "tasks": [{
            "name": "t",
            "driver": "mock",
            "config": {},
            "resources": {"cpu": shape.task_cpu, "memoryMB": shape.task_memory_mb},
        }],
    });
    let mut spec = json!({
        "type": "service",
        "datacenters": shape.datacenters,
        "groups": [],
    });
    if shape.constraints {
        spec["constraints"] = json!([{"attribute": "${attr.kernel.name}", "value": "linux"}]);
        group["constraints"] = json!([{
            "attribute": "${meta.rack}",
            "operator": "!=",
            "value": format!("r{}", index % crate::nodesim::node::RACKS),
        }]);
    }
    if shape.spread {
        spec["spreads"] = json!([{"attribute": "${meta.rack}", "weight": 100}]);
    }
    spec["groups"] = json!([group]);
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(run_id, index),
            "namespace": NAMESPACE,
            "labels": {RUN_LABEL: run_id},
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use caravan_schemas::Job;

    use super::*;

    fn shape(constraints: bool, spread: bool) -> JobShape {
        JobShape {
            count: 1000,
            task_cpu: 20,
            task_memory_mb: 32,
            datacenters: vec!["dc1".into()],
            constraints,
            spread,
        }
    }

    #[test]
    fn jobs_parse_as_jobs_with_their_variant() {
        let plain: Job = serde_json::from_value(job("ab12", 3, &shape(false, false))).unwrap();
        assert_eq!(plain.metadata.name.as_deref(), Some("c1m-ab12-3"));
        assert_eq!(plain.spec.groups[0].count, Some(1000));
        assert!(plain.spec.constraints.is_empty() && plain.spec.spreads.is_empty());

        let both: Job = serde_json::from_value(job("ab12", 13, &shape(true, true))).unwrap();
        assert_eq!(both.spec.constraints[0].attribute, "${attr.kernel.name}");
        assert_eq!(both.spec.groups[0].constraints[0].value, "r3");
        assert_eq!(both.spec.spreads[0].attribute, "${meta.rack}");
        assert_eq!(shape(true, true).variant(), "constraints+spread");
        assert_eq!(shape(false, false).variant(), "plain");
    }
}
