//! Monitor lines from sequences of evaluation and allocation states.

use std::collections::BTreeMap;

use caravan_schemas::allocation::AllocationStatus;
use caravan_schemas::{AllocMetrics, AllocationSpec, EvaluationSpec, EvaluationStatus, ObjectMeta};

use super::*;

fn meta(name: &str, rv: u64) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        resource_version: Some(rv.to_string()),
        ..ObjectMeta::default()
    }
}

fn eval(name: &str, rv: u64, state: EvaluationState) -> Evaluation {
    Evaluation {
        metadata: meta(name, rv),
        spec: EvaluationSpec {
            job_name: "web".into(),
            job_version: 1,
            triggered_by: TriggeredBy::JobRegister,
            ..EvaluationSpec::default()
        },
        status: Some(EvaluationStatus {
            status: state,
            ..EvaluationStatus::default()
        }),
        ..Evaluation::default()
    }
}

fn alloc(name: &str, rv: u64, eval: &str, client: ClientStatus) -> Allocation {
    Allocation {
        metadata: meta(name, rv),
        spec: AllocationSpec {
            job_name: "web".into(),
            group: "frontend".into(),
            node_name: "n1".into(),
            eval_name: Some(eval.into()),
            ..AllocationSpec::default()
        },
        status: Some(AllocationStatus {
            client_status: client,
            ..AllocationStatus::default()
        }),
        ..Allocation::default()
    }
}

fn target() -> Target {
    Target {
        job: "web".into(),
        after: 10,
        min_version: 1,
        triggers: vec![TriggeredBy::JobRegister],
    }
}

fn texts(lines: &[Line]) -> Vec<String> {
    lines.iter().map(|l| l.render("T")).collect()
}

#[test]
fn a_complete_evaluation_prints_nomads_progress() {
    let mut m = Monitor::new(target(), ["web-frontend-0-old".to_owned()].into());
    let mut out = Vec::new();
    // An older evaluation of the job, and one of an older version, are not followed.
    out.extend(m.observe_eval(&eval("e-old", 5, EvaluationState::Complete)));
    let mut stale = eval("e-stale", 12, EvaluationState::Pending);
    stale.spec.job_version = 0;
    out.extend(m.observe_eval(&stale));
    assert!(out.is_empty());
    // An allocation seen before its evaluation is replayed once the evaluation is found.
    out.extend(m.observe_alloc(&alloc("web-frontend-1-aa", 13, "e1", ClientStatus::Pending)));
    out.extend(m.observe_eval(&eval("e1", 11, EvaluationState::Pending)));
    out.extend(m.observe_alloc(&alloc(
        "web-frontend-0-old",
        13,
        "e1",
        ClientStatus::Running,
    )));
    out.extend(m.observe_alloc(&alloc("web-frontend-1-aa", 14, "e1", ClientStatus::Running)));
    assert!(!m.done());
    out.extend(m.observe_eval(&eval("e1", 15, EvaluationState::Complete)));
    assert!(m.done());
    let (closing, outcome) = m.finish();
    out.extend(closing);
    assert_eq!(
        texts(&out),
        [
            "==> T: Monitoring evaluation \"e1\"",
            "    T: Evaluation triggered by job \"web\"",
            "    T: Allocation \"web-frontend-1-aa\" created: node \"n1\", group \"frontend\"",
            "    T: Allocation \"web-frontend-0-old\" modified: node \"n1\", group \"frontend\"",
            "    T: Allocation \"web-frontend-1-aa\" status changed: \"pending\" -> \"running\"",
            "    T: Evaluation status changed: \"pending\" -> \"complete\"",
            "==> T: Evaluation \"e1\" finished with status \"complete\"",
        ]
    );
    assert_eq!(exit_code(&outcome), 0);
}

#[test]
fn failed_placements_list_metrics_and_the_blocked_evaluation() {
    let mut m = Monitor::new(target(), Default::default());
    let mut done = eval("e1", 11, EvaluationState::Complete);
    let status = done.status.as_mut().unwrap();
    status.blocked_eval = Some("e1-blocked".into());
    status.failed_group_allocs = BTreeMap::from([(
        "frontend".into(),
        AllocMetrics {
            nodes_evaluated: 2,
            nodes_exhausted: 2,
            dimension_exhausted: BTreeMap::from([("memory".into(), 2)]),
            coalesced_failures: 1,
            ..AllocMetrics::default()
        },
    )]);
    let mut out = m.observe_eval(&done);
    let (closing, outcome) = m.finish();
    out.extend(closing);
    assert_eq!(
        texts(&out),
        [
            "==> T: Monitoring evaluation \"e1\"",
            "    T: Evaluation triggered by job \"web\"",
            "    T: Evaluation status changed: \"pending\" -> \"complete\"",
            "==> T: Evaluation \"e1\" finished with status \"complete\" but failed to place all allocations:",
            "    T: Task Group \"frontend\" (failed to place 2 allocations):",
            "      * Resources exhausted on 2 nodes",
            "      * Dimension \"memory\" exhausted on 2 nodes",
            "    T: Evaluation \"e1-blocked\" waiting for additional capacity to place remainder",
        ]
    );
    assert!(outcome.failed_placements);
    assert_eq!(exit_code(&outcome), 2);
}

#[test]
fn failed_and_canceled_evaluations_say_why() {
    let mut m = Monitor::new(target(), Default::default());
    let mut failed = eval("e1", 11, EvaluationState::Failed);
    failed.status.as_mut().unwrap().status_description =
        Some("maximum attempts reached (5)".into());
    m.observe_eval(&failed);
    let (closing, outcome) = m.finish();
    assert_eq!(
        texts(&closing),
        [
            "    T: Evaluation status changed: \"pending\" -> \"failed\"",
            "    T: Evaluation \"e1\" failed: maximum attempts reached (5)",
            "==> T: Evaluation \"e1\" finished with status \"failed\"",
        ]
    );
    assert_eq!(exit_code(&outcome), 2);
    let canceled = Outcome {
        status: EvaluationState::Canceled,
        failed_placements: false,
    };
    assert_eq!(exit_code(&canceled), 0);
}

#[test]
fn deregistrations_match_only_their_triggers() {
    let mut t = target();
    t.triggers = vec![TriggeredBy::JobDeregister];
    let mut stop = eval("e2", 20, EvaluationState::Pending);
    assert!(!t.matches(&stop));
    stop.spec.triggered_by = TriggeredBy::JobDeregister;
    assert!(t.matches(&stop));
    stop.spec.job_name = "api".into();
    assert!(!t.matches(&stop));
}
