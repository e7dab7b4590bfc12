//! Canaries, with `examples/canary.yaml` (six allocations, `canary: 1`, `maxParallel: 1`): a
//! new version first runs one canary beside the six old allocations, and nothing else changes
//! until `caravan deployment promote`; then the old ones are replaced one at a time. With
//! `autoPromote: true` the canary is promoted once healthy, without a command.

use caravan_e2e::cluster::field;
use caravan_e2e::http;
use caravan_e2e::paths::workspace_root;
use serde_json::Value;

use super::{Api, ROLLOUT, Rollout, canary, dev, replace_once, running_healthy_at, summary};

const NEEDS_PROMOTION: &str = "Deployment is running but requires manual promotion";

fn example() -> String {
    let path = workspace_root().join("examples").join("canary.yaml");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()))
}

/// Runs version 0 of the example (`caravan job run`, which follows its deployment to the end)
/// and writes version 1 (`GREETING: hi`) beside it; returns the path of version 1.
fn run_version_0(api: &Api<'_>, example: &str) -> String {
    let v0 = api.server.write_file("canary.yaml", example);
    api.caravan(&["job", "run", "-f", v0.to_str().unwrap()])
        .assert_success()
        .assert_stdout_contains("Deployment \"api-v0\" successful");
    let v1 = replace_once(example, "GREETING: hello\n", "GREETING: hi\n");
    let v1 = api.server.write_file("canary2.yaml", &v1);
    v1.to_str().unwrap().to_owned()
}

fn group(deployment: &Value) -> &Value {
    &deployment["status"]["groups"]["api"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_runs_beside_the_old_allocations_until_promoted() {
    let sandbox = dev("deploy-canary");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let v1 = run_version_0(&api, &example());
    let mut rollout = Rollout::open(&api, "api", 1).await;
    api.caravan(&["job", "run", "--detach", "-f", &v1])
        .assert_success();

    rollout
        .follow_until("the canary runs healthy", |a| {
            a.iter().any(|a| canary(a) && running_healthy_at(a, 1))
        })
        .await;
    let waiting = api
        .wait_deployment("api-v1", "waits for promotion", |d| {
            field(d, "/status/statusDescription") == NEEDS_PROMOTION
                && group(d)["healthyAllocs"] == 1
        })
        .await;
    assert_eq!(field(&waiting, "/status/status"), "running", "{waiting:#}");
    assert_eq!(group(&waiting)["desiredCanaries"], 1, "{waiting:#}");
    assert_eq!(group(&waiting)["promoted"], false, "{waiting:#}");
    assert_eq!(
        group(&waiting)["placedCanaries"].as_array().map(Vec::len),
        Some(1),
        "{waiting:#}"
    );
    // The canary's health created an evaluation; once it and every other one are done, the
    // scheduler has seen the healthy canary and still placed nothing more.
    api.wait_evaluations_settled("api", "the canary's health was evaluated", |evals| {
        evals.iter().any(|e| {
            field(e, "/spec/triggeredBy") == "deployment-watcher" && e["spec"]["jobVersion"] == 1
        })
    })
    .await;
    rollout.catch_up(&api).await;
    assert_eq!(
        (rollout.max_new_live, rollout.min_old_running),
        (1, 6),
        "before promotion, exactly one canary should run beside the six old allocations; \
         now:\n{}",
        summary(rollout.allocs())
    );
    let canary_name = rollout
        .allocs()
        .into_iter()
        .find(|a| canary(a))
        .map(|a| field(a, "/metadata/name").to_owned())
        .unwrap_or_default();

    rollout.reset();
    api.caravan(&["deployment", "promote", "api-v1"])
        .assert_success();
    rollout
        .follow_until("six allocations of version 1 run healthy", |a| {
            a.iter().filter(|a| running_healthy_at(a, 1)).count() == 6
        })
        .await;
    let done = api.wait_successful("api-v1").await;
    rollout.catch_up(&api).await;
    rollout.assert_paced(1, 5);
    assert_eq!(group(&done)["promoted"], true, "{done:#}");
    assert_eq!(group(&done)["healthyAllocs"], 6, "{done:#}");
    // The promoted canary is one of the six.
    let allocs = api.allocs("api").await;
    assert!(
        allocs
            .iter()
            .any(|a| field(a, "/metadata/name") == canary_name && running_healthy_at(a, 1)),
        "the canary {canary_name} no longer runs:\n{}",
        summary(&allocs)
    );
    let logs = api.logs(&canary_name);
    assert!(logs.contains("hi from"), "{logs}");
    api.wait_stable("api", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_promote_needs_no_command() {
    let sandbox = dev("deploy-autopromote");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let example = replace_once(&example(), "autoPromote: false", "autoPromote: true");
    let v1 = run_version_0(&api, &example);
    let mut rollout = Rollout::open(&api, "api", 1).await;

    // `job run` follows the deployment to its end: the canary promoted by itself.
    let mut run = sandbox.spawn_caravan(&["job", "run", "-f", &v1]);
    rollout
        .follow_until("six allocations of version 1 run healthy", |a| {
            a.iter().filter(|a| running_healthy_at(a, 1)).count() == 6
        })
        .await;
    let status = run.wait_exit(ROLLOUT).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        status.success(),
        "job run exited {status}\n{}",
        run.report()
    );
    let done = api.wait_successful("api-v1").await;
    rollout.catch_up(&api).await;
    rollout.assert_paced(1, 5);
    assert_eq!(group(&done)["promoted"], true, "{done:#}");
    assert_eq!(
        group(&done)["placedCanaries"].as_array().map(Vec::len),
        Some(1),
        "{done:#}"
    );
    assert_eq!(rollout.max_new_unhealthy, 1, "{done:#}");
}
