use caravan_schemas::NameMap;
use std::sync::Arc;

use caravan_schemas::allocation::{
    ClientStatus, DesiredStatus, DesiredTransition, TaskLifecycleState, TaskState,
};
use caravan_schemas::job::{JobType, MigrateStrategy};
use caravan_schemas::node::DrainStrategy;
use caravan_schemas::{Allocation, Job, Node, mock};

use super::decide::{DrainClock, decide, is_healthy};
use crate::scheduler::time::{format_rfc3339, parse_rfc3339};

const NOW: i64 = 1_800_000_000;

fn service(name: &str, count: u32, max_parallel: u32) -> Job {
    let mut job = mock::job(name);
    job.spec.groups[0].count = Some(count);
    job.spec.groups[0].migrate = Some(MigrateStrategy {
        max_parallel: Some(max_parallel),
        min_healthy_time: Some("10s".into()),
        ..MigrateStrategy::default()
    });
    job
}

fn draining(name: &str, strategy: DrainStrategy) -> Arc<Node> {
    let mut node = mock::node(name);
    node.spec.drain = Some(strategy);
    Arc::new(node)
}

fn started(deadline: &str) -> DrainStrategy {
    DrainStrategy {
        deadline: Some(deadline.into()),
        started_at: Some(format_rfc3339(NOW - 60)),
        ..DrainStrategy::default()
    }
}

/// A running allocation whose task started `up_for` seconds before `NOW`.
fn running(name: &str, job: &Job, node: &str, up_for: i64) -> Allocation {
    let mut alloc = mock::allocation(name, job, &mock::node(node));
    let status = alloc.status.get_or_insert_default();
    status.client_status = ClientStatus::Running;
    status.task_states = NameMap::from([(
        "web".to_string(),
        TaskState {
            state: TaskLifecycleState::Running,
            started_at: Some(format_rfc3339(NOW - up_for)),
            ..TaskState::default()
        },
    )]);
    alloc
}

fn marked(mut alloc: Allocation) -> Allocation {
    alloc.spec.desired_transition = Some(DesiredTransition {
        migrate: Some(true),
    });
    alloc
}

fn names(allocs: &[Arc<Allocation>]) -> Vec<String> {
    let mut names: Vec<String> = allocs
        .iter()
        .map(|a| a.metadata.name().to_string())
        .collect();
    names.sort();
    names
}

fn run(nodes: &[Arc<Node>], allocs: Vec<Allocation>, jobs: &[Job]) -> super::Decisions {
    let allocs: Vec<Arc<Allocation>> = allocs.into_iter().map(Arc::new).collect();
    let jobs: Vec<Arc<Job>> = jobs.iter().cloned().map(Arc::new).collect();
    let lookup = |ns: &str, name: &str| {
        jobs.iter()
            .find(|j| j.metadata.name.as_deref() == Some(name) && j.metadata.namespace() == ns)
            .cloned()
    };
    decide(nodes, &allocs, &lookup, NOW)
}

#[test]
fn nothing_to_do_without_a_draining_node() {
    let job = service("web", 2, 1);
    let nodes = [Arc::new(mock::node("n1"))];
    let d = run(&nodes, vec![running("a0", &job, "n1", 60)], &[job]);
    assert_eq!(d, super::Decisions::default());
}

#[test]
fn a_group_moves_at_most_max_parallel_at_a_time() {
    let job = service("web", 4, 2);
    let nodes = [draining("n1", started("1h")), Arc::new(mock::node("n2"))];
    let allocs: Vec<_> = (0..4)
        .map(|i| running(&format!("a{i}"), &job, "n1", 60))
        .collect();
    let d = run(&nodes, allocs.clone(), std::slice::from_ref(&job));
    assert_eq!(names(&d.migrate), ["a0", "a1"]);
    assert!(d.complete.is_empty());

    // While the two marked ones have no healthy replacement, nothing more moves.
    let mut next: Vec<_> = allocs.clone();
    next[0] = marked(next[0].clone());
    next[1] = marked(next[1].clone());
    let d = run(&nodes, next.clone(), std::slice::from_ref(&job));
    assert!(d.migrate.is_empty(), "{:?}", names(&d.migrate));

    // One replacement is up but not yet for minHealthyTime: still nothing.
    next.push(running("r0", &job, "n2", 3));
    let d = run(&nodes, next.clone(), std::slice::from_ref(&job));
    assert!(d.migrate.is_empty(), "{:?}", names(&d.migrate));

    // Healthy now: one more may go.
    let last = next.len() - 1;
    next[last] = running("r0", &job, "n2", 30);
    let d = run(&nodes, next, std::slice::from_ref(&job));
    assert_eq!(names(&d.migrate), ["a2"]);
}

#[test]
fn unhealthy_allocations_elsewhere_hold_the_drain() {
    let job = service("web", 2, 1);
    let nodes = [draining("n1", started("1h")), Arc::new(mock::node("n2"))];
    let mut failing = running("b0", &job, "n2", 60);
    failing.status.get_or_insert_default().client_status = ClientStatus::Pending;
    let allocs = vec![running("a0", &job, "n1", 60), failing];
    let d = run(&nodes, allocs, &[job]);
    assert!(d.migrate.is_empty());
}

