use serde_json::{Value, json};

use super::*;
use crate::mock;

fn example(name: &str) -> Value {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("example exists");
    yaml_serde::from_str(&text).expect("example is YAML")
}

fn admitted(kind: Kind, object: Value) -> Value {
    match admit(kind, object, true) {
        Ok(admitted) => {
            assert!(admitted.warnings.is_empty(), "{:?}", admitted.warnings);
            admitted.object
        }
        Err(errors) => panic!("rejected: {errors:#?}"),
    }
}

fn rejected(kind: Kind, object: Value, strict: bool) -> Vec<FieldError> {
    match admit(kind, object, strict) {
        Ok(admitted) => panic!("admitted: {:#}", admitted.object),
        Err(errors) => errors,
    }
}

fn minimal_job(job_type: &str) -> Value {
    json!({
        "apiVersion": "caravan.dev/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "type": job_type,
            "groups": [{"name": "g", "tasks": [{"name": "t", "driver": "mock"}]}]
        }
    })
}

#[test]
fn example_jobs_admit_and_round_trip() {
    for name in ["web.yaml", "batch.yaml"] {
        let object = admitted(Kind::Job, example(name));
        let job: crate::Job = serde_json::from_value(object.clone()).expect("typed");
        assert_eq!(serde_json::to_value(&job).expect("json"), object, "{name}");
        // Admission is idempotent: defaults are not applied twice differently.
        assert_eq!(admitted(Kind::Job, object.clone()), object, "{name}");
    }
    let web = admitted(Kind::Job, example("web.yaml"));
    assert_eq!(web["metadata"]["labels"]["app"], "web");
    let group = &web["spec"]["groups"][0];
    assert_eq!(group["count"], 3);
    assert_eq!(group["restart"]["mode"], "delay");
    assert_eq!(group["update"]["healthyDeadline"], "3m");
    assert_eq!(group["update"]["progressDeadline"], "10m");
    let task = &group["tasks"][0];
    assert_eq!(task["config"]["command"], "/usr/bin/env");
    assert_eq!(group["network"]["ports"][0]["label"], "http");
    assert_eq!(task["resources"]["cpu"], 200);
    assert_eq!(task["killSignal"], "SIGINT");
    assert_eq!(web["spec"]["constraints"][0]["value"], "linux");
}

#[test]
fn service_job_gets_nomad_defaults() {
    let job = admitted(Kind::Job, minimal_job("service"));
    let spec = &job["spec"];
    assert_eq!(spec["priority"], 50);
    assert_eq!(spec["region"], "global");
    assert_eq!(spec["datacenters"], json!(["*"]));
    assert_eq!(spec["nodePool"], "default");
    // No update block, none filled in (Nomad: no rolling updates, no deployments).
    assert!(spec.get("update").is_none());
    let mut rolling = minimal_job("service");
    rolling["spec"]["update"] = json!({"canary": 1});
    let rolling = admitted(Kind::Job, rolling);
    assert_eq!(
        rolling["spec"]["update"],
        json!({"maxParallel": 1, "healthCheck": "checks", "minHealthyTime": "10s",
               "healthyDeadline": "5m", "progressDeadline": "10m", "autoRevert": false,
               "autoPromote": false, "canary": 1})
    );
    assert_eq!(rolling["spec"]["groups"][0]["update"]["canary"], 1);
    let group = &spec["groups"][0];
    assert_eq!(group["count"], 1);
    assert_eq!(
        group["restart"],
        json!({"attempts": 2, "interval": "30m", "delay": "15s", "mode": "fail"})
    );
    assert_eq!(
        group["reschedule"],
        json!({"attempts": 0, "interval": "0s", "delay": "30s", "delayFunction": "exponential",
               "maxDelay": "1h", "unlimited": true})
    );
    assert_eq!(group["migrate"]["maxParallel"], 1);
    assert!(group.get("update").is_none());
    assert_eq!(
        group["ephemeralDisk"],
        json!({"sizeMB": 300, "sticky": false, "migrate": false})
    );
    let task = &group["tasks"][0];
    assert_eq!(task["resources"], json!({"cpu": 100, "memoryMB": 300}));
    assert_eq!(task["killTimeout"], "5s");
    assert_eq!(task["killSignal"], "SIGINT");
    assert_eq!(task["logs"], json!({"maxFiles": 10, "maxFileSizeMB": 10}));
}

#[test]
fn batch_job_gets_batch_defaults() {
    let job = admitted(Kind::Job, minimal_job("batch"));
    let group = &job["spec"]["groups"][0];
    assert_eq!(
        group["restart"],
        json!({"attempts": 3, "interval": "24h", "delay": "15s", "mode": "fail"})
    );
    assert_eq!(
        group["reschedule"],
        json!({"attempts": 1, "interval": "24h", "delay": "5s", "delayFunction": "constant",
               "maxDelay": "0s", "unlimited": false})
    );
    assert!(group.get("update").is_none());
    assert!(group.get("migrate").is_none());
}

