//! Watches from kubectl and from the caravan CLI see the same changes.

use std::time::Duration;

use caravan_e2e::fixtures::{self, to_yaml};
use caravan_e2e::{Sandbox, StreamingChild};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

/// Every JSON value printed so far (pretty-printed or one per line), as watch events:
/// `(type, object)`, with type `None` when the output is bare objects.
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

fn saw(output: &str, name: &str, event_type: Option<&str>, stage: Option<&str>) -> bool {
    events(output).iter().any(|(t, o)| {
        o["metadata"]["name"] == name
            && event_type.is_none_or(|want| t.as_deref() == Some(want))
            && stage.is_none_or(|want| o["metadata"]["labels"]["stage"] == want)
    })
}

fn wait_for(
    child: &mut StreamingChild,
    who: &str,
    name: &str,
    ty: Option<&str>,
    stage: Option<&str>,
) {
    let what = format!("{who} shows {name} ({ty:?}, stage {stage:?})");
    child
        .wait_for_stdout(DEADLINE, &what, |out| saw(out, name, ty, stage))
        .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn kubectl_and_caravan_watch_see_the_same_events() {
    let sandbox = Sandbox::start("watch");
    let manifest = |stage: &str| {
        let mut job = fixtures::web_job();
        job["metadata"]["name"] = "watched".into();
        job["metadata"]["labels"]["stage"] = stage.into();
        sandbox.write_file(&format!("watched-{stage}.yaml"), &to_yaml(&job))
    };
    let mut sentinel = fixtures::small_job("sentinel");
    sentinel["metadata"]["labels"]["stage"] = "sentinel".into();
    let sentinel = sandbox.write_file("sentinel.yaml", &to_yaml(&sentinel));
    sandbox
        .caravan(&["apply", "-f", sentinel.to_str().unwrap()])
        .assert_success();

    let mut kubectl = sandbox.spawn_kubectl(&[
        "get",
        "jobs",
        "--watch",
        "--output-watch-events",
        "-o",
        "json",
    ]);
    let mut caravan = sandbox.spawn_caravan(&["get", "jobs", "--watch", "-o", "json"]);
    // Both have listed (the sentinel is shown): every later change reaches their watch.
    wait_for(&mut kubectl, "kubectl", "sentinel", None, None);
    wait_for(&mut caravan, "caravan", "sentinel", None, None);

    let one = manifest("one");
    sandbox
        .caravan(&["apply", "-f", one.to_str().unwrap()])
        .assert_success();
    wait_for(
        &mut kubectl,
        "kubectl",
        "watched",
        Some("ADDED"),
        Some("one"),
    );
    wait_for(&mut caravan, "caravan", "watched", None, Some("one"));

    let two = manifest("two");
    sandbox
        .caravan(&["apply", "-f", two.to_str().unwrap()])
        .assert_success();
    wait_for(
        &mut kubectl,
        "kubectl",
        "watched",
        Some("MODIFIED"),
        Some("two"),
    );
    wait_for(&mut caravan, "caravan", "watched", None, Some("two"));

    sandbox
        .caravan(&["delete", "job", "watched"])
        .assert_success();
    wait_for(&mut kubectl, "kubectl", "watched", Some("DELETED"), None);
    // The caravan CLI prints events when it has them, bare objects otherwise; a deleted object
    // then shows up a third time.
    caravan
        .wait_for_stdout(DEADLINE, "caravan shows the deletion", |out| {
            let evs = events(out);
            let typed = evs.iter().any(|(t, _)| t.is_some());
            evs.iter()
                .any(|(t, o)| o["metadata"]["name"] == "watched" && t.as_deref() == Some("DELETED"))
                || (!typed
                    && evs
                        .iter()
                        .filter(|(_, o)| o["metadata"]["name"] == "watched")
                        .count()
                        >= 3)
        })
        .unwrap_or_else(|e| panic!("{e:#}"));

    // Both saw the same resource versions of the watched object, in order.
    let versions = |out: &str| -> Vec<String> {
        let mut rvs: Vec<String> = events(out)
            .iter()
            .filter(|(_, o)| o["metadata"]["name"] == "watched")
            .filter_map(|(_, o)| o["metadata"]["resourceVersion"].as_str().map(str::to_owned))
            .collect();
        rvs.dedup();
        rvs
    };
    assert_eq!(
        versions(&kubectl.stdout()),
        versions(&caravan.stdout()),
        "kubectl:\n{}\ncaravan:\n{}",
        kubectl.report(),
        caravan.report()
    );
    kubectl.kill();
    caravan.kill();
}
