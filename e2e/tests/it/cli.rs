//! The `caravan` command-line client against its own server.

use caravan_e2e::{Sandbox, fixtures};
use serde_json::Value;

#[test]
fn caravan_cli_apply_get_describe_delete() {
    let sandbox = Sandbox::start("cli");
    let web = fixtures::web_job_path();
    let web = web.to_str().unwrap();

    sandbox
        .caravan(&["apply", "-f", web])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web created");
    sandbox
        .caravan(&["apply", "-f", web])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web unchanged");

    let table = sandbox.caravan(&["get", "jobs"]);
    table.assert_success();
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(
        header.split_whitespace().next() == Some("NAME"),
        "no NAME column: {table}"
    );
    assert!(
        table
            .stdout
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some("web")),
        "{table}"
    );

    let json = sandbox.caravan(&["get", "jobs", "-o", "json"]);
    json.assert_success();
    let list: Value =
        serde_json::from_str(&json.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {json}"))
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["web"], "{json}");

    sandbox
        .caravan(&["describe", "job", "web"])
        .assert_success()
        .assert_stdout_contains("web");

    sandbox
        .caravan(&["delete", "job", "web"])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev \"web\" deleted");

    let missing = sandbox.caravan(&["get", "job", "nope"]);
    missing
        .assert_failure()
        .assert_stderr_contains("Error from server (NotFound)");
}