#[test]
fn system_jobs_are_not_rescheduled() {
    for job_type in ["system", "sysbatch"] {
        let job = admitted(Kind::Job, minimal_job(job_type));
        let group = &job["spec"]["groups"][0];
        assert!(group.get("reschedule").is_none(), "{job_type}");
        assert!(job["spec"].get("reschedule").is_none(), "{job_type}");
    }
    let system = admitted(Kind::Job, minimal_job("system"));
    assert_eq!(system["spec"]["groups"][0]["restart"]["attempts"], 2);
    // As Nomad: no update block, no rolling updates.
    assert!(system["spec"]["groups"][0].get("update").is_none());
    let mut rolling = minimal_job("system");
    rolling["spec"]["update"] = json!({"canary": 0});
    let rolling = admitted(Kind::Job, rolling);
    assert_eq!(rolling["spec"]["groups"][0]["update"]["maxParallel"], 1);
    let sysbatch = admitted(Kind::Job, minimal_job("sysbatch"));
    assert_eq!(sysbatch["spec"]["groups"][0]["restart"]["interval"], "24h");
}

#[test]
fn group_settings_override_job_settings_field_by_field() {
    let mut job = minimal_job("service");
    job["spec"]["update"] = json!({"maxParallel": 3, "canary": 1});
    job["spec"]["groups"][0]["update"] = json!({"canary": 2});
    job["spec"]["groups"][0]["restart"] = json!({"attempts": 5});
    let job = admitted(Kind::Job, job);
    let group = &job["spec"]["groups"][0];
    assert_eq!(group["update"]["canary"], 2);
    assert_eq!(group["update"]["maxParallel"], 3);
    assert_eq!(group["update"]["minHealthyTime"], "10s");
    assert!(group["update"].get("stagger").is_none());
    assert_eq!(group["restart"]["attempts"], 5);
    assert_eq!(group["restart"]["interval"], "30m");
}

#[test]
fn every_schema_error_is_reported_with_its_path() {
    let mut job = minimal_job("cron");
    job["spec"]["priority"] = json!(200);
    job["spec"]["groups"][0]["tasks"][0]
        .as_object_mut()
        .expect("task")
        .remove("driver");
    let errors = rejected(Kind::Job, job, true);
    let mut found: Vec<(String, FieldErrorKind)> =
        errors.iter().map(|e| (e.field.clone(), e.kind)).collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            (
                "spec.groups[0].tasks[0].driver".into(),
                FieldErrorKind::Required
            ),
            ("spec.priority".into(), FieldErrorKind::Invalid),
            ("spec.type".into(), FieldErrorKind::NotSupported),
        ],
        "{errors:#?}"
    );
    let unsupported = errors
        .iter()
        .find(|e| e.field == "spec.type")
        .expect("type error");
    assert!(
        unsupported.message.contains("\"service\""),
        "{}",
        unsupported.message
    );
    assert!(
        unsupported.message.contains("\"sysbatch\""),
        "{}",
        unsupported.message
    );
}

#[test]
fn every_semantic_error_is_reported_with_its_path() {
    let mut job = minimal_job("service");
    let group = json!({"name": "g", "tasks": [
        {"name": "t", "driver": "mock", "killTimeout": "5 seconds"},
        {"name": "t", "driver": "mock"}
    ]});
    job["spec"]["groups"] = json!([group.clone(), group]);
    job["spec"]["spreads"] = json!([{"attribute": "${node.datacenter}", "targets": [
        {"value": "dc1", "percent": 70}, {"value": "dc2", "percent": 40}
    ]}]);
    job["metadata"]["name"] = json!("Web_1");
    let errors = rejected(Kind::Job, job, true);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for expected in [
        "metadata.name",
        "spec.spreads[0].targets",
        "spec.groups[1].name",
        "spec.groups[0].tasks[0].killTimeout",
        "spec.groups[0].tasks[1].name",
        "spec.groups[1].tasks[0].killTimeout",
        "spec.groups[1].tasks[1].name",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {errors:#?}"
        );
    }
    assert_eq!(errors.len(), 7, "{errors:#?}");
    let duplicate = errors
        .iter()
        .find(|e| e.field == "spec.groups[1].name")
        .expect("duplicate");
    assert_eq!(duplicate.kind, FieldErrorKind::Duplicate);
    for error in &errors {
        assert!(!error.message.ends_with('.'), "{error:?}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error:?}");
    }
}

#[test]
fn type_mismatches_and_negative_counts_are_reported() {
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["count"] = json!("three");
    job["spec"]["groups"][0]["tasks"][0]["resources"] = json!({"cpu": -5});
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].field, "spec.groups[0].count");
    assert_eq!(errors[0].kind, FieldErrorKind::TypeInvalid);
    assert_eq!(errors[1].field, "spec.groups[0].tasks[0].resources.cpu");
    assert_eq!(errors[1].kind, FieldErrorKind::Invalid);
}

#[test]
fn missing_groups_and_wrong_kind_are_reported() {
    let errors = rejected(
        Kind::Job,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {"groups": []}}),
        true,
    );
    let fields: Vec<(&str, FieldErrorKind)> =
        errors.iter().map(|e| (e.field.as_str(), e.kind)).collect();
    assert!(
        fields.contains(&("apiVersion", FieldErrorKind::NotSupported)),
        "{errors:#?}"
    );
    assert!(
        fields.contains(&("kind", FieldErrorKind::NotSupported)),
        "{errors:#?}"
    );
    assert!(
        fields.contains(&("spec.groups", FieldErrorKind::Invalid)),
        "{errors:#?}"
    );
}

