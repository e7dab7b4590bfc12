//! Rolling updates: a new version replaces the allocations at most `maxParallel` at a time,
//! each next batch once the last is healthy; the deployment ends `successful` and the version
//! `stable`. The README's own example, updated with `caravan job run`, which returns when the
//! deployment succeeds.

use caravan_e2e::cluster::field;
use caravan_e2e::fixtures::web_job_path;
use caravan_e2e::http;
use serde_json::json;

use super::{Api, ROLLOUT, Rollout, dev, replace_once, running_healthy_at, service, with_greeting};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_replaces_at_most_max_parallel_at_a_time_and_ends_stable() {
    let sandbox = dev("deploy-rolling");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let update = json!({
        "maxParallel": 2,
        "healthCheck": "task_states",
        "minHealthyTime": "2s",
        "healthyDeadline": "1m",
        "progressDeadline": "2m"
    });
    let v0 = service("roll", 6, update, "one");
    api.submit("roll-v0.yaml", &v0);
    api.wait_successful("roll-v0").await;
    api.wait_allocs("roll", "six allocations of version 0 run healthy", |a| {
        a.iter().filter(|a| running_healthy_at(a, 0)).count() == 6
    })
    .await;

    // The watch starts before the update: it sees every state of the rollout, in order.
    let mut rollout = Rollout::open(&api, "roll", 1).await;
    api.submit("roll-v1.yaml", &with_greeting(&v0, "two"));
    rollout
        .follow_until("six allocations of version 1 run healthy", |a| {
            a.iter().filter(|a| running_healthy_at(a, 1)).count() == 6
        })
        .await;
    let deployment = api.wait_successful("roll-v1").await;
    rollout.catch_up(&api).await;
    rollout.assert_paced(2, 4);
    assert_eq!(
        rollout.max_new_unhealthy, 2,
        "the rollout never had maxParallel = 2 replacements in flight"
    );

    assert_eq!(
        field(&deployment, "/status/statusDescription"),
        "Deployment completed successfully",
        "{deployment:#}"
    );
    let group = &deployment["status"]["groups"]["g"];
    assert_eq!(group["desiredTotal"], 6, "{deployment:#}");
    assert_eq!(group["placedAllocs"], 6, "{deployment:#}");
    assert_eq!(group["healthyAllocs"], 6, "{deployment:#}");
    assert_eq!(group["unhealthyAllocs"], 0, "{deployment:#}");
    api.wait_stable("roll", 1).await;
    // Every allocation of version 0 was stopped; the new ones run under the deployment.
    let allocs = api.allocs("roll").await;
    for a in &allocs {
        match super::version(a) {
            0 => assert_eq!(field(a, "/spec/desiredStatus"), "stop", "{a:#}"),
            _ => assert_eq!(field(a, "/spec/deploymentName"), "roll-v1", "{a:#}"),
        }
    }
    // Kubernetes manners: the Available condition is what `kubectl wait` waits for.
    let available = &deployment["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Available")
        .cloned()
        .unwrap_or_default();
    assert_eq!(available["status"], "True", "{deployment:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_job_run_follows_the_update_to_its_end() {
    let sandbox = dev("deploy-readme");
    let client = http::client();
    let api = Api::new(&sandbox, &client);
    let example = std::fs::read_to_string(web_job_path()).expect("the web example");
    // The example waits 10 s for each new allocation to be healthy; at 2 s the same flow
    // (three allocations placed, then replaced one at a time) keeps the test well under a
    // minute on a loaded machine.
    let web = replace_once(&example, "minHealthyTime: 10s", "minHealthyTime: 2s");
    let web2 = replace_once(&web, "GREETING: hello", "GREETING: hi");
    let web = sandbox.write_file("web.yaml", &web);
    let web2 = sandbox.write_file("web2.yaml", &web2);

    sandbox
        .caravan(&["job", "run", "-f", web.to_str().unwrap()])
        .assert_success()
        .assert_stdout_contains("Deployment \"web-v0\" successful");
    let allocs = api.allocs("web").await;
    assert_eq!(
        allocs.iter().filter(|a| running_healthy_at(a, 0)).count(),
        3,
        "job run returned before its deployment had three healthy allocations:\n{}",
        super::summary(&allocs)
    );

    let mut rollout = Rollout::open(&api, "web", 1).await;
    let mut run = sandbox.spawn_caravan(&["job", "run", "-f", web2.to_str().unwrap()]);
    rollout
        .follow_until("three allocations of version 1 run healthy", |a| {
            a.iter().filter(|a| running_healthy_at(a, 1)).count() == 3
        })
        .await;
    let status = run.wait_exit(ROLLOUT).unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        status.success(),
        "job run exited {status}\n{}",
        run.report()
    );
    // It returned because the deployment succeeded, not before.
    let deployment = api
        .object("deployments", "web-v1")
        .await
        .unwrap_or_default();
    assert_eq!(
        field(&deployment, "/status/status"),
        "successful",
        "job run returned before the deployment ended: {deployment:#}\n{}",
        run.report()
    );
    assert!(
        run.stdout().contains("Deployment \"web-v1\" successful"),
        "{}",
        run.report()
    );
    rollout.catch_up(&api).await;
    rollout.assert_paced(1, 2);
    api.wait_stable("web", 1).await;
}
