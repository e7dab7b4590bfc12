//! From an allocation, its job and the agent's settings to each task's [`TaskSpec`], restart
//! policy and place in the lifecycle. Pure.
//!
//! The environment is built by `env.rs` (the runtime variables, then the task's `env`), and
//! every string of the task's driver `config` is interpolated against it and the node
//! (`interpolate.rs`), so `${NOMAD_PORT_http}` in `args` or `${attr.kernel.name}` in `image`
//! resolve before the driver sees them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{JobType, LifecycleHook, RestartMode, Task, TaskGroup, defaults};
use caravan_schemas::{Allocation, Job, limits};

use super::env::{EnvInput, apply_task_env, runtime_env};
use super::interpolate::{Budget, NodeVars, Scope, interpolate_json};
use super::restart::Policy;
use crate::driver::{LogLimits, TaskResources, TaskSpec};

/// Where a task runs in its allocation's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Prestart { sidecar: bool },
    Main { leader: bool },
    Poststart { sidecar: bool },
    Poststop,
}

impl Phase {
    pub fn of(task: &Task) -> Phase {
        match &task.lifecycle {
            None => Phase::Main {
                leader: task.leader.unwrap_or(false),
            },
            Some(l) => {
                let sidecar = l.sidecar.unwrap_or(false);
                match l.hook {
                    LifecycleHook::Prestart => Phase::Prestart { sidecar },
                    LifecycleHook::Poststart => Phase::Poststart { sidecar },
                    LifecycleHook::Poststop => Phase::Poststop,
                }
            }
        }
    }
}

/// Agent settings that shape task specs.
#[derive(Clone, Debug)]
pub struct SpecSettings {
    /// `<data>/alloc`: allocation directories go below it, one per allocation uid.
    pub alloc_root: PathBuf,
    /// Pids limit of `exec` and `oci` tasks; 0 means none.
    pub pids_limit: u64,
    /// The node the tasks run on, as `${node.*}`, `${attr.*}` and `${meta.*}` read it.
    pub node: Arc<NodeVars>,
    /// Allocation networks (bridge and `none` modes).
    pub network: crate::network::NetworkSettings,
}

fn duration_or(value: Option<&str>, default: &str) -> Duration {
    value
        .and_then(|v| parse_duration(v).ok())
        .or_else(|| parse_duration(default).ok())
        .unwrap_or(Duration::from_secs(5))
}

/// The task's kill timeout: its `killTimeout` (Nomad's default when absent or unreadable), at
/// most `max` (the agent's `max_kill_timeout`), so that no job keeps a task that ignores its
/// kill signal alive for longer.
pub fn kill_timeout(task: &Task, max: Duration) -> Duration {
    duration_or(task.kill_timeout.as_deref(), defaults::KILL_TIMEOUT).min(max)
}

/// The task's spec, its kill timeout capped at [`limits::MAX_KILL_TIMEOUT`] (the default
/// `max_kill_timeout` of an agent; [`task_spec_capped`] takes the agent's own).
///
/// The allocation uid, group and task names become paths here: the caller checks them first
/// with [`crate::paths::check_alloc`] (the allocation runner does, and the drivers check the
/// spec again).
pub fn task_spec(
    job: &Job,
    alloc: &Allocation,
    alloc_id: &str,
    group: &TaskGroup,
    task: &Task,
    settings: &SpecSettings,
) -> TaskSpec {
    task_spec_capped(
        job,
        alloc,
        alloc_id,
        group,
        task,
        settings,
        limits::MAX_KILL_TIMEOUT,
    )
}