#[test]
fn unknown_fields_are_errors_when_strict() {
    let mut job = minimal_job("service");
    job["spec"]["foo"] = json!(1);
    job["spec"]["groups"][0]["tasks"][0]["bar"] = json!("x");
    job["spec"]["groups"][0]["tasks"][0]["config"]["anything"] = json!({"goes": true});
    let errors = rejected(Kind::Job, job, true);
    let mut found: Vec<(String, FieldErrorKind)> =
        errors.iter().map(|e| (e.field.clone(), e.kind)).collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        found,
        vec![
            ("spec.foo".into(), FieldErrorKind::Unknown),
            (
                "spec.groups[0].tasks[0].bar".into(),
                FieldErrorKind::Unknown
            ),
        ]
    );
}

#[test]
fn unknown_fields_are_dropped_with_warnings_when_not_strict() {
    let mut job = minimal_job("service");
    job["spec"]["foo"] = json!(1);
    job["spec"]["baz"] = json!(2);
    job["metadata"]["color"] = json!("red");
    let admitted = admit(Kind::Job, job, false).expect("admitted");
    let mut warnings = admitted.warnings.clone();
    warnings.sort();
    assert_eq!(
        warnings,
        vec![
            "unknown field \"metadata.color\"".to_string(),
            "unknown field \"spec.baz\"".to_string(),
            "unknown field \"spec.foo\"".to_string(),
        ]
    );
    assert!(admitted.object["spec"].get("foo").is_none());
    assert!(admitted.object["metadata"].get("color").is_none());
}

#[test]
fn nulls_are_dropped_before_validation() {
    let mut job = minimal_job("service");
    job["spec"]["region"] = Value::Null;
    job["spec"]["groups"][0]["count"] = Value::Null;
    job["metadata"]["labels"] = json!({"app": "web", "gone": null});
    job["status"] = Value::Null;
    let job = admitted(Kind::Job, job);
    assert_eq!(job["spec"]["region"], "global");
    assert_eq!(job["spec"]["groups"][0]["count"], 1);
    assert_eq!(job["metadata"]["labels"], json!({"app": "web"}));
    assert!(job.get("status").is_none());
}

#[test]
fn metadata_passes_through_unchanged() {
    let mut job = minimal_job("service");
    job["metadata"] = json!({
        "name": "web", "namespace": "prod", "uid": "1234", "resourceVersion": "42",
        "generation": 3, "labels": {"app.kubernetes.io/name": "web"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
    });
    let expected = job["metadata"].clone();
    assert_eq!(admitted(Kind::Job, job)["metadata"], expected);
}

#[test]
fn node_and_namespace_names_are_labels() {
    let mut node = serde_json::to_value(mock::node("node-1")).expect("json");
    admitted(Kind::Node, node.clone());
    node["metadata"]["name"] = json!("node.example.com");
    let errors = rejected(Kind::Node, node, true);
    assert_eq!(errors[0].field, "metadata.name");
    let errors = rejected(
        Kind::Namespace,
        json!({"apiVersion": "caravan.dev/v1", "kind": "Namespace", "metadata": {"name": "a.b"}}),
        true,
    );
    assert_eq!(errors[0].field, "metadata.name");
}

#[test]
fn bad_labels_are_reported() {
    let mut job = minimal_job("service");
    job["metadata"]["labels"] = json!({"-bad": "ok", "good": "not ok!"});
    let errors = rejected(Kind::Job, job, true);
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec!["metadata.labels[-bad]", "metadata.labels[good]"]
    );
}

#[test]
fn mock_objects_admit() {
    let job = mock::job("web");
    let node = mock::node("node-1");
    let objects = [
        (Kind::Job, serde_json::to_value(&job).expect("json")),
        (
            Kind::Job,
            serde_json::to_value(mock::batch_job("batch")).expect("json"),
        ),
        (Kind::Job, mock::job_value("bench")),
        (Kind::Node, serde_json::to_value(&node).expect("json")),
        (
            Kind::Allocation,
            serde_json::to_value(mock::allocation("a1", &job, &node)).expect("json"),
        ),
        (
            Kind::Evaluation,
            serde_json::to_value(mock::evaluation("e1", &job)).expect("json"),
        ),
        (
            Kind::Namespace,
            serde_json::to_value(mock::namespace("prod")).expect("json"),
        ),
    ];
    for (kind, object) in objects {
        let admitted = admitted(kind, object.clone());
        if kind != Kind::Job || object["metadata"]["name"] != "bench" {
            assert_eq!(admitted, object, "{kind} fixtures carry their defaults");
        }
    }
    let bench = serde_json::to_string(&mock::job_value("bench")).expect("json");
    assert!((800..1600).contains(&bench.len()), "{}", bench.len());
}

#[test]
fn an_update_of_metadata_only_skips_the_typed_pass_with_the_same_result() {
    let stored = admitted(Kind::Job, example("web.yaml"));
    let mut update = stored.clone();
    update["metadata"]["annotations"] = json!({"owner": "team-a"});
    let fast = admit_update(Kind::Job, update.clone(), &stored, true).expect("admitted");
    let full = admitted(Kind::Job, update);
    assert_eq!(fast.object, full);
}

