//! Semantic checks of a job spec that a JSON Schema cannot express.

use super::{
    Affinity, Constraint, JobSpec, MigrateStrategy, Operator, ReschedulePolicy, RestartPolicy,
    Spread, Task, TaskGroup, UpdateStrategy,
};
use crate::admission::checks::Checks;
use crate::limits::{
    MAX_CPU_MHZ, MAX_DISK_MB, MAX_GROUP_COUNT, MAX_GROUPS, MAX_MEMORY_MB, MAX_TASKS_PER_GROUP,
};

/// Checks a job spec (after defaults), adding every problem to `checks`.
pub(crate) fn job_spec(checks: &mut Checks, spec: &JobSpec) {
    let base = "spec";
    checks.range(
        format!("{base}.priority"),
        spec.priority.map(i64::from),
        1,
        100,
    );
    placement(
        checks,
        base,
        &spec.constraints,
        &spec.affinities,
        &spec.spreads,
    );
    if let Some(update) = &spec.update {
        update_strategy(checks, &format!("{base}.update"), update);
    }
    if let Some(reschedule) = &spec.reschedule {
        reschedule_policy(checks, &format!("{base}.reschedule"), reschedule);
    }
    if let Some(migrate) = &spec.migrate {
        migrate_strategy(checks, &format!("{base}.migrate"), migrate);
    }
    // Nothing launches periodic or dispatched jobs yet: such a job would run at once.
    if spec.periodic.is_some() {
        checks.invalid(
            format!("{base}.periodic"),
            "the periodic block is not supported yet",
        );
    }
    if spec.parameterized.is_some() {
        checks.invalid(
            format!("{base}.parameterized"),
            "the parameterized block is not supported yet",
        );
    }
    checks.max_items(format!("{base}.groups"), spec.groups.len(), MAX_GROUPS);
    checks.unique_names(
        &format!("{base}.groups"),
        spec.groups.iter().map(|g| g.name.as_str()),
    );
    for (i, group) in spec.groups.iter().enumerate() {
        task_group(checks, &format!("{base}.groups[{i}]"), group);
    }
}

fn task_group(checks: &mut Checks, base: &str, group: &TaskGroup) {
    checks.task_name(format!("{base}.name"), &group.name);
    checks.range(
        format!("{base}.count"),
        group.count.map(i64::from),
        0,
        MAX_GROUP_COUNT,
    );
    if let Some(disk) = &group.ephemeral_disk {
        checks.at_most(
            format!("{base}.ephemeralDisk.sizeMB"),
            disk.size_mb,
            MAX_DISK_MB,
        );
    }
    placement(
        checks,
        base,
        &group.constraints,
        &group.affinities,
        &group.spreads,
    );
    if let Some(restart) = &group.restart {
        restart_policy(checks, &format!("{base}.restart"), restart);
    }
    if let Some(reschedule) = &group.reschedule {
        reschedule_policy(checks, &format!("{base}.reschedule"), reschedule);
    }
    if let Some(migrate) = &group.migrate {
        migrate_strategy(checks, &format!("{base}.migrate"), migrate);
    }
    if let Some(update) = &group.update {
        update_strategy(checks, &format!("{base}.update"), update);
    }
    if let Some(network) = &group.network {
        super::network::check(checks, &format!("{base}.network"), network);
    }
    super::network::check_drivers(checks, base, group);
    super::service_checks::check(checks, base, group);
    checks.max_items(
        format!("{base}.tasks"),
        group.tasks.len(),
        MAX_TASKS_PER_GROUP,
    );
    checks.unique_names(
        &format!("{base}.tasks"),
        group.tasks.iter().map(|t| t.name.as_str()),
    );
    for (i, task) in group.tasks.iter().enumerate() {
        self::task(checks, &format!("{base}.tasks[{i}]"), task);
    }
}

fn task(checks: &mut Checks, base: &str, task: &Task) {
    checks.task_name(format!("{base}.name"), &task.name);
    if task.driver.is_empty() {
        checks.invalid(format!("{base}.driver"), "must be non-empty");
    }
    checks.duration(format!("{base}.killTimeout"), task.kill_timeout.as_deref());
    placement(checks, base, &task.constraints, &task.affinities, &[]);
    if let Some(resources) = &task.resources {
        let field = |name: &str| format!("{base}.resources.{name}");
        checks.at_most(field("cpu"), resources.cpu, MAX_CPU_MHZ);
        checks.at_most(field("memoryMB"), resources.memory_mb, MAX_MEMORY_MB);
        checks.at_most(field("memoryMaxMB"), resources.memory_max_mb, MAX_MEMORY_MB);
        checks.at_most(field("diskMB"), resources.disk_mb, MAX_DISK_MB);
        if let (Some(max), Some(memory)) = (resources.memory_max_mb, resources.memory_mb)
            && max < memory
        {
            checks.invalid(
                format!("{base}.resources.memoryMaxMB"),
                format!("must be at least memoryMB ({memory}), got {max}"),
            );
        }
        for (i, device) in resources.devices.iter().enumerate() {
            let device_base = format!("{base}.resources.devices[{i}]");
            placement(
                checks,
                &device_base,
                &device.constraints,
                &device.affinities,
                &[],
            );
        }
    }
}

