//! Properties of the state machine over random histories of placements, health reports,
//! stops, operator actions and time.

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::deployment::DeploymentState;
use caravan_schemas::{Allocation, Deployment};
use proptest::prelude::*;

use super::{NOW, alloc, deployment, job, update};
use crate::deployment::decide;

#[derive(Clone, Debug)]
enum Step {
    Place { group: usize, canary: bool },
    Health { alloc: usize, healthy: bool },
    Stop { alloc: usize },
    Wait { seconds: i64 },
    Promote,
    Pause(bool),
    Fail,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..2usize, any::<bool>()).prop_map(|(group, canary)| Step::Place { group, canary }),
        10 => (0..12usize, prop::bool::weighted(0.9))
            .prop_map(|(alloc, healthy)| Step::Health { alloc, healthy }),
        1 => (0..12usize).prop_map(|alloc| Step::Stop { alloc }),
        2 => (0..40i64).prop_map(|seconds| Step::Wait { seconds }),
        2 => Just(Step::Promote),
        2 => any::<bool>().prop_map(Step::Pause),
        // An operator rarely fails a deployment: most histories end otherwise.
        1 => prop::bool::weighted(0.2).prop_map(|fail| if fail { Step::Fail } else { Step::Promote }),
    ]
}

/// A group's update block: count, canaries, progress deadline, autoPromote, autoRevert.
#[derive(Clone, Debug)]
struct Group {
    count: u32,
    canary: u32,
    deadline: &'static str,
    auto_promote: bool,
    auto_revert: bool,
}

fn group() -> impl Strategy<Value = Group> {
    let deadline = prop_oneof![1 => Just("0"), 2 => Just("60s"), 3 => Just("10m")];
    (1..4u32, 0..3u32, deadline, any::<bool>(), any::<bool>()).prop_map(
        |(count, canary, deadline, auto_promote, auto_revert)| Group {
            count,
            canary: canary.min(count),
            deadline,
            auto_promote,
            auto_revert,
        },
    )
}

const GROUPS: [&str; 2] = ["web", "api"];

fn is_terminal(d: &Deployment) -> bool {
    matches!(
        d.state(),
        DeploymentState::Failed | DeploymentState::Successful | DeploymentState::Cancelled
    )
}

/// Healthy allocations of `group` still running.
fn live_healthy(allocs: &[Allocation], group: &str) -> u32 {
    let n = allocs
        .iter()
        .filter(|a| a.spec.group == group && !a.is_terminal())
        .filter(|a| {
            a.status
                .as_ref()
                .and_then(|s| s.deployment_status.as_ref())
                .and_then(|h| h.healthy)
                == Some(true)
        })
        .count();
    u32::try_from(n).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn deployments_end_once_and_count_consistently(
        groups in prop::collection::vec(group(), 1..=2),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        let specs: Vec<_> = groups
            .iter()
            .zip(GROUPS)
            .map(|(g, name)| (name, update(g.canary, g.deadline, g.auto_promote, g.auto_revert)))
            .collect();
        let mut job = job(groups[0].count);
        if let Some(api) = groups.get(1) {
            let mut second = job.spec.groups[0].clone();
            second.name = "api".into();
            second.count = Some(api.count);
            job.spec.groups.push(second);
        }
        let mut d = deployment(&specs, None);
        let mut allocs: Vec<Allocation> = Vec::new();
        let mut now = NOW;
        for step in steps {
            match step {
                Step::Place { group, canary } => {
                    let name = GROUPS[group % specs.len()];
                    let mut a = alloc(&format!("a{}", allocs.len()), None, now, canary);
                    a.spec.group = name.into();
                    allocs.push(a);
                }
                Step::Health { alloc, healthy } => {
                    if let Some(a) = allocs.get_mut(alloc) {
                        let status = a.status.get_or_insert_default();
                        let health = status.deployment_status.get_or_insert_default();
                        if health.healthy.is_none() {
                            health.healthy = Some(healthy);
                            health.timestamp = Some(crate::scheduler::time::format_rfc3339(now));
                        }
                    }
                }
                Step::Stop { alloc } => {
                    if let Some(a) = allocs.get_mut(alloc) {
                        a.spec.desired_status = Some(DesiredStatus::Stop);
                    }
                }
                Step::Wait { seconds } => now += seconds,
                Step::Promote => d.spec.promoted = Some(true),
                Step::Pause(paused) => d.spec.paused = Some(paused),
                Step::Fail => d.spec.failed = Some(true),
            }
            let refs: Vec<&Allocation> = allocs.iter().collect();
            let decision = decide(&d, Some(&job), &refs, now);
            if is_terminal(&d) {
                prop_assert_eq!(decision, Default::default());
                continue;
            }
            let Some(status) = decision.status.clone() else {
                continue;
            };
            for (name, g) in &status.groups {
                prop_assert!(
                    u64::from(g.healthy_allocs) + u64::from(g.unhealthy_allocs)
                        <= u64::from(g.placed_allocs),
                    "group {} counts {:?}", name, g
                );
            }
            if status.status == DeploymentState::Successful {
                prop_assert!(decision.mark_stable);
                for (name, g) in &status.groups {
                    prop_assert!(g.healthy_allocs >= g.desired_total, "group {}", name);
                    prop_assert!(live_healthy(&allocs, name) >= g.desired_total, "group {}", name);
                    prop_assert!(g.desired_canaries == 0 || g.promoted, "group {}", name);
                }
            } else {
                prop_assert!(!decision.mark_stable);
            }
            if decision.revert {
                prop_assert_eq!(status.status, DeploymentState::Failed);
                prop_assert!(status.groups.values().any(|g| g.auto_revert));
            }
            d.status = Some(status);
            // What was written asks for nothing more at the same moment.
            let again = decide(&d, Some(&job), &refs, now);
            prop_assert_eq!(again.status, None);
            prop_assert!(!again.evaluate);
        }
    }
}
