//! Job versions from the CLI: `caravan job history` lists the kept versions (with `-p`, what
//! each changed), `caravan job revert` gives the job an earlier version's spec as a new version
//! and follows its rollout, `caravan job inspect --version` prints a kept version, and
//! `caravan job scale` sets a group's count up and down.

use caravan_e2e::cluster::field;
use caravan_e2e::http;
use serde_json::{Value, json};

use super::{Api, dev, live, running_healthy_at, service, summary, with_greeting};

/// `(version, stable)` of each block `caravan job history` printed, in order.
fn versions(history: &str) -> Vec<(i64, bool)> {
    let value = |line: &str| line.split_once('=').map(|(_, v)| v.trim().to_owned());
    let mut out = Vec::new();
    let mut current: Option<i64> = None;
    for line in history.lines() {
        if line.starts_with("Version") {
            current = value(line).and_then(|v| v.parse().ok());
        } else if line.starts_with("Stable")
            && let Some(v) = current.take()
        {
            out.push((v, value(line).as_deref() == Some("true")));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_history_revert_and_scale_round_trip() {
    let sandbox = dev("deploy-history");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let update = json!({
        "maxParallel": 2,
        "healthCheck": "task_states",
        "minHealthyTime": "1s",
        "healthyDeadline": "1m",
        "progressDeadline": "2m"
    });
    let v0 = service("hist", 3, update, "one");
    for (file, job) in [
        ("v0.yaml", v0.clone()),
        ("v1.yaml", with_greeting(&v0, "two")),
    ] {
        let path = api.write(file, &job);
        api.caravan(&["job", "run", "-f", path.to_str().unwrap()])
            .assert_success();
    }

    // The version is marked stable by a write after the one that ends the deployment.
    api.wait_stable("hist", 1).await;
    let history = api.caravan(&["job", "history", "hist"]);
    history.assert_success();
    assert_eq!(
        versions(&history.stdout),
        [(1, true), (0, true)],
        "{history}"
    );
    let diff = api.caravan(&["job", "history", "hist", "-p"]);
    diff.assert_success()
        .assert_stdout_contains("GREETING")
        .assert_stdout_contains("\"one\" => \"two\"");

    // Revert to version 0: version 2, with version 0's spec, rolled out to its end.
    let revert = api.caravan(&["job", "revert", "hist", "0"]);
    revert
        .assert_success()
        .assert_stdout_contains("now at version 2");
    assert_eq!(
        api.version_spec("hist", 2).await,
        api.version_spec("hist", 0).await
    );
    let deployment = api
        .object("deployments", "hist-v2")
        .await
        .unwrap_or_default();
    assert_eq!(
        field(&deployment, "/status/status"),
        "successful",
        "job revert returned before the deployment ended: {deployment:#}\n{revert}"
    );
    let allocs = api.allocs("hist").await;
    let live_allocs: Vec<&Value> = allocs.iter().filter(|a| live(a)).collect();
    assert_eq!(live_allocs.len(), 3, "{}", summary(&allocs));
    for a in &live_allocs {
        assert!(running_healthy_at(a, 2), "{}", summary(&allocs));
        let logs = api.logs(field(a, "/metadata/name"));
        assert!(logs.contains("greeting=one"), "{logs:?}");
    }
    api.wait_stable("hist", 2).await;
    let history = api.caravan(&["job", "history", "hist"]);
    assert_eq!(
        versions(&history.stdout),
        [(2, true), (1, true), (0, true)],
        "{history}"
    );
    // A kept version, as a Job.
    let inspect = api.caravan(&["job", "inspect", "hist", "--version", "1", "-o", "json"]);
    inspect.assert_success();
    let inspected: Value = serde_json::from_str(&inspect.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {inspect}"));
    assert_eq!(inspected["spec"], api.version_spec("hist", 1).await);
    // Reverting to the spec the job has is refused.
    api.caravan(&["job", "revert", "hist", "0"])
        .assert_failure();

    // Scale up, then down (the group is optional: the job has one).
    for (args, count) in [(vec!["g", "5"], 5), (vec!["2"], 2)] {
        let mut cmd = vec!["job", "scale", "hist"];
        cmd.extend(args);
        api.caravan(&cmd).assert_success();
        api.wait_allocs("hist", &format!("{count} allocations run"), |a| {
            a.iter().filter(|a| live(a)).count() == count
                && a.iter().filter(|a| super::running(a)).count() == count
        })
        .await;
        let spec = api.object("jobs", "hist").await.unwrap_or_default();
        assert_eq!(spec["spec"]["groups"][0]["count"], count, "{spec:#}");
        let newest = api.job_version("hist").await;
        api.wait_successful(&format!("hist-v{newest}")).await;
    }
}
