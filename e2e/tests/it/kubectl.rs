//! The real kubectl (1.37) against Caravan: discovery, apply, get, diff, delete, wait, explain.

use caravan_e2e::fixtures::{self, to_yaml};
use caravan_e2e::{Output, Sandbox};
use serde_json::Value;

fn get_job_json(sandbox: &Sandbox, name: &str) -> Value {
    let out = sandbox.kubectl(&["get", "job", name, "-o", "json"]);
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[track_caller]
fn assert_not_found(out: &Output) {
    assert_eq!(out.code(), Some(1), "expected exit 1: {out}");
    assert!(
        out.stderr.contains("NotFound") || out.stderr.contains("not found"),
        "expected NotFound: {out}"
    );
}

#[test]
fn kubectl_get_apply_delete_roundtrip() {
    let sandbox = Sandbox::start("kubectl-roundtrip");
    let web = fixtures::web_job_path();
    let web = web.to_str().unwrap();

    sandbox
        .kubectl(&["apply", "-f", web])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web created");

    let list = sandbox.kubectl(&["get", "jobs"]);
    list.assert_success().assert_stdout_contains("NAME");
    assert!(
        list.stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some("web")),
        "{list}"
    );

    // Defaults are filled in by admission and shown back.
    let priority = fixtures::web_job_priority();
    let yaml = sandbox.kubectl(&["get", "job", "web", "-o", "yaml"]);
    yaml.assert_success()
        .assert_stdout_contains("spec:")
        .assert_stdout_contains(&format!("priority: {priority}"));

    // A changed manifest is patched (client-side apply).
    let mut changed = fixtures::web_job();
    changed["metadata"]["labels"]["tier"] = "frontend".into();
    let changed_path = sandbox.write_file("web-changed.yaml", &to_yaml(&changed));
    sandbox
        .kubectl(&["apply", "-f", changed_path.to_str().unwrap()])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web configured");
    assert_eq!(
        get_job_json(&sandbox, "web")["metadata"]["labels"]["tier"],
        "frontend"
    );

    // Server-side apply adding a field nobody else owns.
    let mut ssa = changed.clone();
    ssa["metadata"]["labels"]["applied"] = "server-side".into();
    let ssa_path = sandbox.write_file("web-ssa.yaml", &to_yaml(&ssa));
    sandbox
        .kubectl(&["apply", "--server-side", "-f", ssa_path.to_str().unwrap()])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web serverside-applied");
    assert_eq!(
        get_job_json(&sandbox, "web")["metadata"]["labels"]["applied"],
        "server-side"
    );

    // diff shows the change (exit 1) and persists nothing.
    let new_priority = priority + 17;
    let mut diffed = ssa.clone();
    diffed["spec"]["priority"] = new_priority.into();
    let diff_path = sandbox.write_file("web-diff.yaml", &to_yaml(&diffed));
    let diff = sandbox.kubectl(&["diff", "-f", diff_path.to_str().unwrap()]);
    assert_eq!(
        diff.code(),
        Some(1),
        "kubectl diff should find a difference: {diff}"
    );
    let has_line = |sign: char, text: &str| {
        diff.stdout
            .lines()
            .any(|l| l.starts_with(sign) && l.trim_start_matches(sign).trim() == text)
    };
    assert!(
        has_line('-', &format!("priority: {priority}")),
        "old value missing: {diff}"
    );
    assert!(
        has_line('+', &format!("priority: {new_priority}")),
        "new value missing: {diff}"
    );
    assert_eq!(
        get_job_json(&sandbox, "web")["spec"]["priority"],
        priority,
        "diff persisted"
    );

    sandbox
        .kubectl(&["delete", "-f", web])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev \"web\" deleted");
    assert_not_found(&sandbox.kubectl(&["get", "job", "web"]));
}

#[test]
fn kubectl_wait_for_jsonpath() {
    let sandbox = Sandbox::start("kubectl-wait");
    let web = fixtures::web_job_path();
    sandbox
        .kubectl(&["apply", "-f", web.to_str().unwrap()])
        .assert_success();
    let condition = format!(
        "--for=jsonpath={{.spec.priority}}={}",
        fixtures::web_job_priority()
    );
    sandbox
        .kubectl(&["wait", &condition, "job/web", "--timeout=20s"])
        .assert_success()
        .assert_stdout_contains("job.caravan.dev/web condition met");
}

#[test]
fn kubectl_explain_jobs_spec() {
    let sandbox = Sandbox::start("kubectl-explain");
    let out = sandbox.kubectl(&["explain", "jobs.spec"]);
    out.assert_success().assert_stdout_contains("groups");
}

#[test]
fn kubectl_rejects_invalid_job_with_every_field() {
    let sandbox = Sandbox::start("kubectl-invalid");
    let mut bad = fixtures::web_job();
    bad["metadata"]["name"] = "bad".into();
    bad["spec"]["priority"] = "high".into();
    bad["spec"]["groups"][0]["count"] = "two".into();
    let path = sandbox.write_file("bad.yaml", &to_yaml(&bad));

    let out = sandbox.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    out.assert_failure()
        .assert_stderr_contains("spec.priority")
        .assert_stderr_contains("spec.groups[0].count");

    // Nothing was stored.
    assert_not_found(&sandbox.kubectl(&["get", "job", "bad"]));
    let names = sandbox.kubectl(&["get", "jobs", "-o", "name"]);
    assert_eq!(names.assert_success().stdout.trim(), "", "{names}");
}
