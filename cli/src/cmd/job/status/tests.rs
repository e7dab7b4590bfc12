//! `job status` layouts from fixed objects.

use std::collections::BTreeMap;

use caravan_schemas::allocation::{AllocationStatus, ClientStatus};
use caravan_schemas::job::{JobState, JobStatus};
use caravan_schemas::{AllocMetrics, EvaluationStatus, mock};

use super::*;

fn now() -> SystemTime {
    humantime::parse_rfc3339("2026-01-02T15:10:00Z").unwrap()
}

fn job() -> Job {
    let mut job = mock::job("web");
    job.metadata.creation_timestamp = Some("2026-01-02T15:00:00Z".into());
    job.metadata.generation = Some(3);
    job.status = Some(JobStatus {
        version: 2,
        status: JobState::Running,
        summary: BTreeMap::from([(
            "web".into(),
            GroupSummary {
                running: 9,
                queued: 1,
                ..GroupSummary::default()
            },
        )]),
        ..JobStatus::default()
    });
    job
}

#[test]
fn the_summary_has_a_row_per_group() {
    let mut job = job();
    job.spec.groups.push(caravan_schemas::job::TaskGroup {
        name: "cache".into(),
        ..Default::default()
    });
    assert_eq!(
        summary_table(&job),
        "\
Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown
cache       0       0         0        0       0         0     0
web         1       0         9        0       0         0     0
"
    );
}

#[test]
fn one_job_shows_fields_summary_failures_evaluations_and_allocations() {
    let job = job();
    let node = mock::node("n1");
    let mut alloc = mock::allocation("web-web-0-1a2b3c4d", &job, &node);
    alloc.metadata.creation_timestamp = Some("2026-01-02T15:05:00Z".into());
    alloc.spec.job_version = 2;
    alloc.status = Some(AllocationStatus {
        client_status: ClientStatus::Running,
        ..AllocationStatus::default()
    });
    let mut done = mock::evaluation("web-e1", &job);
    done.metadata.resource_version = Some("7".into());
    done.metadata.creation_timestamp = Some("2026-01-02T15:05:00Z".into());
    done.status = Some(EvaluationStatus {
        status: EvaluationState::Complete,
        ..EvaluationStatus::default()
    });
    let mut blocked = mock::evaluation("web-e1-blocked", &job);
    blocked.metadata.resource_version = Some("8".into());
    blocked.spec.triggered_by = caravan_schemas::evaluation::TriggeredBy::QueuedAllocs;
    blocked.status = Some(EvaluationStatus {
        status: EvaluationState::Blocked,
        failed_group_allocs: BTreeMap::from([(
            "web".into(),
            AllocMetrics {
                nodes_evaluated: 1,
                nodes_exhausted: 1,
                ..AllocMetrics::default()
            },
        )]),
        ..EvaluationStatus::default()
    });
    let out = job_status(&job, &[done, blocked], &[alloc], None, now());
    assert_eq!(
        out,
        "\
ID            = web
Name          = web
Submit Date   = 10m ago
Type          = service
Priority      = 50
Datacenters   = dc1
Namespace     = default
Node Pool     = default
Status        = running
Version       = 2
Periodic      = false
Parameterized = false

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown
web         1       0         9        0       0         0     0

Placement Failure
Task Group \"web\":
  * Resources exhausted on 1 nodes

Latest Evaluations
ID              Priority  Triggered By   Job Version  Status    Placement Failures  Created
web-e1-blocked  50        queued-allocs  2            blocked   true                <none>
web-e1          50        job-register   2            complete  false               5m ago

Allocations
ID                  Node  Task Group  Version  Desired  Status   Created
web-web-0-1a2b3c4d  n1    web         2        run      running  5m ago
"
    );
}

#[test]
fn the_jobs_table_marks_stopped_jobs() {
    let mut stopped = job();
    stopped.metadata.name = Some("api".into());
    stopped.spec.stop = true;
    stopped.status.as_mut().unwrap().status = JobState::Dead;
    assert_eq!(
        jobs_table(&[job(), stopped], now()),
        "\
ID   Type     Priority  Status          Submit Date
web  service  50        running         10m ago
api  service  50        dead (stopped)  10m ago
"
    );
}

#[test]
fn the_latest_deployment_comes_before_the_evaluations() {
    use caravan_schemas::deployment::{DeploymentState, descriptions};

    use crate::cmd::deployment::fixtures::{deployment, group, with_groups};

    let d = with_groups(
        deployment("web", 2, DeploymentState::Running, descriptions::RUNNING),
        [("web", group(10, 4, 3, 0))],
    );
    let out = job_status(&job(), &[], &[], Some(&d), now());
    assert!(
        out.contains(
            "\
web         1       0         9        0       0         0     0

Latest Deployment
ID          = web-v2
Status      = running
Description = Deployment is running

Deployed
Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline
web         10       4       3        0          2026-01-02T15:14:05Z

Latest Evaluations
No evaluations found
"
        ),
        "{out}"
    );
    let without = job_status(&job(), &[], &[], None, now());
    assert!(!without.contains("Latest Deployment"), "{without}");
}
