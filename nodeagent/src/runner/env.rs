//! A task's runtime environment, after Nomad's `taskenv`: who and where the task is, its
//! resources, its ports and its meta, each variable under both `CARAVAN_` and `NOMAD_` (so
//! that jobs written for Nomad run unchanged), then the task's own `env`, interpolated. Pure.
//!
//! ```text
//!  job, allocation, group, task, node ──▶ runtime_env ──▶ CARAVAN_* / NOMAD_* (+ META_*)
//!  + PATH (raw_exec) ──▶ apply_task_env (task env, `${…}` resolved) ──▶ the task's environment
//! ```
//!
//! `docs/runtime.md` lists every variable.

use std::collections::BTreeMap;

use caravan_schemas::allocation::AllocatedPort;
use caravan_schemas::job::{Task, TaskGroup, defaults};
use caravan_schemas::naming::{display_name, parse_index};
use caravan_schemas::{Allocation, Job};

use super::interpolate::{Budget, NodeVars, Scope, interpolate};

/// The prefixes every runtime variable is set under.
pub const PREFIXES: [&str; 2] = ["CARAVAN_", "NOMAD_"];

/// What a task's runtime variables are made of.
#[derive(Clone, Copy, Debug)]
pub struct EnvInput<'a> {
    /// The job at the version the tasks are built from.
    pub job: &'a Job,
    pub alloc: &'a Allocation,
    /// The allocation's uid.
    pub alloc_id: &'a str,
    pub group: &'a TaskGroup,
    pub task: &'a Task,
    /// The node the task runs on.
    pub node: &'a NodeVars,
    /// The shared allocation directory, the task's `local/` and `secrets/`, as the task sees
    /// them (`/alloc`, `/local`, `/secrets` inside a container).
    pub alloc_dir: &'a str,
    pub task_dir: &'a str,
    pub secrets_dir: &'a str,
    /// CPU in MHz, memory in MB, the memory hard limit when set, the pinned cores.
    pub cpu_mhz: u64,
    pub memory_mb: u64,
    pub memory_max_mb: Option<u64>,
    pub cores: &'a [u32],
}

/// `name` fit for a variable name, as Nomad cleans port labels and meta keys: every character
/// other than an ASCII letter, digit, `_` or `.` becomes `_` (`http-admin` → `http_admin`).
pub fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `ip:port`, `[ip]:port` for an IPv6 address.
fn join_host_port(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Sets `<prefix><suffix>` for both prefixes.
fn set_both(env: &mut BTreeMap<String, String>, suffix: &str, value: &str) {
    for prefix in PREFIXES {
        env.insert(format!("{prefix}{suffix}"), value.to_string());
    }
}

/// The port variables of one allocated port. The host's address and port always go into
/// `HOST_IP_`, `HOST_PORT_`, `HOST_ADDR_`, and into `IP_` and `ADDR_` (Nomad's rule: the
/// address is the host's); `PORT_` and `ALLOC_PORT_` are the port inside the allocation's
/// network, `to` when the port maps to another, else the host port.
fn port_vars(port: &AllocatedPort) -> Vec<(String, String)> {
    let label = clean_name(&port.label);
    let host_port = port.value.to_string();
    let inside = port.to.filter(|t| *t > 0).unwrap_or(port.value).to_string();
    let mut vars = vec![
        (format!("PORT_{label}"), inside.clone()),
        (format!("ALLOC_PORT_{label}"), inside),
        (format!("HOST_PORT_{label}"), host_port),
    ];
    if let Some(ip) = port.host_ip.as_deref().filter(|ip| !ip.is_empty()) {
        let addr = join_host_port(ip, port.value);
        vars.extend([
            (format!("IP_{label}"), ip.to_string()),
            (format!("HOST_IP_{label}"), ip.to_string()),
            (format!("ADDR_{label}"), addr.clone()),
            (format!("HOST_ADDR_{label}"), addr),
        ]);
    }
    vars
}

/// The job's, group's and task's meta merged, the task's winning over the group's over the
/// job's.
pub fn merged_meta<'a>(
    job: &'a Job,
    group: &'a TaskGroup,
    task: &'a Task,
) -> BTreeMap<&'a str, &'a str> {
    let mut meta = BTreeMap::new();
    for layer in [&job.spec.meta, &group.meta, &task.meta] {
        for (k, v) in layer {
            meta.insert(k.as_str(), v.as_str());
        }
    }
    meta
}