#[test]
fn an_update_of_metadata_only_still_checks_the_metadata_and_the_schema() {
    let stored = admitted(Kind::Job, example("web.yaml"));
    let mut bad_label = stored.clone();
    bad_label["metadata"]["labels"] = json!({"-not a key-": "x"});
    let errors = admit_update(Kind::Job, bad_label.clone(), &stored, true).unwrap_err();
    assert_eq!(errors, rejected(Kind::Job, bad_label, true));
    let mut unknown = stored.clone();
    unknown["metadata"]["surprise"] = json!(1);
    let errors = admit_update(Kind::Job, unknown.clone(), &stored, true).unwrap_err();
    assert_eq!(errors, rejected(Kind::Job, unknown, true));
}

#[test]
fn an_update_of_the_spec_takes_the_typed_pass() {
    let stored = admitted(Kind::Job, example("web.yaml"));
    let mut update = stored.clone();
    // A group without its restart policy: the typed pass fills it in.
    update["spec"]["groups"][0]
        .as_object_mut()
        .unwrap()
        .remove("restart");
    let fast = admit_update(Kind::Job, update.clone(), &stored, true).expect("admitted");
    assert!(fast.object["spec"]["groups"][0]["restart"]["mode"].is_string());
    assert_eq!(fast.object, admitted(Kind::Job, update));
    let mut invalid = stored.clone();
    invalid["spec"]["groups"][0]["count"] = json!(-1);
    assert!(admit_update(Kind::Job, invalid, &stored, true).is_err());
}

#[test]
fn a_new_object_admitted_to_json_is_what_admit_gives_stamped() {
    let job = mock::job("web");
    let node = mock::node("n1");
    let objects = [
        (Kind::Job, example("web.yaml")),
        (Kind::Job, example("batch.yaml")),
        (Kind::Job, serde_json::to_value(&job).unwrap()),
        (Kind::Node, serde_json::to_value(&node).unwrap()),
        (
            Kind::Namespace,
            serde_json::to_value(mock::namespace("ns")).unwrap(),
        ),
        (
            Kind::Allocation,
            serde_json::to_value(mock::allocation("web-0", &job, &node)).unwrap(),
        ),
        (
            Kind::Evaluation,
            serde_json::to_value(mock::evaluation("web-e", &job)).unwrap(),
        ),
    ];
    let stamp = |meta: &mut ObjectMeta| {
        meta.uid = Some("u-1".into());
        meta.generation = Some(1);
    };
    for (kind, object) in objects {
        let new = admit_new(kind, object.clone(), true, &stamp).expect("admitted");
        let mut expected = admitted(kind, object);
        expected["metadata"]["uid"] = json!("u-1");
        expected["metadata"]["generation"] = json!(1);
        let got: Value = serde_json::from_str(new.json.get()).unwrap();
        assert_eq!(got, expected, "{kind:?}");
    }

    // Both report the same problems, and the same unknown fields.
    let mut bad = minimal_job("nope");
    bad["spec"]["foo"] = json!(1);
    let errors = admit_new(Kind::Job, bad.clone(), true, &stamp).unwrap_err();
    assert_eq!(errors, rejected(Kind::Job, bad.clone(), true));
    let lenient = admit_new(Kind::Job, bad, false, &stamp);
    assert!(lenient.is_err(), "an unknown job type is still invalid");
}

#[test]
fn nodes_get_their_computed_class_from_the_server() {
    let mut node = mock::node("node-1");
    let class = node.status.as_ref().and_then(|s| s.computed_class.clone());
    let class = class.expect("a stored node carries its class");
    assert!(class.starts_with("v1:") && class.len() == 19, "{class}");

    // A class sent by the client is replaced by the server's.
    node.status.as_mut().expect("status").computed_class = Some("v1:forged".into());
    let admitted = admitted(Kind::Node, serde_json::to_value(&node).expect("json"));
    assert_eq!(admitted["status"]["computedClass"], json!(class));
}

#[test]
fn a_replaced_node_keeps_its_status_with_the_class_of_its_new_spec() {
    use crate::admission::kinds::Admissible;
    let stored = mock::node("node-1");
    let mut replacement = stored.clone();
    replacement.status = None;
    replacement.spec.datacenter = Some("dc2".into());
    replacement.keep_status(&stored);
    assert!(replacement.class_is_current());
    assert_ne!(
        replacement.status.and_then(|s| s.computed_class),
        stored.status.and_then(|s| s.computed_class)
    );
}

