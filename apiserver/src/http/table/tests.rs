//! Tests of the Table columns.

use super::*;
use std::time::Duration;

#[test]
fn human_duration_matches_kubernetes() {
    let cases = [
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (3600 * 5 + 600, "5h10m"),
        (3600 * 20, "20h"),
        (86400 * 3 + 3600 * 4, "3d4h"),
        (86400 * 30, "30d"),
        (86400 * (365 * 2 + 10), "2y10d"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(Duration::from_secs(secs)), want);
    }
}

#[test]
fn table_accept_header_is_detected() {
    assert!(wants_table(Some(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )));
    assert!(!wants_table(Some("application/json")));
    assert!(!wants_table(None));
}

/// The cells of `object`'s row, by column name.
fn cells(kind: Kind, object: Value) -> Vec<(&'static str, String)> {
    let stored = StoredObject::from_value(kind, object, 5);
    let now = humantime::parse_rfc3339("2030-01-01T00:10:00Z").unwrap();
    let row = row(kind, &stored, Some("None"), now);
    columns(kind)
        .iter()
        .zip(row["cells"].as_array().unwrap())
        .map(|(c, v)| (c.name, v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

fn deployment(status: Value) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Deployment",
        "metadata": {"name": "web-v3", "namespace": "default",
                     "creationTimestamp": "2030-01-01T00:00:00Z"},
        "spec": {"jobName": "web", "jobVersion": 3},
        "status": status,
    })
}

#[test]
fn deployment_rows_sum_their_groups() {
    let status = json!({
        "status": "running",
        "statusDescription": "Deployment is running but requires manual promotion",
        "groups": {
            "api": {"desiredTotal": 4, "desiredCanaries": 2, "placedAllocs": 2,
                    "healthyAllocs": 1, "unhealthyAllocs": 1,
                    "placedCanaries": ["web-api-0-aa", "web-api-1-bb"],
                    "requireProgressBy": "2030-01-01T00:20:00Z"},
            "web": {"desiredTotal": 3, "placedAllocs": 3, "healthyAllocs": 3,
                    "requireProgressBy": "2030-01-01T00:15:00.5Z"},
        },
    });
    let want = [
        ("Name", "web-v3"),
        ("Job", "web"),
        ("Version", "3"),
        ("Status", "running"),
        ("Desired", "7"),
        ("Placed", "5"),
        ("Healthy", "4"),
        ("Unhealthy", "1"),
        ("Canaries", "2/2"),
        ("Age", "10m"),
        (
            "Description",
            "Deployment is running but requires manual promotion",
        ),
        ("Progress Deadline", "2030-01-01T00:15:00.5Z"),
    ];
    let got = cells(Kind::Deployment, deployment(status));
    let want: Vec<(&str, String)> = want.iter().map(|(c, v)| (*c, v.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn deployment_rows_without_groups_or_canaries_say_so() {
    let got = cells(Kind::Deployment, deployment(json!({"status": "pending"})));
    let cell = |name: &str| got.iter().find(|(c, _)| *c == name).unwrap().1.clone();
    assert_eq!(cell("Desired"), "0");
    assert_eq!(cell("Canaries"), "<none>");
    assert_eq!(cell("Progress Deadline"), "<none>");
    assert_eq!(cell("Description"), "<none>");
    // Hostile values: wrong types are skipped, huge numbers saturate.
    let status = json!({"groups": {
        "a": {"desiredTotal": u64::MAX, "requireProgressBy": "yesterday", "placedCanaries": "x"},
        "b": {"desiredTotal": 5, "placedAllocs": -3},
        "c": "not a group",
    }});
    let got = cells(Kind::Deployment, deployment(status));
    let cell = |name: &str| got.iter().find(|(c, _)| *c == name).unwrap().1.clone();
    assert_eq!(cell("Desired"), u64::MAX.to_string());
    assert_eq!(cell("Placed"), "0");
    assert_eq!(cell("Progress Deadline"), "<none>");
    let groups = json!({"groups": [1, 2]});
    let got = cells(Kind::Deployment, deployment(groups));
    assert!(got.iter().any(|(c, v)| *c == "Desired" && v == "0"));
}

#[test]
fn job_version_rows_show_stable_as_a_flag() {
    let version = |status: Value| {
        json!({
            "apiVersion": "caravan.dev/v1",
            "kind": "JobVersion",
            "metadata": {"name": "web-v2", "namespace": "default",
                         "creationTimestamp": "2030-01-01T00:09:00Z"},
            "spec": {"jobName": "web", "version": 2, "job": {"type": "service"}},
            "status": status,
        })
    };
    let got = cells(Kind::JobVersion, version(Value::Null));
    let names: Vec<&str> = got.iter().map(|(c, _)| *c).collect();
    assert_eq!(names, ["Name", "Job", "Version", "Stable", "Age", "Type"]);
    let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["web-v2", "web", "2", "false", "60s", "service"]);
    let got = cells(Kind::JobVersion, version(json!({"stable": true})));
    assert_eq!(got[3], ("Stable", "true".to_owned()));
}
