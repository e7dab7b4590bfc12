//! Job diff rendering.

use serde_json::json;

use super::*;

fn spec(count: u64, priority: Option<u64>) -> Value {
    let mut spec = json!({
        "type": "service",
        "datacenters": ["*"],
        "meta": {"owner": "ops"},
        "groups": [{
            "name": "web",
            "count": count,
            "tasks": [{"name": "server", "driver": "raw_exec", "resources": {"cpu": 200}}]
        }]
    });
    if let Some(p) = priority {
        spec["priority"] = json!(p);
    }
    spec
}

#[test]
fn unchanged_specs_render_without_markers() {
    let s = spec(3, Some(50));
    let diff = job_diff("web", Some(&s), Some(&s));
    assert_eq!(diff.kind, DiffType::None);
    let updates = BTreeMap::from([(
        "web".to_owned(),
        DesiredUpdates {
            ignore: 3,
            ..DesiredUpdates::default()
        },
    )]);
    assert_eq!(
        render(&diff, &updates, false),
        "Job: \"web\"\nTask Group: \"web\" (3 ignore)\n  Task: \"server\"\n"
    );
}

#[test]
fn edits_additions_and_deletions_are_marked_per_field() {
    let old = spec(3, Some(50));
    let mut new = spec(4, None);
    new["meta"]["team"] = json!("web");
    new["groups"][0]["tasks"][0]["resources"]["cpu"] = json!(300);
    new["groups"][0]["tasks"][0]["env"] = json!({"A": "1"});
    let diff = job_diff("web", Some(&old), Some(&new));
    assert_eq!(diff.kind, DiffType::Edited);
    let updates = BTreeMap::from([(
        "web".to_owned(),
        DesiredUpdates {
            place: 1,
            ignore: 2,
            destructive_update: 1,
            ..DesiredUpdates::default()
        },
    )]);
    assert_eq!(
        render(&diff, &updates, false),
        "\
+/- Job: \"web\"
+   meta[team]: \"web\"
-   priority: \"50\"
+/- Task Group: \"web\" (1 create, 1 create/destroy update, 2 ignore)
  +/- count: \"3\" => \"4\"
  +/- Task: \"server\"
    +   env[A]: \"1\"
    +/- resources.cpu: \"200\" => \"300\"
"
    );
}

#[test]
fn a_new_job_lists_every_field_as_added() {
    let new = spec(1, None);
    let diff = job_diff("web", None, Some(&new));
    let brief = render(&diff, &BTreeMap::new(), false);
    assert_eq!(
        brief,
        "+   Job: \"web\"\n+   Task Group: \"web\"\n  +   Task: \"server\"\n"
    );
    let text = render(&diff, &BTreeMap::new(), true);
    assert!(
        text.starts_with("+   Job: \"web\"\n+   datacenters[0]: \"*\"\n"),
        "{text}"
    );
    assert!(
        text.contains("+   Task Group: \"web\"\n  +   count: \"1\"\n"),
        "{text}"
    );
    assert!(
        text.contains("  +   Task: \"server\"\n    +   driver: \"raw_exec\"\n"),
        "{text}"
    );
}

#[test]
fn removed_groups_are_deleted_with_their_fields() {
    let old = spec(2, None);
    let mut new = spec(2, None);
    new["groups"][0]["name"] = json!("api");
    let diff = job_diff("web", Some(&old), Some(&new));
    let kinds: Vec<(&str, DiffType)> = diff
        .children
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [("api", DiffType::Added), ("web", DiffType::Deleted)]
    );
    assert!(
        diff.children[1]
            .fields
            .iter()
            .all(|f| f.kind == DiffType::Deleted)
    );
}

#[test]
fn annotations_follow_nomads_update_types() {
    let updates = DesiredUpdates {
        place: 1,
        reschedule: 1,
        stop: 2,
        in_place_update: 1,
        migrate: 1,
        ..DesiredUpdates::default()
    };
    assert_eq!(
        annotation(&updates),
        " (2 create, 2 destroy, 1 in-place update, 1 migrate)"
    );
    assert_eq!(annotation(&DesiredUpdates::default()), "");
}