fn placement(
    checks: &mut Checks,
    base: &str,
    constraints: &[Constraint],
    affinities: &[Affinity],
    spreads: &[Spread],
) {
    for (i, constraint) in constraints.iter().enumerate() {
        let operator = constraint.operator.unwrap_or_default();
        let field = format!("{base}.constraints[{i}]");
        let needs_attribute = !matches!(operator, Operator::DistinctHosts);
        if needs_attribute && constraint.attribute.is_empty() {
            checks.invalid(
                format!("{field}.attribute"),
                format!("must be set for operator {:?}", operator.as_str()),
            );
        }
        let needs_value = !matches!(
            operator,
            Operator::IsSet
                | Operator::IsNotSet
                | Operator::DistinctHosts
                | Operator::DistinctProperty
        );
        if needs_value && constraint.value.is_empty() {
            checks.invalid(
                format!("{field}.value"),
                format!("must be set for operator {:?}", operator.as_str()),
            );
        }
        if let Some(problem) = operator.value_problem(&constraint.value) {
            checks.invalid(format!("{field}.value"), problem);
        }
    }
    for (i, affinity) in affinities.iter().enumerate() {
        let field = format!("{base}.affinities[{i}]");
        checks.range(
            format!("{field}.weight"),
            affinity.weight.map(i64::from),
            -100,
            100,
        );
        if affinity.weight == Some(0) {
            checks.invalid(format!("{field}.weight"), "must be non-zero");
        }
        if affinity.attribute.is_empty() {
            checks.invalid(format!("{field}.attribute"), "must be non-empty");
        }
        let operator = affinity.operator.unwrap_or_default();
        if let Some(problem) = operator.value_problem(&affinity.value) {
            checks.invalid(format!("{field}.value"), problem);
        }
    }
    for (i, spread) in spreads.iter().enumerate() {
        let field = format!("{base}.spreads[{i}]");
        checks.range(
            format!("{field}.weight"),
            spread.weight.map(i64::from),
            0,
            100,
        );
        let sum: u64 = spread.targets.iter().map(|t| u64::from(t.percent)).sum();
        if sum > 100 {
            checks.invalid(
                format!("{field}.targets"),
                format!("percentages must add up to at most 100, got {sum}"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (j, target) in spread.targets.iter().enumerate() {
            if !seen.insert(target.value.as_str()) {
                checks.push(
                    format!("{field}.targets[{j}].value"),
                    crate::FieldErrorKind::Duplicate,
                    format!("duplicate target {:?}", target.value),
                );
            }
        }
    }
}

fn restart_policy(checks: &mut Checks, base: &str, policy: &RestartPolicy) {
    checks.duration(format!("{base}.interval"), policy.interval.as_deref());
    checks.duration(format!("{base}.delay"), policy.delay.as_deref());
}

fn reschedule_policy(checks: &mut Checks, base: &str, policy: &ReschedulePolicy) {
    checks.duration(format!("{base}.interval"), policy.interval.as_deref());
    checks.duration(format!("{base}.delay"), policy.delay.as_deref());
    checks.duration(format!("{base}.maxDelay"), policy.max_delay.as_deref());
}

fn update_strategy(checks: &mut Checks, base: &str, update: &UpdateStrategy) {
    checks.duration(
        format!("{base}.minHealthyTime"),
        update.min_healthy_time.as_deref(),
    );
    checks.duration(
        format!("{base}.healthyDeadline"),
        update.healthy_deadline.as_deref(),
    );
    checks.duration(
        format!("{base}.progressDeadline"),
        update.progress_deadline.as_deref(),
    );
    if update.stagger.is_some() {
        checks.invalid(
            format!("{base}.stagger"),
            "stagger is not supported: rolling updates wait for each batch to be healthy \
             (minHealthyTime) instead",
        );
    }
}

fn migrate_strategy(checks: &mut Checks, base: &str, migrate: &MigrateStrategy) {
    checks.duration(
        format!("{base}.minHealthyTime"),
        migrate.min_healthy_time.as_deref(),
    );
    checks.duration(
        format!("{base}.healthyDeadline"),
        migrate.healthy_deadline.as_deref(),
    );
}
