//! Checks of a group's and its tasks' `services`: what the node agent can register and check.

use std::collections::HashSet;
use std::time::Duration;

use super::{AddressMode, CheckType, Service, ServiceCheck, ServicePort, TaskGroup};
use crate::admission::checks::{Checks, dns1123_label};
use crate::duration::parse_duration;
use crate::limits::{
    MAX_CHECKS_PER_SERVICE, MAX_SERVICE_TAG_LEN, MAX_SERVICE_TAGS, MAX_SERVICES_PER_GROUP,
};

/// Shortest check interval and timeout.
const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// HTTP methods a check may use.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// Checks the services of `group` (at `base`, e.g. `spec.groups[0]`) and of its tasks.
pub(crate) fn check(checks: &mut Checks, base: &str, group: &TaskGroup) {
    let total = group.services.len() + group.tasks.iter().map(|t| t.services.len()).sum::<usize>();
    checks.max_items(format!("{base}.services"), total, MAX_SERVICES_PER_GROUP);
    for (i, service) in group.services.iter().enumerate() {
        one(
            checks,
            &format!("{base}.services[{i}]"),
            group,
            None,
            service,
        );
    }
    for (j, task) in group.tasks.iter().enumerate() {
        for (i, service) in task.services.iter().enumerate() {
            one(
                checks,
                &format!("{base}.tasks[{j}].services[{i}]"),
                group,
                Some(task.driver.as_str()),
                service,
            );
        }
    }
}

/// Checks one service; `driver` is its task's, `None` for a group service.
fn one(checks: &mut Checks, at: &str, group: &TaskGroup, driver: Option<&str>, service: &Service) {
    if service.name.is_empty() {
        checks.invalid(format!("{at}.name"), "a service needs a name");
    } else if !service.name.contains("${")
        && let Some(problem) = dns1123_label(&service.name)
    {
        checks.invalid(format!("{at}.name"), problem);
    }
    match service.provider.as_deref() {
        None | Some("caravan" | "nomad") => {}
        Some(other) => checks.invalid(
            format!("{at}.provider"),
            format!("provider {other:?} is not supported; services register with caravan"),
        ),
    }
    if matches!(
        service.address_mode,
        Some(AddressMode::Alloc | AddressMode::Driver)
    ) {
        checks.invalid(
            format!("{at}.addressMode"),
            "addressMode alloc and driver (an address inside the allocation's network) are not \
             supported yet; use auto or host",
        );
    }
    if let Some(port) = &service.port {
        port_ref(checks, &format!("{at}.port"), group, port);
    }
    checks.max_items(format!("{at}.tags"), service.tags.len(), MAX_SERVICE_TAGS);
    for (i, tag) in service.tags.iter().enumerate() {
        if tag.len() > MAX_SERVICE_TAG_LEN {
            checks.invalid(
                format!("{at}.tags[{i}]"),
                format!("a tag must be at most {MAX_SERVICE_TAG_LEN} characters"),
            );
        }
    }
    checks.max_items(
        format!("{at}.checks"),
        service.checks.len(),
        MAX_CHECKS_PER_SERVICE,
    );
    let mut names = HashSet::new();
    let of = service.checks.len();
    for (i, check) in service.checks.iter().enumerate() {
        let here = format!("{at}.checks[{i}]");
        if !names.insert(check.name_in(&service.name, i, of)) {
            checks.push(
                format!("{here}.name"),
                crate::FieldErrorKind::Duplicate,
                "two checks of the service have one name",
            );
        }
        one_check(checks, &here, group, driver, service, check);
    }
}