#[test]
fn typed_allocation_admission_agrees_with_the_full_path() {
    let job = mock::job("web");
    let node = mock::node("n1");
    let mut defaults_missing = mock::allocation("a2", &job, &node);
    defaults_missing.spec.desired_status = None;
    let mut bad_name = mock::allocation("A_2", &job, &node);
    bad_name.spec.desired_status = None;
    let mut bad_delay = mock::allocation("a3", &job, &node);
    bad_delay.spec.reschedule_tracker = Some(crate::allocation::RescheduleTracker {
        events: vec![crate::allocation::RescheduleEvent {
            delay: Some("soon".into()),
            ..Default::default()
        }],
    });
    for alloc in [
        mock::allocation("a1", &job, &node),
        defaults_missing,
        bad_name,
        bad_delay,
    ] {
        let full = admit(
            Kind::Allocation,
            serde_json::to_value(&alloc).expect("json"),
            false,
        )
        .map(|a| a.object);
        let mut typed = alloc.clone();
        let fields = |errors: Vec<FieldError>| -> Vec<String> {
            errors.into_iter().map(|e| e.field).collect()
        };
        match (full, admit_allocation(&mut typed)) {
            (Ok(object), Ok(())) => {
                assert_eq!(serde_json::to_value(&typed).expect("json"), object)
            }
            (Err(full), Err(typed)) => assert_eq!(fields(full), fields(typed)),
            (full, typed) => panic!("the paths disagree: {full:?} against {typed:?}"),
        }
    }
    let mut wrong_kind = mock::allocation("a4", &job, &node);
    wrong_kind.kind = "Job".into();
    let errors = admit_allocation(&mut wrong_kind).expect_err("wrong kind");
    assert_eq!(errors[0].field, "kind");
}

/// The fields of `errors`, sorted.
fn fields_of(errors: &[FieldError]) -> Vec<String> {
    let mut fields: Vec<String> = errors.iter().map(|e| e.field.clone()).collect();
    fields.sort();
    fields
}

#[test]
fn group_and_task_names_that_leave_their_directory_are_refused() {
    let mut job = minimal_job("service");
    let too_long = "t".repeat(crate::limits::MAX_TASK_NAME_LEN + 1);
    job["spec"]["groups"] = json!([
        {"name": "..", "tasks": [
            {"name": "../../../../x", "driver": "mock"},
            {"name": "/etc", "driver": "mock"},
            {"name": ".", "driver": "mock"},
        ]},
        {"name": "a/b", "tasks": [
            {"name": "with space", "driver": "mock"},
            {"name": too_long, "driver": "mock"},
            {"name": "", "driver": "mock"},
            {"name": "tâche", "driver": "mock"},
        ]},
    ]);
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(
        fields_of(&errors),
        [
            "spec.groups[0].name",
            "spec.groups[0].tasks[0].name",
            "spec.groups[0].tasks[1].name",
            "spec.groups[0].tasks[2].name",
            "spec.groups[1].name",
            "spec.groups[1].tasks[0].name",
            "spec.groups[1].tasks[1].name",
            "spec.groups[1].tasks[2].name",
            "spec.groups[1].tasks[3].name",
        ],
        "{errors:#?}"
    );
    for error in &errors {
        assert_eq!(error.kind, FieldErrorKind::Invalid, "{error:?}");
    }

    // Nomad's names: letters of either case, digits, '_', '.' and '-', up to the limit.
    let mut job = minimal_job("service");
    let longest = "t".repeat(crate::limits::MAX_TASK_NAME_LEN);
    job["spec"]["groups"] = json!([{"name": "Front_End.v2-1", "tasks": [
        {"name": "...", "driver": "mock"},
        {"name": longest, "driver": "mock"},
        {"name": ".hidden", "driver": "mock"},
    ]}]);
    admitted(Kind::Job, job);
}

#[test]
fn allocations_name_their_group_and_tasks_as_jobs_do() {
    let job = mock::job("web");
    let node = mock::node("n1");
    let mut alloc = mock::allocation("a1", &job, &node);
    alloc.spec.group = "../g".into();
    let resources = alloc.spec.allocated_resources.as_mut().expect("resources");
    let task = resources.tasks.values().next().cloned().expect("a task");
    resources.tasks.insert("../../x".into(), task);
    alloc
        .status
        .get_or_insert_default()
        .task_states
        .insert("/etc".into(), crate::allocation::TaskState::default());
    let expected = [
        "spec.allocatedResources.tasks[../../x]",
        "spec.group",
        "status.taskStates[/etc]",
    ];
    let errors = rejected(
        Kind::Allocation,
        serde_json::to_value(&alloc).expect("json"),
        true,
    );
    assert_eq!(fields_of(&errors), expected, "{errors:#?}");
    // A scheduler's placement is admitted in typed form with the same checks.
    let errors = admit_allocation(&mut alloc.clone()).expect_err("bad names");
    assert_eq!(fields_of(&errors), expected, "{errors:#?}");
}

#[test]
fn job_names_fit_in_the_job_label() {
    let max = crate::limits::MAX_LABEL_NAME_LEN;
    let mut job = minimal_job("service");
    job["metadata"]["name"] = json!("j".repeat(max));
    admitted(Kind::Job, job.clone());
    job["metadata"]["name"] = json!("j".repeat(max + 1));
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(fields_of(&errors), ["metadata.name"], "{errors:#?}");
    job["metadata"]["name"] = json!(format!("{}.{}", "j".repeat(200), "k".repeat(52)));
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(fields_of(&errors), ["metadata.name"], "{errors:#?}");
    // Dots stay allowed: a label value may hold them.
    job["metadata"]["name"] = json!("web.v2");
    admitted(Kind::Job, job.clone());

    // The name the server makes of a generateName is five characters longer.
    let prefix = max - crate::limits::GENERATED_NAME_SUFFIX_LEN;
    job["metadata"]["generateName"] = json!("g".repeat(prefix));
    admitted(Kind::Job, job.clone());
    job["metadata"]["generateName"] = json!("g".repeat(prefix + 1));
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(fields_of(&errors), ["metadata.generateName"], "{errors:#?}");

    // Other kinds whose names are not label values keep the 253 characters of a subdomain.
    let job = mock::job("web");
    let mut eval = serde_json::to_value(mock::evaluation("e1", &job)).expect("json");
    eval["metadata"]["name"] = json!("e".repeat(200));
    admitted(Kind::Evaluation, eval.clone());
    eval["metadata"]["generateName"] = json!("e".repeat(249));
    let errors = rejected(Kind::Evaluation, eval, true);
    assert_eq!(fields_of(&errors), ["metadata.generateName"], "{errors:#?}");
}