/// The task's runtime variables, each under `CARAVAN_` and `NOMAD_`. Meta values are
/// interpolated against the node and the other runtime variables (as Nomad does), within
/// `budget`.
pub fn runtime_env(input: &EnvInput<'_>, budget: &mut Budget) -> BTreeMap<String, String> {
    let alloc = input.alloc;
    let object_name = alloc.metadata.name();
    let job_name = alloc.spec.job_name.as_str();
    let group = input.group.name.as_str();
    let index = parse_index(object_name);
    let mut env = BTreeMap::new();

    // The allocation name: its object name under CARAVAN_, Nomad's `<job>.<group>[<index>]`
    // under NOMAD_ (the object name when it carries no index).
    env.insert("CARAVAN_ALLOC_NAME".to_string(), object_name.to_string());
    env.insert(
        "NOMAD_ALLOC_NAME".to_string(),
        index.map_or_else(
            || object_name.to_string(),
            |i| display_name(job_name, group, i),
        ),
    );
    let short_id: String = input.alloc_id.chars().take(8).collect();
    let region = input
        .job
        .spec
        .region
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(defaults::REGION);
    let mut vars: Vec<(&str, String)> = vec![
        ("ALLOC_ID", input.alloc_id.to_string()),
        ("SHORT_ALLOC_ID", short_id),
        ("JOB_ID", job_name.to_string()),
        ("JOB_NAME", job_name.to_string()),
        ("GROUP_NAME", group.to_string()),
        ("TASK_NAME", input.task.name.clone()),
        ("NAMESPACE", alloc.metadata.namespace().to_string()),
        ("REGION", region.to_string()),
        ("ALLOC_DIR", input.alloc_dir.to_string()),
        ("TASK_DIR", input.task_dir.to_string()),
        ("SECRETS_DIR", input.secrets_dir.to_string()),
        ("CPU_LIMIT", input.cpu_mhz.to_string()),
        ("MEMORY_LIMIT", input.memory_mb.to_string()),
    ];
    if let Some(i) = index {
        vars.push(("ALLOC_INDEX", i.to_string()));
    }
    if !input.node.datacenter.is_empty() {
        vars.push(("DC", input.node.datacenter.clone()));
    }
    if let Some(max) = input.memory_max_mb {
        vars.push(("MEMORY_MAX_LIMIT", max.to_string()));
    }
    if !input.cores.is_empty() {
        let mut cores = input.cores.to_vec();
        cores.sort_unstable();
        cores.dedup();
        let list: Vec<String> = cores.iter().map(u32::to_string).collect();
        vars.push(("CPU_CORES", list.join(",")));
    }
    for (suffix, value) in &vars {
        set_both(&mut env, suffix, value);
    }

    let ports = alloc
        .spec
        .allocated_resources
        .as_ref()
        .map(|r| r.shared.ports.as_slice())
        .unwrap_or_default();
    for port in ports {
        for (suffix, value) in port_vars(port) {
            set_both(&mut env, &suffix, &value);
        }
    }

    // Meta: each key upper-cased and as written (the latter wins where two keys meet), values
    // interpolated against what is set so far.
    let meta = merged_meta(input.job, input.group, input.task);
    let mut meta_vars: Vec<(String, String)> = Vec::with_capacity(meta.len() * 2);
    {
        let scope = Scope {
            node: input.node,
            env: &env,
        };
        let values: Vec<(&str, String)> = meta
            .iter()
            .map(|(k, v)| (*k, interpolate(v, &scope, budget).into_owned()))
            .collect();
        for (k, v) in &values {
            meta_vars.push((format!("META_{}", clean_name(&k.to_uppercase())), v.clone()));
        }
        for (k, v) in values {
            meta_vars.push((format!("META_{}", clean_name(k)), v));
        }
    }
    for (suffix, value) in &meta_vars {
        set_both(&mut env, suffix, value);
    }
    env
}

