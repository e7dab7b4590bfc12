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
    assert_eq!(task["config"]["command"], "/bin/sh");
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
    assert_eq!(
        spec["update"],
        json!({"maxParallel": 1, "healthCheck": "checks", "minHealthyTime": "10s",
               "healthyDeadline": "5m", "progressDeadline": "10m", "autoRevert": false,
               "autoPromote": false, "canary": 0, "stagger": "30s"})
    );
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
    assert_eq!(group["update"]["maxParallel"], 1);
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
    assert_eq!(system["spec"]["groups"][0]["update"]["maxParallel"], 1);
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
    assert_eq!(group["update"]["stagger"], "30s");
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
