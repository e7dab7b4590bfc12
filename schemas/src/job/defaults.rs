//! Nomad's defaults for jobs, filled in at admission; some depend on the job type.

use super::{
    Affinity, Constraint, DeviceRequest, HealthCheck, JobSpec, JobType, Lifecycle, LogConfig,
    MigrateStrategy, ParameterizedConfig, PayloadMode, PeriodicConfig, ReschedulePolicy, Resources,
    RestartMode, RestartPolicy, Spread, Task, TaskGroup, UpdateStrategy,
};
use crate::job::{DelayFunction, NetworkMode};

/// Default priority of a job.
pub const PRIORITY: i32 = 50;
/// Default region of a job.
pub const REGION: &str = "global";
/// Default node pool of jobs and nodes.
pub const NODE_POOL: &str = "default";
/// Namespace of an object that names none.
pub const NAMESPACE: &str = "default";
/// Default weight of affinities and spreads.
pub const WEIGHT: i32 = 50;
/// Default group count.
pub const COUNT: u32 = 1;
/// Default task CPU, MHz.
pub const CPU_MHZ: u64 = 100;
/// Default task memory, MB.
pub const MEMORY_MB: u64 = 300;
/// Default ephemeral disk, MB.
pub const DISK_MB: u64 = 300;
/// Default kill timeout of a task.
pub const KILL_TIMEOUT: &str = "5s";
/// Default kill signal of a task.
pub const KILL_SIGNAL: &str = "SIGINT";

/// Nomad's update strategy defaults.
pub fn update_strategy() -> UpdateStrategy {
    UpdateStrategy {
        max_parallel: Some(1),
        health_check: Some(HealthCheck::Checks),
        min_healthy_time: Some("10s".into()),
        healthy_deadline: Some("5m".into()),
        progress_deadline: Some("10m".into()),
        auto_revert: Some(false),
        auto_promote: Some(false),
        canary: Some(0),
        stagger: None,
    }
}

/// Nomad's migrate strategy defaults.
pub fn migrate_strategy() -> MigrateStrategy {
    MigrateStrategy {
        max_parallel: Some(1),
        health_check: Some(HealthCheck::Checks),
        min_healthy_time: Some("10s".into()),
        healthy_deadline: Some("5m".into()),
    }
}

/// The restart policy of a job type.
pub fn restart_policy(job_type: JobType) -> RestartPolicy {
    let (attempts, interval) = match job_type {
        JobType::Service | JobType::System => (2, "30m"),
        JobType::Batch | JobType::Sysbatch => (3, "24h"),
    };
    RestartPolicy {
        attempts: Some(attempts),
        interval: Some(interval.into()),
        delay: Some("15s".into()),
        mode: Some(RestartMode::Fail),
    }
}

/// The reschedule policy of a job type; system and sysbatch jobs are never rescheduled.
pub fn reschedule_policy(job_type: JobType) -> Option<ReschedulePolicy> {
    match job_type {
        JobType::Service => Some(ReschedulePolicy {
            attempts: Some(0),
            interval: Some("0s".into()),
            delay: Some("30s".into()),
            delay_function: Some(DelayFunction::Exponential),
            max_delay: Some("1h".into()),
            unlimited: Some(true),
        }),
        JobType::Batch => Some(ReschedulePolicy {
            attempts: Some(1),
            interval: Some("24h".into()),
            delay: Some("5s".into()),
            delay_function: Some(DelayFunction::Constant),
            max_delay: Some("0s".into()),
            unlimited: Some(false),
        }),
        JobType::System | JobType::Sysbatch => None,
    }
}

/// Fills every absent field of `spec` with Nomad's default for its job type.
pub fn apply(spec: &mut JobSpec) {
    let job_type = *spec.r#type.get_or_insert_default();
    spec.priority.get_or_insert(PRIORITY);
    spec.region.get_or_insert_with(|| REGION.into());
    if spec.datacenters.is_empty() {
        spec.datacenters.push("*".into());
    }
    spec.node_pool.get_or_insert_with(|| NODE_POOL.into());
    placement(
        &mut spec.constraints,
        &mut spec.affinities,
        &mut spec.spreads,
    );

    // As Nomad: a job without an `update` block gets none (no deployments, every
    // allocation replaced at once); one with a block gets the defaults under it.
    let updates = matches!(job_type, JobType::Service | JobType::System);
    let update_defaults = || updates.then(update_strategy);
    spec.update = spec
        .update
        .take()
        .map(|own| merged(Some(own), update_defaults(), merge_update).unwrap_or_default());
    spec.reschedule = merged(
        spec.reschedule.take(),
        reschedule_policy(job_type),
        merge_reschedule,
    );
    let migrates = job_type == JobType::Service;
    spec.migrate = merged(
        spec.migrate.take(),
        migrates.then(migrate_strategy),
        merge_migrate,
    );
    if let Some(periodic) = &mut spec.periodic {
        periodic_config(periodic);
    }
    if let Some(parameterized) = &mut spec.parameterized {
        parameterized_config(parameterized);
    }

    for group in &mut spec.groups {
        group.update = merged(group.update.take(), spec.update.clone(), merge_update)
            .map(|own| merged(Some(own), update_defaults(), merge_update).unwrap_or_default());
        group.reschedule = merged(
            group.reschedule.take(),
            spec.reschedule.clone(),
            merge_reschedule,
        );
        group.migrate = merged(group.migrate.take(), spec.migrate.clone(), merge_migrate);
        task_group(group, job_type);
    }
}

