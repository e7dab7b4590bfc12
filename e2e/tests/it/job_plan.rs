//! Job plans computed by the server (`POST …/jobs/{name}/plan`): the real kubectl and
//! `caravan job plan` get the same plan from the endpoint, and planning writes nothing.

use std::time::Duration;

use caravan_e2e::Sandbox;
use caravan_e2e::wait::wait_until;
use serde_json::{Value, json};

const PLAN_PATH: &str = "/apis/caravan.dev/v1/namespaces/default/jobs/planned/plan";

/// A server with no node agent; nodes registered through the API never heartbeat, so they get
/// an hour.
fn sandbox(name: &str) -> Sandbox {
    Sandbox::builder()
        .name(name)
        .arg("--heartbeat-min-ttl")
        .arg("1h")
        .start()
        .unwrap_or_else(|e| panic!("failed to start the sandbox: {e:#}"))
}

/// Registers a ready node with the mock driver, with kubectl: created, then its fingerprint
/// patched through `/status`.
fn register_node(sandbox: &Sandbox, name: &str) {
    let node = json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"datacenter": "dc1"}
    });
    let path = sandbox.write_file(&format!("{name}.json"), &node.to_string());
    sandbox
        .kubectl(&["create", "-f", path.to_str().unwrap()])
        .assert_success();
    let status = json!({"status": {
        "status": "ready",
        "attributes": {"kernel.name": "linux", "cpu.arch": "amd64"},
        "resources": {"cpu": 4000, "memoryMB": 8192, "diskMB": 100000},
        "drivers": {"mock": {"detected": true, "healthy": true}}
    }});
    sandbox
        .kubectl(&[
            "patch",
            "nodes",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ])
        .assert_success();
}

/// A service job of `count` allocations of the mock driver, without a priority (admission
/// defaults it to 50).
fn job(count: u64) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "planned", "namespace": "default"},
        "spec": {
            "type": "service",
            "datacenters": ["dc1"],
            "groups": [{
                "name": "g",
                "count": count,
                "tasks": [{
                    "name": "t",
                    "driver": "mock",
                    "resources": {"cpu": 100, "memoryMB": 64}
                }]
            }]
        }
    })
}

/// The plan kubectl gets for the job in `file`.
fn kubectl_plan(sandbox: &Sandbox, file: &str) -> Value {
    let out = sandbox.kubectl(&["create", "--raw", PLAN_PATH, "-f", file]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn names(sandbox: &Sandbox, plural: &str) -> Vec<String> {
    let out = sandbox.kubectl(&["get", plural, "-o", "name"]);
    out.assert_success();
    out.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn kubectl_and_the_cli_get_the_same_plan_from_the_server() {
    let sandbox = sandbox("job-plan");
    register_node(&sandbox, "n1");
    let file = sandbox.write_file("planned.json", &job(2).to_string());
    let file = file.to_str().unwrap();

    // A new job: two placements, at version 0, with the server's defaults.
    let plan = kubectl_plan(&sandbox, file);
    assert_eq!(plan["apiVersion"], "caravan.dev/v1", "{plan}");
    assert_eq!(plan["kind"], "JobPlan", "{plan}");
    assert_eq!(plan["metadata"]["name"], "planned", "{plan}");
    assert_eq!(plan["currentSpec"], Value::Null, "{plan}");
    assert_eq!(plan["version"], 0, "{plan}");
    assert_eq!(plan["job"]["spec"]["priority"], 50, "{plan}");
    assert_eq!(plan["annotations"]["g"]["place"], 2, "{plan}");
    assert_eq!(plan["failedGroupAllocs"], json!({}), "{plan}");

    // The CLI renders the same plan: exit 1, allocations would be created.
    let cli = sandbox.caravan(&["job", "plan", "-f", file]);
    assert_eq!(cli.code(), Some(1), "{cli}");
    cli.assert_stdout_contains("+   Job: \"planned\"")
        .assert_stdout_contains("Task Group: \"g\" (2 create)")
        .assert_stdout_contains("- All tasks successfully allocated.");

    // Planning wrote nothing.
    let missing = sandbox.kubectl(&["get", "job", "planned"]);
    assert_eq!(missing.code(), Some(1), "{missing}");
    assert!(names(&sandbox, "evaluations").is_empty());
    assert!(names(&sandbox, "allocations").is_empty());

    // Once the job runs, the same file changes nothing: exit 0, both allocations ignored.
    sandbox
        .caravan(&["job", "run", "--detach", "-f", file])
        .assert_success();
    wait_until(
        Duration::from_secs(30),
        "both allocations are placed",
        || names(&sandbox, "allocations").len() == 2,
    )
    .unwrap();
    let plan = kubectl_plan(&sandbox, file);
    assert_eq!(plan["version"], 0, "{plan}");
    assert_eq!(plan["currentSpec"]["groups"][0]["count"], 2, "{plan}");
    assert_eq!(plan["annotations"]["g"]["ignore"], 2, "{plan}");
    assert_eq!(plan["annotations"]["g"]["place"], 0, "{plan}");
    let cli = sandbox.caravan(&["job", "plan", "-f", file]);
    assert_eq!(cli.code(), Some(0), "{cli}");
    cli.assert_stdout_contains("Task Group: \"g\" (2 ignore)");

    // Scaled up: one more at the next version.
    let scaled = sandbox.write_file("scaled.json", &job(3).to_string());
    let scaled = scaled.to_str().unwrap();
    let plan = kubectl_plan(&sandbox, scaled);
    assert_eq!(plan["version"], 1, "{plan}");
    assert_eq!(plan["annotations"]["g"]["place"], 1, "{plan}");
    let cli = sandbox.caravan(&["job", "plan", "-f", scaled]);
    assert_eq!(cli.code(), Some(1), "{cli}");
    cli.assert_stdout_contains("+/- count: \"2\" => \"3\"");
    assert_eq!(names(&sandbox, "allocations").len(), 2);
}

#[test]
fn kubectl_plan_errors_are_kubernetes_statuses() {
    let sandbox = sandbox("job-plan-errors");

    let mut bad = job(1);
    bad["spec"]["priority"] = "high".into();
    bad["spec"]["groups"][0]["count"] = "two".into();
    let file = sandbox.write_file("bad.json", &bad.to_string());
    sandbox
        .kubectl(&["create", "--raw", PLAN_PATH, "-f", file.to_str().unwrap()])
        .assert_failure()
        .assert_stderr_contains("spec.priority")
        .assert_stderr_contains("spec.groups[0].count");

    // A body without a namespace takes the path's, which does not exist.
    let mut planned = job(1);
    planned["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let file = sandbox.write_file("planned.json", &planned.to_string());
    let elsewhere = PLAN_PATH.replace("/namespaces/default/", "/namespaces/nowhere/");
    let out = sandbox.kubectl(&["create", "--raw", &elsewhere, "-f", file.to_str().unwrap()]);
    out.assert_failure();
    assert!(
        out.stderr.contains("NotFound") || out.stderr.contains("not found"),
        "expected NotFound: {out}"
    );

    // The CLI reports the server's answer and exits 255.
    let cli = sandbox.caravan(&[
        "job",
        "plan",
        "-f",
        sandbox.dir().join("bad.json").to_str().unwrap(),
    ]);
    assert_eq!(cli.code(), Some(255), "{cli}");
    cli.assert_stderr_contains("spec.priority");
    assert!(names(&sandbox, "jobs").is_empty());
}
