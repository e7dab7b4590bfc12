//! Watches from kubectl and from the caravan CLI see the same changes.

use std::time::Duration;

use caravan_e2e::fixtures::{self, to_yaml};
use caravan_e2e::{Sandbox, StreamingChild};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);
const WATCHED: &str = "watched";

/// Every JSON value printed so far (pretty-printed or one per line), as `(type, object)`:
/// type is `None` for bare objects (`-o json` without `--output-watch-events`).
fn events(output: &str) -> Vec<(Option<String>, Value)> {
    serde_json::Deserializer::from_str(output)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .map(
            |v| match (v.get("type").and_then(Value::as_str), v.get("object")) {
                (Some(t), Some(o)) => (Some(t.to_owned()), o.clone()),
                _ => (None, v),
            },
        )
        .collect()
}

/// Whether `output` shows `name`, with the event type and `stage` label when given.
fn saw(output: &str, name: &str, event_type: Option<&str>, stage: Option<&str>) -> bool {
    events(output).iter().any(|(t, o)| {
        o["metadata"]["name"] == name
            && event_type.is_none_or(|want| t.as_deref() == Some(want))
            && stage.is_none_or(|want| o["metadata"]["labels"]["stage"] == want)
    })
}

/// The distinct resource versions of the watched object, in the order printed.
fn versions(output: &str) -> Vec<String> {
    let mut rvs: Vec<String> = events(output)
        .iter()
        .filter(|(_, o)| o["metadata"]["name"] == WATCHED)
        .filter_map(|(_, o)| o["metadata"]["resourceVersion"].as_str().map(str::to_owned))
        .collect();
    rvs.dedup();
    rvs
}

#[track_caller]
fn wait_for(child: &mut StreamingChild, name: &str, ty: Option<&str>, stage: Option<&str>) {
    let what = format!("the watch shows {name} (type {ty:?}, stage {stage:?})");
    child
        .wait_for_stdout(DEADLINE, &what, |out| saw(out, name, ty, stage))
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn kubectl_and_caravan_watch_see_the_same_events() {
    let sandbox = Sandbox::start("watch");
    let manifest = |stage: &str| {
        let mut job = fixtures::web_job();
        job["metadata"]["name"] = WATCHED.into();
        job["metadata"]["labels"]["stage"] = stage.into();
        let path = sandbox.write_file(&format!("{WATCHED}-{stage}.yaml"), &to_yaml(&job));
        path.to_str().unwrap().to_owned()
    };
    let sentinel = sandbox.write_file("sentinel.yaml", &to_yaml(&fixtures::small_job("sentinel")));
    sandbox
        .caravan(&["apply", "-f", sentinel.to_str().unwrap()])
        .assert_success();

    let watch = ["get", "jobs", "--watch", "-o", "json"];
    let mut kubectl = sandbox.spawn_kubectl(&[&watch[..], &["--output-watch-events"]].concat());
    let mut caravan = sandbox.spawn_caravan(&watch);
    // Both have listed (they show the sentinel), so every later change reaches their watch.
    wait_for(&mut kubectl, "sentinel", None, None);
    wait_for(&mut caravan, "sentinel", None, None);

    sandbox
        .caravan(&["apply", "-f", &manifest("one")])
        .assert_success();
    wait_for(&mut kubectl, WATCHED, Some("ADDED"), Some("one"));
    wait_for(&mut caravan, WATCHED, None, Some("one"));

    sandbox
        .caravan(&["apply", "-f", &manifest("two")])
        .assert_success();
    wait_for(&mut kubectl, WATCHED, Some("MODIFIED"), Some("two"));
    wait_for(&mut caravan, WATCHED, None, Some("two"));

    sandbox
        .caravan(&["delete", "job", WATCHED])
        .assert_success();
    wait_for(&mut kubectl, WATCHED, Some("DELETED"), None);

    // The server's controllers also write the job's status, so there may be more MODIFIED
    // events than the two applies; both watchers must see exactly the same ones, from the ADDED
    // to the DELETED. caravan prints bare objects (as kubectl does without
    // --output-watch-events): compare the resource versions.
    let types: Vec<String> = events(&kubectl.stdout())
        .iter()
        .filter(|(_, o)| o["metadata"]["name"] == WATCHED)
        .map(|(t, _)| t.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("ADDED"),
        "{}",
        kubectl.report()
    );
    assert_eq!(
        types.last().map(String::as_str),
        Some("DELETED"),
        "{}",
        kubectl.report()
    );
    assert!(
        types[1..types.len() - 1].iter().all(|t| t == "MODIFIED") && types.len() >= 3,
        "expected ADDED, MODIFIED…, DELETED: {}",
        kubectl.report()
    );
    let seen = versions(&kubectl.stdout());
    caravan
        .wait_for_stdout(DEADLINE, "caravan shows kubectl's versions", |out| {
            versions(out) == seen
        })
        .unwrap_or_else(|e| panic!("{e:#}\nkubectl saw versions {seen:?}"));
    kubectl.kill();
    caravan.kill();
}
