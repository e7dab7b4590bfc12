//! A bad version (its task exits 1 at once, no restarts, no reschedules) fails its deployment
//! at the progress deadline, not before. With `autoRevert: true` the job gets the spec of its
//! last stable version back as a new version, whose own deployment brings every allocation
//! back healthy on the old environment; without it, the old allocations the failed rollout did
//! not replace keep running.

use std::time::{Duration, Instant};

use caravan_e2e::cluster::field;
use caravan_e2e::http;
use serde_json::{Value, json};

use super::{
    Api, Rollout, dev, failing, live, running, running_healthy_at, service, summary, version,
};

/// The bad version's deployment must fail this long after it was created.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(10);

/// Version 0: three allocations, rolled one at a time, with room to become healthy on a
/// loaded machine.
fn job(name: &str, auto_revert: bool) -> Value {
    let update = json!({
        "maxParallel": 1,
        "healthCheck": "task_states",
        "minHealthyTime": "1s",
        "healthyDeadline": "1m",
        "progressDeadline": "2m",
        "autoRevert": auto_revert
    });
    service(name, 3, update, "one")
}

/// The bad version: its task exits 1 at once, and its deployment must make progress within
/// [`PROGRESS_DEADLINE`].
fn bad(v0: &Value) -> Value {
    let mut job = failing(v0);
    let update = &mut job["spec"]["groups"][0]["update"];
    update["healthyDeadline"] = "9s".into();
    update["progressDeadline"] = format!("{}s", PROGRESS_DEADLINE.as_secs()).into();
    job
}

/// Runs version 0 to a successful deployment, submits the failing version 1 and waits for its
/// deployment to fail; checks that it failed at its deadline. Returns the names of the
/// version-0 allocations and the watch of the failed rollout, caught up.
async fn fail_version_1(api: &Api<'_>, name: &str, v0: &Value) -> (Vec<String>, Rollout) {
    api.submit("v0.yaml", v0);
    api.wait_successful(&format!("{name}-v0")).await;
    api.wait_stable(name, 0).await;
    let old: Vec<String> = api
        .wait_allocs(name, "three allocations of version 0 run healthy", |a| {
            a.iter().filter(|a| running_healthy_at(a, 0)).count() == 3
        })
        .await
        .iter()
        .map(|a| field(a, "/metadata/name").to_owned())
        .collect();

    let mut rollout = Rollout::open(api, name, 1).await;
    let written = Instant::now();
    api.submit("v1.yaml", &bad(v0));
    let failed = api
        .wait_deployment(&format!("{name}-v1"), "failed", |d| {
            field(d, "/status/status") == "failed"
        })
        .await;
    let after = written.elapsed();
    // The deadline is set when the deployment is created, after the write, to the second.
    assert!(
        after >= PROGRESS_DEADLINE - Duration::from_secs(1),
        "the deployment failed {after:?} after the write, before its {PROGRESS_DEADLINE:?} \
         progress deadline: {failed:#}"
    );
    // Nomad's words, with what follows the failure when a group reverts.
    assert!(
        field(&failed, "/status/statusDescription").starts_with("Failed due to progress deadline"),
        "{failed:#}"
    );
    let group = &failed["status"]["groups"]["g"];
    assert_eq!(group["healthyAllocs"], 0, "{failed:#}");
    rollout.catch_up(api).await;
    (old, rollout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_with_auto_revert_brings_back_the_stable_version() {
    let sandbox = dev("deploy-revert");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let v0 = job("revert", true);
    let (_, rollout) = fail_version_1(&api, "revert", &v0).await;

    // The revert is version 2, with version 0's spec, rolled out by its own deployment.
    let deadline = Instant::now() + super::ROLLOUT;
    while api.job_version("revert").await < 2 {
        assert!(
            Instant::now() < deadline,
            "the job was not reverted: {:#}",
            api.object("jobs", "revert").await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(api.job_version("revert").await, 2, "one revert only");
    assert_eq!(
        api.version_spec("revert", 2).await,
        api.version_spec("revert", 0).await,
        "version 2 does not have version 0's spec"
    );
    api.wait_successful("revert-v2").await;
    let allocs = api
        .wait_allocs(
            "revert",
            "three allocations of version 2 run healthy",
            |a| {
                a.iter().filter(|a| running_healthy_at(a, 2)).count() == 3
                    && a.iter().filter(|a| live(a)).count() == 3
            },
        )
        .await;
    for a in allocs.iter().filter(|a| running(a)) {
        let logs = api.logs(field(a, "/metadata/name"));
        assert!(
            logs.contains("greeting=one"),
            "{} does not run the old environment: {logs:?}\n{}",
            field(a, "/metadata/name"),
            summary(&allocs)
        );
    }
    api.wait_stable("revert", 2).await;
    assert!(
        !api.version_stable("revert", 1).await,
        "the failed version 1 is stable"
    );
    // While version 1 failed, the allocations it did not replace kept serving: an unhealthy
    // allocation holds its place in `maxParallel`.
    rollout.assert_paced(1, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_deployment_without_auto_revert_leaves_the_unreplaced_allocations_running() {
    let sandbox = dev("deploy-no-revert");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let v0 = job("stay", false);
    let (before, rollout) = fail_version_1(&api, "stay", &v0).await;
    // An unhealthy allocation holds its place in `maxParallel`: the failing version never
    // replaced more than one old allocation, and two kept serving.
    rollout.assert_paced(1, 2);

    // The failure created an evaluation; once every evaluation is done the scheduler has seen
    // the failed deployment, and placed or stopped what it was going to.
    api.wait_evaluations_settled("stay", "the failure was evaluated", |evals| {
        evals.iter().any(|e| {
            field(e, "/spec/triggeredBy") == "deployment-watcher" && e["spec"]["jobVersion"] == 1
        })
    })
    .await;
    let allocs = api.allocs("stay").await;
    let new: Vec<&Value> = allocs.iter().filter(|a| version(a) == 1).collect();
    let old_running: Vec<&Value> = allocs
        .iter()
        .filter(|a| version(a) == 0 && running(a))
        .collect();
    // maxParallel 1: one old allocation was replaced by a failing one; that one stopped the
    // rollout, and the two others still run.
    assert_eq!(new.len(), 1, "{}", summary(&allocs));
    assert!(
        new.iter().all(|a| !running(a)),
        "a failing allocation runs:\n{}",
        summary(&allocs)
    );
    assert_eq!(old_running.len(), 2, "{}", summary(&allocs));
    assert_eq!(
        api.job_version("stay").await,
        1,
        "the job moved off version 1"
    );
    assert!(
        api.object("deployments", "stay-v2").await.is_none(),
        "a deployment of a version 2 exists"
    );
    // They are allocations that ran before the update, still on the old environment.
    for a in old_running {
        let name = field(a, "/metadata/name");
        assert!(
            before.iter().any(|b| b == name),
            "{name} was placed after the update; before it: {before:?}"
        );
        let logs = api.logs(name);
        assert!(logs.contains("greeting=one"), "{logs:?}");
    }
}