#[test]
fn counts_groups_and_tasks_are_bounded() {
    use crate::limits::{MAX_GROUP_COUNT, MAX_GROUPS, MAX_TASKS_PER_GROUP};
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["count"] = json!(1_000_000_000);
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(fields_of(&errors), ["spec.groups[0].count"], "{errors:#?}");
    job["spec"]["groups"][0]["count"] = json!(MAX_GROUP_COUNT + 1);
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(fields_of(&errors), ["spec.groups[0].count"], "{errors:#?}");
    job["spec"]["groups"][0]["count"] = json!(MAX_GROUP_COUNT);
    admitted(Kind::Job, job.clone());
    job["spec"]["groups"][0]["count"] = json!(0);
    admitted(Kind::Job, job);

    let group = |i: usize, tasks: usize| {
        let tasks: Vec<Value> = (0..tasks)
            .map(|t| json!({"name": format!("t{t}"), "driver": "mock"}))
            .collect();
        json!({"name": format!("g{i}"), "tasks": tasks})
    };
    let mut job = minimal_job("service");
    let mut groups: Vec<Value> = (0..=MAX_GROUPS).map(|i| group(i, 1)).collect();
    groups[1] = group(1, MAX_TASKS_PER_GROUP + 1);
    job["spec"]["groups"] = Value::Array(groups.clone());
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(
        fields_of(&errors),
        ["spec.groups", "spec.groups[1].tasks"],
        "{errors:#?}"
    );
    assert!(errors.iter().all(|e| e.kind == FieldErrorKind::TooLong));
    groups.truncate(MAX_GROUPS);
    groups[1] = group(1, MAX_TASKS_PER_GROUP);
    job["spec"]["groups"] = Value::Array(groups);
    admit(Kind::Job, job, true).expect("the limits themselves are allowed");
}

#[test]
fn resources_above_the_limits_are_refused() {
    use crate::limits::{MAX_CPU_MHZ, MAX_DISK_MB, MAX_MEMORY_MB};
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["ephemeralDisk"] = json!({"sizeMB": u64::MAX});
    job["spec"]["groups"][0]["tasks"] = json!([
        {"name": "a", "driver": "mock", "resources": {
            "cpu": 9_223_372_036_854_775_808_u64, "memoryMB": 9_223_372_036_854_775_808_u64,
            "memoryMaxMB": u64::MAX, "diskMB": MAX_DISK_MB + 1}},
        {"name": "b", "driver": "mock", "resources": {
            "cpu": u64::MAX, "memoryMB": MAX_MEMORY_MB + 1}},
    ]);
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(
        fields_of(&errors),
        [
            "spec.groups[0].ephemeralDisk.sizeMB",
            "spec.groups[0].tasks[0].resources.cpu",
            "spec.groups[0].tasks[0].resources.diskMB",
            "spec.groups[0].tasks[0].resources.memoryMB",
            "spec.groups[0].tasks[0].resources.memoryMaxMB",
            "spec.groups[0].tasks[1].resources.cpu",
            "spec.groups[0].tasks[1].resources.memoryMB",
        ],
        "{errors:#?}"
    );
    let cpu = errors
        .iter()
        .find(|e| e.field == "spec.groups[0].tasks[0].resources.cpu")
        .expect("cpu");
    assert!(cpu.message.contains(&MAX_CPU_MHZ.to_string()), "{cpu:?}");

    // Negative amounts are refused by the schema.
    let mut negative = minimal_job("service");
    negative["spec"]["groups"][0]["tasks"][0]["resources"] = json!({"memoryMB": -1});
    let errors = rejected(Kind::Job, negative, true);
    assert_eq!(
        fields_of(&errors),
        ["spec.groups[0].tasks[0].resources.memoryMB"],
        "{errors:#?}"
    );

    job["spec"]["groups"][0]["ephemeralDisk"] = json!({"sizeMB": MAX_DISK_MB});
    job["spec"]["groups"][0]["tasks"] = json!([{"name": "a", "driver": "mock", "resources": {
        "cpu": MAX_CPU_MHZ, "memoryMB": MAX_MEMORY_MB, "memoryMaxMB": MAX_MEMORY_MB,
        "diskMB": MAX_DISK_MB}}]);
    admitted(Kind::Job, job);
}

