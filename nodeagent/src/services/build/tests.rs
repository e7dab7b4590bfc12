use serde_json::json;

use super::*;

fn alloc() -> Allocation {
    serde_json::from_value(json!({
        "apiVersion": "caravan.dev/v1", "kind": "Allocation",
        "metadata": {"name": "web-front-3-0a1b2c3d", "namespace": "prod"},
        "spec": {"jobName": "web", "group": "front", "nodeName": "n1",
                 "allocatedResources": {"shared": {"ports": [
                     {"label": "http", "value": 20001, "hostIp": "10.0.0.7"},
                     {"label": "admin", "value": 20002}
                 ]}}}
    }))
    .unwrap()
}

fn node() -> NodeVars {
    NodeVars {
        id: "id".into(),
        name: "n1".into(),
        datacenter: "dc2".into(),
        attributes: BTreeMap::from([(
            "unique.network.ip-address".to_string(),
            "10.0.0.5".to_string(),
        )]),
        meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        ..Default::default()
    }
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("NOMAD_ALLOC_INDEX".to_string(), "3".to_string()),
        ("NOMAD_PORT_http".to_string(), "20001".to_string()),
    ])
}

fn services(value: serde_json::Value) -> Vec<Service> {
    serde_json::from_value(value).unwrap()
}

fn build(task: Option<&str>, list: &[Service]) -> Vec<Wanted> {
    let (alloc, node, env) = (alloc(), node(), env());
    let owner = Owner {
        alloc: &alloc,
        node: &node,
        task,
        run: task.map(|_| "2027-01-01T00:00:00.000Z"),
        env: &env,
    };
    let context = Arc::new(ScriptContext {
        env: BTreeMap::new(),
        dir: "/data/alloc/u/srv".into(),
        user: None,
    });
    wanted(&owner, list, &mut |t| (t == "srv").then(|| context.clone()))
}

#[test]
fn names_tags_and_meta_are_interpolated_and_the_port_is_the_allocated_one() {
    let list = services(json!([{
        "name": "web-${NOMAD_ALLOC_INDEX}",
        "port": "http",
        "tags": ["rack-${meta.rack}", "plain", "${nope}"],
        "meta": {"dc": "${node.datacenter}"}
    }]));
    let w = build(Some("srv"), &list);
    assert_eq!(w.len(), 1);
    let reg = &w[0].registration;
    assert_eq!(reg.api_version, "caravan.dev/v1");
    assert_eq!(reg.kind, "ServiceRegistration");
    assert_eq!(reg.metadata.namespace.as_deref(), Some("prod"));
    assert_eq!(
        reg.metadata.name(),
        name_for("web-front-3-0a1b2c3d", Some("srv"), "web-3", 0)
    );
    assert_eq!(
        reg.spec,
        ServiceRegistrationSpec {
            service_name: "web-3".into(),
            job_name: "web".into(),
            group_name: "front".into(),
            task_name: Some("srv".into()),
            alloc_name: "web-front-3-0a1b2c3d".into(),
            node_name: "n1".into(),
            datacenter: Some("dc2".into()),
            address: "10.0.0.7".into(),
            port: 20001,
            tags: vec!["rack-r1".into(), "plain".into(), "${nope}".into()],
            meta: BTreeMap::from([("dc".to_string(), "dc2".to_string())]),
        }
    );
    assert_eq!(reg.status, None);
    assert_eq!(w[0].task.as_deref(), Some("srv"));
    assert_eq!(w[0].run.as_deref(), Some("2027-01-01T00:00:00.000Z"));
}

#[test]
fn numbers_and_no_port_use_the_nodes_address_and_unknown_labels_are_skipped() {
    let list = services(json!([
        {"name": "num", "port": 8080},
        {"name": "none"},
        {"name": "bare", "port": "admin"},
        {"name": "lost", "port": "nope"}
    ]));
    let w = build(None, &list);
    let at: Vec<(&str, &str, u32)> = w
        .iter()
        .map(|w| {
            let s = &w.registration.spec;
            (s.service_name.as_str(), s.address.as_str(), s.port)
        })
        .collect();
    assert_eq!(
        at,
        [
            ("num", "10.0.0.5", 8080),
            ("none", "10.0.0.5", 0),
            ("bare", "10.0.0.5", 20002)
        ]
    );
    // A group service: no task, and its position is part of its name.
    assert_eq!(w[0].registration.spec.task_name, None);
    assert_eq!(
        w[1].name(),
        name_for("web-front-3-0a1b2c3d", None, "none", 1)
    );
    assert_eq!(w[0].run, None);
}