fn one_check(
    checks: &mut Checks,
    at: &str,
    group: &TaskGroup,
    driver: Option<&str>,
    service: &Service,
    check: &ServiceCheck,
) {
    interval(checks, &format!("{at}.interval"), &check.interval);
    interval(checks, &format!("{at}.timeout"), &check.timeout);
    if let Some(port) = &check.port {
        port_ref(checks, &format!("{at}.port"), group, port);
    }
    if let Some(restart) = &check.check_restart {
        checks.duration(format!("{at}.checkRestart.grace"), restart.grace.as_deref());
    }
    let http = check.r#type == CheckType::Http;
    let script = check.r#type == CheckType::Script;
    match check.r#type {
        CheckType::Grpc => checks.invalid(
            format!("{at}.type"),
            "grpc checks are not supported yet; use http, tcp or script",
        ),
        CheckType::Http | CheckType::Tcp => {
            if check.port.is_none() && service.port.is_none() {
                checks.invalid(
                    format!("{at}.port"),
                    "an http or tcp check needs a port: the service's or its own",
                );
            }
        }
        CheckType::Script => script_check(checks, at, group, driver, check),
    }
    if let Some(path) = &check.path
        && !path.starts_with('/')
    {
        checks.invalid(format!("{at}.path"), "an HTTP path starts with '/'");
    }
    if let Some(method) = &check.method
        && !METHODS.contains(&method.as_str())
    {
        checks.invalid(
            format!("{at}.method"),
            format!("method {method:?} is not one of {}", METHODS.join(", ")),
        );
    }
    let http_only = [
        ("path", check.path.is_some()),
        ("method", check.method.is_some()),
        ("headers", !check.headers.is_empty()),
        ("expectedStatus", check.expected_status.is_some()),
    ];
    for (field, set) in http_only {
        if set && !http {
            checks.invalid(format!("{at}.{field}"), "only http checks take it");
        }
    }
    let script_only = [
        ("command", check.command.is_some()),
        ("args", !check.args.is_empty()),
        ("task", check.task.is_some()),
    ];
    for (field, set) in script_only {
        if set && !script {
            checks.invalid(format!("{at}.{field}"), "only script checks take it");
        }
    }
}

/// A script check runs in its task's context: a raw_exec task's (exec and oci tasks would need
/// a command run inside their container, not supported yet).
fn script_check(
    checks: &mut Checks,
    at: &str,
    group: &TaskGroup,
    driver: Option<&str>,
    check: &ServiceCheck,
) {
    if check.command.as_deref().is_none_or(str::is_empty) {
        checks.invalid(format!("{at}.command"), "a script check needs a command");
    }
    let driver = match (driver, &check.task) {
        (Some(_), Some(_)) => {
            checks.invalid(
                format!("{at}.task"),
                "only script checks of a group service name their task",
            );
            return;
        }
        (Some(driver), None) => driver,
        (None, None) => {
            checks.invalid(
                format!("{at}.task"),
                "a script check of a group service names the task it runs in",
            );
            return;
        }
        (None, Some(task)) => match group.tasks.iter().find(|t| &t.name == task) {
            Some(task) => task.driver.as_str(),
            None => {
                checks.invalid(
                    format!("{at}.task"),
                    format!("the group has no task {task:?}"),
                );
                return;
            }
        },
    };
    if driver != "raw_exec" {
        checks.invalid(
            format!("{at}.type"),
            format!("script checks of {driver} tasks are not supported yet; raw_exec tasks only"),
        );
    }
}

/// Checks a port reference: a label of the group's network, or a number 1–65535.
fn port_ref(checks: &mut Checks, at: &str, group: &TaskGroup, port: &ServicePort) {
    match port {
        ServicePort::Number(n) => {
            if !(1..=65535).contains(n) {
                checks.invalid(at, format!("port {n} is not 1-65535"));
            }
        }
        ServicePort::Label(label) => {
            let known = group
                .network
                .as_ref()
                .is_some_and(|n| n.ports.iter().any(|p| &p.label == label));
            if !known {
                checks.invalid(
                    at,
                    format!("the group's network has no port labelled {label:?}"),
                );
            }
        }
    }
}

/// Checks a check's interval or timeout: a duration of at least 1s.
fn interval(checks: &mut Checks, at: &str, value: &str) {
    checks.duration(at, Some(value));
    if let Ok(parsed) = parse_duration(value)
        && parsed < MIN_CHECK_INTERVAL
    {
        checks.invalid(at, "must be at least 1s");
    }
}
