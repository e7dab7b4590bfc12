//! Which rules an allocation's health is tracked with: its group's `update` block, Nomad's
//! defaults for what the block leaves out. Pure.

use std::time::Duration;

use caravan_schemas::Job;
use caravan_schemas::duration::parse_duration;
use caravan_schemas::job::{HealthCheck, UpdateStrategy, defaults};

use super::HealthRules;

/// The rules of an `update` block; `None` for `healthCheck: manual`, where the operator sets
/// health and the agent never does. `checks` asks for the tasks' states and every check of the
/// allocation's services passing; `task_states` for the tasks' states only.
pub fn rules(update: &UpdateStrategy) -> Option<HealthRules> {
    let defaults = defaults::update_strategy();
    let checks = match update.health_check.or(defaults.health_check) {
        Some(HealthCheck::Manual) => return None,
        Some(HealthCheck::Checks) => true,
        Some(HealthCheck::TaskStates) | None => false,
    };
    Some(HealthRules {
        checks,
        min_healthy_time: duration_or(
            update.min_healthy_time.as_deref(),
            defaults.min_healthy_time.as_deref(),
        ),
        healthy_deadline: duration_or(
            update.healthy_deadline.as_deref(),
            defaults.healthy_deadline.as_deref(),
        ),
    })
}

/// The `update` block of group `group` in `job`, if the group has one.
pub fn group_update<'a>(job: &'a Job, group: &str) -> Option<&'a UpdateStrategy> {
    job.spec
        .groups
        .iter()
        .find(|g| g.name == group)
        .and_then(|g| g.update.as_ref())
}

/// `value` parsed, else `default` parsed (admission refuses unreadable durations; the default
/// covers an object written before it did).
fn duration_or(value: Option<&str>, default: Option<&str>) -> Duration {
    value
        .and_then(|v| parse_duration(v).ok())
        .or_else(|| default.and_then(|d| parse_duration(d).ok()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_block_leaves_out() {
        let rules = rules(&UpdateStrategy::default()).expect("tracked");
        assert!(rules.checks, "Nomad's default is checks");
        assert_eq!(rules.min_healthy_time, Duration::from_secs(10));
        assert_eq!(rules.healthy_deadline, Duration::from_secs(300));
        let own = UpdateStrategy {
            health_check: Some(HealthCheck::TaskStates),
            min_healthy_time: Some("250ms".into()),
            healthy_deadline: Some("1m30s".into()),
            ..Default::default()
        };
        assert_eq!(
            super::rules(&own),
            Some(HealthRules {
                min_healthy_time: Duration::from_millis(250),
                healthy_deadline: Duration::from_secs(90),
                checks: false,
            })
        );
    }

    #[test]
    fn checks_add_the_services_checks_and_manual_is_not_tracked() {
        let with = |check| UpdateStrategy {
            health_check: Some(check),
            ..Default::default()
        };
        let checks = rules(&with(HealthCheck::Checks)).expect("tracked");
        let task_states = rules(&with(HealthCheck::TaskStates)).expect("tracked");
        assert!(checks.checks);
        assert!(!task_states.checks);
        assert_eq!(
            HealthRules {
                checks: false,
                ..checks
            },
            task_states
        );
        assert_eq!(rules(&with(HealthCheck::Manual)), None);
    }

    #[test]
    fn the_update_block_is_the_groups() {
        let job: Job = serde_json::from_value(serde_json::json!({
            "apiVersion": "caravan.dev/v1", "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"groups": [
                {"name": "a", "tasks": [], "update": {"minHealthyTime": "1s"}},
                {"name": "b", "tasks": []}
            ]}
        }))
        .unwrap();
        assert_eq!(
            group_update(&job, "a").and_then(|u| u.min_healthy_time.as_deref()),
            Some("1s")
        );
        assert_eq!(group_update(&job, "b"), None);
        assert_eq!(group_update(&job, "c"), None);
    }
}