#[test]
fn allocated_resources_above_the_limits_are_refused() {
    let job = mock::job("web");
    let node = mock::node("n1");
    let mut alloc = mock::allocation("a1", &job, &node);
    let resources = alloc.spec.allocated_resources.as_mut().expect("resources");
    resources.shared.disk_mb = u64::MAX;
    let task = resources.tasks.values_mut().next().expect("a task");
    task.cpu = 1 << 63;
    task.memory_mb = u64::MAX;
    task.memory_max_mb = Some(u64::MAX);
    let name = resources.tasks.keys().next().cloned().expect("a task");
    let errors = admit_allocation(&mut alloc).expect_err("too large");
    let base = format!("spec.allocatedResources.tasks[{name}]");
    assert_eq!(
        fields_of(&errors),
        [
            "spec.allocatedResources.shared.diskMB".to_string(),
            format!("{base}.cpu"),
            format!("{base}.memoryMB"),
            format!("{base}.memoryMaxMB"),
        ],
        "{errors:#?}"
    );
}

#[test]
fn node_resources_above_the_limits_are_refused() {
    let mut node = mock::node("n1");
    let status = node.status.as_mut().expect("status");
    let resources = status.resources.as_mut().expect("resources");
    resources.cpu = 1 << 63;
    resources.memory_mb = u64::MAX;
    resources.disk_mb = u64::MAX;
    let reserved = status.reserved.get_or_insert_default();
    reserved.cpu = u64::MAX;
    reserved.memory_mb = 1 << 63;
    reserved.disk_mb = (crate::limits::MAX_DISK_MB + 1) as u64;
    let errors = rejected(Kind::Node, serde_json::to_value(&node).expect("json"), true);
    assert_eq!(
        fields_of(&errors),
        [
            "status.reserved.cpu",
            "status.reserved.diskMB",
            "status.reserved.memoryMB",
            "status.resources.cpu",
            "status.resources.diskMB",
            "status.resources.memoryMB",
        ],
        "{errors:#?}"
    );
}

#[test]
fn durations_above_the_limit_are_refused() {
    let mut job = minimal_job("service");
    job["spec"]["update"] = json!({"progressDeadline": "87601h"});
    job["spec"]["groups"][0]["restart"] = json!({"delay": "100000h"});
    job["spec"]["groups"][0]["tasks"][0]["killTimeout"] = json!("5000000000000000h");
    let errors = rejected(Kind::Job, job.clone(), true);
    assert_eq!(
        fields_of(&errors),
        [
            "spec.groups[0].restart.delay",
            "spec.groups[0].tasks[0].killTimeout",
            "spec.update.progressDeadline",
        ],
        "{errors:#?}"
    );
    let kill = errors
        .iter()
        .find(|e| e.field == "spec.groups[0].tasks[0].killTimeout")
        .expect("killTimeout");
    assert!(kill.message.contains("87600h"), "{kill:?}");

    job["spec"]["update"] = json!({"progressDeadline": "87600h"});
    job["spec"]["groups"][0]["restart"] = json!({"delay": "1h"});
    job["spec"]["groups"][0]["tasks"][0]["killTimeout"] = json!("30s");
    admitted(Kind::Job, job);

    let mut node = serde_json::to_value(mock::node("n1")).expect("json");
    node["spec"]["drain"] = json!({"deadline": "999999h"});
    let errors = rejected(Kind::Node, node, true);
    assert_eq!(fields_of(&errors), ["spec.drain.deadline"], "{errors:#?}");
}

#[test]
fn periodic_and_parameterized_jobs_are_refused_until_they_run() {
    let mut job = minimal_job("batch");
    job["spec"]["periodic"] = json!({"cron": "*/15 * * * *"});
    job["spec"]["parameterized"] = json!({"payload": "required"});
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(
        fields_of(&errors),
        ["spec.parameterized", "spec.periodic"],
        "{errors:#?}"
    );
    for error in &errors {
        assert!(error.message.contains("is not supported yet"), "{error:?}");
    }
}

#[test]
fn constraint_values_that_do_not_parse_are_refused() {
    let mut job = minimal_job("service");
    job["spec"]["constraints"] = json!([
        {"attribute": "${attr.kernel.name}", "operator": "regexp", "value": "(((("},
        {"attribute": "${attr.kernel.name}", "operator": "regexp", "value": "^linux$"},
        {"attribute": "${attr.kernel.name}", "operator": "regexp", "value": "${meta.pattern}"},
        {"attribute": "${attr.os.version}", "operator": "version", "value": ">= x.y"},
        {"attribute": "${attr.os.version}", "operator": "version", "value": ">= 1.2, < 2.0"},
        {"attribute": "${attr.os.version}", "operator": "version", "value": "~> 1.4"},
        {"attribute": "${attr.os.version}", "operator": "semver", "value": "~> 1.4"},
        {"attribute": "${attr.os.version}", "operator": "semver", "value": "1.2.3-"},
        {"attribute": "${attr.os.version}", "operator": "semver", "value": "= v1.2.3-beta.1+b7"},
    ]);
    job["spec"]["affinities"] = json!([
        {"attribute": "${node.class}", "operator": "regexp", "value": "[", "weight": 50},
    ]);
    job["spec"]["groups"][0]["constraints"] = json!([
        {"attribute": "${attr.driver.version}", "operator": "version", "value": "1..2"},
    ]);
    job["spec"]["groups"][0]["tasks"][0]["resources"] = json!({"devices": [{
        "name": "nvidia/gpu",
        "constraints": [{"attribute": "${device.model}", "operator": "regexp", "value": "a)"}]
    }]});
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(
        fields_of(&errors),
        [
            "spec.affinities[0].value",
            "spec.constraints[0].value",
            "spec.constraints[3].value",
            "spec.constraints[6].value",
            "spec.constraints[7].value",
            "spec.groups[0].constraints[0].value",
            "spec.groups[0].tasks[0].resources.devices[0].constraints[0].value",
        ],
        "{errors:#?}"
    );
    for error in &errors {
        assert!(!error.message.contains('\n'), "{error:?}");
        assert!(!error.message.starts_with(char::is_uppercase), "{error:?}");
    }
}

