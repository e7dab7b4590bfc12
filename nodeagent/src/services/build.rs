//! From a group's or a task's `services` to the registrations the agent wants and the checks it
//! runs for them. Pure.
//!
//! A registration's address is the host address of its port (the node's address for a port
//! given as a number or no port at all), its port the allocated value (or the number, or 0);
//! its name, tags and meta values, and its checks' paths, header values, commands and
//! arguments have `${…}` resolved against the node and the owner's environment. Its object name
//! is [`name_for`] of the allocation, the task (none for a group service), the service's name
//! and its position in its list, so that an agent writing it again finds it. A service whose
//! name is not a DNS label once interpolated, or whose port label the allocation was not
//! given, is left out with a warning.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{CheckStatus, CheckType, Service, ServiceCheck, ServicePort};
use caravan_schemas::service_registration::{ServiceRegistrationSpec, name_for};
use caravan_schemas::{API_VERSION, Allocation, ObjectMeta, ServiceRegistration};

use super::check_state::RestartRule;
use crate::driver::TaskSpec;
use crate::runner::interpolate::{Budget, NodeVars, Scope, interpolate};

/// A check's interval or timeout when its own cannot be read (admission refuses that).
const FALLBACK_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest interval and timeout a check runs with.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// `checkRestart.grace` when the check sets none.
const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// A registration the agent wants, with its checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Wanted {
    /// The object to create (no status: the registry adds the checks' statuses).
    pub registration: ServiceRegistration,
    /// The task offering it; `None` for a group service.
    pub task: Option<String>,
    /// The run of that task (its start time): a new run starts the checks over.
    pub run: Option<String>,
    pub checks: Vec<CheckDef>,
}

impl Wanted {
    /// The registration's object name.
    pub fn name(&self) -> &str {
        self.registration.metadata.name()
    }
}

/// One check, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckDef {
    pub name: String,
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub initial: CheckStatus,
    pub success_before_passing: u32,
    pub failures_before_critical: u32,
    /// `checkRestart` with a limit above 0.
    pub restart: Option<RestartRule>,
}

/// What a check does.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckKind {
    /// A request to `http://<address>:<port><path>`.
    Http {
        address: String,
        port: u32,
        path: String,
        method: String,
        headers: Vec<(String, String)>,
        /// The status that passes; any 2xx when `None`.
        expected_status: Option<u32>,
    },
    /// A TCP connection to `<address>:<port>`.
    Tcp { address: String, port: u32 },
    /// A command in a task's context; `None` when that task is not in the group.
    Script {
        command: String,
        args: Vec<String>,
        context: Option<Arc<ScriptContext>>,
    },
}

impl CheckKind {
    /// `http`, `tcp` or `script`.
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Script { .. } => "script",
        }
    }
}

/// Where a script check runs: its task's environment, directory and user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptContext {
    pub env: BTreeMap<String, String>,
    pub dir: PathBuf,
    pub user: Option<String>,
}

impl ScriptContext {
    /// The context of the task `spec` starts: its environment (with its driver config's `env`),
    /// its task directory, its user (the driver config's `user` first, as the executor does).
    pub fn of(spec: &TaskSpec) -> ScriptContext {
        let mut env = spec.env.clone();
        if let Some(extra) = spec.config.get("env").and_then(|e| e.as_object()) {
            for (k, v) in extra {
                if let Some(v) = v.as_str() {
                    env.insert(k.clone(), v.to_string());
                }
            }
        }
        let user = spec
            .config
            .get("user")
            .and_then(|u| u.as_str())
            .map(str::to_string)
            .or_else(|| spec.user.clone());
        ScriptContext {
            env,
            dir: spec.task_dir.clone(),
            user,
        }
    }
}

/// Whose services are built: an allocation's group (`task: None`) or one of its tasks.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub alloc: &'a Allocation,
    pub node: &'a NodeVars,
    pub task: Option<&'a str>,
    /// The task's run (its start time), for a task's services.
    pub run: Option<&'a str>,
    /// What `${…}` resolves against besides the node: the task's environment (for a group, the
    /// first main task's).
    pub env: &'a BTreeMap<String, String>,
}