/// Adds the task's own `env` to `env`, over what is there: each value interpolated first
/// against the node and `env` as it was before any of them (so one entry of the task's `env`
/// does not see another).
pub fn apply_task_env(
    env: &mut BTreeMap<String, String>,
    task_env: &BTreeMap<String, String>,
    node: &NodeVars,
    budget: &mut Budget,
) {
    let resolved: Vec<(String, String)> = {
        let scope = Scope { node, env };
        task_env
            .iter()
            .map(|(k, v)| (k.clone(), interpolate(v, &scope, budget).into_owned()))
            .collect()
    };
    env.extend(resolved);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job() -> Job {
        serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "Job",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {
                "region": "eu",
                "meta": {"owner": "team-a", "tier": "job"},
                "groups": [{
                    "name": "front",
                    "meta": {"tier": "group", "zone-id": "z1"},
                    "network": {"ports": [{"label": "http"}, {"label": "admin-ui", "to": 9090}]},
                    "tasks": [{
                        "name": "srv", "driver": "raw_exec",
                        "meta": {"tier": "task", "addr": "${attr.unique.network.ip-address}:${NOMAD_PORT_http}"},
                        "env": {
                            "LISTEN": ":${NOMAD_PORT_http}",
                            "WHERE": "${node.datacenter}/${meta.rack}",
                            "OTHER": "${LISTEN}",
                            "NOMAD_REGION": "overridden",
                            "KEEP": "${nope}"
                        }
                    }]
                }]
            }
        }))
        .unwrap()
    }

    fn alloc(ports: serde_json::Value, cores: serde_json::Value) -> Allocation {
        serde_json::from_value(json!({
            "apiVersion": "caravan.dev/v1", "kind": "Allocation",
            "metadata": {"name": "web-front-3-0a1b2c3d", "namespace": "prod"},
            "spec": {"jobName": "web", "group": "front", "nodeName": "n1",
                     "allocatedResources": {
                         "tasks": {"srv": {"cpu": 250, "memoryMB": 64, "cores": cores}},
                         "shared": {"ports": ports}}}
        }))
        .unwrap()
    }

    fn node() -> NodeVars {
        NodeVars {
            id: "node-id".into(),
            name: "n1".into(),
            datacenter: "dc2".into(),
            region: Some("eu".into()),
            class: None,
            pool: "default".into(),
            attributes: BTreeMap::from([(
                "unique.network.ip-address".to_string(),
                "10.0.0.5".to_string(),
            )]),
            meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        }
    }

    fn build(
        job: &Job,
        alloc: &Allocation,
        node: &NodeVars,
        cores: &[u32],
    ) -> BTreeMap<String, String> {
        let group = &job.spec.groups[0];
        let task = &group.tasks[0];
        let input = EnvInput {
            job,
            alloc,
            alloc_id: "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c",
            group,
            task,
            node,
            alloc_dir: "/alloc",
            task_dir: "/local",
            secrets_dir: "/secrets",
            cpu_mhz: 250,
            memory_mb: 64,
            memory_max_mb: Some(128),
            cores,
        };
        let mut budget = Budget::default();
        let mut env = runtime_env(&input, &mut budget);
        apply_task_env(&mut env, &task.env, node, &mut budget);
        env
    }

    fn host_ports() -> serde_json::Value {
        json!([
            {"label": "http", "value": 20001, "hostIp": "10.0.0.5"},
            {"label": "admin-ui", "value": 20002, "to": 9090, "hostIp": "10.0.0.5"}
        ])
    }

    #[test]
    fn identity_directories_and_limits_under_both_prefixes() {
        let job = job();
        let node = node();
        let env = build(&job, &alloc(host_ports(), json!([3, 1])), &node, &[3, 1]);
        for p in PREFIXES {
            let var = |s: &str| env[&format!("{p}{s}")].as_str();
            assert_eq!(var("ALLOC_ID"), "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c");
            assert_eq!(var("SHORT_ALLOC_ID"), "0b5f3c2e");
            assert_eq!(var("ALLOC_INDEX"), "3");
            assert_eq!(var("JOB_ID"), "web");
            assert_eq!(var("JOB_NAME"), "web");
            assert_eq!(var("GROUP_NAME"), "front");
            assert_eq!(var("TASK_NAME"), "srv");
            assert_eq!(var("NAMESPACE"), "prod");
            assert_eq!(var("DC"), "dc2");
            assert_eq!(var("ALLOC_DIR"), "/alloc");
            assert_eq!(var("TASK_DIR"), "/local");
            assert_eq!(var("SECRETS_DIR"), "/secrets");
            assert_eq!(var("CPU_LIMIT"), "250");
            assert_eq!(var("MEMORY_LIMIT"), "64");
            assert_eq!(var("MEMORY_MAX_LIMIT"), "128");
            assert_eq!(var("CPU_CORES"), "1,3");
        }
        // The allocation name: the object's under CARAVAN_, Nomad's display name under NOMAD_.
        assert_eq!(env["CARAVAN_ALLOC_NAME"], "web-front-3-0a1b2c3d");
        assert_eq!(env["NOMAD_ALLOC_NAME"], "web.front[3]");
        // The job's region; the task's own env wins over a runtime variable.
        assert_eq!(env["CARAVAN_REGION"], "eu");
        assert_eq!(env["NOMAD_REGION"], "overridden");
    }

    #[test]
    fn optional_variables_are_left_out() {
        let mut job = job();
        job.spec.region = None;
        job.spec.groups[0].tasks[0].env.clear();
        let mut alloc = alloc(json!([]), json!([]));
        alloc.metadata.name = Some("not-an-indexed-name".into());
        let node = NodeVars::default();
        let group = &job.spec.groups[0];
        let input = EnvInput {
            job: &job,
            alloc: &alloc,
            alloc_id: "short",
            group,
            task: &group.tasks[0],
            node: &node,
            alloc_dir: "/a",
            task_dir: "/l",
            secrets_dir: "/s",
            cpu_mhz: 100,
            memory_mb: 300,
            memory_max_mb: None,
            cores: &[],
        };
        let env = runtime_env(&input, &mut Budget::default());
        for p in PREFIXES {
            for absent in ["ALLOC_INDEX", "DC", "MEMORY_MAX_LIMIT", "CPU_CORES"] {
                assert!(!env.contains_key(&format!("{p}{absent}")), "{p}{absent}");
            }
            assert_eq!(env[&format!("{p}REGION")], "global");
            assert_eq!(env[&format!("{p}SHORT_ALLOC_ID")], "short");
        }
        assert_eq!(env["NOMAD_ALLOC_NAME"], "not-an-indexed-name");
        assert!(!env.keys().any(|k| k.contains("PORT_")));
    }

    #[test]
    fn ports_in_host_mode_and_mapped() {
        let job = job();
        let node = node();
        let env = build(&job, &alloc(host_ports(), json!([])), &node, &[]);
        for p in PREFIXES {
            let var = |s: &str| env[&format!("{p}{s}")].as_str();
            // Host mode: the port inside is the host port.
            assert_eq!(var("IP_http"), "10.0.0.5");
            assert_eq!(var("PORT_http"), "20001");
            assert_eq!(var("ADDR_http"), "10.0.0.5:20001");
            assert_eq!(var("HOST_IP_http"), "10.0.0.5");
            assert_eq!(var("HOST_PORT_http"), "20001");
            assert_eq!(var("HOST_ADDR_http"), "10.0.0.5:20001");
            assert_eq!(var("ALLOC_PORT_http"), "20001");
            // Mapped (`to`): PORT is the port inside, the address the host's; `-` becomes `_`.
            assert_eq!(var("PORT_admin_ui"), "9090");
            assert_eq!(var("ALLOC_PORT_admin_ui"), "9090");
            assert_eq!(var("HOST_PORT_admin_ui"), "20002");
            assert_eq!(var("IP_admin_ui"), "10.0.0.5");
            assert_eq!(var("ADDR_admin_ui"), "10.0.0.5:20002");
            assert_eq!(var("HOST_ADDR_admin_ui"), "10.0.0.5:20002");
        }
        assert!(!env.keys().any(|k| k.contains("admin-ui")));
        // The label keeps its case; an IPv6 host address is bracketed; no address, no IP vars.
        let env = build(
            &job,
            &alloc(
                json!([
                    {"label": "RPC", "value": 7000, "hostIp": "2001:db8::1"},
                    {"label": "bare", "value": 7001}
                ]),
                json!([]),
            ),
            &node,
            &[],
        );
        assert_eq!(env["NOMAD_ADDR_RPC"], "[2001:db8::1]:7000");
        assert_eq!(env["NOMAD_PORT_bare"], "7001");
        assert!(!env.contains_key("NOMAD_IP_bare"));
        assert!(!env.contains_key("NOMAD_ADDR_bare"));
    }

    #[test]
    fn meta_is_merged_interpolated_and_set_twice() {
        let job = job();
        let node = node();
        let env = build(&job, &alloc(host_ports(), json!([])), &node, &[]);
        for p in PREFIXES {
            let var = |s: &str| env[&format!("{p}{s}")].as_str();
            assert_eq!(var("META_tier"), "task");
            assert_eq!(var("META_TIER"), "task");
            assert_eq!(var("META_owner"), "team-a");
            assert_eq!(var("META_OWNER"), "team-a");
            assert_eq!(var("META_zone_id"), "z1");
            assert_eq!(var("META_ZONE_ID"), "z1");
            assert_eq!(var("META_addr"), "10.0.0.5:20001");
        }
        assert_eq!(
            merged_meta(&job, &job.spec.groups[0], &job.spec.groups[0].tasks[0])["tier"],
            "task"
        );
    }

    #[test]
    fn the_tasks_env_is_interpolated_first() {
        let job = job();
        let node = node();
        let env = build(&job, &alloc(host_ports(), json!([])), &node, &[]);
        assert_eq!(env["LISTEN"], ":20001");
        assert_eq!(env["WHERE"], "dc2/r1");
        // Entries of the task's env do not see each other; unknown references stay.
        assert_eq!(env["OTHER"], "${LISTEN}");
        assert_eq!(env["KEEP"], "${nope}");
    }

    #[test]
    fn names_are_cleaned_like_nomads() {
        assert_eq!(clean_name("http-admin"), "http_admin");
        assert_eq!(clean_name("a.b_C9"), "a.b_C9");
        assert_eq!(clean_name("sp ace/é"), "sp_ace__");
    }
}