#[test]
fn node_http_addr_must_be_host_and_port() {
    let mut node = serde_json::to_value(mock::node("n1")).expect("json");
    for good in [
        "10.0.0.5:4646",
        "[::1]:4647",
        "[fe80::1]:1",
        "node-1.example.com:65535",
        "localhost:4646",
    ] {
        node["spec"]["httpAddr"] = json!(good);
        admitted(Kind::Node, node.clone());
    }
    node["spec"]["httpAddr"] = json!("127.0.0.1:5190/admin/secret?x=");
    let errors = rejected(Kind::Node, node, true);
    assert_eq!(fields_of(&errors), ["spec.httpAddr"], "{errors:#?}");
    assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
}

#[test]
fn network_blocks_are_refused_where_nothing_would_honour_them() {
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["network"] = json!({
        "mode": "host",
        "ports": [
            {"label": "http"},
            {"label": "http"},
            {"label": "bad label"},
            {"label": "db", "value": 5432},
            {"label": "web", "to": 8080},
            {"label": "a", "static": 80},
            {"label": "b", "static": 80},
            {"label": "c", "static": 80, "hostNetwork": "public"},
            {"label": "d", "hostNetwork": "Not_A_Label"},
        ]
    });
    let errors = rejected(Kind::Job, job, true);
    let base = "spec.groups[0].network";
    assert_eq!(
        fields_of(&errors),
        [
            format!("{base}.ports[1].label"),
            format!("{base}.ports[2].label"),
            format!("{base}.ports[3].value"),
            format!("{base}.ports[4].to"),
            format!("{base}.ports[6].static"),
            format!("{base}.ports[8].hostNetwork"),
        ],
        "{errors:#?}"
    );
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["network"] = json!({
        "ports": [{"label": "http"}, {"label": "admin-ui", "static": 8080}]
    });
    let host = admitted(Kind::Job, job);
    assert_eq!(host["spec"]["groups"][0]["network"]["mode"], "host");

    // Bridge and none networks: bridge ports map with `to`, a none network has no ports;
    // raw_exec tasks, which run on the host's network, are refused at their driver.
    let mut job = minimal_job("service");
    job["spec"]["groups"][0]["network"] = json!({"mode": "none", "ports": [{"label": "http"}]});
    let errors = rejected(Kind::Job, job, true);
    assert_eq!(fields_of(&errors), [format!("{base}.ports")], "{errors:#?}");
    for (mode, ports) in [
        ("bridge", json!([{"label": "http", "to": 8080}])),
        ("none", json!([])),
    ] {
        let mut job = minimal_job("service");
        job["spec"]["groups"][0]["network"] = json!({"mode": mode, "ports": ports});
        job["spec"]["groups"][0]["tasks"][0]["driver"] = json!("raw_exec");
        job["spec"]["groups"][0]["tasks"][0]["config"] = json!({"command": "/bin/true"});
        let errors = rejected(Kind::Job, job.clone(), true);
        assert_eq!(
            fields_of(&errors),
            ["spec.groups[0].tasks[0].driver"],
            "{errors:#?}"
        );
        let message = &errors[0].message;
        assert!(
            message.contains("raw_exec") && message.contains(mode),
            "{message}"
        );
        job["spec"]["groups"][0]["tasks"][0]["driver"] = json!("oci");
        job["spec"]["groups"][0]["tasks"][0]["config"] = json!({"image": "busybox"});
        let object = admitted(Kind::Job, job);
        assert_eq!(object["spec"]["groups"][0]["network"]["mode"], mode);
        if mode == "bridge" {
            assert_eq!(
                object["spec"]["groups"][0]["network"]["ports"][0]["to"],
                8080
            );
        }
    }
}

#[test]
fn node_port_settings_are_checked() {
    let mut node = serde_json::to_value(mock::node("n1")).expect("json");
    node["status"]["reserved"]["reservedPorts"] = json!("22,9000-8000");
    node["status"]["resources"]["minDynamicPort"] = json!(30000);
    node["status"]["resources"]["maxDynamicPort"] = json!(20000);
    node["status"]["resources"]["networks"][0]["reservedPorts"] = json!("http");
    node["status"]["resources"]["networks"][0]["hostNetwork"] = json!("Public");
    node["status"]["resources"]["networks"][0]["ip"] = json!("10.0.0.300");
    let errors = rejected(Kind::Node, node, true);
    assert_eq!(
        fields_of(&errors),
        [
            "status.reserved.reservedPorts",
            "status.resources.maxDynamicPort",
            "status.resources.networks[0].hostNetwork",
            "status.resources.networks[0].ip",
            "status.resources.networks[0].reservedPorts",
        ],
        "{errors:#?}"
    );
}