/// The registrations of `services` for `owner`; `script` gives the context of a task by name,
/// for script checks. A service whose port label the allocation was not given is left out,
/// with a warning.
pub fn wanted(
    owner: &Owner<'_>,
    services: &[Service],
    script: &mut dyn FnMut(&str) -> Option<Arc<ScriptContext>>,
) -> Vec<Wanted> {
    let scope = Scope {
        node: owner.node,
        env: owner.env,
    };
    let mut budget = Budget::default();
    let mut text = |s: &str| interpolate(s, &scope, &mut budget).into_owned();
    let alloc = owner.alloc;
    let alloc_name = alloc.metadata.name();
    let mut out = Vec::with_capacity(services.len());
    for (index, service) in services.iter().enumerate() {
        let service_name = text(&service.name);
        if !is_dns_label(&service_name) {
            tracing::warn!(alloc = %alloc_name, service = %service_name, "not registering the service: its name is not a DNS label (lowercase letters, digits and '-', at most 63)");
            continue;
        }
        let (address, port) = match endpoint(service.port.as_ref(), alloc, owner.node) {
            Ok(at) => at,
            Err(problem) => {
                tracing::warn!(alloc = %alloc_name, service = %service_name, "not registering the service: {problem}");
                continue;
            }
        };
        let mut checks = Vec::with_capacity(service.checks.len());
        for (i, check) in service.checks.iter().enumerate() {
            let name = check.name_in(&service_name, i, service.checks.len());
            let kind = match check.r#type {
                CheckType::Http | CheckType::Tcp => {
                    let at = match &check.port {
                        Some(p) => endpoint(Some(p), alloc, owner.node),
                        None => Ok((address.clone(), port)),
                    };
                    let (address, port) = match at {
                        Ok(at) => at,
                        Err(problem) => {
                            tracing::warn!(alloc = %alloc_name, check = %name, "not running the check: {problem}");
                            continue;
                        }
                    };
                    if check.r#type == CheckType::Tcp {
                        CheckKind::Tcp { address, port }
                    } else {
                        CheckKind::Http {
                            address,
                            port,
                            path: text(check.path.as_deref().unwrap_or("/")),
                            method: check.method.clone().unwrap_or_else(|| "GET".into()),
                            headers: check
                                .headers
                                .iter()
                                .flat_map(|(k, vs)| vs.iter().map(move |v| (k, v)))
                                .map(|(k, v)| (k.clone(), text(v)))
                                .collect(),
                            expected_status: check.expected_status,
                        }
                    }
                }
                CheckType::Script => {
                    let task = owner.task.or(check.task.as_deref()).unwrap_or_default();
                    CheckKind::Script {
                        command: text(check.command.as_deref().unwrap_or_default()),
                        args: check.args.iter().map(|a| text(a)).collect(),
                        context: script(task),
                    }
                }
                // Refused by admission.
                CheckType::Grpc => continue,
            };
            checks.push(check_def(name, kind, check));
        }
        let spec = ServiceRegistrationSpec {
            service_name: service_name.clone(),
            job_name: alloc.spec.job_name.clone(),
            group_name: alloc.spec.group.clone(),
            task_name: owner.task.map(str::to_string),
            alloc_name: alloc_name.to_string(),
            node_name: alloc.spec.node_name.clone(),
            datacenter: Some(owner.node.datacenter.clone()).filter(|d| !d.is_empty()),
            address,
            port,
            tags: service.tags.iter().map(|t| text(t)).collect(),
            meta: service
                .meta
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        };
        out.push(Wanted {
            registration: ServiceRegistration {
                api_version: API_VERSION.to_string(),
                kind: "ServiceRegistration".to_string(),
                metadata: ObjectMeta {
                    name: Some(name_for(alloc_name, owner.task, &service_name, index)),
                    namespace: Some(alloc.metadata.namespace().to_string()),
                    ..Default::default()
                },
                spec,
                status: None,
            },
            task: owner.task.map(str::to_string),
            run: owner.run.map(str::to_string),
            checks,
        });
    }
    out
}

fn check_def(name: String, kind: CheckKind, check: &ServiceCheck) -> CheckDef {
    let duration = |d: &str| {
        parse_duration(d)
            .unwrap_or(FALLBACK_INTERVAL)
            .max(MIN_INTERVAL)
    };
    let restart = check.check_restart.as_ref().and_then(|r| {
        let limit = r.limit.unwrap_or(0);
        (limit > 0).then(|| RestartRule {
            limit,
            grace: r
                .grace
                .as_deref()
                .and_then(|g| parse_duration(g).ok())
                .unwrap_or(DEFAULT_GRACE),
            ignore_warnings: r.ignore_warnings.unwrap_or(false),
        })
    });
    CheckDef {
        name,
        kind,
        interval: duration(&check.interval),
        timeout: duration(&check.timeout),
        initial: check.initial_status.unwrap_or(CheckStatus::Critical),
        success_before_passing: check.success_before_passing.unwrap_or(0),
        failures_before_critical: check.failures_before_critical.unwrap_or(0),
        restart,
    }
}

/// Whether `name` is a DNS label, as a service name must be once interpolated: 1 to 63
/// lowercase letters, digits and `-`, neither first nor last.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    name.len() <= 63
        && edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// The address and port of a service or check port: a label's host address and value, or the
/// node's address with a number (or port 0 without a port).
pub fn endpoint(
    port: Option<&ServicePort>,
    alloc: &Allocation,
    node: &NodeVars,
) -> Result<(String, u32), String> {
    let node_address = || {
        node.attributes
            .get("unique.network.ip-address")
            .cloned()
            .unwrap_or_else(|| "127.0.0.1".to_string())
    };
    match port {
        None => Ok((node_address(), 0)),
        Some(ServicePort::Number(n)) => Ok((node_address(), *n)),
        Some(ServicePort::Label(label)) => alloc
            .spec
            .allocated_resources
            .as_ref()
            .and_then(|r| r.shared.ports.iter().find(|p| &p.label == label))
            .map(|p| {
                let address = p.host_ip.clone().filter(|ip| !ip.is_empty());
                (address.unwrap_or_else(node_address), p.value)
            })
            .ok_or_else(|| format!("the allocation has no port {label:?}")),
    }
}

#[cfg(test)]
#[path = "build/tests.rs"]
mod tests;
