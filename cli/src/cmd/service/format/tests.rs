//! The layouts of `service list` and `service info`, from fixtures.

use std::collections::BTreeMap;

use caravan_schemas::job::CheckStatus;
use caravan_schemas::service_registration::{CheckResult, ServiceRegistrationStatus, name_for};
use caravan_schemas::{ObjectMeta, ServiceRegistrationSpec};

use super::*;

/// Instance `index` of service `service` of job `job`, in `namespace`, on node `n<index>`, at
/// 10.0.0.<index>, with `tags` and the given checks (none: no status yet).
fn instance(
    namespace: &str,
    service: &str,
    job: &str,
    index: u32,
    tags: &[&str],
    checks: &[(&str, CheckStatus, &str)],
) -> ServiceRegistration {
    let alloc = format!("{job}-{job}-{index}-0a1b2c3d");
    let status = (!checks.is_empty()).then(|| ServiceRegistrationStatus {
        status: checks.iter().map(|c| c.1).max().unwrap_or_default(),
        checks: checks
            .iter()
            .map(|(name, status, output)| CheckResult {
                name: (*name).into(),
                r#type: "http".into(),
                status: *status,
                output: (*output).into(),
                timestamp: Some("2026-01-02T15:04:05Z".into()),
            })
            .collect(),
    });
    ServiceRegistration {
        api_version: caravan_schemas::API_VERSION.into(),
        kind: "ServiceRegistration".into(),
        metadata: ObjectMeta {
            name: Some(name_for(&alloc, None, service, 0)),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        spec: ServiceRegistrationSpec {
            service_name: service.into(),
            job_name: job.into(),
            group_name: job.into(),
            task_name: None,
            alloc_name: alloc,
            node_name: format!("n{index}"),
            datacenter: Some("dc1".into()),
            address: format!("10.0.0.{index}"),
            port: 24_000 + index,
            tags: tags.iter().map(|t| (*t).to_string()).collect(),
            meta: BTreeMap::new(),
        },
        status,
    }
}

#[test]
fn list_shows_one_row_per_service_with_its_tags_and_passing_instances() {
    let registrations = [
        instance("default", "web", "web", 1, &["v1", "web"], &[]),
        instance(
            "default",
            "web",
            "web",
            2,
            &["v2"],
            &[("alive", CheckStatus::Critical, "connection refused")],
        ),
        instance(
            "default",
            "cache",
            "redis",
            1,
            &[],
            &[("ping", CheckStatus::Passing, "")],
        ),
    ];
    assert_eq!(
        services_table(&registrations, false),
        "Service Name  Tags         Instances  Passing\n\
         cache         []           1          1\n\
         web           [v1,v2,web]  2          1\n"
    );
}

#[test]
fn list_across_namespaces_shows_each_namespace_apart() {
    let registrations = [
        instance("prod", "web", "web", 1, &["v1"], &[]),
        instance("default", "web", "web", 1, &["v1"], &[]),
    ];
    assert_eq!(
        services_table(&registrations, true),
        "Service Name  Namespace  Tags  Instances  Passing\n\
         web           default    [v1]  1          1\n\
         web           prod       [v1]  1          1\n"
    );
}

#[test]
fn info_shows_each_instance_then_the_checks_of_those_that_have_some() {
    let registrations = [
        instance(
            "default",
            "web",
            "web",
            2,
            &["v1"],
            &[
                ("alive", CheckStatus::Passing, "HTTP GET /health: 200 OK"),
                ("script", CheckStatus::Warning, "disk at 91%\nrotate soon\n"),
            ],
        ),
        instance("default", "web", "web", 1, &["v1", "web"], &[]),
    ];
    assert_eq!(
        service_info(&registrations),
        "Job ID  Address         Tags      Node ID  Alloc ID            Status\n\
         web     10.0.0.1:24001  [v1,web]  n1       web-web-1-0a1b2c3d  passing\n\
         web     10.0.0.2:24002  [v1]      n2       web-web-2-0a1b2c3d  warning\n\
         \n\
         Checks of web-web-2-0a1b2c3d (10.0.0.2:24002)\n\
         Name    Type  Status   Output\n\
         alive   http  passing  HTTP GET /health: 200 OK\n\
         script  http  warning  disk at 91% rotate soon\n"
    );
}

#[test]
fn ipv6_addresses_are_bracketed() {
    let mut r = instance("default", "web", "web", 1, &[], &[]);
    r.spec.address = "fd00::5".into();
    assert_eq!(address(&r), "[fd00::5]:24001");
}