/// The task's spec, its kill timeout at most `max_kill_timeout`; see [`task_spec`]. `job` is
/// the job the allocation's tasks are built from (its region and meta reach the environment).
pub fn task_spec_capped(
    job: &Job,
    alloc: &Allocation,
    alloc_id: &str,
    group: &TaskGroup,
    task: &Task,
    settings: &SpecSettings,
    max_kill_timeout: Duration,
) -> TaskSpec {
    let namespace = alloc.metadata.namespace().to_string();
    let alloc_name = alloc.metadata.name().to_string();
    let alloc_dir = settings.alloc_root.join(alloc_id);
    let task_dir = alloc_dir.join(&task.name);
    let res = task.resources.clone().unwrap_or_default();
    let allocated = alloc
        .spec
        .allocated_resources
        .as_ref()
        .and_then(|r| r.tasks.get(&task.name));
    let resources = TaskResources {
        cpu_mhz: allocated
            .map(|a| a.cpu)
            .or(res.cpu)
            .unwrap_or(defaults::CPU_MHZ),
        memory_mb: allocated
            .map(|a| a.memory_mb)
            .or(res.memory_mb)
            .unwrap_or(defaults::MEMORY_MB),
        memory_max_mb: allocated
            .and_then(|a| a.memory_max_mb)
            .or(res.memory_max_mb),
        pids_limit: settings.pids_limit,
    };
    let logs = task.logs.clone().unwrap_or_default();
    // Inside `exec` and `oci` containers the directories are mounted at fixed places.
    let contained = matches!(task.driver.as_str(), "exec" | "oci");
    let (alloc_dir_env, task_dir_env, secrets_dir_env) = if contained {
        (
            "/alloc".to_string(),
            "/local".to_string(),
            "/secrets".to_string(),
        )
    } else {
        (
            alloc_dir.join("alloc").display().to_string(),
            task_dir.join("local").display().to_string(),
            task_dir.join("secrets").display().to_string(),
        )
    };
    let node = settings.node.as_ref();
    let input = EnvInput {
        job,
        alloc,
        alloc_id,
        group,
        task,
        node,
        alloc_dir: &alloc_dir_env,
        task_dir: &task_dir_env,
        secrets_dir: &secrets_dir_env,
        cpu_mhz: resources.cpu_mhz,
        memory_mb: resources.memory_mb,
        memory_max_mb: resources.memory_max_mb,
        cores: allocated.map(|a| a.cores.as_slice()).unwrap_or_default(),
    };
    let mut budget = Budget::default();
    let mut env: BTreeMap<String, String> = runtime_env(&input, &mut budget);
    if !contained {
        env.entry("PATH".into()).or_insert_with(|| {
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        });
    }
    apply_task_env(&mut env, &task.env, node, &mut budget);
    let mut config = task.config.clone();
    let scope = Scope { node, env: &env };
    for value in config.values_mut() {
        interpolate_json(value, &scope, &mut budget);
    }
    if budget.exhausted() {
        tracing::warn!(
            alloc = %alloc_name,
            task = %task.name,
            "interpolation stopped: substitutions would add more than {} bytes; the rest are left as written",
            super::interpolate::MAX_EXPANSION_BYTES
        );
    }
    TaskSpec {
        alloc_id: alloc_id.to_string(),
        alloc_name,
        namespace,
        job_name: alloc.spec.job_name.clone(),
        group_name: group.name.clone(),
        task_name: task.name.clone(),
        driver: task.driver.clone(),
        config,
        env,
        user: task.user.clone(),
        log_dir: alloc_dir.join("alloc").join("logs"),
        alloc_dir,
        task_dir,
        resources,
        logs: LogLimits {
            max_files: logs.max_files.unwrap_or(10).max(1),
            max_file_size_mb: logs.max_file_size_mb.unwrap_or(10).max(1),
        },
        kill_signal: task
            .kill_signal
            .clone()
            .unwrap_or_else(|| defaults::KILL_SIGNAL.into()),
        kill_timeout: kill_timeout(task, max_kill_timeout),
        netns: None,
    }
}