fn task_group(group: &mut TaskGroup, job_type: JobType) {
    group.count.get_or_insert(COUNT);
    placement(
        &mut group.constraints,
        &mut group.affinities,
        &mut group.spreads,
    );
    group.restart = merged(
        group.restart.take(),
        Some(restart_policy(job_type)),
        merge_restart,
    );
    let disk = group.ephemeral_disk.get_or_insert_default();
    disk.size_mb.get_or_insert(DISK_MB);
    disk.sticky.get_or_insert(false);
    disk.migrate.get_or_insert(false);
    if let Some(network) = &mut group.network {
        network.mode.get_or_insert(NetworkMode::Host);
    }
    for task in &mut group.tasks {
        self::task(task);
    }
}

fn task(task: &mut Task) {
    let resources = task.resources.get_or_insert_with(Resources::default);
    if resources.cores.is_none() {
        resources.cpu.get_or_insert(CPU_MHZ);
    }
    resources.memory_mb.get_or_insert(MEMORY_MB);
    for device in &mut resources.devices {
        device_request(device);
    }
    if let Some(lifecycle) = &mut task.lifecycle {
        lifecycle_config(lifecycle);
    }
    task.kill_timeout.get_or_insert_with(|| KILL_TIMEOUT.into());
    task.kill_signal.get_or_insert_with(|| KILL_SIGNAL.into());
    let logs = task.logs.get_or_insert_with(LogConfig::default);
    logs.max_files.get_or_insert(10);
    logs.max_file_size_mb.get_or_insert(10);
    placement(&mut task.constraints, &mut task.affinities, &mut []);
}

fn device_request(device: &mut DeviceRequest) {
    device.count.get_or_insert(1);
    placement(&mut device.constraints, &mut device.affinities, &mut []);
}

fn lifecycle_config(lifecycle: &mut Lifecycle) {
    lifecycle.sidecar.get_or_insert(false);
}

fn placement(constraints: &mut [Constraint], affinities: &mut [Affinity], spreads: &mut [Spread]) {
    for constraint in constraints {
        constraint.operator.get_or_insert_default();
    }
    for affinity in affinities {
        affinity.operator.get_or_insert_default();
        affinity.weight.get_or_insert(WEIGHT);
    }
    for spread in spreads {
        spread.weight.get_or_insert(WEIGHT);
    }
}

fn periodic_config(periodic: &mut PeriodicConfig) {
    periodic.prohibit_overlap.get_or_insert(false);
    periodic.time_zone.get_or_insert_with(|| "UTC".into());
    periodic.enabled.get_or_insert(true);
}

fn parameterized_config(parameterized: &mut ParameterizedConfig) {
    parameterized.payload.get_or_insert(PayloadMode::Optional);
}

/// `own` with its absent fields taken from `fallback`; absent when both are.
fn merged<T>(own: Option<T>, fallback: Option<T>, merge: fn(&mut T, T)) -> Option<T> {
    match (own, fallback) {
        (Some(mut own), Some(fallback)) => {
            merge(&mut own, fallback);
            Some(own)
        }
        (own, fallback) => own.or(fallback),
    }
}

fn merge_update(own: &mut UpdateStrategy, fallback: UpdateStrategy) {
    fill(&mut own.max_parallel, fallback.max_parallel);
    fill(&mut own.health_check, fallback.health_check);
    fill(&mut own.min_healthy_time, fallback.min_healthy_time);
    fill(&mut own.healthy_deadline, fallback.healthy_deadline);
    fill(&mut own.progress_deadline, fallback.progress_deadline);
    fill(&mut own.auto_revert, fallback.auto_revert);
    fill(&mut own.auto_promote, fallback.auto_promote);
    fill(&mut own.canary, fallback.canary);
    fill(&mut own.stagger, fallback.stagger);
}

fn merge_reschedule(own: &mut ReschedulePolicy, fallback: ReschedulePolicy) {
    fill(&mut own.attempts, fallback.attempts);
    fill(&mut own.interval, fallback.interval);
    fill(&mut own.delay, fallback.delay);
    fill(&mut own.delay_function, fallback.delay_function);
    fill(&mut own.max_delay, fallback.max_delay);
    fill(&mut own.unlimited, fallback.unlimited);
}

fn merge_migrate(own: &mut MigrateStrategy, fallback: MigrateStrategy) {
    fill(&mut own.max_parallel, fallback.max_parallel);
    fill(&mut own.health_check, fallback.health_check);
    fill(&mut own.min_healthy_time, fallback.min_healthy_time);
    fill(&mut own.healthy_deadline, fallback.healthy_deadline);
}

fn merge_restart(own: &mut RestartPolicy, fallback: RestartPolicy) {
    fill(&mut own.attempts, fallback.attempts);
    fill(&mut own.interval, fallback.interval);
    fill(&mut own.delay, fallback.delay);
    fill(&mut own.mode, fallback.mode);
}

fn fill<T>(own: &mut Option<T>, fallback: Option<T>) {
    if own.is_none() {
        *own = fallback;
    }
}