#[test]
fn reported_health_wins_over_task_uptime() {
    let job = service("web", 1, 1);
    let mut alloc = running("a0", &job, "n1", 1);
    alloc.status.get_or_insert_default().deployment_status =
        Some(caravan_schemas::allocation::AllocDeploymentStatus {
            healthy: Some(true),
            ..Default::default()
        });
    assert!(is_healthy(&alloc, &job.spec.groups[0], NOW));
    assert!(!is_healthy(
        &running("a1", &job, "n1", 1),
        &job.spec.groups[0],
        NOW
    ));
}

#[test]
fn batch_allocations_may_finish_until_the_deadline() {
    let job = mock::batch_job("report");
    let mut nodes = [draining("n1", started("1h"))];
    let alloc = running("b0", &job, "n1", 60);
    let d = run(&nodes, vec![alloc.clone()], std::slice::from_ref(&job));
    assert!(d.migrate.is_empty());
    assert!(d.complete.is_empty());

    nodes[0] = draining("n1", started("30s"));
    let d = run(&nodes, vec![alloc], &[job]);
    assert_eq!(names(&d.migrate), ["b0"]);
}

#[test]
fn force_marks_everything_at_once() {
    let job = service("web", 3, 1);
    let nodes = [draining(
        "n1",
        DrainStrategy {
            force: Some(true),
            started_at: Some(format_rfc3339(NOW)),
            ..DrainStrategy::default()
        },
    )];
    let allocs = (0..3)
        .map(|i| running(&format!("a{i}"), &job, "n1", 60))
        .collect();
    let d = run(&nodes, allocs, &[job]);
    assert_eq!(names(&d.migrate), ["a0", "a1", "a2"]);
}

fn system_job() -> Job {
    let mut job = mock::job("agent");
    job.spec.r#type = Some(JobType::System);
    job
}

#[test]
fn system_allocations_move_last() {
    let job = service("web", 1, 1);
    let sys = system_job();
    let nodes = [draining("n1", started("1h"))];
    let jobs = [job.clone(), sys.clone()];
    let d = run(
        &nodes,
        vec![running("a0", &job, "n1", 60), running("s0", &sys, "n1", 60)],
        &jobs,
    );
    assert_eq!(names(&d.migrate), ["a0"]);

    // The service allocation has stopped on the client: now the system one goes.
    let mut done = running("a0", &job, "n1", 60);
    done.spec.desired_status = Some(DesiredStatus::Stop);
    done.status.get_or_insert_default().client_status = ClientStatus::Complete;
    let d = run(
        &nodes,
        vec![done.clone(), running("s0", &sys, "n1", 60)],
        &jobs,
    );
    assert_eq!(names(&d.migrate), ["s0"]);
    assert!(d.complete.is_empty());

    let mut sys_done = running("s0", &sys, "n1", 60);
    sys_done.status.get_or_insert_default().client_status = ClientStatus::Complete;
    let d = run(&nodes, vec![done, sys_done], &jobs);
    assert_eq!(d.complete, ["n1"]);
}

#[test]
fn ignore_system_jobs_leaves_them_and_completes() {
    let sys = system_job();
    let nodes = [draining(
        "n1",
        DrainStrategy {
            ignore_system_jobs: Some(true),
            ..started("1h")
        },
    )];
    let d = run(&nodes, vec![running("s0", &sys, "n1", 60)], &[sys]);
    assert!(d.migrate.is_empty());
    assert_eq!(d.complete, ["n1"]);
}

#[test]
fn a_node_is_done_only_when_its_allocations_ended_on_the_client() {
    let job = service("web", 1, 1);
    let nodes = [draining("n1", started("1h"))];
    let mut stopping = marked(running("a0", &job, "n1", 60));
    stopping.spec.desired_status = Some(DesiredStatus::Stop);
    let d = run(&nodes, vec![stopping.clone()], std::slice::from_ref(&job));
    assert!(d.complete.is_empty() && d.migrate.is_empty());
    stopping.status.get_or_insert_default().client_status = ClientStatus::Complete;
    let d = run(&nodes, vec![stopping], &[job]);
    assert_eq!(d.complete, ["n1"]);
}

#[test]
fn a_drain_without_start_is_stamped_and_deadlines_count_from_the_start() {
    let nodes = [draining("n1", DrainStrategy::default())];
    let d = run(&nodes, Vec::new(), &[]);
    assert_eq!(d.stamp_start, ["n1"]);

    let clock = DrainClock::of(&started("2m"), NOW);
    assert_eq!(clock.started, NOW - 60);
    assert_eq!(clock.deadline, Some(NOW + 60));
    assert!(!clock.reached(NOW) && clock.reached(NOW + 60));
    let none = DrainClock::of(&started("0s"), NOW);
    assert_eq!(none.deadline, None);
    let default = DrainClock::of(&DrainStrategy::default(), NOW);
    assert_eq!(default.deadline, Some(NOW + 3600));
    assert_eq!(parse_rfc3339(&format_rfc3339(NOW)), Some(NOW));
}