#[test]
fn checks_take_their_defaults_ports_and_contexts() {
    let list = services(json!([{
        "name": "web",
        "port": "http",
        "checks": [
            {"type": "http", "interval": "5s", "timeout": "2s", "path": "/health/${NOMAD_ALLOC_INDEX}",
             "headers": {"X-A": ["1", "${meta.rack}"]}, "expectedStatus": 204},
            {"type": "tcp", "port": "admin", "interval": "10s", "timeout": "1s",
             "initialStatus": "warning", "successBeforePassing": 2, "failuresBeforeCritical": 3,
             "checkRestart": {"limit": 3, "grace": "30s", "ignoreWarnings": true}},
            {"name": "script", "type": "script", "task": "srv", "command": "/bin/check",
             "args": ["${NOMAD_PORT_http}"], "interval": "10s", "timeout": "3s",
             "checkRestart": {"limit": 0}},
            {"name": "elsewhere", "type": "script", "task": "other", "command": "x",
             "interval": "10s", "timeout": "3s", "checkRestart": {"limit": 1}}
        ]
    }]));
    let w = build(None, &list);
    let checks = &w[0].checks;
    assert_eq!(checks.len(), 4);
    assert_eq!(checks[0].name, "service: \"web\" check 0");
    assert_eq!(
        checks[0].kind,
        CheckKind::Http {
            address: "10.0.0.7".into(),
            port: 20001,
            path: "/health/3".into(),
            method: "GET".into(),
            headers: vec![("X-A".into(), "1".into()), ("X-A".into(), "r1".into())],
            expected_status: Some(204),
        }
    );
    assert_eq!(checks[0].interval, Duration::from_secs(5));
    assert_eq!(checks[0].timeout, Duration::from_secs(2));
    assert_eq!(checks[0].initial, CheckStatus::Critical);
    assert_eq!(checks[0].restart, None);
    assert_eq!(
        checks[1].kind,
        CheckKind::Tcp {
            address: "10.0.0.5".into(),
            port: 20002
        }
    );
    assert_eq!(checks[1].initial, CheckStatus::Warning);
    assert_eq!(checks[1].success_before_passing, 2);
    assert_eq!(checks[1].failures_before_critical, 3);
    assert_eq!(
        checks[1].restart,
        Some(RestartRule {
            limit: 3,
            grace: Duration::from_secs(30),
            ignore_warnings: true
        })
    );
    let CheckKind::Script {
        command,
        args,
        context,
    } = &checks[2].kind
    else {
        panic!("a script check")
    };
    assert_eq!(command, "/bin/check");
    assert_eq!(args, &["20001"]);
    assert_eq!(
        context.as_ref().map(|c| c.dir.clone()),
        Some("/data/alloc/u/srv".into())
    );
    assert_eq!(checks[2].restart, None, "a limit of 0 never restarts");
    assert!(matches!(
        &checks[3].kind,
        CheckKind::Script { context: None, .. }
    ));
    assert_eq!(checks[3].restart.map(|r| r.grace), Some(DEFAULT_GRACE));
}

#[test]
fn a_tasks_script_checks_run_in_that_task() {
    let list = services(json!([{
        "name": "web",
        "checks": [{"type": "script", "command": "true", "interval": "1s", "timeout": "1s"}]
    }]));
    let w = build(Some("srv"), &list);
    assert!(matches!(
        &w[0].checks[0].kind,
        CheckKind::Script {
            context: Some(_),
            ..
        }
    ));
    assert_eq!(w[0].checks[0].kind.type_name(), "script");
}

#[test]
fn script_contexts_read_the_driver_config() {
    let spec: TaskSpec = serde_json::from_value(json!({
        "allocId": "u", "allocName": "a", "namespace": "default", "jobName": "j",
        "groupName": "g", "taskName": "t", "driver": "raw_exec",
        "config": {"command": "x", "env": {"EXTRA": "1"}, "user": "nobody"},
        "env": {"A": "b"}, "user": "root",
        "allocDir": "/a", "taskDir": "/a/t", "logDir": "/a/alloc/logs",
        "resources": {"cpuMhz": 100, "memoryMb": 64, "pidsLimit": 0},
        "logs": {"maxFiles": 1, "maxFileSizeMb": 1},
        "killSignal": "SIGINT", "killTimeout": "5s"
    }))
    .unwrap();
    let context = ScriptContext::of(&spec);
    assert_eq!(context.dir, PathBuf::from("/a/t"));
    assert_eq!(context.user.as_deref(), Some("nobody"));
    assert_eq!(context.env["A"], "b");
    assert_eq!(context.env["EXTRA"], "1");
}

#[test]
fn names_that_are_not_dns_labels_once_interpolated_are_skipped() {
    let list = services(json!([
        {"name": "web-${NOMAD_PORT_http}"},
        {"name": "${node.datacenter}_x"},
        {"name": "${NOPE}"}
    ]));
    let names: Vec<String> = build(None, &list)
        .iter()
        .map(|w| w.registration.spec.service_name.clone())
        .collect();
    assert_eq!(names, ["web-20001"]);
    assert!(is_dns_label("a"));
    assert!(is_dns_label(&"a".repeat(63)));
    assert!(!is_dns_label(&"a".repeat(64)));
    for bad in ["", "-a", "a-", "A", "a.b", "a_b"] {
        assert!(!is_dns_label(bad), "{bad:?}");
    }
}