/// The group's restart policy for `task`, with Nomad's defaults for the job type.
pub fn restart_policy(job_type: JobType, group: &TaskGroup, task: &Task) -> Policy {
    let defaults = defaults::restart_policy(job_type);
    let policy = group.restart.clone().unwrap_or_default();
    let batch = matches!(job_type, JobType::Batch | JobType::Sysbatch);
    let on_success = match Phase::of(task) {
        Phase::Prestart { sidecar } | Phase::Poststart { sidecar } => sidecar,
        Phase::Poststop => false,
        Phase::Main { .. } => !batch,
    };
    Policy {
        attempts: policy.attempts.or(defaults.attempts).unwrap_or(2),
        interval: duration_or(
            policy.interval.as_deref(),
            defaults.interval.as_deref().unwrap_or("30m"),
        ),
        delay: duration_or(
            policy.delay.as_deref(),
            defaults.delay.as_deref().unwrap_or("15s"),
        ),
        mode: policy.mode.or(defaults.mode).unwrap_or(RestartMode::Fail),
        on_success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(group: &TaskGroup) -> Job {
        let mut job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "caravan.dev/v1", "kind": "Job",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"meta": {"owner": "team-a"}, "groups": []}
        }))
        .unwrap();
        job.spec.groups.push(group.clone());
        job
    }

    fn settings(pids_limit: u64) -> SpecSettings {
        SpecSettings {
            alloc_root: "/data/alloc".into(),
            pids_limit,
            node: Arc::default(),
            network: Default::default(),
        }
    }

    fn fixture() -> (Allocation, TaskGroup) {
        let alloc: Allocation = serde_json::from_value(serde_json::json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "web-web-0-abcdef01", "namespace": "prod", "uid": "u-1"},
            "spec": {"jobName": "web", "group": "web", "nodeName": "n1",
                     "allocatedResources": {"tasks": {"srv": {"cpu": 250, "memoryMB": 64}}}}
        }))
        .unwrap();
        let group: TaskGroup = serde_json::from_value(serde_json::json!({
            "name": "web",
            "restart": {"attempts": 1, "interval": "1m", "delay": "2s", "mode": "delay"},
            "tasks": [
                {"name": "srv", "driver": "raw_exec", "config": {"command": "sleep"},
                 "env": {"GREETING": "hi"}, "killTimeout": "2s"},
                {"name": "init", "driver": "oci", "lifecycle": {"hook": "prestart"}}
            ]
        }))
        .unwrap();
        (alloc, group)
    }

    #[test]
    fn specs_carry_resources_directories_and_environment() {
        let (alloc, group) = fixture();
        let settings = settings(512);
        let spec = task_spec(
            &job(&group),
            &alloc,
            "u-1",
            &group,
            &group.tasks[0],
            &settings,
        );
        assert_eq!(spec.task_dir, PathBuf::from("/data/alloc/u-1/srv"));
        assert_eq!(spec.log_dir, PathBuf::from("/data/alloc/u-1/alloc/logs"));
        assert_eq!(spec.resources.cpu_mhz, 250);
        assert_eq!(spec.resources.memory_mb, 64);
        assert_eq!(spec.resources.pids_limit, 512);
        assert_eq!(spec.kill_timeout, Duration::from_secs(2));
        assert_eq!(spec.kill_signal, "SIGINT");
        assert_eq!(spec.env["CARAVAN_ALLOC_ID"], "u-1");
        assert_eq!(spec.env["CARAVAN_JOB_NAME"], "web");
        assert_eq!(spec.env["CARAVAN_GROUP_NAME"], "web");
        assert_eq!(spec.env["CARAVAN_TASK_NAME"], "srv");
        assert_eq!(spec.env["CARAVAN_ALLOC_DIR"], "/data/alloc/u-1/alloc");
        assert_eq!(spec.env["CARAVAN_TASK_DIR"], "/data/alloc/u-1/srv/local");
        assert_eq!(spec.env["CARAVAN_CPU_LIMIT"], "250");
        assert_eq!(spec.env["CARAVAN_MEMORY_LIMIT"], "64");
        assert_eq!(spec.env["GREETING"], "hi");
        let init = task_spec(
            &job(&group),
            &alloc,
            "u-1",
            &group,
            &group.tasks[1],
            &settings,
        );
        assert_eq!(init.env["CARAVAN_ALLOC_DIR"], "/alloc");
        assert_eq!(init.resources.memory_mb, defaults::MEMORY_MB);
        assert_eq!(init.env["NOMAD_SECRETS_DIR"], "/secrets");
        assert_eq!(spec.env["NOMAD_TASK_DIR"], "/data/alloc/u-1/srv/local");
        assert_eq!(spec.env["NOMAD_SECRETS_DIR"], "/data/alloc/u-1/srv/secrets");
        assert_eq!(spec.env["NOMAD_META_owner"], "team-a");
        assert_eq!(spec.env["NOMAD_ALLOC_NAME"], "web.web[0]");
        assert!(spec.env.contains_key("PATH"));
        assert!(!init.env.contains_key("PATH"));
    }

    #[test]
    fn env_and_config_are_interpolated_against_the_node_and_the_environment() {
        let (mut alloc, mut group) = fixture();
        alloc
            .spec
            .allocated_resources
            .as_mut()
            .unwrap()
            .shared
            .ports = vec![caravan_schemas::allocation::AllocatedPort {
            label: "http".into(),
            value: 20001,
            to: None,
            host_ip: Some("127.0.0.1".into()),
        }];
        let task = &mut group.tasks[0];
        task.env
            .insert("LISTEN".into(), "${NOMAD_ADDR_http}".into());
        task.env.insert("PATH".into(), "/opt/bin:${PATH}".into());
        task.config = serde_json::from_value(serde_json::json!({
            "command": "${attr.kernel.name}-srv",
            "args": ["--listen", "${LISTEN}", "--dc=${node.datacenter}", "${meta.rack}",
                     "${NOMAD_META_owner}", "${node.unique.name}", "${unknown}"],
            "env": {"NESTED": ["${CARAVAN_ALLOC_INDEX}"]}
        }))
        .unwrap();
        let mut settings = settings(0);
        settings.node = Arc::new(NodeVars {
            id: "id-1".into(),
            name: "n1".into(),
            datacenter: "dc2".into(),
            region: Some("global".into()),
            class: None,
            pool: "default".into(),
            attributes: BTreeMap::from([("kernel.name".to_string(), "linux".to_string())]),
            meta: BTreeMap::from([("rack".to_string(), "r7".to_string())]),
        });
        let spec = task_spec(
            &job(&group),
            &alloc,
            "u-1",
            &group,
            &group.tasks[0],
            &settings,
        );
        assert_eq!(spec.env["LISTEN"], "127.0.0.1:20001");
        assert_eq!(spec.env["NOMAD_DC"], "dc2");
        assert!(
            spec.env["PATH"].starts_with("/opt/bin:/"),
            "{}",
            spec.env["PATH"]
        );
        assert!(!spec.env["PATH"].contains("${PATH}"));
        assert_eq!(
            serde_json::Value::Object(spec.config),
            serde_json::json!({
                "command": "linux-srv",
                "args": ["--listen", "127.0.0.1:20001", "--dc=dc2", "r7", "team-a", "n1",
                         "${unknown}"],
                "env": {"NESTED": ["0"]}
            })
        );
    }

    #[test]
    fn kill_timeouts_are_capped_at_the_agents_maximum() {
        let (alloc, mut group) = fixture();
        let settings = settings(0);
        group.tasks[0].kill_timeout = Some("5000000000000000h".into());
        let spec = task_spec(
            &job(&group),
            &alloc,
            "u-1",
            &group,
            &group.tasks[0],
            &settings,
        );
        assert_eq!(spec.kill_timeout, limits::MAX_KILL_TIMEOUT);
        let spec = task_spec_capped(
            &job(&group),
            &alloc,
            "u-1",
            &group,
            &group.tasks[0],
            &settings,
            Duration::from_secs(90),
        );
        assert_eq!(spec.kill_timeout, Duration::from_secs(90));
        // Below the cap the task's own timeout holds; without one, Nomad's default.
        group.tasks[0].kill_timeout = Some("2s".into());
        assert_eq!(
            kill_timeout(&group.tasks[0], Duration::from_secs(1)),
            Duration::from_secs(1)
        );
        assert_eq!(
            kill_timeout(&group.tasks[0], limits::MAX_KILL_TIMEOUT),
            Duration::from_secs(2)
        );
        group.tasks[0].kill_timeout = None;
        assert_eq!(
            kill_timeout(&group.tasks[0], limits::MAX_KILL_TIMEOUT),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn restart_policies_and_phases() {
        let (_, group) = fixture();
        let p = restart_policy(JobType::Service, &group, &group.tasks[0]);
        assert_eq!(p.attempts, 1);
        assert_eq!(p.interval, Duration::from_secs(60));
        assert_eq!(p.mode, RestartMode::Delay);
        assert!(p.on_success);
        let hook = restart_policy(JobType::Service, &group, &group.tasks[1]);
        assert!(!hook.on_success, "prestart hooks that succeed are done");
        assert_eq!(
            Phase::of(&group.tasks[1]),
            Phase::Prestart { sidecar: false }
        );
        let batch = restart_policy(JobType::Batch, &TaskGroup::default(), &group.tasks[0]);
        assert_eq!(batch.attempts, 3);
        assert!(!batch.on_success);
    }
}
