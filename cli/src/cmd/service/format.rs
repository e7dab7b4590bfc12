//! Service registrations in Nomad's layouts: the `service list` table (one row per service) and
//! the `service info` table (one row per instance), followed by each instance's checks.
//!
//! ```text
//! Job ID  Address         Tags      Node ID  Alloc ID            Status
//! web     10.0.0.5:24527  [v1,web]  n1       web-web-0-0a1b2c3d  passing
//!
//! Checks of web-web-0-0a1b2c3d (10.0.0.5:24527)
//! Name   Type  Status   Output
//! alive  http  passing  HTTP GET http://10.0.0.5:24527/health: 200 OK
//! ```

use std::collections::{BTreeMap, BTreeSet};

use caravan_schemas::ServiceRegistration;

use crate::cmd::job::format::{columns, wire};

/// `[a,b]`, as Nomad prints tags.
fn tags<'a>(tags: impl IntoIterator<Item = &'a String>) -> String {
    let tags: Vec<&str> = tags.into_iter().map(String::as_str).collect();
    format!("[{}]", tags.join(","))
}

/// `ip:port`, with an IPv6 address in brackets.
pub fn address(registration: &ServiceRegistration) -> String {
    let spec = &registration.spec;
    if spec.address.contains(':') {
        format!("[{}]:{}", spec.address, spec.port)
    } else {
        format!("{}:{}", spec.address, spec.port)
    }
}

/// One line of a check's output: its lines joined, surrounding space trimmed.
fn one_line(output: &str) -> String {
    output.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What `service list` shows of one service.
#[derive(Debug, Default)]
struct Summary<'a> {
    tags: BTreeSet<&'a String>,
    instances: usize,
    passing: usize,
}

/// `Service Name  Tags  Instances  Passing`, one row per service (per namespace and service
/// with `namespaces`, which adds a `Namespace` column), sorted by name.
pub fn services_table(registrations: &[ServiceRegistration], namespaces: bool) -> String {
    let mut services: BTreeMap<(&str, &str), Summary> = BTreeMap::new();
    for r in registrations {
        let key = (r.spec.service_name.as_str(), r.metadata.namespace());
        let summary = services.entry(key).or_default();
        summary.tags.extend(&r.spec.tags);
        summary.instances += 1;
        if r.check_status() == caravan_schemas::job::CheckStatus::Passing {
            summary.passing += 1;
        }
    }
    let mut header = vec!["Service Name"];
    if namespaces {
        header.push("Namespace");
    }
    header.extend(["Tags", "Instances", "Passing"]);
    let mut rows = vec![header.into_iter().map(str::to_owned).collect::<Vec<_>>()];
    for ((name, namespace), summary) in services {
        let mut row = vec![name.to_owned()];
        if namespaces {
            row.push(namespace.to_owned());
        }
        row.extend([
            tags(summary.tags),
            summary.instances.to_string(),
            summary.passing.to_string(),
        ]);
        rows.push(row);
    }
    columns(&rows)
}

/// The instances of one service: `Job ID  Address  Tags  Node ID  Alloc ID  Status`, sorted by
/// job, allocation and address, then the checks of each instance that has any.
pub fn service_info(registrations: &[ServiceRegistration]) -> String {
    let mut sorted: Vec<&ServiceRegistration> = registrations.iter().collect();
    sorted.sort_by_key(|r| {
        let spec = &r.spec;
        (
            &spec.job_name,
            &spec.alloc_name,
            address(r),
            r.metadata.name(),
        )
    });
    let header = ["Job ID", "Address", "Tags", "Node ID", "Alloc ID", "Status"];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for r in &sorted {
        let spec = &r.spec;
        rows.push(vec![
            spec.job_name.clone(),
            address(r),
            tags(&spec.tags),
            spec.node_name.clone(),
            spec.alloc_name.clone(),
            wire(&r.check_status()),
        ]);
    }
    let mut out = columns(&rows);
    for r in sorted {
        let checks = r.status.as_ref().map_or(&[][..], |s| s.checks.as_slice());
        if checks.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\nChecks of {} ({})\n",
            r.spec.alloc_name,
            address(r)
        ));
        let mut rows = vec![
            ["Name", "Type", "Status", "Output"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for check in checks {
            rows.push(vec![
                check.name.clone(),
                check.r#type.clone(),
                wire(&check.status),
                one_line(&check.output),
            ]);
        }
        out.push_str(&columns(&rows));
    }
    out
}

#[cfg(test)]
mod tests;
