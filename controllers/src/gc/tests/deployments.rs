//! The deployment rules, one per test.

use caravan_schemas::allocation::{ClientStatus, DesiredStatus};
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::evaluation::EvaluationState;
use caravan_schemas::job::JobState;
use caravan_schemas::mock;

use super::*;

const SUCCESSFUL: DeploymentState = DeploymentState::Successful;

/// The running service job `web` (uid `web-1`).
fn web() -> Job {
    let mut job = job_in("web", mock::job("web"), JobState::Running, 48 * HOUR);
    job.metadata.uid = Some("web-1".into());
    job
}

/// `web` with its newest deployment (v3, successful two hours ago) and `older`.
fn web_with(older: Deployment) -> World {
    let job = web();
    World::default()
        .job(&job)
        .deployment(deployment(&job, 3, SUCCESSFUL, 2 * HOUR))
        .deployment(older)
}

/// A running allocation of `job` placed under `deployment`.
fn alloc_under(name: &str, job: &Job, deployment: &str, client: ClientStatus) -> Allocation {
    let e1 = eval("e1", job, EvaluationState::Complete, 3 * HOUR);
    let mut alloc = alloc(name, &e1, job, client, DesiredStatus::Run, 3 * HOUR);
    alloc.spec.deployment_name = Some(deployment.into());
    alloc
}

#[test]
fn a_terminal_deployment_past_the_threshold_goes() {
    for state in [
        DeploymentState::Successful,
        DeploymentState::Failed,
        DeploymentState::Cancelled,
    ] {
        let world = web_with(deployment(&web(), 1, state, 2 * HOUR));
        assert_eq!(
            names(&world.decide().deployments),
            ["default/web-v1"],
            "{state:?}"
        );
    }
}

#[test]
fn the_default_threshold_is_an_hour() {
    let past = web_with(deployment(&web(), 1, SUCCESSFUL, HOUR + 60));
    assert_eq!(names(&past.decide().deployments), ["default/web-v1"]);
    let within = web_with(deployment(&web(), 1, SUCCESSFUL, HOUR - 60));
    assert!(within.decide().deployments.is_empty());
}

#[test]
fn an_active_deployment_is_never_collected() {
    for state in [
        DeploymentState::Running,
        DeploymentState::Paused,
        DeploymentState::Pending,
        DeploymentState::Blocked,
        DeploymentState::Unblocking,
    ] {
        let world = web_with(deployment(&web(), 1, state, 48 * HOUR));
        let garbage = world.decide_with(&GcThresholds::ZERO);
        assert!(garbage.deployments.is_empty(), "{state:?}: {garbage:?}");
    }
}

#[test]
fn the_newest_deployment_of_a_job_that_exists_stays() {
    let job = web();
    // The newest is the highest version, whatever the order or the age.
    let world = World::default()
        .job(&job)
        .deployment(deployment(&job, 3, SUCCESSFUL, 48 * HOUR))
        .deployment(deployment(&job, 2, DeploymentState::Failed, 48 * HOUR))
        .deployment(deployment(&job, 10, DeploymentState::Failed, 48 * HOUR));
    let garbage = world.decide_with(&GcThresholds::ZERO);
    assert_eq!(
        names(&garbage.deployments),
        ["default/web-v2", "default/web-v3"]
    );
    // A stopped job still shows its latest deployment.
    let mut stopped = job.clone();
    stopped.spec.stop = true;
    let world = World::default().job(&stopped).deployment(deployment(
        &job,
        3,
        DeploymentState::Cancelled,
        48 * HOUR,
    ));
    assert!(
        world
            .decide_with(&GcThresholds::ZERO)
            .deployments
            .is_empty()
    );
}

#[test]
fn a_deployment_an_allocation_still_names_stays() {
    let job = web();
    let world = web_with(deployment(&job, 1, SUCCESSFUL, 48 * HOUR)).alloc(alloc_under(
        "a1",
        &job,
        "web-v1",
        ClientStatus::Running,
    ));
    assert!(
        world
            .decide_with(&GcThresholds::ZERO)
            .deployments
            .is_empty()
    );
    // A terminal allocation does not keep it.
    let world = web_with(deployment(&job, 1, SUCCESSFUL, 48 * HOUR)).alloc(alloc_under(
        "a1",
        &job,
        "web-v1",
        ClientStatus::Complete,
    ));
    assert_eq!(names(&world.decide().deployments), ["default/web-v1"]);
}

#[test]
fn a_deployment_that_changed_recently_stays() {
    let world = web_with(deployment(&web(), 1, SUCCESSFUL, 30 * 60));
    assert!(world.decide().deployments.is_empty());
    // With no condition, its age counts from its creation.
    let mut bare = deployment(&web(), 1, SUCCESSFUL, 0);
    bare.status.as_mut().unwrap().conditions.clear();
    bare.metadata.creation_timestamp = Some(ago(30 * 60));
    assert!(web_with(bare.clone()).decide().deployments.is_empty());
    bare.metadata.creation_timestamp = Some(ago(2 * HOUR));
    assert_eq!(
        names(&web_with(bare).decide().deployments),
        ["default/web-v1"]
    );
    // With no time at all, only a forced pass takes it.
    let mut timeless = deployment(&web(), 1, SUCCESSFUL, 0);
    timeless.status.as_mut().unwrap().conditions.clear();
    timeless.metadata.creation_timestamp = None;
    let world = web_with(timeless);
    assert!(world.decide().deployments.is_empty());
    assert_eq!(
        names(&world.decide_with(&GcThresholds::ZERO).deployments),
        ["default/web-v1"]
    );
}

#[test]
fn the_deployments_of_a_deleted_job_go_at_the_threshold() {
    let job = web();
    let world = World::default()
        .deployment(deployment(&job, 3, SUCCESSFUL, 2 * HOUR))
        .deployment(deployment(&job, 2, DeploymentState::Cancelled, 2 * HOUR))
        .deployment(deployment(&job, 4, DeploymentState::Cancelled, 30 * 60));
    assert_eq!(
        names(&world.decide().deployments),
        ["default/web-v2", "default/web-v3"]
    );
    // A job of the same name created again does not keep the old one's newest deployment.
    let mut again = job_in("web", mock::job("web"), JobState::Running, HOUR);
    again.metadata.uid = Some("web-2".into());
    let world = World::default()
        .job(&again)
        .deployment(deployment(&job, 3, SUCCESSFUL, 2 * HOUR));
    assert_eq!(names(&world.decide().deployments), ["default/web-v3"]);
    // Nor does a job of the same name in another namespace.
    let mut elsewhere = web();
    elsewhere.metadata.namespace = Some("prod".into());
    let world =
        World::default()
            .job(&elsewhere)
            .deployment(deployment(&job, 3, SUCCESSFUL, 2 * HOUR));
    assert_eq!(names(&world.decide().deployments), ["default/web-v3"]);
}
