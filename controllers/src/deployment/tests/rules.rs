//! The state machine's rules, as a table: a deployment's setup and what must come out.

use caravan_schemas::deployment::{DeploymentGroupState, DeploymentState, descriptions};
use caravan_schemas::job::UpdateStrategy;
use caravan_schemas::{Allocation, DeploymentSpec};

use super::{NOW, alloc, deployment, group, healthy, job, run, running, update};

/// One rule of the state machine: the deployment's setup and what must come out.
struct Case {
    name: &'static str,
    update: UpdateStrategy,
    group: DeploymentGroupState,
    paused_status: bool,
    spec: fn(&mut DeploymentSpec),
    allocs: Vec<Allocation>,
    state: DeploymentState,
    description: &'static str,
    evaluate: bool,
    revert: bool,
    stable: bool,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        update: update(0, "10m", false, false),
        group: group(2, 0, NOW + 100),
        paused_status: false,
        spec: |_| {},
        allocs: Vec::new(),
        state: DeploymentState::Running,
        description: descriptions::RUNNING,
        evaluate: false,
        revert: false,
        stable: false,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            spec: |s| s.failed = Some(true),
            state: DeploymentState::Failed,
            description: descriptions::FAILED_BY_USER,
            evaluate: true,
            ..case("an operator fails it")
        },
        Case {
            update: update(0, "10m", false, true),
            spec: |s| s.failed = Some(true),
            state: DeploymentState::Failed,
            description: descriptions::FAILED_BY_USER,
            evaluate: true,
            revert: true,
            ..case("an operator fails it with autoRevert")
        },
        Case {
            spec: |s| s.paused = Some(true),
            state: DeploymentState::Paused,
            description: descriptions::PAUSED,
            ..case("an operator pauses it")
        },
        Case {
            paused_status: true,
            state: DeploymentState::Running,
            evaluate: true,
            ..case("an operator resumes it")
        },
        Case {
            group: group(2, 0, NOW - 1),
            spec: |s| s.paused = Some(true),
            paused_status: true,
            state: DeploymentState::Paused,
            description: descriptions::PAUSED,
            ..case("a paused deployment does not fail at its deadline")
        },
        Case {
            update: update(1, "10m", false, false),
            group: group(2, 1, NOW + 100),
            allocs: vec![alloc("c", None, NOW, true)],
            description: descriptions::NEEDS_PROMOTION,
            ..case("canaries wait for a promotion")
        },
        Case {
            update: update(1, "10m", true, false),
            group: group(2, 1, NOW + 100),
            allocs: vec![alloc("c", None, NOW, true)],
            description: descriptions::AUTO_PROMOTION,
            ..case("canaries wait to be healthy for an automatic promotion")
        },
        Case {
            update: update(1, "10m", true, false),
            group: group(2, 1, NOW + 100),
            allocs: vec![alloc("c", Some(true), NOW - 5, true)],
            evaluate: true,
            ..case("healthy canaries are promoted automatically")
        },
        Case {
            update: update(1, "10m", false, false),
            group: group(2, 1, NOW + 100),
            spec: |s| s.promoted = Some(true),
            evaluate: true,
            ..case("an operator promotes")
        },
        Case {
            update: update(1, "10m", false, true),
            group: group(2, 1, NOW + 100),
            allocs: vec![alloc("c", Some(false), NOW - 5, true)],
            state: DeploymentState::Failed,
            description: descriptions::FAILED_ALLOCATIONS,
            evaluate: true,
            revert: true,
            ..case("an unhealthy canary fails it")
        },
        Case {
            update: update(0, "0", false, false),
            allocs: vec![alloc("u", Some(false), NOW - 5, false)],
            state: DeploymentState::Failed,
            description: descriptions::FAILED_ALLOCATIONS,
            evaluate: true,
            ..case("an unhealthy allocation fails it without a progress deadline")
        },
        Case {
            allocs: vec![alloc("u", Some(false), NOW - 5, false)],
            evaluate: true,
            ..case("an unhealthy allocation waits for the progress deadline")
        },
        Case {
            group: group(2, 0, NOW - 1),
            allocs: vec![alloc("a", Some(true), NOW - 700, false)],
            state: DeploymentState::Failed,
            description: descriptions::FAILED_PROGRESS_DEADLINE,
            evaluate: true,
            ..case("no progress by the deadline fails it")
        },
        Case {
            update: update(0, "10m", false, true),
            group: group(2, 0, NOW),
            ..case("the deadline is not passed at the deadline")
        },
        Case {
            update: update(1, "10m", false, false),
            group: group(2, 1, NOW - 1),
            allocs: vec![alloc("c", Some(true), NOW - 1000, true)],
            description: descriptions::NEEDS_PROMOTION,
            evaluate: true,
            ..case("healthy canaries waiting for a promotion do not fail at the deadline")
        },
        Case {
            group: group(2, 0, NOW - 1),
            allocs: vec![healthy("a"), healthy("b")],
            state: DeploymentState::Successful,
            description: descriptions::SUCCESSFUL,
            evaluate: true,
            stable: true,
            ..case("every allocation healthy succeeds, even past the deadline")
        },
        Case {
            update: update(2, "10m", false, false),
            group: group(2, 2, NOW + 100),
            allocs: vec![
                alloc("a", Some(true), NOW - 5, true),
                alloc("b", Some(true), NOW - 5, true),
            ],
            description: descriptions::NEEDS_PROMOTION,
            evaluate: true,
            ..case("unpromoted canaries do not succeed")
        },
        Case {
            update: update(2, "10m", true, false),
            group: group(2, 2, NOW + 100),
            allocs: vec![
                alloc("a", Some(true), NOW - 5, true),
                alloc("b", Some(true), NOW - 5, true),
            ],
            state: DeploymentState::Successful,
            description: descriptions::SUCCESSFUL,
            evaluate: true,
            stable: true,
            ..case("blue/green promoted automatically succeeds")
        },
    ]
}

#[test]
fn the_rules() {
    for c in cases() {
        let mut status = running(&[("web", c.group.clone())]);
        if c.paused_status {
            status.status = DeploymentState::Paused;
            status.status_description = Some(descriptions::PAUSED.into());
        }
        let mut d = deployment(&[("web", c.update.clone())], Some(status));
        (c.spec)(&mut d.spec);
        let decision = run(&d, &job(2), &c.allocs);
        let after = decision.status.as_ref().or(d.status.as_ref()).unwrap();
        assert_eq!(after.status, c.state, "{}", c.name);
        assert_eq!(
            after.status_description.as_deref(),
            Some(c.description),
            "{}",
            c.name
        );
        assert_eq!(decision.evaluate, c.evaluate, "{}: evaluate", c.name);
        assert_eq!(decision.revert, c.revert, "{}: revert", c.name);
        assert_eq!(decision.mark_stable, c.stable, "{}: stable", c.name);
        if after.status != DeploymentState::Running {
            assert_eq!(decision.requeue_at, None, "{}: requeue", c.name);
        }
    }
}
